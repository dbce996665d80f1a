"""FastAPI dependencies shared by every router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service.audit.request import record_reveals
from service.context import AppContext
from service.masking import take_reveals
from service.settings import Settings
from service.store import Store


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


def get_settings(request: Request) -> Settings:
    return request.app.state.ctx.settings


def get_store(request: Request) -> Store:
    return request.app.state.ctx.store


def get_session(request: Request) -> Iterator[Session]:
    """The request's one unit of work: its changes, its audit records and its reveal record commit together.

    Ends when the endpoint has answered, before the response is sent (``scope="function"``): a client
    never sees a success that is not committed yet, and a streamed response holds no connection or lock.
    """

    with request.app.state.ctx.db.session() as session:
        request.state.db_session = session
        try:
            yield session
        except BaseException:
            take_reveals()  # the answer is an error: nothing noted on the way was shown
            raise
        finally:
            request.state.db_session = None
        # What the answer showed an admin unmasked is recorded with the read itself.
        record_reveals(session, request)


CtxDep = Annotated[AppContext, Depends(get_ctx)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
