"""Upgrading a SQLite ledger moves roll-up rows that the old triggers filed under the next Beijing day."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command

from service import clock
from service.context import AppContext
from service.db import alembic_config, script_heads
from service.ledger import rollup
from service.ledger.config import ledger_config
from service.ledger.service import ItemRef, open_or_attach
from service.ledger.statistics import daily_counts, live_stats, stats
from service.settings import Settings
from tests.ledger.builders import OFFICER

FIX = "i11m_0001_rollup_day_ms"
# 23:59:59.9996 on 28 February in Beijing: SQLite's date() rounded it into 1 March.
LAST_INSTANT = datetime(2026, 3, 1, tzinfo=clock.SHANGHAI) - timedelta(microseconds=400)
FEBRUARY = date(2026, 2, 28)


def _old_local_day(column: str, dialect: str) -> str:
    return f"date({column}, '+8 hours')"  # the expression the triggers were installed with before the fix


def _open(ctx: AppContext, n: int) -> None:
    with ctx.db.session() as session:
        open_or_attach(
            session,
            title=f"月末最后一刻{n}",
            severity="normal",
            department="env",
            event_id=f"ev-last-{n}",
            discovered_at=LAST_INSTANT,
            items=[ItemRef(item_id=f"item-last-{n}", source="demo-12345", channel="hotline", title="工单")],
            policy=ledger_config(ctx.settings).policy,
        )


def test_upgrade_refiles_the_last_millisecond_of_a_day_and_recreates_the_triggers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frozen
) -> None:
    settings = Settings(
        config_dir=tmp_path / "config", data_dir=tmp_path / "data", database={"url": f"sqlite:///{tmp_path}/l.db"}
    )
    ctx = AppContext.create(settings)
    try:
        cfg = alembic_config(ctx.db.engine)
        with monkeypatch.context() as old:
            old.setattr(rollup, "local_day", _old_local_day)
            for target in [*sorted(script_heads() - {FIX}), "i17_0002_stats_rollup"]:
                with ctx.db.engine.begin() as conn:
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, target)
        _open(ctx, 1)
        with ctx.db.session() as session:
            assert daily_counts(session, OFFICER, FEBRUARY, 2) == [0, 1]  # what the old triggers did
            rollup.fold(session)
        ctx.db.migrate()
        _open(ctx, 2)  # through the recreated triggers
        with ctx.db.session() as session:
            assert daily_counts(session, OFFICER, FEBRUARY, 2) == [2, 0]
            february = {"date_from": date(2026, 2, 1), "date_to": FEBRUARY}
            assert stats(session, OFFICER, **february) == live_stats(session, OFFICER, **february)
            assert sum(row["total"] for row in stats(session, OFFICER, **february)) == 2
    finally:
        ctx.close()
