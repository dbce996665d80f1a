"""GET /api/v1/audit: the audit log, for the auditor role only (separation of duties, 等保三级).

Not even admins read it, and no endpoint changes or deletes it.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from service.api_fields import check_range, date_or_time
from service.audit.anchors import anchors_path, check_anchors, read_anchors
from service.audit.schemas import AuditList, AuditRecordRead, ChainStatus, LegacyStatus
from service.audit.service import check_chain, list_records
from service.auth.deps import require_roles
from service.clock import SHANGHAI, ensure_aware
from service.deps import SessionDep, SettingsDep
from service.masking import mask_for
from service.principal import Principal

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Auditor = Annotated[Principal, Depends(require_roles("auditor"))]


def _bound(name: str, value: str | None, end: bool) -> datetime | None:
    """A from/to value as an instant: a date means the whole Asia/Shanghai day (both ends included)."""
    bound = date_or_time(name, value)
    if bound is None or isinstance(bound, datetime):
        return None if bound is None else ensure_aware(bound)
    day = bound + timedelta(days=1) if end else bound
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


@router.get("", response_model=AuditList)
def read_audit_log(
    principal: Auditor,
    session: SessionDep,
    after: int | None = Query(None, ge=0, le=2**63 - 1, description="只返回 ID 大于此值的记录"),
    before: int | None = Query(None, ge=0, le=2**63 - 1, description="只返回 ID 小于此值的记录 (倒序翻页)"),
    size: int = Query(100, ge=1, le=1000),
    username: str | None = Query(None, max_length=64, description="操作人用户名"),
    event: str | None = Query(None, max_length=64, description="事件类型；以 * 结尾按前缀匹配，如 user_*"),
    date_from: str | None = Query(None, alias="from", description="时间起 (日期或 ISO 8601)"),
    date_to: str | None = Query(None, alias="to", description="时间止 (日期含当天)"),
    order: Literal["asc", "desc"] = Query("asc", description="asc 最早的在前 (默认)，desc 最新的在前"),
) -> AuditList:
    """Records matching the filters, oldest first unless ``order=desc``; details are masked like everything else."""
    check_range(date_from, date_to)
    rows, total = list_records(
        session,
        after=after,
        before=before,
        size=size,
        username=username or None,
        event=event or None,
        since=_bound("from", date_from, end=False),
        until=_bound("to", date_to, end=True),
        newest_first=order == "desc",
    )
    results = [AuditRecordRead.model_validate(row, from_attributes=True) for row in rows]
    return AuditList(results=mask_for(principal, results, fields=("detail",)), total=total)


@router.get("/verify", response_model=ChainStatus)
def verify(principal: Auditor, session: SessionDep, settings: SettingsDep) -> ChainStatus:
    """Check the hash chain: ``ok`` and the id of the first record that breaks it."""
    chain = check_chain(session)
    ok, first_bad = chain.ok, chain.first_bad_id
    # A chain rewritten consistently from some record on still breaks against the anchors kept outside.
    problems = check_anchors(session, read_anchors(anchors_path(settings)), settings.security.audit_retention_days)
    if ok and problems:
        ok, first_bad = False, min(p["id"] for p in problems)
    legacy = None
    if chain.legacy is not None:
        seg = chain.legacy
        broken = chain.first_bad_id is not None and seg.first_id <= chain.first_bad_id <= seg.last_id
        legacy = LegacyStatus(
            status="broken" if broken else "verified-legacy",
            first_id=seg.first_id,
            last_id=seg.last_id,
            count=seg.count,
            reanchor_id=seg.reanchor_id,
        )
    return ChainStatus(ok=ok, first_bad_id=first_bad, legacy=legacy)
