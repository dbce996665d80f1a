"""API shapes of items (the contract's item fields)."""

from __future__ import annotations

from pydantic import BaseModel

from service.api_fields import LocalDateTime
from service.store.base import Item


class ItemRead(BaseModel):
    id: str
    external_id: str | None
    source: str
    channel: str
    title: str
    content: str
    url: str | None
    published_at: LocalDateTime | None
    fetched_at: LocalDateTime
    stored_at: LocalDateTime | None
    department: str | None
    status: str | None
    reply: str | None
    replied_at: LocalDateTime | None
    event_id: str | None

    @classmethod
    def from_item(cls, item: Item) -> ItemRead:
        return cls.model_validate(item.model_dump())


class ItemList(BaseModel):
    results: list[ItemRead]
    total: int
    # Cursor of the next page (pass as ``after``); null on the last page.
    next: str | None = None
    # True when more than ``total`` (10,000) items match: the count stops there.
    total_capped: bool = False
    # True when ``total`` is an estimate (a very common term within a filter on the SQLite store).
    total_estimated: bool = False
