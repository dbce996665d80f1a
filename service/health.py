"""GET /healthz: is the service up, and can it reach its store and database."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from loguru import logger

from service import clock
from service.deps import CtxDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(ctx: CtxDep, request: Request) -> dict[str, Any]:
    """Always 200 while the process serves; each dependency says ok or down."""
    # Public endpoint: status and backend only; the reasons (hosts, URLs) go to the log.
    store = _public(ctx.store.health(), "store")
    database = _public(ctx.db.health(), "database")
    scheduler = getattr(request.app.state, "scheduler", None)
    ok = store["status"] == "ok" and database["status"] == "ok"
    return {
        "status": "ok" if ok else "degraded",
        "time": clock.now().isoformat(),
        "store": store,
        "database": database,
        "scheduler": _scheduler_status(request, scheduler),
    }


def _public(status: dict[str, Any], name: str) -> dict[str, Any]:
    if "error" in status:
        logger.warning("health: {} down: {}", name, status["error"])
    return {k: v for k, v in status.items() if k in ("status", "backend")}


def _scheduler_status(request: Request, scheduler: object | None) -> dict[str, Any]:
    if getattr(request.app.state, "scheduler_error", None):
        return {"status": "refused"}
    return {"status": "in-process" if scheduler is not None else "external"}
