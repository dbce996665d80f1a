"""Ledger files: xlsx (our streaming writer, service.exports.xlsx_stream) and csv (UTF-8 with BOM), from a row stream.

Memory stays flat in the row count: neither writer keeps rows. The xlsx summary sheet needs aggregates
of all rows, yet it must be the first tab people see. We use the sheet-ordering trick rather than two
passes: the summary sheet is *added* first (so it is the first tab) but *written* last, after the ledger
rows streamed past and were counted; the tab order is workbook.xml's, whatever order the sheets are
written in. Per-department sheets fill in step with the ledger sheet (the stream writer spools them).
One pass means the source need not be re-iterable (a database cursor is not), and the query runs once.

Personal data is masked in every exported file whatever the caller's role: the files are sent upward
and kept outside the product, where no role check applies.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from service import clock
from service.clock import SHANGHAI
from service.exports.ledger_rows import LedgerRow
from service.exports.summary import LedgerSummary
from service.exports.xlsx_stream import BLANK, StreamSheet, Style, XlsxBook
from service.files import atomic_path
from service.masking import mask_text
from service.vocabulary import STAGE_LABELS, STAGES

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
    "工单号",
    "原文链接",
)
WIDTHS: tuple[float, ...] = (6, 42, 10, 18, 17, 17, 18, 9, 17, 36, 17, 17, 32, 9, 14, 6, 28, 18, 36)
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
RATE_NOTE = (
    "按时率 = 按时完成数 ÷（已完成数 + 未完成且已超期数）；尚在时限内未完成的环节不计入。“—”表示暂无可计算的数据。"
)
SUMMARY_WIDTHS: tuple[float, ...] = (22, 9, 12, 12, 12, 26, 12, 9)
# Excel's own "bad" cell style: light red fill, dark red text.
OVERDUE_FILL = "#FFC7CE"
OVERDUE_FONT = "#9C0006"
XLSX_MAX_ROWS = 1_048_576
# Cells a spreadsheet would run as a formula when the csv is opened (CSV injection); crawled text is hostile.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_EXCEL_EPOCH = datetime(1899, 12, 30)


class ExportTooLarge(ValueError):
    """More rows than an xlsx sheet holds."""


def _masker(mask: bool) -> Callable[[str | None], str]:
    if not mask:
        return lambda text: text or ""

    def masked(text: str | None) -> str:
        # mask_text itself skips, in one scan, text that cannot hold a number or an e-mail address (a test
        # here for digits once left e-mail addresses without digits unmasked in every exported file).
        return mask_text(text) if text else ""

    return masked


def _overdue_texts() -> tuple[str, ...]:
    # Index 4a + 2h + r of the three overdue flags, in STAGES order.
    texts = []
    for flags in range(8):
        late = [stage for bit, stage in zip((4, 2, 1), STAGES, strict=True) if flags & bit]
        texts.append("、".join(STAGE_LABELS[s] for s in late) + "超期" if late else "否")
    return tuple(texts)


# Every ledger row asks for this cell: one lookup rather than a list and a join per row.
_OVERDUE_TEXTS = _overdue_texts()


def overdue_text(row: LedgerRow) -> str:
    """签收/办理/回应是否超期 as one cell: 否, or the overdue stages (签收、回应超期)."""
    return _OVERDUE_TEXTS[4 * row.acknowledge_overdue + 2 * row.handle_overdue + row.respond_overdue]


def period_text(period: tuple[date, date] | None) -> str:
    return f"{period[0]:%Y-%m-%d} 至 {period[1]:%Y-%m-%d}" if period else ""


# -- csv -------------------------------------------------------------------------------------------


def _local_text(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).isoformat(" ", "minutes")[:16] if value is not None else ""


def _plain(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_chunks(
    rows: Iterable[LedgerRow],
    *,
    zone: ZoneInfo = SHANGHAI,
    mask: bool = True,
    summary: LedgerSummary | None = None,
    rows_per_chunk: int = 500,
) -> Iterator[str]:
    """The ledger as csv text (header first), a few hundred rows per piece; ``summary`` counts the rows."""
    masked = _masker(mask)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    for n, row in enumerate(rows, start=1):
        if summary is not None:
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
                _plain(masked(row.response_text)),
                row.status_label,
                overdue_text(row),
                "是" if row.escalated else "否",
                _plain(masked(row.note)),
                _plain(row.order_no or ""),
                _plain(row.source_url or ""),
            )
        )
        if n % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_csv(rows: Iterable[LedgerRow], path: Path, *, zone: ZoneInfo = SHANGHAI, mask: bool = True) -> LedgerSummary:
    """Write the ledger as csv (UTF-8 with BOM so Excel reads the Chinese); the summary of what was written."""
    summary = LedgerSummary()
    with atomic_path(Path(path)) as tmp, open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
        for chunk in csv_chunks(rows, zone=zone, mask=mask, summary=summary):
            fh.write(chunk)
    return summary


# -- xlsx ------------------------------------------------------------------------------------------

_DATE_FORMAT = "yyyy-mm-dd hh:mm"


@dataclass
class _Formats:
    """Style ids of the book."""

    header: int
    cell: int
    date: int
    date_late: int
    late: int
    title: int
    percent: int
    hours: int
    total: int
    total_percent: int
    total_hours: int

    @classmethod
    def of(cls, book: XlsxBook) -> _Formats:
        """Register the ledger's cell formats in ``book``."""
        return cls(
            # Every table cell has thin borders: a printed ledger is read along its lines.
            header=book.style(Style(bold=True, fill="D9E1F2", border="all", center=True, wrap=True)),
            cell=book.style(Style(border="all")),
            date=book.style(Style(num_format=_DATE_FORMAT, border="all")),
            date_late=book.style(Style(num_format=_DATE_FORMAT, border="all", fill=OVERDUE_FILL, color=OVERDUE_FONT)),
            late=book.style(Style(border="all", fill=OVERDUE_FILL, color=OVERDUE_FONT)),
            title=book.style(Style(bold=True, size=14)),
            percent=book.style(Style(num_format="0.0%", border="all")),
            hours=book.style(Style(num_format="0.0", border="all")),
            total=book.style(Style(bold=True, border="all")),
            total_percent=book.style(Style(bold=True, border="all", num_format="0.0%")),
            total_hours=book.style(Style(bold=True, border="all", num_format="0.0")),
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


# Printed: A4 landscape, one page wide (the ledger has many columns), header rows on every page.
_PRINT = {"landscape": True, "fit_width": True}

_DATE_COLUMNS = (4, 5, *STAGE_COLUMN.values())


def _row_styles(fmt: _Formats) -> tuple[tuple[int, ...], ...]:
    # The styles of a ledger row for each combination of the three overdue flags (index: 4a + 2h + r), so
    # a row picks its styles with one lookup instead of deciding cell by cell.
    combos = []
    for flags in range(8):
        late = ((flags >> 2) & 1, (flags >> 1) & 1, flags & 1)
        styles = [fmt.cell] * len(HEADERS)
        for col in _DATE_COLUMNS:
            styles[col] = fmt.date
        for stage, col in STAGE_COLUMN.items():
            if late[STAGES.index(stage)]:
                styles[col] = fmt.date_late
        if any(late):
            styles[OVERDUE_COLUMN] = fmt.late
        combos.append(tuple(styles))
    return tuple(combos)


class _LedgerSheet:
    """One sheet in the ledger layout, written a row at a time."""

    def __init__(self, sheet: StreamSheet, fmt: _Formats) -> None:
        self.sheet = sheet
        self.styles = _row_styles(fmt)
        sheet.write_row(HEADERS, (fmt.header,) * len(HEADERS))

    def write(self, values: tuple, late: int) -> None:
        """Append one ledger row; ``late`` is the overdue flags of the three stages as 4a + 2h + r."""
        if self.sheet.next_row >= XLSX_MAX_ROWS:
            raise ExportTooLarge(f"xlsx 每个工作表最多 {XLSX_MAX_ROWS - 1} 行台账：请缩小日期范围或导出 csv")
        # Empty cells are written too, so the printed grid has its lines everywhere.
        self.sheet.write_row(tuple(BLANK if v is None or v == "" else v for v in values), self.styles[late])

    def finish(self) -> None:
        self.sheet.set_autofilter(self.sheet.next_row - 1, len(HEADERS) - 1)
        self.sheet.close()


def _serial(value: datetime | None, zone: ZoneInfo) -> float | None:
    # Excel has no time zones: the cell holds the local (Asia/Shanghai) wall time as a day count.
    if value is None:
        return None
    return (value.astimezone(zone).replace(tzinfo=None) - _EXCEL_EPOCH).total_seconds() / 86400


def _write_summary(
    ws: StreamSheet, fmt: _Formats, summary: LedgerSummary, period: tuple[date, date] | None, generated: str
) -> None:
    ws.write_row((f"回应台账汇总 {period_text(period)}".strip(),), (fmt.title,))
    ws.write_row((f"按发现时间统计（北京时间，首尾两天均含）；生成时间：{generated}",))
    ws.skip()
    ws.write_row(SUMMARY_HEADERS, (fmt.header,) * len(SUMMARY_HEADERS))
    for dept in [*summary.departments(), summary.total]:
        is_total = dept is summary.total
        text, percent, hours = (
            (fmt.total, fmt.total_percent, fmt.total_hours) if is_total else (fmt.cell, fmt.percent, fmt.hours)
        )
        rates = [dept.rate(stage) for stage in STAGES]
        avg = dept.avg_respond_hours
        ws.write_row(
            (
                dept.department_name,
                dept.tickets,
                *("—" if rate is None else rate for rate in rates),
                "—" if avg is None else avg,
                dept.overdue,
                dept.escalated,
            ),
            (
                text,
                text,
                *(text if rate is None else percent for rate in rates),
                text if avg is None else hours,
                text,
                text,
            ),
        )
    ws.skip()
    # One sentence per row: a single long cell would run past the printed page's right edge.
    for sentence in RATE_NOTE.split("；"):
        ws.write_row((sentence if sentence.endswith("。") else sentence + "；",))
    ws.close()


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
    generated = (generated_at or clock.now()).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    summary = LedgerSummary()
    masked = _masker(mask)
    path = Path(path)
    # Text cells are always inline strings: crawled text never becomes a formula, a link or a number.
    with atomic_path(path) as tmp, XlsxBook(tmp) as book:
        fmt = _Formats.of(book)
        taken = {"汇总", "台账"}
        summary_ws = book.add_sheet("汇总", widths=SUMMARY_WIDTHS, freeze_rows=4, **_PRINT, title_rows=(4, 4))
        ledger = _LedgerSheet(book.add_sheet("台账", widths=WIDTHS, freeze_rows=1, **_PRINT, title_rows=(1, 1)), fmt)
        per_department: dict[str, _LedgerSheet] = {}
        for row in rows:
            summary.add(row)
            acknowledge, handle, respond = row.acknowledge_overdue, row.handle_overdue, row.respond_overdue
            late = 4 * acknowledge + 2 * handle + respond
            acknowledged = _serial(row.acknowledged_at, zone)
            handled = _serial(row.handled_at, zone)
            responded = _serial(row.responded_at, zone)
            # An overdue stage never met shows as an empty highlighted cell.
            values = (
                row.seq,
                masked(row.title),
                row.channel_label,
                masked(row.source),
                _serial(row.published_at, zone),
                _serial(row.discovered_at, zone),
                row.department_name,
                row.severity_label,
                BLANK if acknowledged is None and acknowledge else acknowledged,
                masked(row.result),
                BLANK if handled is None and handle else handled,
                BLANK if responded is None and respond else responded,
                masked(row.response_text),
                row.status_label,
                overdue_text(row),
                "是" if row.escalated else "否",
                masked(row.note),
                row.order_no or "",
                row.source_url,
            )
            ledger.write(values, late)
            if per_department_sheets:
                sheet = per_department.get(row.department)
                if sheet is None:
                    name = _sheet_name(row.department_name, taken)
                    sheet = per_department[row.department] = _LedgerSheet(
                        book.add_sheet(name, widths=WIDTHS, freeze_rows=1, **_PRINT, title_rows=(1, 1)), fmt
                    )
                sheet.write(values, late)
        ledger.finish()
        for sheet in per_department.values():
            sheet.finish()
        _write_summary(summary_ws, fmt, summary, period, generated)
    return summary
