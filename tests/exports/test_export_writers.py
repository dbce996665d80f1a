"""The ledger files as a user opens them: xlsx through openpyxl, csv through the csv module."""

from __future__ import annotations

import csv
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import openpyxl
import pytest

from service.exports.writers import HEADERS, write_csv, write_xlsx
from tests.exports.builders import ID_NUMBER, PHONE, T0, make_row


def sample_rows():
    """Two env tickets, one water ticket; a generator, as the database query gives them."""
    yield make_row(
        1,
        title=f"化工厂排污，联系电话{PHONE}",
        acknowledged_at=T0 + timedelta(hours=1),
        handled_at=T0 + timedelta(days=1),
        result="已责成企业整改",
        responded_at=T0 + timedelta(hours=50),
        response_url="https://www.example.gov.cn/hf/1.html",
        status="responded",
        respond_overdue=True,
        escalated=True,
        note=f"举报人身份证{ID_NUMBER}",
    )
    yield make_row(2, acknowledge_overdue=True)
    yield make_row(
        3,
        title='=HYPERLINK("http://evil.example","点我")',
        channel="mailbox",
        source="市长信箱",
        department="water",
        department_name="市水务局",
        severity="major",
        acknowledged_at=T0 + timedelta(minutes=30),
        responded_at=T0 + timedelta(hours=10),
        status="closed",
        handled_at=T0 + timedelta(hours=8),
    )


def all_text(path: Path) -> str:
    """Every XML part of a workbook, as text."""
    with zipfile.ZipFile(path) as zf:
        return "".join(zf.read(name).decode("utf-8") for name in zf.namelist() if name.endswith(".xml"))


def test_xlsx_has_summary_first_then_a_filterable_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.xlsx"
    summary = write_xlsx(sample_rows(), path, period=(T0.date(), T0.date() + timedelta(days=6)))
    assert summary.rows == 3

    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["汇总", "台账"]
    ws = wb["台账"]
    assert [c.value for c in ws[1]] == list(HEADERS)
    assert ws.max_row == 4
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:S4"
    assert ws.column_dimensions["B"].width > 30  # the title column is wide enough to read

    first = {head: cell.value for head, cell in zip(HEADERS, ws[2], strict=True)}
    assert first["序号"] == 1
    assert first["舆情标题"] == "化工厂排污，联系电话138****5678"
    assert first["来源渠道"] == "12345热线"
    assert first["来源"] == "示例市12345热线"
    # Times are Asia/Shanghai wall-clock times: T0 is 02:00 UTC.
    assert first["发现时间"] == datetime(2026, 3, 2, 10, 0)
    assert first["发布时间"] == datetime(2026, 3, 2, 8, 0)
    assert first["签收时间"] == datetime(2026, 3, 2, 11, 0)
    assert first["回应时间"] == datetime(2026, 3, 4, 12, 0)
    assert first["责任单位"] == "市生态环境局"
    assert first["严重程度"] == "较大"
    assert first["当前状态"] == "已回应"
    assert first["签收/办理/回应是否超期"] == "回应超期"
    assert first["督办"] == "是"
    assert first["回应方式/链接"] == "https://www.example.gov.cn/hf/1.html"
    assert first["备注"] == "举报人身份证110101********1234"
    assert ws["A3"].value == 2
    assert ws["O3"].value == "签收超期"
    assert ws["O4"].value == "否"
    # Hostile text stays text: no formula in the workbook.
    assert ws["B4"].value == '=HYPERLINK("http://evil.example","点我")'
    assert ws["B4"].data_type == "s"


def test_xlsx_highlights_overdue_cells_only(tmp_path: Path) -> None:
    path = tmp_path / "ledger.xlsx"
    write_xlsx(sample_rows(), path)
    ws = openpyxl.load_workbook(path)["台账"]

    def filled(ref: str) -> bool:
        return ws[ref].fill.fill_type == "solid" and ws[ref].fill.fgColor.rgb.endswith("FFC7CE")

    # Responded late: the response time and the overdue column are marked.
    assert filled("L2")
    assert filled("O2")
    # Acknowledged and handled in time: not marked.
    assert not filled("I2")
    assert not filled("K2")
    # Never acknowledged and past due: the empty cell is marked.
    assert filled("I3")
    assert ws["I3"].value is None
    assert not any(filled(f"{col}4") for col in "ABCDEFGHIJKLMNOPQ")


def test_xlsx_summary_figures(tmp_path: Path) -> None:
    path = tmp_path / "ledger.xlsx"
    write_xlsx(sample_rows(), path, period=(T0.date(), T0.date() + timedelta(days=6)))
    ws = openpyxl.load_workbook(path)["汇总"]
    assert ws["A1"].value == "回应台账汇总 2026-03-02 至 2026-03-08"
    assert ws.freeze_panes == "A5"
    table = {row[0]: row[1:] for row in ws.iter_rows(min_row=5, max_row=7, values_only=True)}
    # env: 2 tickets; acknowledge decided twice (one in time, one overdue unmet) -> 50 %;
    # handle decided once, in time; respond decided once, late -> 0 %; 50 h to respond; both overdue.
    assert table["市生态环境局"] == (2, 0.5, 1.0, 0.0, 50.0, 2, 1)
    # water: everything in time; 10 h to respond.
    assert table["市水务局"] == (1, 1.0, 1.0, 1.0, 10.0, 0, 0)
    assert table["合计"] == (3, pytest.approx(2 / 3), 1.0, 0.5, 30.0, 2, 1)
    assert ws["C5"].number_format == "0.0%"


