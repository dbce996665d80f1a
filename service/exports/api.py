"""GET /api/v1/ledger/export: the ledger file of a date range (xlsx or csv).

Department users export their own department only: naming another answers 404 (its existence stays
hidden), naming none means their own. Officers, leaders and admins export any department or all.
Personal data is masked in the file for every role (see service.exports.writers).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from service import clock
from service.api_fields import reversed_range
from service.auth.deps import CurrentUser, department_filter, ensure_department_visible
from service.context import AppContext
from service.deps import CtxDep
from service.exports.ledger_rows import Names, rows_from_tickets
from service.exports.service import export_filename, export_ledger, known_department
from service.exports.writers import csv_chunks
from service.field_labels import field_label
from service.rules.config import current_departments

router = APIRouter(prefix="/api/v1/ledger", tags=["ledger"])
MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
# A wider range is one request holding a worker for minutes; the CLI has no such limit.
MAX_DAYS = 366
MIN_YEAR, MAX_YEAR = 1970, 2999


@router.get("/export", response_class=FileResponse)
def export_ledger_file(
    request: Request,
    principal: CurrentUser,
    ctx: CtxDep,
    date_from: date = Query(alias="from", description="开始日期 YYYY-MM-DD（含，北京时间）"),
    date_to: date = Query(alias="to", description="结束日期 YYYY-MM-DD（含，北京时间）"),
    department: str | None = Query(None, description="责任单位 ID；部门用户默认本部门"),
    fmt: Literal["xlsx", "csv"] = Query("xlsx", alias="format"),
    per_department: bool = Query(False, description="xlsx：每个责任单位另加一个工作表"),
) -> Response:
    """The ledger of tickets discovered from ``from`` to ``to`` (both days included)."""
    own = department_filter(principal)  # 403 for roles that see no tickets
    for name, day in (("from", date_from), ("to", date_to)):
        # Days near date.min/date.max overflow when turned into UTC instants at the day's edges.
        if not MIN_YEAR <= day.year <= MAX_YEAR:
            raise HTTPException(422, f"{field_label(name)}：{day} 超出支持的日期范围（{MIN_YEAR}–{MAX_YEAR} 年）")
    if department:
        ensure_department_visible(principal, department, request)
        configured = {d.id for d in current_departments(ctx.settings.config_dir).departments}
        if own is None and not known_department(ctx.db, configured, department):
            raise HTTPException(
                422, f"{field_label('department')}：departments.yaml 中没有责任单位 {department!r}，也没有它的工单"
            )
    department = department or own
    if date_to < date_from:
        raise HTTPException(422, reversed_range(date_from, date_to))
    if (date_to - date_from).days >= MAX_DAYS:
        raise HTTPException(422, f"日期范围最多 {MAX_DAYS} 天，更长的范围请用命令行 yuqing export")
    filename = export_filename(date_from, date_to, fmt, department)
    if fmt == "csv":
        # Rows go out as the server-side cursor yields them: nothing is assembled first, memory stays flat.
        return StreamingResponse(
            _csv_body(ctx, date_from, date_to, department),
            media_type=MEDIA_TYPES["csv"],
            headers={"Content-Disposition": content_disposition_header(filename)},
        )
    # An xlsx is a zip whose directory comes last: it is written to a file (rows streamed from the cursor
    # into it, memory flat), then sent from that file.
    exports_dir = ctx.settings.data_path("exports", ".api")
    exports_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(suffix=f".{fmt}", dir=exports_dir)
    os.close(fd)
    try:
        export_ledger(
            ctx.db,
            ctx.settings,
            path=Path(name),
            date_from=date_from,
            date_to=date_to,
            department=department,
            fmt=fmt,
            per_department_sheets=per_department,
        )
    except BaseException:
        os.unlink(name)
        raise
    return FileResponse(
        name,
        media_type=MEDIA_TYPES[fmt],
        filename=filename,
        background=BackgroundTask(os.unlink, name),
    )


def content_disposition_header(filename: str) -> str:
    """An attachment named ``filename`` (RFC 5987, as FileResponse writes it for non-ASCII names)."""
    return f"attachment; filename*=utf-8''{quote(filename)}"


def _csv_body(ctx: AppContext, date_from: date, date_to: date, department: str | None) -> Iterator[bytes]:
    settings = ctx.settings
    names = Names.load(settings.config_dir)
    at = clock.now()
    yield "\ufeff".encode()  # BOM: Excel then reads the Chinese as UTF-8
    with ctx.db.session() as session:
        rows = rows_from_tickets(session, date_from, date_to, department, at, names=names, zone=settings.zone)
        for chunk in csv_chunks(rows, zone=settings.zone):
            yield chunk.encode()
