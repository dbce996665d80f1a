"""Ledger files: xlsx (xlsxwriter, constant_memory) and csv (UTF-8 with BOM), written from a row stream.

Memory stays flat in the row count: neither writer keeps rows. The xlsx summary sheet needs aggregates
of all rows, yet it must be the first tab people see. We use the sheet-ordering trick rather than two
passes: the summary sheet is *added* first (so it is the first tab) but *written* last, after the ledger
rows streamed past and were counted. xlsxwriter's constant_memory mode streams every worksheet to a
temporary file of its own, so the row-by-row order it demands holds per sheet, not across sheets; that
also lets per-department sheets fill in step with the ledger sheet. One pass means the source need not be
re-iterable (a database cursor is not), and the query runs once.

Personal data is masked in every exported file whatever the caller's role: the files are sent upward
and kept outside the product, where no role check applies.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from service.clock import SHANGHAI
from service.exports.ledger_rows import STAGE_LABELS, STAGES, LedgerRow
from service.exports.summary import LedgerSummary
from service.masking import mask_text

HEADERS: tuple[str, ...] = (
    "序号",
    "舆情标题",
    "来源渠道",
    "来源",
    "发布时间",
    "发现时间",
    "责任单位",
    "严重程度",
    "签收时间",
    "办理结果",
    "办理时间",
    "回应时间",
    "回应方式/链接",
    "当前状态",
    "签收/办理/回应是否超期",
    "督办",
    "备注",
)
WIDTHS: tuple[float, ...] = (6, 42, 10, 18, 17, 17, 18, 9, 17, 36, 17, 17, 32, 9, 14, 6, 28)
# Columns of the stage times, highlighted when that stage is overdue.
STAGE_COLUMN = {"acknowledge": 8, "handle": 10, "respond": 11}
OVERDUE_COLUMN = 14
SUMMARY_HEADERS: tuple[str, ...] = (
    "责任单位",
    "工单数",
    "签收按时率",
    "办理按时率",
    "回应按时率",
    "平均发现至回应时长（小时）",
    "超期工单数",
    "督办数",
)
SUMMARY_WIDTHS: tuple[float, ...] = (22, 9, 12, 12, 12, 26, 12, 9)
# Excel's own "bad" cell style: light red fill, dark red text.
OVERDUE_FILL = "#FFC7CE"
OVERDUE_FONT = "#9C0006"
XLSX_MAX_ROWS = 1_048_576
# mask_text looks at text with digits only (full-width digits are \d too); skipping the rest is the
# difference between masking being most of the export time and being noise.
_DIGIT = re.compile(r"\d")
# Cells a spreadsheet would run as a formula when the csv is opened (CSV injection); crawled text is hostile.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_EXCEL_EPOCH = datetime(1899, 12, 30)


class ExportTooLarge(ValueError):
    """More rows than an xlsx sheet holds."""


def _masker(mask: bool) -> Callable[[str | None], str]:
    if not mask:
        return lambda text: text or ""

    def masked(text: str | None) -> str:
        if not text:
            return ""
        return mask_text(text) if _DIGIT.search(text) else text

    return masked


def overdue_text(row: LedgerRow) -> str:
    """签收/办理/回应是否超期 as one cell: 否, or the overdue stages (签收、回应超期)."""
    late = row.overdue_stages
    return "、".join(STAGE_LABELS[s] for s in late) + "超期" if late else "否"


def period_text(period: tuple[date, date] | None) -> str:
    return f"{period[0]:%Y-%m-%d} 至 {period[1]:%Y-%m-%d}" if period else ""


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    # Readers (the API, the mail job, a user's Excel) never see a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- csv -------------------------------------------------------------------------------------------


def _local_text(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).isoformat(" ", "minutes")[:16] if value is not None else ""


def _plain(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_csv(rows: Iterable[LedgerRow], path: Path, *, zone: ZoneInfo = SHANGHAI, mask: bool = True) -> LedgerSummary:
    """Write the ledger as csv (UTF-8 with BOM so Excel reads the Chinese); the summary of what was written."""
    summary = LedgerSummary()
    masked = _masker(mask)
    with _atomic(Path(path)) as tmp, open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADERS)
        for row in rows:
            summary.add(row)
            writer.writerow(
                (
                    row.seq,
                    _plain(masked(row.title)),
                    row.channel_label,
                    _plain(masked(row.source)),
                    _local_text(row.published_at, zone),
                    _local_text(row.discovered_at, zone),
                    _plain(row.department_name),
                    row.severity_label,
                    _local_text(row.acknowledged_at, zone),
                    _plain(masked(row.result)),
                    _local_text(row.handled_at, zone),
                    _local_text(row.responded_at, zone),
                    _plain(masked(row.response_url)),
                    row.status_label,
                    overdue_text(row),
                    "是" if row.escalated else "否",
                    _plain(masked(row.note)),
                )
            )
    return summary


# -- xlsx ------------------------------------------------------------------------------------------


@dataclass
class _Formats:
    header: object
    text: object
    date: object
    date_late: object
    late: object
    title: object
    percent: object
    hours: object
    total: object
    total_percent: object
    total_hours: object

    @classmethod
    def of(cls, wb) -> _Formats:  # type: ignore[no-untyped-def]
        date_fmt = "yyyy-mm-dd hh:mm"
        header = {"bold": True, "bg_color": "#D9E1F2", "border": 1, "align": "center", "valign": "vcenter"}
        late = {"bg_color": OVERDUE_FILL, "font_color": OVERDUE_FONT}
        return cls(
            header=wb.add_format(header),
            text=wb.add_format({}),
            date=wb.add_format({"num_format": date_fmt}),
            date_late=wb.add_format({"num_format": date_fmt, **late}),
            late=wb.add_format(late),
            title=wb.add_format({"bold": True, "font_size": 14}),
            percent=wb.add_format({"num_format": "0.0%"}),
            hours=wb.add_format({"num_format": "0.0"}),
            total=wb.add_format({"bold": True, "top": 1}),
            total_percent=wb.add_format({"bold": True, "top": 1, "num_format": "0.0%"}),
            total_hours=wb.add_format({"bold": True, "top": 1, "num_format": "0.0"}),
        )


def _sheet_name(name: str, taken: set[str]) -> str:
    # Excel: at most 31 characters, none of []:*?/\, not blank, unique ignoring case.
    base = re.sub(r"[\[\]:*?/\\]", "_", name).strip("'").strip()[:31] or "部门"
    candidate, n = base, 2
    while candidate.lower() in taken:
        suffix = f"({n})"
        candidate, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(candidate.lower())
    return candidate


_TEXT, _DATE, _NUMBER, _FLAGS = "text", "date", "number", "flags"
# How each ledger column is written; an int is a stage time column (index into the overdue flags).
_KINDS: tuple[str | int, ...] = tuple(
    {0: _NUMBER, 4: _DATE, 5: _DATE, OVERDUE_COLUMN: _FLAGS}.get(
        col, next((STAGES.index(s) for s, c in STAGE_COLUMN.items() if c == col), _TEXT)
    )
    for col in range(len(HEADERS))
)


class _LedgerSheet:
    """One sheet in the ledger layout, written a row at a time."""

    def __init__(self, ws, fmt: _Formats) -> None:  # type: ignore[no-untyped-def]
        self.ws = ws
        self.fmt = fmt
        self.next_row = 1
        for col, (head, width) in enumerate(zip(HEADERS, WIDTHS, strict=True)):
            ws.set_column(col, col, width)
            ws.write_string(0, col, head, fmt.header)
        ws.freeze_panes(1, 0)

    def write(self, values: tuple, late: tuple[bool, bool, bool]) -> None:
        """Append one ledger row; ``late`` are the overdue flags of the three stages."""
        r = self.next_row
        if r >= XLSX_MAX_ROWS:
            raise ExportTooLarge(f"xlsx 每个工作表最多 {XLSX_MAX_ROWS - 1} 行台账：请缩小日期范围或导出 csv")
        self.next_row += 1
        ws, fmt = self.ws, self.fmt
        write_string, write_number = ws.write_string, ws.write_number
        for col, kind, value in zip(range(len(_KINDS)), _KINDS, values, strict=True):
            if kind is _TEXT:
                if value:
                    write_string(r, col, value)
            elif kind is _DATE:
                if value is not None:
                    write_number(r, col, value, fmt.date)
            elif kind is _NUMBER:
                write_number(r, col, value)
            elif kind is _FLAGS:
                write_string(r, col, value, fmt.late if late[0] or late[1] or late[2] else None)
            elif late[kind]:  # a stage time: highlighted, even empty, when that stage is overdue
                if value is None:
                    ws.write_blank(r, col, None, fmt.late)
                else:
                    write_number(r, col, value, fmt.date_late)
            elif value is not None:
                write_number(r, col, value, fmt.date)

    def finish(self) -> None:
        self.ws.autofilter(0, 0, max(self.next_row - 1, 0), len(HEADERS) - 1)


def _serial(value: datetime | None, zone: ZoneInfo) -> float | None:
    # Excel has no time zones: the cell holds the local (Asia/Shanghai) wall time as a day count.
    if value is None:
        return None
    return (value.astimezone(zone).replace(tzinfo=None) - _EXCEL_EPOCH).total_seconds() / 86400


def _write_summary(ws, fmt: _Formats, summary: LedgerSummary, period: tuple[date, date] | None, generated: str) -> None:  # type: ignore[no-untyped-def]
    for col, width in enumerate(SUMMARY_WIDTHS):
        ws.set_column(col, col, width)
    ws.write_string(0, 0, f"回应台账汇总 {period_text(period)}".strip(), fmt.title)
    ws.write_string(1, 0, f"按发现时间统计（北京时间，首尾两天均含）；生成时间：{generated}")
    for col, head in enumerate(SUMMARY_HEADERS):
        ws.write_string(3, col, head, fmt.header)
    row = 4
    for dept in [*summary.departments(), summary.total]:
        is_total = dept is summary.total
        text_fmt = fmt.total if is_total else None
        ws.write_string(row, 0, dept.department_name, text_fmt)
        ws.write_number(row, 1, dept.tickets, text_fmt)
        for col, stage in enumerate(STAGES, start=2):
            rate = dept.rate(stage)
            if rate is None:
                ws.write_string(row, col, "—", text_fmt)
            else:
                ws.write_number(row, col, rate, fmt.total_percent if is_total else fmt.percent)
        hours = dept.avg_respond_hours
        if hours is None:
            ws.write_string(row, 5, "—", text_fmt)
        else:
            ws.write_number(row, 5, hours, fmt.total_hours if is_total else fmt.hours)
        ws.write_number(row, 6, dept.overdue, text_fmt)
        ws.write_number(row, 7, dept.escalated, text_fmt)
        row += 1
    ws.write_string(
        row + 1,
        0,
        "按时率 = 按时完成数 ÷（已完成数 + 未完成且已超期数）；尚在时限内未完成的环节不计入。“—”表示暂无可计算的数据。",
    )
    ws.freeze_panes(4, 0)


def write_xlsx(
    rows: Iterable[LedgerRow],
    path: Path,
    *,
    period: tuple[date, date] | None = None,
    per_department_sheets: bool = False,
    zone: ZoneInfo = SHANGHAI,
    generated_at: datetime | None = None,
    mask: bool = True,
) -> LedgerSummary:
    """Write the workbook: 汇总 (summary), 台账 (ledger) and optionally one sheet per department."""
    import xlsxwriter

    from service import clock

    generated = (generated_at or clock.now()).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    summary = LedgerSummary()
    masked = _masker(mask)
    path = Path(path)
    # xlsxwriter's per-sheet temporary files go in a directory of our own, removed even on failure.
    with _atomic(path) as tmp, tempfile.TemporaryDirectory(prefix=".xlsx-", dir=path.parent) as work_dir:
        wb = xlsxwriter.Workbook(
            str(tmp),
            {
                "constant_memory": True,
                # Crawled text must stay text: never a formula, a link or a number.
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                "tmpdir": work_dir,
            },
        )
        try:
            fmt = _Formats.of(wb)
            taken = {"汇总", "台账"}
            summary_ws = wb.add_worksheet("汇总")
            ledger = _LedgerSheet(wb.add_worksheet("台账"), fmt)
            per_department: dict[str, _LedgerSheet] = {}
            for row in rows:
                summary.add(row)
                late = (row.acknowledge_overdue, row.handle_overdue, row.respond_overdue)
                values = (
                    row.seq,
                    masked(row.title),
                    row.channel_label,
                    masked(row.source),
                    _serial(row.published_at, zone),
                    _serial(row.discovered_at, zone),
                    row.department_name,
                    row.severity_label,
                    _serial(row.acknowledged_at, zone),
                    masked(row.result),
                    _serial(row.handled_at, zone),
                    _serial(row.responded_at, zone),
                    masked(row.response_url),
                    row.status_label,
                    overdue_text(row),
                    "是" if row.escalated else "否",
                    masked(row.note),
                )
                ledger.write(values, late)
                if per_department_sheets:
                    sheet = per_department.get(row.department)
                    if sheet is None:
                        name = _sheet_name(row.department_name, taken)
                        sheet = per_department[row.department] = _LedgerSheet(wb.add_worksheet(name), fmt)
                    sheet.write(values, late)
            ledger.finish()
            for sheet in per_department.values():
                sheet.finish()
            _write_summary(summary_ws, fmt, summary, period, generated)
            summary_ws.activate()
        finally:
            wb.close()
    return summary
