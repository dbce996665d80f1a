"""The stats read from the roll-up give exactly the figures of the live GROUP BY, whatever happened.

A generated ledger (Hypothesis) on SQLite and PostgreSQL: tickets discovered around Asia/Shanghai
midnights and a month boundary, every department and officer action, public replies, severity changes,
merges, splits, reassignments, raw SQL writes, clock jumps and folds at random moments; then random
ranges (dates, instants mid-day, open ends) for an officer and a department user, at several "now"s.
"""

from __future__ import annotations

import itertools
import sqlite3
from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select, update

from service import clock, context
from service.db import count_by_day
from service.feed.service import FEED_ALERTS
from service.ledger import merging, rollup
from service.ledger.batch import Opening, open_or_attach_many
from service.ledger.config import ledger_config
from service.ledger.errors import InvalidInput, StaleVersion, TicketNotFound
from service.ledger.models import Ticket, stats_delta, stats_rollup
from service.ledger.monitoring import sla_job
from service.ledger.service import ItemRef, open_or_attach
from service.ledger.statistics import daily_counts, live_stats, stats
from service.ledger.transitions import RoleNotAllowedError, TransitionNotAllowed
from service.store.sqlite import SqliteStore
from tests.ledger.builders import ENV_USER, OFFICER, WATER_USER
from tests.ledger.test_ledger_monitor import make_ctx
from tests.ledger.test_ledger_times_property import _step
from tests.ledger.test_ledger_times_property import steps as ledger_steps

pytestmark = pytest.mark.filterwarnings("ignore")
# Local midnight 2026-03-01 (Asia/Shanghai): a day and a month boundary.
MIDNIGHT = datetime(2026, 3, 1, tzinfo=clock.SHANGHAI)
_numbers = itertools.count(1)

tickets = st.lists(
    st.tuples(
        st.integers(-60 * 60, 60 * 60),  # discovery, minutes from MIDNIGHT (up to 2.5 days either side)
        st.sampled_from(["env", "water"]),
        st.sampled_from(["minor", "normal", "major", "critical"]),
        st.booleans(),  # published time known
        st.integers(1, 3),  # items
    ),
    min_size=1,
    max_size=5,
)
# The ledger-times property's steps, plus what only moves figures between tickets and days.
steps = st.one_of(
    ledger_steps,
    st.tuples(st.just("merge"), st.integers(0, 4)),
    st.tuples(st.just("split"), st.integers(0, 2)),
    st.tuples(st.just("raw"), st.sampled_from(["ack_met_at", "handle_met_at", "respond_met_at"])),
    st.tuples(st.just("fold")),
)
bound = st.one_of(
    st.none(),
    st.integers(-4, 4).map(lambda days: MIDNIGHT.date() + timedelta(days=days)),
    st.integers(-90 * 60, 90 * 60).map(lambda minutes: MIDNIGHT + timedelta(minutes=minutes)),
)
ranges = st.lists(st.tuples(bound, bound, st.integers(-72 * 60, 72 * 60)), min_size=1, max_size=4)


def _open(session, config, discovered_minutes: int, department: str, severity: str, published: bool, items: int):
    number = next(_numbers)
    discovered = MIDNIGHT + timedelta(minutes=discovered_minutes)
    refs = [
        ItemRef(
            item_id=f"item-{number}-{k}",
            source="demo-12345",
            channel="hotline",
            title=f"工单{number}",
            published_at=discovered - timedelta(hours=5, minutes=k) if published else None,
        )
        for k in range(items)
    ]
    ticket, _ = open_or_attach(
        session,
        title=f"异味投诉{number}",
        severity=severity,
        department=department,
        event_id=f"ev-{number}",
        discovered_at=discovered,
        items=refs,
        policy=config.policy,
    )
    return ticket.id


