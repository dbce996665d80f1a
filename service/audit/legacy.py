"""Upgrading an audit log written before the HMAC change (unkeyed SHA-256 chain) to the keyed chain.

The migration i11_0004 records how far the log reached when the database was upgraded
(``audit_head.legacy_last_id``; a trigger lets that bound only go down). At the first start with the key,
the records from the retention anchor up to that bound that verify with the old hash are the legacy segment:
one record ``audit_legacy_reanchor``, signed with the key, names its first and last id, its length and its
head hash, and the chain continues from there with HMAC. ``yuqing audit verify`` then checks the segment
with the old hash and requires it to end on the signed head hash, so an edit inside it is still caught.
Records after the bound are never treated as legacy: whoever writes the database later cannot declare a
stretch rewritten with the unkeyed hash "legacy".
"""

from __future__ import annotations

from loguru import logger
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.audit.models import AuditHead, AuditRecord
from service.audit.service import LEGACY_EVENT, LegacySegment, audit_key, compute_hash, legacy_hash, record


def reanchor_legacy_segment(session: Session, batch: int = 1000) -> LegacySegment | None:
    """Verify the legacy segment with the old hash and append the signed re-anchor; None when nothing to do."""
    # The head row's write lock first: two processes starting together re-anchor once.
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(appended=AuditHead.appended))
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    if head is None or not head.legacy_last_id:
        return None
    bound = head.legacy_last_id
    done = session.execute(select(AuditRecord.id).where(AuditRecord.event_type == LEGACY_EVENT).limit(1)).scalar()
    key = audit_key(session)
    first_id: int | None = None
    last: AuditRecord | None = None
    count = 0
    broken_at: int | None = None
    expected_prev = head.anchor_hash
    after = head.anchor_after_id
    while done is None and broken_at is None:
        rows = list(
            session.execute(
                select(AuditRecord)
                .where(AuditRecord.id > after, AuditRecord.id <= bound)
                .order_by(AuditRecord.id)
                .limit(batch)
            ).scalars()
        )
        if not rows:
            break
        for row in rows:
            is_legacy = (
                row.prev_hash == expected_prev
                and legacy_hash(row.prev_hash, row) == row.hash
                and compute_hash(row.prev_hash, row, key) != row.hash
            )
            if not is_legacy:
                broken_at = row.id
                break
            first_id = row.id if first_id is None else first_id
            last, count, expected_prev = row, count + 1, row.hash
        after = rows[-1].id
    head.legacy_last_id = 0  # decided once; the bound only goes down (trigger)
    if done is not None or last is None or first_id is None:
        session.flush()
        return None
    if broken_at is not None:
        # Left outside the segment: verify reports it as the first bad record unless it is a keyed one.
        logger.warning("审计日志升级：旧版记录校验通过至 #{}；#{} 校验不通过", last.id, broken_at)
    detail = {
        "legacy_first_id": first_id,
        "legacy_last_id": last.id,
        "legacy_count": count,
        "legacy_head_hash": last.hash,
    }
    row = record(session, event=LEGACY_EVENT, principal_or_username="system", result="success", detail=detail)
    logger.info(
        "审计日志升级：{} 条记录（#{}..#{}）已按旧版（HMAC 之前）哈希校验通过，重新锚定为 #{}",
        count,
        first_id,
        last.id,
        row.id,
    )
    return LegacySegment(first_id, last.id, count, last.hash, row.id)
