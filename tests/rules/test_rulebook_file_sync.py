"""departments.yaml edits reach the rules table: a rule removed from the file stops matching, a changed one is
re-imported, rules created through the API stay (on SQLite and PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select

from service import clock
from service.context import AppContext
from service.rules.models import RuleRecord
from service.rules.rulebook import RuleBook
from service.settings import Settings

TWO_RULES = """
departments:
  - id: env
    name: 市生态环境局
    rules:
      - id: env-smell
        expr: '异味'
      - id: env-noise
        expr: '噪音'
"""

ONE_RULE_CHANGED = """
departments:
  - id: env
    name: 市生态环境局
    rules:
      - id: env-smell
        expr: '排污'
"""


def rule_ids(ctx: AppContext) -> set[str]:
    with ctx.db.session() as session:
        return set(session.scalars(select(RuleRecord.id)))


def test_removed_and_changed_file_rules_reach_the_table_and_api_rules_stay(app_settings: Settings) -> None:
    path = Path(app_settings.config_dir) / "departments.yaml"
    path.write_text(TWO_RULES, encoding="utf-8")
    ctx = AppContext.create(app_settings)
    try:
        ctx.db.migrate()
        book = RuleBook(ctx)
        assert book.refresh()
        assert {h.rule_id for h in book.current().match("", "夜里噪音，还有异味")} == {"env-noise", "env-smell"}
        with ctx.db.session() as session:
            now = clock.now()
            session.add(
                RuleRecord(
                    id="api-rule",
                    department="env",
                    expr="噪音",
                    severity="normal",
                    enabled=True,
                    origin="api",
                    created_at=now,
                    updated_at=now,
                    updated_by="admin",
                )
            )

        path.write_text(ONE_RULE_CHANGED, encoding="utf-8")
        stat = path.stat()
        os.utime(path, (stat.st_atime, stat.st_mtime + 5))  # a new stamp even on a coarse file-system clock
        assert book.refresh()

        assert rule_ids(ctx) == {"env-smell", "api-rule"}
        hits = {h.rule_id for h in book.current().match("", "夜里噪音，还有异味，工厂排污")}
        assert hits == {"env-smell", "api-rule"}
        assert {h.rule_id for h in book.current().match("", "只有异味")} == set()
    finally:
        ctx.close()
