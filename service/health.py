"""GET /healthz: is the service up, and can it reach its store and database."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from service import clock
from service.deps import CtxDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(ctx: CtxDep, request: Request) -> dict[str, Any]:
    """Always 200 while the process serves; each dependency says ok or down."""
    store = ctx.store.health()
    database = ctx.db.health()
    scheduler = getattr(request.app.state, "scheduler", None)
    ok = store["status"] == "ok" and database["status"] == "ok"
    return {
        "status": "ok" if ok else "degraded",
        "time": clock.now().isoformat(),
        "store": store,
        "database": database,
        "scheduler": _scheduler_status(request, scheduler),
    }


def _scheduler_status(request: Request, scheduler: object | None) -> dict[str, Any]:
    error = getattr(request.app.state, "scheduler_error", None)
    if error:
        return {"status": "refused", "error": error}
    return {"status": "in-process" if scheduler is not None else "external"}
