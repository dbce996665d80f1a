"""The SLA monitor reads only tickets with something due; configuration is parsed once per file change."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select

from service.context import AppContext
from service.ledger.actions import act
from service.ledger.config import ledger_config
from service.ledger.models import Ticket
from service.ledger.monitoring import check_sla as run_sla_check
from service.settings import Settings
from tests.ledger.builders import ENV_USER, T0, new_ticket


@pytest.fixture
def ctx(tmp_path: Path, database_url: str, frozen):
    settings = Settings(config_dir=tmp_path / "config", data_dir=tmp_path / "data", database={"url": database_url})
    app_ctx = AppContext.create(settings)
    app_ctx.db.migrate()
    yield app_ctx
    app_ctx.close()


class Loaded:
    """Counts Ticket rows the ORM builds while active (what the old monitor did for every open ticket)."""

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> Loaded:
        event.listen(Ticket, "load", self._on_load)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(Ticket, "load", self._on_load)

    def _on_load(self, target: Ticket, context: object) -> None:
        self.count += 1


def test_a_run_with_nothing_due_reads_no_ticket(ctx, frozen) -> None:
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        ids = [new_ticket(s, config, n, severity="normal", policy=config.policy).id for n in range(30)]
    # Warnings of a normal ticket come at 3h (acknowledge, 75% of 4h): before that nothing is due.
    with Loaded() as loaded:
        assert run_sla_check(ctx, T0 + timedelta(hours=1)).notices == []
    assert loaded.count == 0
    report = run_sla_check(ctx, T0 + timedelta(hours=3, minutes=1))
    assert len(report.notices) == 30
    # After raising, each ticket waits for its deadline: a run in between reads nothing again.
    with Loaded() as loaded:
        assert run_sla_check(ctx, T0 + timedelta(hours=3, minutes=30)).notices == []
    assert loaded.count == 0
    with ctx.db.session() as s:
        nexts = set(s.scalars(select(Ticket.next_due_at).where(Ticket.id.in_(ids))))
    assert nexts == {T0 + timedelta(hours=4)}


def test_a_change_makes_the_monitor_look_again(ctx, frozen) -> None:
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        ticket_id = new_ticket(s, config, severity="normal", policy=config.policy).id
    assert [n.level for n in run_sla_check(ctx, T0 + timedelta(hours=4, minutes=1)).notices] == ["breach"]
    frozen.set(T0 + timedelta(hours=5))
    with ctx.db.session() as s:
        act(s, ticket_id, ENV_USER, "acknowledge", config=config)
    report = run_sla_check(ctx, T0 + timedelta(hours=5, minutes=1))
    assert [(n.stage, n.level) for n in report.notices] == [("acknowledge", "recovery")]


def test_closed_tickets_without_pending_notices_drop_out(ctx, frozen) -> None:
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        ticket_id = new_ticket(s, config, severity="normal", policy=config.policy).id
        for action, extra in (("acknowledge", {}), ("handle", {"result": "已整改"})):
            act(s, ticket_id, ENV_USER, action, config=config, **extra)
        act(s, ticket_id, ENV_USER, "respond", response_url="https://gov.example/r/1", config=config)
        act(s, ticket_id, ENV_USER, "close", config=config)
    run_sla_check(ctx, T0 + timedelta(minutes=5))
    with ctx.db.session() as s:
        assert s.scalar(select(Ticket.next_due_at).where(Ticket.id == ticket_id)) is None


def test_department_ids_are_parsed_once_and_reloaded_when_the_file_changes(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    path = config_dir / "departments.yaml"
    path.write_text("departments:\n  - id: env\n    name: 环保局\n", encoding="utf-8")
    settings = Settings(config_dir=config_dir, data_dir=tmp_path / "data")
    first = ledger_config(settings).departments
    assert first == {"env"}
    # The same object again: not re-parsed per ticket action (the file of 10k rules took seconds).
    assert ledger_config(settings).departments is first
    path.write_text("departments:\n  - id: env\n    name: 环保局\n  - id: water\n    name: 水务局\n", encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert ledger_config(settings).departments == {"env", "water"}
