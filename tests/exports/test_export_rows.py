"""Ledger rows streamed from real ticket tables (SQLite, and PostgreSQL where available)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from service.clock import SHANGHAI
from service.db import Database
from service.exports.daily_brief import build_daily_brief
from service.exports.ledger_rows import Names, previous_week, rows_for_brief, rows_from_tickets
from tests.exports.builders import PHONE, T0, make_ticket

NAMES = Names({"env": "市生态环境局", "water": "市水务局"}, {"demo-12345": "示例市12345热线"})


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=SHANGHAI)


@pytest.fixture
def week_of_tickets(db: Database) -> None:
    """Tickets around the ISO week 2026-03-02 (Mon) .. 2026-03-08 (Sun), Asia/Shanghai."""
    with db.session() as s:
        make_ticket(
            s,
            1,
            T0,
            ack_met_at=T0 + timedelta(hours=1),
            handle_met_at=T0 + timedelta(days=1),
            handled=True,
            result=f"已现场核查，联系人{PHONE}",
            respond_met_at=T0 + timedelta(days=2),
            responded=True,
            response_url="https://www.example.gov.cn/hf/1.html",
            status="responded",
        )
        make_ticket(s, 2, local(2026, 3, 1, 23, 59, 59))  # Sunday before: not in the week
        make_ticket(s, 3, local(2026, 3, 8, 23, 59, 59), department="water")  # last second of the week
        make_ticket(s, 4, local(2026, 3, 9, 0, 0, 0))  # Monday after: not in the week
        make_ticket(s, 5, local(2026, 3, 2, 0, 0, 0), escalated=True)  # first second of the week


def test_rows_cover_the_local_days_both_ends_included(db: Database, week_of_tickets: None) -> None:
    at = local(2026, 3, 20, 12)
    with db.session() as s:
        rows = list(rows_from_tickets(s, date(2026, 3, 2), date(2026, 3, 8), None, at, names=NAMES))
    assert [r.title for r in rows] == ["化工厂异味投诉5", "化工厂异味投诉1", "化工厂异味投诉3"]
    assert [r.seq for r in rows] == [1, 2, 3]
    assert all(r.discovered_at.tzinfo is not None and r.discovered_at.utcoffset() == timedelta(0) for r in rows)

    done = rows[1]
    assert done.department_name == "市生态环境局"
    assert done.source == "示例市12345热线"
    assert done.channel_label == "12345热线"
    assert done.acknowledged_at == T0 + timedelta(hours=1)
    assert done.responded_at == T0 + timedelta(days=2)
    assert done.result == f"已现场核查，联系人{PHONE}"  # raw here; the writers mask
    assert done.status_label == "已回应"
    # normal severity: acknowledge 4 h, handle 3 wd, respond 5 wd -- all met in time.
    assert done.overdue_stages == []

    # Never acknowledged, and on 2026-03-20 long past every deadline.
    assert rows[2].department == "water"
    assert rows[2].overdue_stages == ["acknowledge", "handle", "respond"]
    assert rows[2].open_overdue_stages == ["acknowledge", "handle", "respond"]
    assert rows[0].escalated is True


def test_rows_of_one_department(db: Database, week_of_tickets: None) -> None:
    with db.session() as s:
        rows = list(rows_from_tickets(s, date(2026, 3, 2), date(2026, 3, 8), "water", T0, names=NAMES))
    assert [(r.seq, r.department_name) for r in rows] == [(1, "市水务局")]
    with db.session() as s, pytest.raises(ValueError, match="after"):
        rows_from_tickets(s, date(2026, 3, 8), date(2026, 3, 2), None, T0)


def test_overdue_is_as_of_the_given_time(db: Database, week_of_tickets: None) -> None:
    with db.session() as s:
        early = {r.title: r for r in rows_from_tickets(s, date(2026, 3, 2), date(2026, 3, 2), None, T0)}
        late = {
            r.title: r for r in rows_from_tickets(s, date(2026, 3, 2), date(2026, 3, 2), None, T0 + timedelta(hours=5))
        }
    # Ticket 5 (discovered 00:00) must be acknowledged within 4 h: at 10:00 it is late, ticket 1 is not.
    assert early["化工厂异味投诉5"].overdue_stages == ["acknowledge"]
    assert late["化工厂异味投诉1"].overdue_stages == []


def test_previous_week_is_the_last_complete_iso_week() -> None:
    assert previous_week(local(2026, 3, 9, 8, 30)) == (date(2026, 3, 2), date(2026, 3, 8))
    # Sunday late evening in Shanghai is already Monday in no other sense: still the week before.
    assert previous_week(local(2026, 3, 8, 23, 0)) == (date(2026, 2, 23), date(2026, 3, 1))
    # 2026-03-08 16:30 UTC is Monday 00:30 in Shanghai.
    assert previous_week(datetime(2026, 3, 8, 16, 30, tzinfo=UTC)) == (date(2026, 3, 2), date(2026, 3, 8))


def test_daily_brief_counts_new_overdue_and_responses(db: Database, week_of_tickets: None) -> None:
    day = date(2026, 3, 4)
    at = local(2026, 3, 5, 8, 0)
    with db.session() as s:
        make_ticket(s, 6, local(2026, 3, 4, 9, 0), department="water")
    with db.session() as s:
        brief = build_daily_brief(rows_for_brief(s, day, at, names=NAMES), day)
    by_name = {d.department_name: d for d in brief.departments}
    # env: ticket 1 responded on the 4th; tickets 2 and 5 never acknowledged (4 h, long past).
    env = by_name["市生态环境局"]
    assert (env.new, env.overdue, env.responded) == (0, 2, 1)
    # water: ticket 6 new on the 4th and already past its 4 h acknowledge deadline the next morning.
    water = by_name["市水务局"]
    assert (water.new, water.overdue, water.responded) == (1, 1, 0)
    text = brief.text()
    assert text.startswith("舆情回应日报（2026年3月4日）：新增工单 1 件，超期未办 3 件，发布回应 1 件。")
    assert "https://www.example.gov.cn/hf/1.html" in text
    assert "化工厂异味投诉5（签收超期）" in text


def test_rows_keep_each_ticket_with_its_own_items_across_read_batches(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tickets and items come from one joined query read a batch at a time: a ticket whose items straddle a
    # batch boundary is still one row, with its first item's channel and the first url / 工单号 of its items.
    from service.exports import ledger_rows
    from service.ledger.models import TicketItem

    monkeypatch.setattr(ledger_rows, "BATCH", 2)
    with db.session() as s:
        first = make_ticket(s, 1, T0)
        for k, (channel, url, order_no) in enumerate(
            [("mailbox", None, None), ("media", "https://x.cn/2", "GD-2"), ("hotline", "https://x.cn/3", "GD-3")]
        ):
            s.add(
                TicketItem(
                    ticket_id=first.id, item_id=f"extra-{k}", source="demo-12345", channel=channel, url=url,
                    order_no=order_no, attached_at=T0,
                )
            )  # fmt: skip
        bare = make_ticket(s, 2, T0 + timedelta(minutes=1))
        s.query(TicketItem).filter(TicketItem.ticket_id == bare.id).delete()
        make_ticket(s, 3, T0 + timedelta(minutes=2))
    with db.session() as s:
        rows = list(rows_from_tickets(s, date(2026, 3, 2), date(2026, 3, 8), None, T0, names=NAMES))
    assert [(r.seq, r.title) for r in rows] == [(1, "化工厂异味投诉1"), (2, "化工厂异味投诉2"), (3, "化工厂异味投诉3")]
    assert (rows[0].channel, rows[0].source, rows[0].source_url, rows[0].order_no) == (
        "hotline",
        "示例市12345热线",
        "https://x.cn/2",
        "GD-2",
    )
    assert "关联条目4条" in rows[0].note
    assert (rows[1].channel, rows[1].source, rows[1].source_url, rows[1].note) == (None, "", None, "")
    assert (rows[2].channel, rows[2].source_url) == ("hotline", None)
