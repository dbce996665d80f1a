"""Sources over HTTP: everyone who reads the ledger sees sources and their health; admins add API sources."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ValidationError

from crawlers.api_sources import add_api_source, api_sources_path, remove_api_source
from crawlers.health import load_health
from crawlers.sources import Source, load_all_sources
from service.api_fields import LocalDateTime
from service.audit.service import record
from service.auth.deps import CurrentUser, client_address, require_roles
from service.config_files import ConfigError, format_loc
from service.deps import SessionDep, SettingsDep
from service.principal import Principal
from service.sources.guard import UnsafeSourceURL, check_source_url

router = APIRouter(prefix="/api/v1/sources", tags=["sources"])


class SourceHealthRead(BaseModel):
    healthy: bool
    last_crawl_at: LocalDateTime | None
    last_success_at: LocalDateTime | None
    last_failure_at: LocalDateTime | None
    last_failure: str | None
    consecutive_failures: int
    items_last_crawl: int | None


class SourceRead(BaseModel):
    id: str
    name: str
    channel: str
    type: str
    start_urls: list[str]
    interval: str
    enabled: bool
    origin: str
    health: SourceHealthRead | None


class SourceList(BaseModel):
    results: list[SourceRead]
    total: int


def _read(source: Source, health: dict[str, Any]) -> SourceRead:
    h = health.get(source.id)
    return SourceRead(
        id=source.id,
        name=source.name,
        channel=source.channel,
        type=source.type,
        start_urls=source.start_urls,
        interval=source.interval,
        enabled=source.enabled,
        origin=source.origin,
        health=None
        if h is None
        else SourceHealthRead(
            healthy=h.healthy,
            last_crawl_at=h.last_crawl_at,
            last_success_at=h.last_success_at,
            last_failure_at=h.last_failure_at,
            last_failure=h.last_failure,
            consecutive_failures=h.consecutive_failures,
            items_last_crawl=h.items_per_crawl[-1] if h.items_per_crawl else None,
        ),
    )


@router.get("", response_model=SourceList)
def list_sources(principal: CurrentUser, settings: SettingsDep) -> SourceList:
    """Every source (sources.yaml and API) with its crawl health."""
    if principal.role not in ("admin", "officer", "leader"):
        raise HTTPException(403, "无权查看 (forbidden for your role)")
    try:
        sources = load_all_sources(settings)
    except ConfigError as exc:
        raise HTTPException(503, f"来源配置有误: {exc}") from exc
    health = load_health(settings)
    results = [_read(s, health) for s in sources.sources]
    return SourceList(results=results, total=len(results))


@router.post("", response_model=SourceRead, status_code=201)
def create_source(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    definition: dict[str, Any] = Body(..., description="与 sources.yaml 中一个来源相同的写法"),
    principal: Principal = Depends(require_roles("admin")),
) -> SourceRead:
    """Add a source (admins). Its URLs must be public unless security.allow_private_source_hosts is set."""
    definition = {k: v for k, v in definition.items() if k != "origin"}
    try:
        source = Source.model_validate(definition | {"origin": "api"})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise HTTPException(422, f"{format_loc(tuple(err.get('loc', ())))}: {err.get('msg')}") from exc
    try:
        dns_servers = load_all_sources(settings).crawl.dns_servers
        for url in source.start_urls:
            check_source_url(url, settings.security.allow_private_source_hosts, dns_servers)
    except UnsafeSourceURL as exc:
        record(
            session,
            event="source.create",
            principal_or_username=principal,
            result="denied",
            address=client_address(request),
            detail={"source_id": source.id, "reason": str(exc)},
        )
        session.commit()
        raise HTTPException(422, str(exc)) from exc
    if any(s.id == source.id for s in load_all_sources(settings).sources):
        raise HTTPException(409, f"来源 {source.id} 已存在")
    try:
        add_api_source(api_sources_path(settings), definition)
    except KeyError as exc:
        raise HTTPException(409, f"来源 {source.id} 已存在") from exc
    record(
        session,
        event="source.create",
        principal_or_username=principal,
        result="success",
        address=client_address(request),
        detail={"source_id": source.id, "start_urls": source.start_urls},
    )
    return _read(source, {})


@router.delete("/{source_id}", status_code=204)
def delete_source(
    source_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Principal = Depends(require_roles("admin")),
) -> Response:
    """Remove an API source; sources of sources.yaml are removed by editing the file."""
    if not remove_api_source(api_sources_path(settings), source_id):
        if any(s.id == source_id for s in load_all_sources(settings).sources):
            raise HTTPException(409, "该来源在 sources.yaml 中定义，请修改配置文件")
        raise HTTPException(404, "来源不存在")
    record(
        session,
        event="source.delete",
        principal_or_username=principal,
        result="success",
        address=client_address(request),
        detail={"source_id": source_id},
    )
    return Response(status_code=204)