def _apply(db, frozen, config, store, ids: list[int], target: int, step: tuple) -> None:
    kind = step[0]
    with db.session() as session:
        try:
            if kind == "merge":
                other = ids[step[1] % len(ids)]
                if other != target:
                    merging.merge(session, target, [(other, None)], OFFICER)
            elif kind == "split":
                ticket = session.get(Ticket, target)
                if ticket is not None and len(ticket.items) > 1:
                    item = ticket.items[step[1] % len(ticket.items)].item_id
                    merging.split(session, target, item, OFFICER, store, alerts=FEED_ALERTS, config=config)
            elif kind == "raw":  # a write outside the ledger's code paths (a repair, a script)
                column = getattr(Ticket, step[1])
                session.execute(update(Ticket).where(Ticket.id == target).values({column: clock.now()}))
            elif kind == "reply" and not session.get(Ticket, target).items:
                return  # merged away: its items now belong to another ticket
            elif kind == "fold":
                rollup.fold(session)
            else:
                _step(session, frozen, config, target, step)
        except (InvalidInput, TicketNotFound, StaleVersion, TransitionNotAllowed, RoleNotAllowedError):
            session.rollback()


@settings(
    max_examples=10,  # each example is a whole ledger on a real database; 10 keep the suite within budget
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(opened=tickets, plan=st.lists(st.tuples(st.integers(0, 4), steps), max_size=12), checks=ranges)
def test_rollup_stats_equal_the_live_query_for_any_range(db, frozen, config, tmp_path, opened, plan, checks) -> None:
    frozen.set(MIDNIGHT + timedelta(hours=14))
    store = SqliteStore(tmp_path / "items.sqlite3")
    with db.session() as session:
        ids = [_open(session, config, *spec) for spec in opened]
    for which, step in plan:
        _apply(db, frozen, config, store, ids, ids[which % len(ids)], step)
    at = clock.now()
    for date_from, date_to, shift in checks:
        frozen.set(at + timedelta(minutes=shift))
        for principal in (OFFICER, ENV_USER, WATER_USER):
            with db.session() as session:
                expected = live_stats(session, principal, date_from=date_from, date_to=date_to)
                got = stats(session, principal, date_from=date_from, date_to=date_to)
            assert got == expected, (date_from, date_to, principal.username)
    first = MIDNIGHT.date() - timedelta(days=3)
    with db.session() as session:  # the trend chart's tickets per day
        for principal in (OFFICER, ENV_USER):
            own = [Ticket.department == principal.department] if principal.department else []
            counted = count_by_day(
                session, Ticket.discovered_at, MIDNIGHT - timedelta(days=3), 7, Ticket.merged_into.is_(None), *own
            )
            assert daily_counts(session, principal, first, 7) == counted
    with db.session() as session:
        rollup.fold(session)
        assert stats(session, OFFICER) == live_stats(session, OFFICER)
    frozen.set(at)


def test_the_migration_backfills_existing_tickets(db, frozen, config) -> None:
    """Tickets written before the roll-up existed are counted once the migration has run."""
    with db.session() as session:
        for minutes in (-30, 30, 600):
            _open(session, config, minutes, "env", "normal", True, 1)
    with db.engine.begin() as conn:
        rollup.drop_triggers(conn)
        conn.execute(stats_rollup.delete())
        conn.execute(stats_delta.delete())
    with db.session() as session:
        _open(session, config, 90, "water", "major", False, 2)  # written while no trigger exists
        assert stats(session, OFFICER, date_to=date(2026, 2, 28)) == []  # the roll-up knows nothing
    with db.engine.begin() as conn:
        rollup.backfill(conn)
        rollup.install_triggers(conn)
    with db.session() as session:
        assert stats(session, OFFICER) == live_stats(session, OFFICER)
        assert [row["total"] for row in stats(session, OFFICER)] == [3, 1]


def _sqlite_steps(db, run) -> int:
    """SQLite virtual-machine steps (in thousands) that ``run(session)`` costs: a measure free of load."""
    counted = [0]

    def on_connect(dbapi_conn: sqlite3.Connection, record: object) -> None:
        dbapi_conn.set_progress_handler(lambda: counted.__setitem__(0, counted[0] + 1) or 0, 1000)

    db.engine.dispose()
    event.listen(db.engine, "connect", on_connect)
    try:
        with db.session() as session:
            run(session)
    finally:
        event.remove(db.engine, "connect", on_connect)
        db.engine.dispose()
    return counted[0]


@pytest.mark.parametrize("ledger_database_kind", ["sqlite"], indirect=True)
def test_stats_cost_does_not_grow_with_the_number_of_tickets(db, frozen, config) -> None:
    """The old GROUP BY read every ticket of the range: 10x the tickets cost 10x; the roll-up stays flat."""
    whole = {"date_from": date(2026, 1, 5), "date_to": date(2026, 2, 20)}
    frozen.set(datetime(2026, 6, 1, tzinfo=clock.SHANGHAI))  # every deadline past: nothing read live

    def write(count: int, offset: int) -> None:
        openings = [
            Opening(
                title=f"工单{n}",
                severity="normal",
                department=f"d{n % 5}",
                item=ItemRef(item_id=f"bulk-{n}", source="bench", channel="hotline"),
                discovered_at=datetime(2026, 1, 5, 3, tzinfo=clock.SHANGHAI) + timedelta(minutes=n * 7_919 % 60_000),
            )
            for n in range(offset, offset + count)
        ]
        with db.session() as session:
            open_or_attach_many(session, openings, policy=config.policy)
            rollup.fold(session)

    write(300, 0)
    small = _sqlite_steps(db, lambda s: stats(s, OFFICER, **whole))
    small_live = _sqlite_steps(db, lambda s: live_stats(s, OFFICER, **whole))
    write(2700, 300)
    large = _sqlite_steps(db, lambda s: stats(s, OFFICER, **whole))
    large_live = _sqlite_steps(db, lambda s: live_stats(s, OFFICER, **whole))
    assert large_live > 5 * small_live  # the reference grows with the tickets
    assert large < 2 * small + 5, (small, large)
    with db.session() as session:
        assert stats(session, OFFICER, **whole) == live_stats(session, OFFICER, **whole)


def test_the_scheduled_sla_job_folds_the_recorded_changes(tmp_path, database_url, frozen) -> None:
    """Every minute's job leaves no delta behind, and the figures stay those of the tickets."""
    ctx = make_ctx(tmp_path, database_url)
    context.set_current(ctx)
    try:
        config = ledger_config(ctx.settings)
        with ctx.db.session() as session:
            for minutes in (-30, 30):
                _open(session, config, minutes, "env", "normal", True, 1)
        with ctx.db.session() as session:
            assert session.execute(select(func.count()).select_from(stats_delta)).scalar_one() == 2
        sla_job()
        with ctx.db.session() as session:
            assert session.execute(select(func.count()).select_from(stats_delta)).scalar_one() == 0
            assert (
                session.execute(select(func.count()).select_from(stats_rollup)).scalar_one() == 4
            )  # Feb 28 and Mar 1: 2 days, 2 months
            assert stats(session, OFFICER) == live_stats(session, OFFICER)
    finally:
        context.set_current(None)
        ctx.close()


def test_a_ticket_of_the_last_millisecond_of_a_month_stays_in_that_day_and_month(
    tmp_path, database_url, frozen
) -> None:
    """SQLite's date() rounds to the millisecond: 23:59:59.9996 on 28 February was rolled up into 1 March."""
    ctx = make_ctx(tmp_path, database_url)
    context.set_current(ctx)
    try:
        config = ledger_config(ctx.settings)
        with ctx.db.session() as session:
            open_or_attach(
                session,
                title="月末最后一刻的工单",
                severity="normal",
                department="env",
                event_id="ev-last-ms",
                discovered_at=MIDNIGHT - timedelta(microseconds=400),
                items=[ItemRef(item_id="item-last-ms", source="demo-12345", channel="hotline", title="工单")],
                policy=config.policy,
            )
        february, march = MIDNIGHT.date() - timedelta(days=1), MIDNIGHT.date()
        for fold in (False, True):  # from the recorded change, then from the folded roll-up
            with ctx.db.session() as session:
                if fold:
                    rollup.fold(session)
                assert daily_counts(session, OFFICER, february, 2) == [1, 0]
                for day in (february, march):
                    one_day = {"date_from": day, "date_to": day}
                    assert stats(session, OFFICER, **one_day) == live_stats(session, OFFICER, **one_day)
                whole_february = {"date_from": date(2026, 2, 1), "date_to": february}
                assert stats(session, OFFICER, **whole_february) == live_stats(session, OFFICER, **whole_february)
                assert sum(row["total"] for row in stats(session, OFFICER, **whole_february)) == 1
    finally:
        context.set_current(None)
        ctx.close()
