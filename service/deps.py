"""FastAPI dependencies shared by every router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service.context import AppContext
from service.settings import Settings
from service.store import Store


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


def get_settings(request: Request) -> Settings:
    return request.app.state.ctx.settings


def get_store(request: Request) -> Store:
    return request.app.state.ctx.store


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.ctx.db.session() as session:
        yield session


CtxDep = Annotated[AppContext, Depends(get_ctx)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_session)]
