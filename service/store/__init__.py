"""Item store: one interface, two backends, one factory that picks by settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.store.base import Item, ItemQuery, SearchPage, Store, StoreUnavailable, UpsertResult, item_id

if TYPE_CHECKING:
    from service.db import Database
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


def make_store(settings: Settings, db: Database | None = None) -> Store:
    """The store the settings name; nothing is connected until first use.

    Elasticsearch writes spool into the database (``db``, else this process's own pool on it) while the
    cluster is unreachable; any process that can reach the cluster again replays them.
    """
    # Only the configured backend is imported (the one exception to imports at the top, see
    # tests/foundation/test_architecture.py): the Elasticsearch client alone is about a third of a crawl
    # process's start-up, which every SQLite installation would otherwise pay on every crawl.
    # The database module (SQLAlchemy, Alembic: ~0.5 s CPU) likewise: an SQLite crawl never needs it.
    if settings.store.backend == "elasticsearch":
        from service.db import process_database
        from service.store.elasticsearch import ElasticsearchStore
        from service.store.spool import SpoolingStore

        return SpoolingStore(
            ElasticsearchStore(settings.store.elasticsearch),
            db or process_database(settings),
            legacy_dir=settings.data_path("spool"),
        )
    from service.store.sqlite import SqliteStore

    return SqliteStore(settings.sqlite_store_path)
