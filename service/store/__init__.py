"""Item store: one interface, two backends, one factory that picks by settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.store.base import Item, ItemQuery, SearchPage, Store, StoreUnavailable, UpsertResult, item_id
from service.store.elasticsearch import ElasticsearchStore
from service.store.spool import SpoolingStore
from service.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = [
    "Item",
    "ItemQuery",
    "SearchPage",
    "Store",
    "StoreUnavailable",
    "UpsertResult",
    "item_id",
    "make_store",
]


def make_store(settings: Settings) -> Store:
    """The store the settings name; nothing is connected until first use."""
    if settings.store.backend == "elasticsearch":
        return SpoolingStore(ElasticsearchStore(settings.store.elasticsearch), settings.data_path("spool"))
    return SqliteStore(settings.sqlite_store_path)
