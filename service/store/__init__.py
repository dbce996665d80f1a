"""Item store: one interface, two backends, one factory that picks by settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.store.base import Item, ItemQuery, SearchPage, Store, StoreUnavailable, UpsertResult, item_id

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
    # Only the configured backend is imported (the one exception to imports at the top, see
    # tests/foundation/test_architecture.py): the Elasticsearch client alone is about a third of a crawl
    # process's start-up, which every SQLite installation would otherwise pay on every crawl.
    if settings.store.backend == "elasticsearch":
        from service.store.elasticsearch import ElasticsearchStore
        from service.store.spool import SpoolingStore

        return SpoolingStore(ElasticsearchStore(settings.store.elasticsearch), settings.data_path("spool"))
    from service.store.sqlite import SqliteStore

    return SqliteStore(settings.sqlite_store_path)
