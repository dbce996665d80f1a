"""The xlsx ledger prints well: A4 landscape, one page wide, header rows on every page, cell borders."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from openpyxl import load_workbook

from service.exports.writers import write_xlsx
from tests.exports.builders import make_row


def test_every_sheet_prints_landscape_fit_to_width_with_repeated_headers_and_borders(tmp_path: Path) -> None:
    path = tmp_path / "ledger.xlsx"
    rows = [
        make_row(n, department=("env", "water")[n % 2], department_name=("市生态环境局", "市水务局")[n % 2])
        for n in range(1, 12)
    ]
    write_xlsx(rows, path, period=(date(2026, 11, 16), date(2026, 11, 22)), per_department_sheets=True)
    book = load_workbook(path)
    assert len(book.sheetnames) >= 3
    for ws in book.worksheets:
        assert ws.page_setup.orientation == "landscape", ws.title
        assert ws.page_setup.paperSize in (9, "9"), ws.title  # A4
        assert ws.sheet_properties.pageSetUpPr.fitToPage is True, ws.title
        assert int(ws.page_setup.fitToWidth) == 1
        assert int(ws.page_setup.fitToHeight) == 0  # as many pages down as needed
    assert book["台账"].print_title_rows == "$1:$1"
    assert book["汇总"].print_title_rows == "$4:$4"
    ledger = book["台账"]
    for row in ledger.iter_rows(min_row=1, max_row=ledger.max_row):
        for cell in row:
            assert cell.border.left.style == "thin", cell.coordinate
            assert cell.border.bottom.style == "thin", cell.coordinate
    # The footnote of the summary is split so no row runs past the printed width.
    summary = book["汇总"]
    notes = [c.value for c in summary["A"] if isinstance(c.value, str) and "按时" in c.value and "=" in c.value]
    assert notes
    assert all(len(n) <= 45 for n in notes)


def test_the_ledger_has_the_original_link_and_offline_response_types(tmp_path: Path) -> None:
    from service.exports.writers import HEADERS, write_csv

    rows = [
        make_row(
            1,
            source_url="http://12345.example.gov.cn/detail/GD2026001.html",
            order_no="GD2026001",
            response_type="phone",
        ),
        make_row(2, response_url="https://www.example.gov.cn/reply/2.html", response_type="online"),
    ]
    path = tmp_path / "ledger.xlsx"
    write_xlsx(rows, path)
    ledger = load_workbook(path)["台账"]
    first = {head: cell.value for head, cell in zip(HEADERS, ledger[2], strict=True)}
    second = {head: cell.value for head, cell in zip(HEADERS, ledger[3], strict=True)}
    assert first["原文链接"] == "http://12345.example.gov.cn/detail/GD2026001.html"
    assert first["工单号"] == "GD2026001"  # the source's own number, beside the link
    assert HEADERS.index("工单号") + 1 == HEADERS.index("原文链接")
    assert second["工单号"] is None
    assert first["回应方式/链接"] == "电话"
    assert second["回应方式/链接"] == "https://www.example.gov.cn/reply/2.html"
    csv_path = tmp_path / "ledger.csv"
    write_csv(rows, csv_path)
    text = csv_path.read_text(encoding="utf-8-sig")
    assert "原文链接" in text.splitlines()[0]
    assert ",GD2026001,http://12345.example.gov.cn/detail/GD2026001.html" in text
    assert "GD2026001.html" in text
