"""API shapes of the audit log."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from service.api_fields import LocalDateTime


class AuditRecordRead(BaseModel):
    id: int
    at: LocalDateTime
    username: str | None
    role: str | None
    event_type: str
    result: str
    address: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditList(BaseModel):
    results: list[AuditRecordRead]
    total: int


class LegacyStatus(BaseModel):
    """Records written before the HMAC change, checked with the old unkeyed hash."""

    status: Literal["verified-legacy", "broken"]
    first_id: int
    last_id: int
    count: int
    reanchor_id: int


class ChainStatus(BaseModel):
    ok: bool
    first_bad_id: int | None
    legacy: LegacyStatus | None = None
