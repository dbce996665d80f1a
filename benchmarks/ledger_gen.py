"""Generate a ledger of real ticket rows fast, for the export and stats benchmarks at 10k / 100k / 1M tickets.

Usage: ``python benchmarks/ledger_gen.py --tickets 1000000 [--sizes 10000,100000,1000000]
[--dir /tmp/yq-export-scale] [--url postgresql+psycopg://...]``

Rows go through the schema with SQLAlchemy Core ``executemany`` (one INSERT per table per chunk of
``--chunk`` tickets, one transaction per chunk), not the ORM per ticket: each ticket's columns come from the
product's own :func:`service.ledger.records.new_ticket_row` (deadlines by the SLA policy), then later stages
are met for most tickets (acknowledged, handled, responded, closed, returned, escalated, extensions, a few
merged); 1-3 linked items each (:func:`ticket_item_row`: channel, source, url, 12345 order number, region),
and a timeline entry per step. The statistics triggers fire on every ticket row as in production.

Resumable: ticket ids are n + 1 and each chunk commits whole, so a restart continues after ``max(id)``. On
SQLite the working file is ``<dir>/ledger-work.sqlite3``; each size in ``--sizes`` that is reached is copied
(SQLite backup API) to ``<dir>/ledger-<size>.sqlite3``, skipped when that copy exists. Tickets are discovered
every 30 s from 2026-01-01 (1M tickets fit into 2026), so the same date range covers every size.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select

from alerting.calendar import WorkCalendar
from alerting.sla import SlaConfig, SlaPolicy
from service.db import Database
from service.ledger.models import Ticket, TicketItem, TimelineEntry
from service.ledger.records import new_ticket_row, ticket_item_row
from service.ledger.service import ItemRef

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(seconds=30)
SEVERITIES = ("minor", "normal", "major", "critical")
CHANNELS = ("hotline", "mailbox", "media")
PLACES = ("城东区", "城西区", "高新区", "滨江街道", "河口镇", "南湖社区", "北关村", "开发区")
SUBJECTS = ("化工厂夜间排污", "小区噪音扰民", "道路积水", "拖欠工资", "物业乱收费", "学校周边违停", "垃圾清运不及时")
RESPONSE_TYPES = ("online", "phone", "written", "in_person")


def _items(n: int, now: datetime) -> list[dict[str, Any]]:
    count = 1 + (n % 3 == 0) + (n % 7 == 0)
    rows = []
    for k in range(count):
        channel = CHANNELS[(n + k) % 3]
        ref = ItemRef(
            item_id=f"i{n}-{k}",
            source=f"src{(n + k) % 100:03d}",
            channel=channel,
            title=f"{PLACES[n % 8]}{SUBJECTS[n % 7]}（{n}-{k}）",
            url=f"https://gov.example.cn/{channel}/{n}/{k}.html",
            published_at=START + STEP * n - timedelta(minutes=(n + k) % 90),
            order_no=f"GD2026{n:08d}{k}" if channel == "hotline" else None,
        )
        row = ticket_item_row(n + 1, ref, now)
        row["region"] = PLACES[(n + k) % 8]
        rows.append(row)
    return rows


def _entry(n: int, action: str, at: datetime, version: int, from_s: str | None, to_s: str, **detail: Any) -> dict:
    return {
        "ticket_id": n + 1,
        "action": action,
        "actor": "system:matching" if action == "create" else f"user{n % 50}",
        "at": at,
        "from_status": from_s,
        "to_status": to_s,
        "note": None,
        "response_url": None,
        "version": version,
        "detail": detail,
    }


def _progress(n: int, row: dict[str, Any], timeline: list[dict[str, Any]]) -> None:
    """Meet later stages of ticket n, as officers would have (some late), with their timeline entries."""
    kind = n % 10
    discovered = row["discovered_at"]
    late = n % 6 == 0  # met after its deadline
    steps: list[tuple[str, str, str]] = []  # (action, status, column)
    if kind >= 2:
        steps.append(("acknowledge", "acknowledged", "ack_met_at"))
    if kind >= 4:
        steps.append(("handle", "handled", "handle_met_at"))
    if kind >= 6:
        steps.append(("respond", "responded", "respond_met_at"))
    if kind >= 8:
        steps.append(("close", "closed", ""))
    status, version = "new", 1
    for action, to_status, column in steps:
        if column:
            due = row[column.replace("_met_at", "_due")]
            at = due + timedelta(hours=1) if late else discovered + (due - discovered) / 3
            row[column] = at
            if column == "handle_met_at":
                row["handled"] = True
                row["result"] = f"已责成{PLACES[n % 8]}整改，第{n % 30 + 1}次现场核查完毕"
            if column == "respond_met_at":
                row["responded"] = True
                row["response_type"] = RESPONSE_TYPES[n % 4]
                row["response_source"] = f"user{n % 50}"
                if row["response_type"] == "online":
                    row["response_url"] = f"https://gov.example.cn/reply/{n}.html"
        else:
            at = (row["respond_met_at"] or discovered) + timedelta(hours=2)
        version += 1
        timeline.append(_entry(n, action, at, version, status, to_status))
        status = to_status
    if kind == 1 and n % 20 == 1:
        status = "returned"
        version += 1
        timeline.append(_entry(n, "return", discovered + timedelta(minutes=20), version, "new", "returned"))
    row["status"], row["version"] = status, version
    row["escalated"] = n % 17 == 0
    if n % 23 == 0 and status in ("acknowledged", "handled"):
        row["extension_pending"] = True
        row["extension_stages"] = "respond"
        row["extension_reason"] = "需协调多部门现场核查"
    if n % 500 == 499:  # 并单: merged into the previous ticket, which leaves the ledger
        row["merged_into"] = n
    row["next_due_at"] = None if status == "closed" else row["next_due_at"]


def chunk_rows(first: int, last: int, policy: SlaPolicy) -> tuple[list, list, list]:
    """Tickets first..last-1 (0-based): ticket, item and timeline rows."""
    tickets, items, timeline = [], [], []
    for n in range(first, last):
        discovered = START + STEP * n
        row = new_ticket_row(
            policy,
            title=f"关于{PLACES[n % 8]}{SUBJECTS[n % 7]}的投诉（{n}），联系电话138{n:08d}",
            severity=SEVERITIES[n % 4],
            department=f"d{n % 200:03d}",
            discovered=discovered,
            published=discovered - timedelta(minutes=n % 90),
            event_id=None,
            event_key=f"item:i{n}-0",
            now=discovered,
        )
        row.update(
            id=n + 1, ack_met_at=None, handle_met_at=None, respond_met_at=None, result=None, response_url=None,
            response_type=None, response_source=None, extension_until=None, extension_reason=None,
            extension_stages=None, merged_into=None, merged_from=None, split_from=None,
            region=PLACES[n % 8],
        )  # fmt: skip
        timeline.append(
            _entry(n, "create", discovered, 1, None, "new", severity=row["severity"], deadlines={
                "acknowledge": row["ack_due"].isoformat(), "handle": row["handle_due"].isoformat(),
                "respond": row["respond_due"].isoformat(),
            })
        )  # fmt: skip
        _progress(n, row, timeline)
        tickets.append(row)
        new_items = _items(n, discovered)
        if len(new_items) > 1:
            timeline.append(
                _entry(n, "attach_item", discovered, None, None, None, items=[i["item_id"] for i in new_items[1:]])  # type: ignore[arg-type]
            )
        items.extend(new_items)
    for n, row in zip(range(first, last), tickets, strict=True):
        if n % 500 == 498:
            row["merged_from"] = str(n + 2)
    return tickets, items, timeline


def copy_sqlite(work: Path, target: Path) -> None:
    """A consistent copy of the working file (backup API: WAL content included)."""
    partial = target.with_suffix(".partial")
    source = sqlite3.connect(work)
    dest = sqlite3.connect(partial)
    try:
        source.backup(dest)
    finally:
        dest.close()
        source.close()
    partial.rename(target)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="copies kept at these ticket counts")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/yq-export-scale"))
    parser.add_argument("--url", default=None, help="a database URL instead of the SQLite working file")
    parser.add_argument("--chunk", type=int, default=5000)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    work = args.dir / "ledger-work.sqlite3"
    db = Database(args.url or f"sqlite:///{work}")
    db.migrate()
    sizes = sorted(int(s) for s in args.sizes.split(",") if s) if not args.url else []
    policy = SlaPolicy(SlaConfig(), WorkCalendar())
    with db.engine.connect() as conn:
        done = conn.execute(select(func.coalesce(func.max(Ticket.id), 0))).scalar_one()
    print(f"{done} tickets already there; writing up to {args.tickets}", flush=True)
    started, first = time.perf_counter(), done
    while done < args.tickets:
        last = min(args.tickets, done + args.chunk, *(s for s in sizes if s > done))
        tickets, items, timeline = chunk_rows(done, last, policy)
        with db.engine.begin() as conn:
            conn.execute(insert(Ticket.__table__), tickets)
            conn.execute(insert(TicketItem.__table__), items)
            conn.execute(insert(TimelineEntry.__table__), timeline)
        done = last
        rate = (done - first) / max(time.perf_counter() - started, 1e-9)
        if done % 50_000 == 0 or done in sizes:
            print(f"{done} tickets ({rate:.0f}/s this run)", flush=True)
        if done in sizes and not (args.dir / f"ledger-{done}.sqlite3").exists():
            copy_sqlite(work, args.dir / f"ledger-{done}.sqlite3")
            print(f"copied to {args.dir / f'ledger-{done}.sqlite3'}", flush=True)
    print(f"done: {done} tickets, {time.perf_counter() - started:.1f} s this run", flush=True)
    db.dispose()


if __name__ == "__main__":
    main()
