"""Writing, reading, verifying and purging the audit log.

Each record's ``hash`` is HMAC-SHA-256, keyed with a key kept outside the database (service.audit_key), over
the previous record's hash and the canonical JSON of the record, so an edited, inserted or deleted row breaks
the chain from there on, and whoever can write the database cannot recompute it. The database itself refuses
UPDATE and DELETE on audit rows (triggers, migration i11_0001), and daily anchors kept outside the database
(service.audit.anchors) catch a chain rewritten from some row on. A purge moves the chain's anchor to the
hash the first remaining record chains onto; the tail is pinned by ``audit_head.last_hash``.
There is no update or delete here apart from the retention purge.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from service import clock
from service.audit.models import AuditHead, AuditRecord
from service.db import rows_affected
from service.principal import Principal

Result = Literal["success", "failure", "denied"]
RESULTS: tuple[str, ...] = ("success", "failure", "denied")
MIN_RETENTION_DAYS = 180


class RetentionTooShort(ValueError):
    """A purge was asked to keep less than the legal minimum."""


def _canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit_key(session: Session) -> bytes:
    """The chain key this session's database was opened with (service.db.Database)."""
    return session.info.get("audit_key", b"")


def _canonical(record: AuditRecord) -> str:
    body = {
        "at": _canonical_time(record.at),
        "username": record.username,
        "role": record.role,
        "event_type": record.event_type,
        "result": record.result,
        "address": record.address,
        "detail": record.detail,
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def compute_hash(prev_hash: str, record: AuditRecord, key: bytes = b"") -> str:
    """HMAC-SHA-256 with ``key`` over the previous hash and the canonical JSON of the record's content."""
    return hmac.new(key, (prev_hash + _canonical(record)).encode("utf-8"), hashlib.sha256).hexdigest()


def legacy_hash(prev_hash: str, record: AuditRecord) -> str:
    """The unkeyed SHA-256 of databases written before the HMAC change (verified only inside a signed legacy
    segment, see service.audit.legacy)."""
    return hashlib.sha256((prev_hash + _canonical(record)).encode("utf-8")).hexdigest()


def record(
    session: Session,
    *,
    event: str,
    principal_or_username: Principal | str | None,
    result: Result,
    address: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one record in ``session``'s transaction (it is kept only if the caller commits)."""
    if result not in RESULTS:
        raise ValueError(f"audit result must be one of {RESULTS}, not {result!r}")
    if isinstance(principal_or_username, Principal):
        username: str | None = principal_or_username.username
        role: str | None = principal_or_username.role
        address = address or principal_or_username.address
    else:
        username, role = principal_or_username, None
    # Taking the head row's write lock first makes concurrent appenders queue up behind each other.
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(appended=AuditHead.appended + 1))
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    # JSON round trip: what is hashed is exactly what the database will give back.
    clean_detail = json.loads(json.dumps(detail or {}, ensure_ascii=False, default=str))
    row = AuditRecord(
        at=clock.now(),
        username=(username or "")[:64] or None,
        role=role,
        event_type=event,
        result=result,
        address=(address or "")[:64] or None,
        detail=clean_detail,
        prev_hash=head.last_hash,
    )
    row.hash = compute_hash(row.prev_hash, row, audit_key(session))
    session.add(row)
    head.last_hash = row.hash
    session.flush()
    return row


def list_records(
    session: Session,
    *,
    after: int | None = None,
    size: int = 100,
    username: str | None = None,
    event: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    newest_first: bool = False,
    before: int | None = None,
) -> tuple[list[AuditRecord], int]:
    """Records matching the filters (ids above ``after`` / below ``before``) and how many match in all.

    ``event`` matches an event type or, ending in ``*``, every type with that prefix (``user_*``).
    """
    conditions = []
    if username:
        conditions.append(AuditRecord.username == username)
    if event:
        if event.endswith("*"):
            conditions.append(AuditRecord.event_type.startswith(event[:-1], autoescape=True))
        else:
            conditions.append(AuditRecord.event_type == event)
    if since is not None:
        conditions.append(AuditRecord.at >= since)
    if until is not None:
        conditions.append(AuditRecord.at < until)
    total = session.execute(select(func.count()).select_from(AuditRecord).where(*conditions)).scalar_one()
    query = select(AuditRecord).where(*conditions)
    if after is not None:
        query = query.where(AuditRecord.id > after)
    if before is not None:
        query = query.where(AuditRecord.id < before)
    order = AuditRecord.id.desc() if newest_first else AuditRecord.id
    return list(session.execute(query.order_by(order).limit(size)).scalars()), total


LEGACY_EVENT = "audit_legacy_reanchor"


@dataclass(frozen=True)
class LegacySegment:
    """Records written with the unkeyed hash before the HMAC change, named by a signed re-anchor record."""

    first_id: int
    last_id: int
    count: int
    head_hash: str
    reanchor_id: int


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    first_bad_id: int | None
    legacy: LegacySegment | None = None


def legacy_segment(session: Session) -> LegacySegment | None:
    """The legacy segment named by the first re-anchor record, if that record's own HMAC holds.

    Only a record signed with the key can make unkeyed hashes count, so an attacker without the key cannot
    declare a rewritten stretch "legacy"; an unsigned or edited re-anchor record breaks the chain itself.
    """
    row = session.execute(
        select(AuditRecord).where(AuditRecord.event_type == LEGACY_EVENT).order_by(AuditRecord.id).limit(1)
    ).scalar_one_or_none()
    if row is None or compute_hash(row.prev_hash, row, audit_key(session)) != row.hash:
        return None
    try:
        detail = row.detail
        return LegacySegment(
            int(detail["legacy_first_id"]),
            int(detail["legacy_last_id"]),
            int(detail["legacy_count"]),
            str(detail["legacy_head_hash"]),
            row.id,
        )
    except (KeyError, TypeError, ValueError):
        return None


def check_chain(session: Session, batch: int = 1000) -> ChainCheck:
    """Walk the chain: HMAC for every record, the unkeyed hash only inside a signed legacy segment."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    key = audit_key(session)
    legacy = legacy_segment(session)
    expected_prev = head.anchor_hash
    last_id: int | None = None
    after = head.anchor_after_id
    while True:
        rows = list(
            session.execute(
                select(AuditRecord).where(AuditRecord.id > after).order_by(AuditRecord.id).limit(batch)
            ).scalars()
        )
        if not rows:
            break
        for row in rows:
            in_legacy = legacy is not None and legacy.first_id <= row.id <= legacy.last_id
            expected_hash = legacy_hash(row.prev_hash, row) if in_legacy else compute_hash(row.prev_hash, row, key)
            if row.prev_hash != expected_prev or expected_hash != row.hash:
                return ChainCheck(False, row.id, legacy)
            # The legacy stretch must end exactly where the signed re-anchor says it ended: a stretch
            # recomputed with the unkeyed hash ends on another hash.
            if in_legacy and legacy is not None and row.id == legacy.last_id and row.hash != legacy.head_hash:
                return ChainCheck(False, row.id, legacy)
            expected_prev = row.hash
            last_id = row.id
        after = rows[-1].id
    earlier = session.execute(
        select(func.min(AuditRecord.id)).where(AuditRecord.id <= head.anchor_after_id)
    ).scalar_one()
    if earlier is not None:  # a row slipped in below the anchor
        return ChainCheck(False, earlier, legacy)
    if expected_prev != head.last_hash:
        return ChainCheck(False, last_id, legacy)
    return ChainCheck(True, None, legacy)


def verify_chain(session: Session, batch: int = 1000) -> tuple[bool, int | None]:
    """``(True, None)`` when the chain is intact, else ``(False, id)`` of the first record that breaks it.

    A missing tail (records deleted at the end) is reported at the last remaining record; an empty
    log whose head expects records is reported as ``(False, None)``.
    """
    result = check_chain(session, batch)
    return result.ok, result.first_bad_id


def purge(session: Session, retention_days: int, *, actor: str = "system") -> int:
    """Delete records older than ``retention_days`` (at least 180) and re-anchor the chain; the count."""
    if retention_days < MIN_RETENTION_DAYS:
        raise RetentionTooShort(f"audit retention must be at least {MIN_RETENTION_DAYS} days, not {retention_days}")
    cutoff = clock.now() - timedelta(days=retention_days)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(appended=AuditHead.appended))
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    last_old = session.execute(
        select(AuditRecord).where(AuditRecord.at < cutoff).order_by(AuditRecord.id.desc()).limit(1)
    ).scalar_one_or_none()
    if last_old is None:
        return 0
    # The anchor moves first: the database refuses to delete audit rows above it.
    head.anchor_hash = last_old.hash
    head.anchor_after_id = last_old.id
    head.purged_at = clock.now()
    session.flush()
    count = rows_affected(session, delete(AuditRecord).where(AuditRecord.id <= last_old.id))
    record(
        session,
        event="audit_purge",
        principal_or_username=actor,
        result="success",
        detail={"deleted": count, "before": cutoff.isoformat(), "retention_days": retention_days},
    )
    return count
