"""Daily anchors of the audit chain, kept outside the database.

Once a day the chain's head (last record id and its HMAC) is written to ``<data dir>/audit/anchors.jsonl``,
to the log, and as an outbox notice (kind ``audit_anchor``: route it to a channel people outside the
server read). A chain rewritten from some record on — even by someone holding the key — no longer holds
the hash an earlier anchor names for that record; a purge of records still inside the retention period
removes records an anchor names. ``yuqing audit verify`` checks both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from loguru import logger
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerting.outbox import enqueue
from service import clock
from service.audit.models import AuditHead, AuditRecord
from service.settings import Settings


@dataclass(frozen=True)
class Anchor:
    at: datetime
    last_id: int
    last_hash: str


def anchors_path(settings: Settings) -> Path:
    return settings.data_path("audit", "anchors.jsonl")


def read_anchors(path: Path) -> list[Anchor]:
    """Anchors from a JSON-lines file (the product's own, or a copy kept elsewhere); lines not anchors skipped."""
    out: list[Anchor] = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            data = json.loads(line)
            out.append(Anchor(datetime.fromisoformat(data["at"]), int(data["last_id"]), str(data["last_hash"])))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def take_anchor(session: Session, settings: Settings) -> Anchor | None:
    """Anchor the chain's head now: file, log line and outbox notice. None when the log is empty."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    last_id = session.execute(select(AuditRecord.id).order_by(AuditRecord.id.desc()).limit(1)).scalar()
    if head is None or last_id is None:
        return None
    anchor = Anchor(clock.now(), int(last_id), head.last_hash)
    line = {"at": anchor.at.isoformat(), "last_id": anchor.last_id, "last_hash": anchor.last_hash}
    path = anchors_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
    logger.info("审计锚点：last_id={} last_hash={}", anchor.last_id, anchor.last_hash)
    enqueue(
        session,
        "audit_anchor",
        None,
        None,
        f"【审计锚点】{clock.to_local(anchor.at):%Y-%m-%d}",
        f"审计日志链头：记录 #{anchor.last_id}，HMAC {anchor.last_hash}\n请保存此消息，用于 yuqing audit verify 核对。",
        f"audit-anchor:{anchor.last_id}:{anchor.last_hash[:16]}",
        notifications=settings.notifications,
    )
    return anchor


def check_anchors(session: Session, anchors: list[Anchor], retention_days: int) -> list[dict[str, Any]]:
    """Problems found comparing the chain with the anchors: each names the record and what is wrong."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    purged_up_to = head.anchor_after_id if head is not None else 0
    problems: list[dict[str, Any]] = []
    oldest_kept = clock.now() - timedelta(days=retention_days)
    for anchor in sorted(anchors, key=lambda a: a.last_id):
        if anchor.last_id <= purged_up_to:
            if head is not None and anchor.last_id == purged_up_to and head.anchor_hash != anchor.last_hash:
                problems.append({"id": anchor.last_id, "reason": "purge anchor differs from the daily anchor"})
            elif anchor.at > oldest_kept:
                problems.append({"id": anchor.last_id, "reason": "record purged within the retention period"})
            continue
        found = session.execute(select(AuditRecord.hash).where(AuditRecord.id == anchor.last_id)).scalar()
        if found is None:
            problems.append({"id": anchor.last_id, "reason": "anchored record is missing"})
        elif found != anchor.last_hash:
            problems.append({"id": anchor.last_id, "reason": "anchored record's hash differs (chain rewritten)"})
    return problems
