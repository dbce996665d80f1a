"""departments.yaml edits reach the rules table: a rule removed from the file stops matching, a changed one is
re-imported, rules created through the API stay (on SQLite and PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from sqlalchemy import event, select

from service import clock, config_files
from service.context import AppContext
from service.rules.config import KEEP_DIR
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


def test_a_restart_with_an_unchanged_departments_file_skips_parsing_it(
    app_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A city's departments.yaml (10k rules, 2 MB) took seconds of YAML parsing at every start; the parsed
    # file is kept in the data dir under its SHA-256, so a restart reads that, and an edit is parsed again.
    parses: list[str] = []
    load = yaml.load

    def counting(text: str, Loader: type) -> object:  # noqa: N803 - yaml's own keyword
        parses.append(text)
        return load(text, Loader=Loader)

    monkeypatch.setattr(yaml, "load", counting)
    path = Path(app_settings.config_dir) / "departments.yaml"
    path.write_text(TWO_RULES, encoding="utf-8")
    ctx = AppContext.create(app_settings)

    def restart() -> RuleBook:
        config_files._cache.clear()  # what a new process starts with
        book = RuleBook(ctx)
        book.refresh()
        return book

    try:
        ctx.db.migrate()
        restart()
        assert len(parses) == 1
        book = restart()
        assert len(parses) == 1
        assert {h.rule_id for h in book.current().match("", "夜里噪音，还有异味")} == {"env-noise", "env-smell"}
        assert book.department_ids() == {"env"}

        path.write_text(ONE_RULE_CHANGED, encoding="utf-8")
        book = restart()
        assert len(parses) == 2
        assert {h.rule_id for h in book.current().match("", "夜里噪音，还有异味，工厂排污")} == {"env-smell"}

        for kept in app_settings.data_path(KEEP_DIR).iterdir():
            kept.write_bytes(b"\x00 not what was kept")  # damaged: parsed again, never trusted
        book = restart()
        assert len(parses) == 3
        assert {h.rule_id for h in book.current().match("", "工厂排污")} == {"env-smell"}
    finally:
        ctx.close()


def test_importing_many_file_rules_takes_a_few_statements_not_one_per_rule(app_settings: Settings) -> None:
    # 10k rules were imported as ORM objects, minutes of a city's start-up; now one statement per kind of
    # change (insert, update, delete), whatever the number of rules.
    rules = "\n".join(f"      - {{id: r{n}, regions: [地点{n}], events: [噪音]}}" for n in range(300))
    path = Path(app_settings.config_dir) / "departments.yaml"
    path.write_text(f"departments:\n  - id: env\n    name: 市生态环境局\n    rules:\n{rules}\n", encoding="utf-8")
    ctx = AppContext.create(app_settings)
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    try:
        ctx.db.migrate()
        event.listen(ctx.db.engine, "before_cursor_execute", count)
        book = RuleBook(ctx)
        book.refresh()
        assert [h.rule_id for h in book.current().match("", "地点7噪音")] == ["r7"]
        assert len(statements) <= 8, statements
        changed = rules.replace("r5, regions: [地点5]", "r5, regions: [地点五]").replace("      - {id: r9,", "#")
        path.write_text(f"departments:\n  - id: env\n    name: 市生态环境局\n    rules:\n{changed}\n", encoding="utf-8")
        stat = path.stat()
        os.utime(path, (stat.st_atime, stat.st_mtime + 5))
        statements.clear()
        assert book.refresh()
        assert len(statements) <= 8, statements
        assert rule_ids(ctx) == {f"r{n}" for n in range(300)} - {"r9"}
        assert [h.rule_id for h in book.current().match("", "地点五噪音")] == ["r5"]
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", count)
        ctx.close()
