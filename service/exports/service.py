"""Exports as the product runs them: ledger files for a date range, the weekly file, the daily brief."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from loguru import logger
from sqlalchemy import select

from alerting.outbox import enqueue
from service import clock
from service.db import Database
from service.exports.daily_brief import DailyBrief, build_daily_brief
from service.exports.ledger_rows import Names, previous_week, rows_for_brief, rows_from_tickets
from service.exports.summary import LedgerSummary
from service.exports.writers import period_text, write_csv, write_xlsx
from service.ledger.models import Ticket
from service.settings import Settings

FORMATS: tuple[str, ...] = ("xlsx", "csv")


def known_department(db: Database, configured: Collection[str], department: str) -> bool:
    """Whether ``department`` may be exported: configured, or named by a ticket (a department removed from
    departments.yaml since keeps its ledger). A typo would otherwise give an empty ledger that reads as a
    period without tickets."""
    if department in configured:
        return True
    with db.session() as session:
        return session.scalar(select(Ticket.id).where(Ticket.department == department).limit(1)) is not None


def export_filename(date_from: date, date_to: date, fmt: str, department: str | None = None) -> str:
    """回应台账_<from>_<to>[_<department>].<fmt>."""
    dept = f"_{department}" if department else ""
    return f"回应台账_{date_from:%Y-%m-%d}_{date_to:%Y-%m-%d}{dept}.{fmt}"


def export_ledger(
    db: Database,
    settings: Settings,
    path: Path,
    *,
    date_from: date,
    date_to: date,
    department: str | None = None,
    fmt: str = "xlsx",
    per_department_sheets: bool = False,
    at: datetime | None = None,
) -> LedgerSummary:
    """Write the ledger of tickets discovered on local days date_from..date_to to ``path``."""
    if fmt not in FORMATS:
        raise ValueError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if date_to < date_from:
        raise ValueError(f"date range: --from {date_from} is after --to {date_to}")
    at = at or clock.now()
    names = Names.load(settings.config_dir)
    with db.session() as session:
        rows = rows_from_tickets(session, date_from, date_to, department, at, names=names, zone=settings.zone)
        if fmt == "csv":
            return write_csv(rows, path, zone=settings.zone)
        return write_xlsx(
            rows,
            path,
            period=(date_from, date_to),
            per_department_sheets=per_department_sheets,
            zone=settings.zone,
            generated_at=at,
        )


@dataclass
class WeeklyExport:
    """What the weekly job wrote."""

    path: Path
    week: tuple[date, date]
    summary: LedgerSummary
    queued: list[int]


def weekly_subject(week: tuple[date, date]) -> str:
    year, number, _ = week[0].isocalendar()
    return f"回应台账（{year}年第{number}周，{period_text(week)}）"


def _weekly_body(path: Path, week: tuple[date, date], summary: LedgerSummary, settings: Settings) -> str:
    lines = [f"{weekly_subject(week)}：共 {summary.rows} 件工单，超期 {summary.total.overdue} 件。"]
    for dept in summary.departments():
        rate = dept.rate("respond")
        rate_text = f"{rate:.1%}" if rate is not None else "—"
        lines.append(f"{dept.department_name}：{dept.tickets} 件，回应按时率 {rate_text}，超期 {dept.overdue} 件")
    lines.append(f"文件：{path}")
    if settings.server.public_url:
        base = settings.server.public_url.rstrip("/")
        lines.append(f"下载：{base}/api/v1/ledger/export?from={week[0]}&to={week[1]}&format=xlsx")
    return "\n".join(lines)


def run_weekly_export(db: Database, settings: Settings, at: datetime | None = None) -> WeeklyExport:
    """Write last ISO week's ledger under the data dir and queue a report on the notification outbox."""

    at = at or clock.now()
    week = previous_week(at, settings.zone)
    year, number, _ = week[0].isocalendar()
    path = settings.data_path("exports", f"回应台账_{year}-W{number:02d}.xlsx")
    summary = export_ledger(
        db,
        settings,
        path,
        date_from=week[0],
        date_to=week[1],
        per_department_sheets=settings.exports.per_department_sheets,
        at=at,
    )
    with db.session() as session:
        queued = enqueue(
            session,
            "report",
            None,
            None,
            weekly_subject(week),
            _weekly_body(path, week, summary, settings),
            f"ledger-weekly:{week[0]}",
            notifications=settings.notifications,
            attachment=str(path),
        )
    logger.info("周台账已写入 {}（{} 件工单），已排队 {} 条通知", path, summary.rows, len(queued))
    return WeeklyExport(path, week, summary, queued)


def daily_brief(db: Database, settings: Settings, day: date, at: datetime | None = None) -> DailyBrief:
    """The brief of local day ``day``, overdue as of ``at``."""
    at = at or clock.now()
    names = Names.load(settings.config_dir)
    with db.session() as session:
        return build_daily_brief(
            rows_for_brief(session, day, at, names=names, zone=settings.zone), day, zone=settings.zone
        )


def run_daily_brief(db: Database, settings: Settings, at: datetime | None = None) -> tuple[DailyBrief, Path]:
    """Write yesterday's brief under the data dir and queue it on the notification outbox."""
    at = at or clock.now()
    day = at.astimezone(settings.zone).date() - timedelta(days=1)
    brief = daily_brief(db, settings, day, at)
    text = brief.text()
    path = settings.data_path("exports", "daily", f"日报_{day:%Y-%m-%d}.txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    with db.session() as session:
        enqueue(
            session,
            "report",
            None,
            None,
            brief.subject,
            text,
            f"daily-brief:{day}",
            notifications=settings.notifications,
        )
    logger.info("{} 的日报已写入 {}", day, path)
    return brief, path
