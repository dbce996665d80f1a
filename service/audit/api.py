"""GET /api/v1/audit: the audit log, for the auditor role only (separation of duties, 等保三级).

Not even admins read it, and no endpoint changes or deletes it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service.audit.schemas import AuditList, AuditRecordRead, ChainStatus
from service.audit.service import list_records, verify_chain
from service.auth.deps import require_roles
from service.auth.principal import Principal
from service.deps import SessionDep
from service.masking import mask_for

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Auditor = Annotated[Principal, Depends(require_roles("auditor"))]


@router.get("", response_model=AuditList)
def read_audit_log(
    principal: Auditor,
    session: SessionDep,
    after: int | None = Query(None, ge=0, le=2**63 - 1, description="只返回 ID 大于此值的记录"),
    size: int = Query(100, ge=1, le=1000),
) -> AuditList:
    """Records oldest first, after the given id; details are masked like everything else."""
    rows, total = list_records(session, after=after, size=size)
    results = [AuditRecordRead.model_validate(row, from_attributes=True) for row in rows]
    return AuditList(results=mask_for(principal, results, fields=("detail",)), total=total)


@router.get("/verify", response_model=ChainStatus)
def verify(principal: Auditor, session: SessionDep) -> ChainStatus:
    """Check the hash chain: ``ok`` and the id of the first record that breaks it."""
    ok, first_bad = verify_chain(session)
    return ChainStatus(ok=ok, first_bad_id=first_bad)
