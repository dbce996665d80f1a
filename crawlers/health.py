"""Source health: last success, consecutive failures, items per crawl (the ``source_health`` table).

Kept in the shared database, not on one machine's disk: with workers on several machines every API
process and the console see the same health whichever worker crawled the source last.

A crawl fails when it met a WAF/captcha page, when the list came back empty where it used to have
items, when every item lacked its title, or when it fetched nothing at all. "0 new" is never a
failure by itself: a quiet mailbox is not a broken one.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from typing import Any

from loguru import logger
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from service import clock
from service.db import Database, process_database
from service.settings import Settings
from service.store.models import SourceHealthRow

# The file earlier versions kept health in (per machine); imported once into the table, then renamed.
LEGACY_FILE = "source_health.json"
HISTORY = 20


class SourceHealth(BaseModel):
    """What the last crawls of one source looked like."""

    source: str
    last_crawl_at: datetime | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_failure: str | None = None
    consecutive_failures: int = 0
    # Entries found per crawl, newest last (bounded).
    items_per_crawl: list[int] = Field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.consecutive_failures == 0


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes even for timezone=True columns.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _from_row(row: SourceHealthRow) -> SourceHealth:
    return SourceHealth(
        source=row.source,
        last_crawl_at=_aware(row.last_crawl_at),
        last_success_at=_aware(row.last_success_at),
        last_failure_at=_aware(row.last_failure_at),
        last_failure=row.last_failure,
        consecutive_failures=row.consecutive_failures,
        items_per_crawl=[int(n) for n in row.items_per_crawl or []],
    )


def _db(settings: Settings, db: Database | None) -> Database:
    return db or process_database(settings)


def load_health(settings: Settings, db: Database | None = None) -> dict[str, SourceHealth]:
    """Health of every source crawled so far; an unreachable database reads as no history (logged)."""
    try:
        with _db(settings, db).session() as session:
            _import_legacy(settings, session)
            return {row.source: _from_row(row) for row in session.scalars(select(SourceHealthRow))}
    except SQLAlchemyError as exc:
        logger.warning("无法读取来源健康记录：{}", exc)
        return {}


def get_health(settings: Settings, source_id: str, db: Database | None = None) -> SourceHealth:
    """Health of one source (an empty record when never crawled)."""
    with _db(settings, db).session() as session:
        row = session.get(SourceHealthRow, source_id)
        return _from_row(row) if row is not None else SourceHealth(source=source_id)


def judge(summary: dict[str, Any], previous: SourceHealth) -> str | None:
    """The reason this crawl counts as a source failure, or None when it worked."""
    if summary.get("config_error"):
        return str(summary["config_error"])
    if summary.get("challenge"):
        return "遇到验证页面（WAF/验证码），未取得内容"
    entries = int(summary.get("entries", 0))
    if entries == 0:
        if summary.get("pages", 0) == 0:
            return "列表页未能获取：" + _first_reason(summary)
        nodes = int(summary.get("nodes", 0))
        if nodes:
            # The list selector matched but nothing came out of the nodes: the page changed or is read
            # the wrong way (records inside CDATA), never a quiet mailbox, first crawl or not.
            return f"列表选择器匹配到 {nodes} 个节点，但没有提取出任何条目：" + _first_reason(summary)
        if any(n > 0 for n in previous.items_per_crawl):
            return "列表为空，而此前抓取到过条目（页面结构可能已改变）"
        if summary.get("errors"):
            return "没有抓取到任何条目：" + _first_reason(summary)
        return None
    items = int(summary.get("items", 0))
    if items and int(summary.get("missing_title", 0)) >= items:
        return "所有条目的标题都为空（请检查 fields.title 选择器）"
    if items == 0:
        return "找到条目但没有一条能提取：" + _first_reason(summary)
    for name, count in (summary.get("empty_fields") or {}).items():
        if count >= items:
            return f"所有条目的 {name} 都为空（请检查 fields.{name} 的选择器）"
    return None


def _first_reason(summary: dict[str, Any]) -> str:
    samples = summary.get("error_samples") or []
    return samples[0]["reason"] if samples else "未知原因"


def record_crawl(
    settings: Settings, source_id: str, summary: dict[str, Any], db: Database | None = None
) -> SourceHealth:
    """Judge a finished crawl and write it into the health table; returns the source's new record.

    The verdict is returned even when the database cannot take it (logged): the crawl's items are
    stored either way, and its caller still reports the failure.
    """
    for attempt in (1, 2):
        try:
            with _db(settings, db).session() as session:
                return _record(session, source_id, summary)
        except IntegrityError:
            # Two first crawls of one source inserted at once (a CLI crawl beside a worker): read it again.
            if attempt == 2:
                raise
        except SQLAlchemyError as exc:
            logger.warning("来源 {} 的健康记录未能写入数据库：{}", source_id, exc)
            break
    return _judged(SourceHealth(source=source_id), summary)


def _judged(health: SourceHealth, summary: dict[str, Any]) -> SourceHealth:
    failure = judge(summary, health)
    now = clock.now()
    health.last_crawl_at = now
    health.items_per_crawl = [*health.items_per_crawl, int(summary.get("entries", 0))][-HISTORY:]
    if failure:
        health.consecutive_failures += 1
        health.last_failure = failure
        health.last_failure_at = now
    else:
        health.consecutive_failures = 0
        health.last_success_at = now
    return health


def _record(session: Session, source_id: str, summary: dict[str, Any]) -> SourceHealth:
    # Row-locked on PostgreSQL: a CLI crawl of a source beside a worker's updates it one after the other.
    row = session.scalars(
        select(SourceHealthRow).where(SourceHealthRow.source == source_id).with_for_update()
    ).one_or_none()
    health = _judged(_from_row(row) if row is not None else SourceHealth(source=source_id), summary)
    if row is None:
        row = SourceHealthRow(source=source_id)
        session.add(row)
    _to_row(health, row)
    session.flush()
    return health


def _to_row(health: SourceHealth, row: SourceHealthRow) -> None:
    row.last_crawl_at = health.last_crawl_at
    row.last_success_at = health.last_success_at
    row.last_failure_at = health.last_failure_at
    row.last_failure = health.last_failure
    row.consecutive_failures = health.consecutive_failures
    row.items_per_crawl = list(health.items_per_crawl)
    row.written_by = f"{socket.gethostname()}:{os.getpid()}"


def _import_legacy(settings: Settings, session: Session) -> None:
    """Move an earlier version's health file into the table (sources it does not know yet), once."""
    path = settings.data_path(LEGACY_FILE)
    if not path.exists():
        return
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = {}
    known = set(session.scalars(select(SourceHealthRow.source)))
    for key, value in raw.items() if isinstance(raw, dict) else ():
        try:
            health = SourceHealth.model_validate(value)
        except ValueError:
            continue
        if key not in known:
            row = SourceHealthRow(source=key)
            _to_row(health, row)
            session.add(row)
    session.flush()
    try:
        path.rename(path.with_name(LEGACY_FILE + ".imported"))
    except OSError as exc:  # another process renamed it first
        logger.debug("来源健康旧文件已被导入：{}", exc)
