"""The streaming xlsx writer, read back the way users' tools read it: openpyxl, and the XML itself."""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import pytest
from openpyxl.utils.escape import unescape

from service.exports.xlsx_stream import BLANK, MAX_TEXT, Style, XlsxBook, column_letter


def parse_every_part(path: Path) -> None:
    """Every part of the package is well-formed XML (a strict reader refuses the file otherwise)."""
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            ElementTree.fromstring(zf.read(name))


def test_column_letters() -> None:
    assert [column_letter(c) for c in (0, 16, 25, 26, 701, 702)] == ["A", "Q", "Z", "AA", "ZZ", "AAA"]


def test_hostile_text_comes_back_as_the_same_text(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    texts = [
        "<b>加粗</b> & 'quoted' \"double\"",
        "  两端空格  ",
        "响铃\x07与空字符\x00被去掉\x1f",
        "坏代理\udcff字符",
        "_x0041_ 不是字母 A",
        '=HYPERLINK("http://evil.example","点我")',
        "+8613812345678",
        "换行\n保留\t制表符",
    ]
    with XlsxBook(path) as book:
        sheet = book.add_sheet("文本")
        for text in texts:
            sheet.write_row((text,))
        sheet.write_row(("长" * (MAX_TEXT + 10),))
        sheet.write_row(("😀" * MAX_TEXT,))
    parse_every_part(path)
    ws = openpyxl.load_workbook(path)["文本"]
    # Excel decodes _xHHHH_ in text as a character; openpyxl's unescape does what Excel does.
    got = [unescape(ws.cell(row=i, column=1).value) for i in range(1, len(texts) + 1)]
    assert got == [
        "<b>加粗</b> & 'quoted' \"double\"",
        "  两端空格  ",
        "响铃与空字符被去掉",
        "坏代理字符",
        "_x0041_ 不是字母 A",
        '=HYPERLINK("http://evil.example","点我")',
        "+8613812345678",
        "换行\n保留\t制表符",
    ]
    assert all(ws.cell(row=i, column=1).data_type == "s" for i in range(1, len(texts) + 1))
    # Excel drops edge spaces of text not marked to keep them.
    with zipfile.ZipFile(path) as zf:
        assert '<t xml:space="preserve">  两端空格  </t>' in zf.read("xl/worksheets/sheet1.xml").decode()
    # Excel counts UTF-16 units: the emoji take two each, and none is cut in half.
    assert ws.cell(row=len(texts) + 1, column=1).value == "长" * MAX_TEXT
    assert ws.cell(row=len(texts) + 2, column=1).value == "😀" * (MAX_TEXT // 2)


def test_values_styles_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "v.xlsx"
    with XlsxBook(path) as book:
        bold = book.style(Style(bold=True, fill="#ffc7ce", border="all", center=True, wrap=True))
        percent = book.style(Style(num_format="0.0%"))
        assert book.style(Style(num_format="0.0%")) == percent  # one format, one id
        sheet = book.add_sheet("数据", widths=(10, 30), freeze_rows=2)
        sheet.write_row(("标题", "说明"), (bold, bold))
        sheet.write_row((1, 0.25, True, None, BLANK, ""), (0, percent, 0, bold, bold, bold))
        sheet.skip(2)
        sheet.write_row((-3.5,))
        sheet.set_autofilter(sheet.next_row - 1, 1)
    parse_every_part(path)
    ws = openpyxl.load_workbook(path)["数据"]
    assert ws["A1"].font.b
    assert ws["A1"].fill.fgColor.rgb == "FFFFC7CE"
    assert ws["A1"].border.left.style == "thin"
    assert ws["A1"].alignment.horizontal == "center"
    assert ws["A1"].alignment.wrap_text
    assert (ws["A2"].value, ws["B2"].value, ws["C2"].value) == (1, 0.25, True)
    assert ws["B2"].number_format == "0.0%"
    # None writes nothing; BLANK writes an empty cell that keeps its style; "" is no cell either.
    assert ws["D2"].value is None
    assert not ws["D2"].font.b
    assert ws["E2"].value is None
    assert ws["E2"].font.b
    assert not ws["F2"].font.b
    assert ws["A5"].value == -3.5
    assert ws.max_row == 5
    assert ws.freeze_panes == "A3"
    assert ws.auto_filter.ref == "A1:B5"
    assert ws.column_dimensions["A"].width == pytest.approx(10.71, abs=0.01)
    assert ws.column_dimensions["B"].width == pytest.approx(30.71, abs=0.01)


def test_bad_values_and_names_are_refused(tmp_path: Path) -> None:
    with XlsxBook(tmp_path / "bad.xlsx") as book:
        sheet = book.add_sheet("表")
        with pytest.raises(TypeError, match="nan"):
            sheet.write_row((float("nan"),))
        with pytest.raises(TypeError, match="inf"):
            sheet.write_row((float("inf"),))
        with pytest.raises(TypeError, match="datetime"):
            sheet.write_row((datetime(2026, 3, 2, 10, 0),))
        with pytest.raises(ValueError, match="already in the book"):
            book.add_sheet("表")
        with pytest.raises(ValueError, match=r"\[\]"):
            book.add_sheet("a/b")
        with pytest.raises(ValueError, match="colour"):
            book.style(Style(fill="red"))


def test_sheets_written_together_and_out_of_order(tmp_path: Path) -> None:
    # Enough rows that every sheet flushes while the others are open: the first one goes straight into
    # the zip, the others spool; the first tab is written last of all.
    path = tmp_path / "order.xlsx"
    n = 1500
    with XlsxBook(path) as book:
        first = book.add_sheet("先看")
        odd, even = book.add_sheet("奇数"), book.add_sheet("偶数")
        for i in range(1, n + 1):
            (odd if i % 2 else even).write_row((i, f"第{i}行"))
        odd.close()
        even.close()
        first.write_row(("共", n))
    parse_every_part(path)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["先看", "奇数", "偶数"]
    assert wb.active.title == "先看"
    assert [r[0] for r in wb["奇数"].iter_rows(values_only=True)] == list(range(1, n + 1, 2))
    assert list(wb["偶数"].iter_rows(values_only=True))[-1] == (n, f"第{n}行")
    assert list(wb["先看"].iter_rows(values_only=True)) == [("共", n)]


def test_a_failure_midway_leaves_no_spool_files(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"

    def write_until_the_source_fails() -> None:
        with XlsxBook(path) as book:
            a, b = book.add_sheet("a"), book.add_sheet("b")
            for i in range(2000):
                a.write_row((i,))
                b.write_row((i,))
            raise RuntimeError("database went away")

    with pytest.raises(RuntimeError, match="went away"):
        write_until_the_source_fails()
    assert [p.name for p in tmp_path.iterdir()] == ["broken.xlsx"]  # the caller deletes the unfinished file