def test_xlsx_per_department_sheets_and_no_personal_data(tmp_path: Path) -> None:
    path = tmp_path / "ledger.xlsx"
    write_xlsx(sample_rows(), path, per_department_sheets=True)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["汇总", "台账", "市生态环境局", "市水务局"]
    env = wb["市生态环境局"]
    assert [c.value for c in env[1]] == list(HEADERS)
    assert [r[0] for r in env.iter_rows(min_row=2, values_only=True)] == [1, 2]
    assert env.freeze_panes == "A2"
    assert env.auto_filter.ref == "A1:S3"
    assert [r[0] for r in wb["市水务局"].iter_rows(min_row=2, values_only=True)] == [3]
    text = all_text(path)
    assert PHONE not in text
    assert ID_NUMBER not in text
    assert "138****5678" in text


def test_large_xlsx_fills_department_sheets_in_step_with_the_ledger(tmp_path: Path) -> None:
    # Enough rows that the department sheets are written while the ledger sheet is still open.
    n = 1200
    rows = (
        make_row(i, department="water", department_name="市水务局") if i % 3 == 0 else make_row(i)
        for i in range(1, n + 1)
    )
    path = tmp_path / "ledger.xlsx"
    summary = write_xlsx(rows, path, per_department_sheets=True)
    assert summary.rows == n
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["汇总", "台账", "市生态环境局", "市水务局"]
    assert [r[0] for r in wb["台账"].iter_rows(min_row=2, values_only=True)] == list(range(1, n + 1))
    water = [r[0] for r in wb["市水务局"].iter_rows(min_row=2, values_only=True)]
    assert water == list(range(3, n + 1, 3))
    assert wb["市水务局"].auto_filter.ref == f"A1:S{len(water) + 1}"
    assert wb["市生态环境局"].max_row == n - len(water) + 1
    assert wb["汇总"]["B5"].value == n - len(water)  # most tickets first


def test_empty_xlsx_still_has_headers_and_a_total(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    assert write_xlsx(iter(()), path).rows == 0
    wb = openpyxl.load_workbook(path)
    assert [c.value for c in wb["台账"][1]] == list(HEADERS)
    assert wb["台账"].max_row == 1
    assert [c.value for c in wb["汇总"][5]][:3] == ["合计", 0, "—"]


def test_csv_has_bom_masks_and_neutralised_formulas(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    summary = write_csv(sample_rows(), path)
    assert summary.rows == 3
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8")
    assert PHONE not in text
    assert ID_NUMBER not in text
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(HEADERS)
    assert len(rows) == 4
    first = dict(zip(HEADERS, rows[1], strict=True))
    assert first["序号"] == "1"
    assert first["舆情标题"] == "化工厂排污，联系电话138****5678"
    assert first["发现时间"] == "2026-03-02 10:00"
    assert first["回应时间"] == "2026-03-04 12:00"
    assert first["办理时间"] == "2026-03-03 10:00"
    assert first["签收/办理/回应是否超期"] == "回应超期"
    assert first["备注"] == "举报人身份证110101********1234"
    assert rows[2][8] == ""  # not acknowledged
    # A cell Excel would run as a formula is prefixed so it shows as text.
    assert rows[3][1] == '\'=HYPERLINK("http://evil.example","点我")'
    assert rows[3][2] == "领导信箱"


def test_a_failed_export_leaves_no_file(tmp_path: Path) -> None:
    def broken():
        yield make_row(1)
        raise RuntimeError("database went away")

    path = tmp_path / "ledger.xlsx"
    with pytest.raises(RuntimeError, match="went away"):
        write_xlsx(broken(), path)
    with pytest.raises(RuntimeError, match="went away"):
        write_csv(broken(), tmp_path / "ledger.csv")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_email_addresses_without_digits_are_masked_in_both_formats(tmp_path: Path, fmt: str) -> None:
    # The writers once looked for a digit before masking, so an address without one went out as written.
    rows = [
        make_row(1, title="请回复至 zhangsan@example.com", result="已联系 lisi＠example.com"),
        make_row(2, note="举报人邮箱 wang.wu@mail.example.cn；关联条目2条"),
    ]
    path = tmp_path / f"ledger.{fmt}"
    (write_csv if fmt == "csv" else write_xlsx)(iter(rows), path)
    text = path.read_text(encoding="utf-8-sig") if fmt == "csv" else all_text(path)
    for address in ("zhangsan@", "lisi＠", "wang.wu@"):
        assert address not in text
    assert "z*******@example.com" in text
    assert "关联条目2条" in text
