"""The rules this process matches with: departments.yaml imported into the rules table, API edits kept,
compiled into one matcher and swapped atomically when anything changes.

departments.yaml stays the administrator's file: a rule of it is (re)imported whenever its text in the
file changes, and a rule removed from the file is removed from the table; rules created through the API
live in the table only. Every process (API, scheduler) notices changes by a cheap stamp query.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime
from typing import Any

from loguru import logger
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from service import clock
from service.config_files import ConfigError
from service.context import AppContext
from service.db import rows_affected
from service.rules.config import DEPARTMENTS_FILE, KEEP_DIR, DepartmentsConfig, RuleConfig, current_departments
from service.rules.language import RuleSyntaxError
from service.rules.matcher import CompiledRule, Matcher, MatcherHolder, compile_rule
from service.rules.models import RuleRecord


def rule_digest(rule: RuleConfig) -> str:
    return hashlib.sha256(json.dumps(rule.model_dump(), sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def compile_record(record: Any) -> CompiledRule:
    """A stored rule (an object or a row with its columns) compiled; RuleSyntaxError/ValueError when invalid."""
    s = record.structured or {}
    return compile_rule(
        record.id,
        record.department,
        record.severity,
        record.expr if not s else None,
        regions=s.get("regions", ()),
        subjects=s.get("subjects", ()),
        events=s.get("events", ()),
        exclude=s.get("exclude", ()),
    )


def import_file_rules(session: Session, departments: DepartmentsConfig) -> int:
    """Bring the table in line with departments.yaml; how many rules changed.

    Plain rows and one bulk statement per kind of change (insert, update, delete in chunks), never an
    object or a round trip per rule: a city's 10k rules were minutes of start-up as ORM objects.
    """
    now = clock.now()
    stored = {
        rid: (origin, digest)
        for rid, origin, digest in session.execute(select(RuleRecord.id, RuleRecord.origin, RuleRecord.file_digest))
    }
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    in_file: set[str] = set()
    for department in departments.departments:
        for rule in department.rules:
            in_file.add(rule.id)
            digest = rule_digest(rule)
            current = stored.get(rule.id)
            if current == ("file", digest):
                continue
            if current is not None and current[0] == "api":
                logger.warning("规则 {} 同时存在于 departments.yaml 和接口中，保留接口中的版本", rule.id)
                continue
            values = {
                "id": rule.id,
                "department": department.id,
                "name": rule.name,
                "expr": rule.expr,
                "structured": (
                    {"regions": rule.regions, "subjects": rule.subjects, "events": rule.events, "exclude": rule.exclude}
                    if rule.expr is None
                    else None
                ),
                "severity": rule.severity,
                "enabled": rule.enabled,
                "file_digest": digest,
                "updated_at": now,
                "updated_by": f"file:{DEPARTMENTS_FILE}",
            }
            if current is None:
                inserts.append({**values, "created_at": now, "origin": "file"})
            else:
                updates.append(values)
    if inserts:
        session.execute(insert(RuleRecord.__table__), inserts)  # the table: no ORM bookkeeping per row
    if updates:
        session.execute(update(RuleRecord), updates)  # by primary key, executemany
    gone_ids = [rid for rid, (origin, _) in stored.items() if origin == "file" and rid not in in_file]
    gone = 0
    for start in range(0, len(gone_ids), 500):
        gone += rows_affected(
            session,
            delete(RuleRecord)
            .where(RuleRecord.id.in_(gone_ids[start : start + 500]))
            .execution_options(synchronize_session=False),
        )
    return len(inserts) + len(updates) + gone


class RuleBook:
    """departments.yaml + rules table → one Matcher, rebuilt only when a stamp changes."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.holder = MatcherHolder()
        self._lock = threading.Lock()
        self._file_stamp: tuple[float, int] | None = None
        self._table_stamp: tuple[int, datetime | None] | None = None
        self.errors: dict[str, str] = {}
        self.departments: DepartmentsConfig = DepartmentsConfig()

    def _file(self) -> tuple[float, int]:
        path = self.ctx.settings.config_dir / DEPARTMENTS_FILE
        try:
            stat = path.stat()
        except FileNotFoundError:
            return (0.0, 0)
        return (stat.st_mtime, stat.st_size)

    def refresh(self) -> bool:
        """Re-import the file if it changed and rebuild the matcher if the rules changed; True if rebuilt."""
        with self._lock:
            file_stamp = self._file()
            with self.ctx.db.session() as session:
                if file_stamp != self._file_stamp:
                    try:
                        settings = self.ctx.settings
                        self.departments = current_departments(settings.config_dir, settings.data_path(KEEP_DIR))
                        import_file_rules(session, self.departments)
                    except ConfigError as exc:
                        # A broken edit must not silence every rule: keep matching with what we have.
                        logger.error("departments.yaml 未重新加载：{}", exc)
                    self._file_stamp = file_stamp
                row = session.execute(
                    select(func.count(), func.max(RuleRecord.updated_at)).select_from(RuleRecord)
                ).one()
                table_stamp = (row[0], row[1])
                if table_stamp == self._table_stamp:
                    return False
                # Rows, not objects: only what compiling needs.
                records = session.execute(
                    select(
                        RuleRecord.id,
                        RuleRecord.department,
                        RuleRecord.severity,
                        RuleRecord.expr,
                        RuleRecord.structured,
                    ).where(RuleRecord.enabled.is_(True))
                ).all()
                compiled, errors = [], {}
                for record in records:
                    try:
                        compiled.append(compile_record(record))
                    except (RuleSyntaxError, ValueError) as exc:
                        errors[record.id] = str(exc)
                        logger.error("规则 {} 已跳过：{}", record.id, exc)
            # Build outside the session, then swap one reference: items in flight keep the old matcher.
            self.holder.rebuild(compiled)
            self.errors = errors
            self._table_stamp = table_stamp
            logger.info("匹配器已重建：{} 条规则", len(compiled))
            return True

    def current(self) -> Matcher:
        return self.holder.matcher

    def department_ids(self) -> set[str]:
        return {d.id for d in self.departments.departments}
