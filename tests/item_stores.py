"""App-level tests on both item stores (SQLite and Elasticsearch), without doubling every test.

Where tests run on a SQLite and a PostgreSQL ledger, the SQLite run keeps the embedded default (SQLite
ledger, SQLite items) and the PostgreSQL run takes production's pairing (PostgreSQL ledger, Elasticsearch
items): the same number of tests covers both item stores.

- A whole directory or module: ``from tests.item_stores import backends, item_store, ledger_database_kind``
  in its conftest (or the module).
- One test: ``@on_paired_stores``; one test on a SQLite ledger only: ``@on_both_item_stores``.

On Elasticsearch the app uses ``shared_es_settings``: one session-wide index, emptied before each test.
"""

from __future__ import annotations

import pytest

from service.settings import Settings
from service.store.base import Store

ELASTICSEARCH = pytest.mark.elasticsearch
POSTGRES = pytest.mark.postgres
PAIRED = [
    pytest.param("sqlite", "sqlite", id="sqlite"),
    pytest.param("postgres", "elasticsearch", id="postgres-elasticsearch", marks=[POSTGRES, ELASTICSEARCH]),
]

on_paired_stores = pytest.mark.parametrize(("ledger_database_kind", "item_store"), PAIRED)
on_both_item_stores = pytest.mark.parametrize(
    "item_store", ["sqlite", pytest.param("elasticsearch", marks=ELASTICSEARCH)]
)


@pytest.fixture(params=[pytest.param(p.values, id=p.id, marks=p.marks) for p in PAIRED])
def backends(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(ledger database, item store) of one run."""
    return request.param


@pytest.fixture
def ledger_database_kind(backends: tuple[str, str]) -> str:
    return backends[0]


@pytest.fixture
def item_store(backends: tuple[str, str]) -> str:
    return backends[1]


def use_item_store(settings: Settings, item_store: str, request: pytest.FixtureRequest) -> Settings:
    """``settings`` with items in ``item_store`` (Elasticsearch: the session's shared index, emptied)."""
    if item_store == "elasticsearch":
        settings.store.backend = "elasticsearch"
        settings.store.elasticsearch = request.getfixturevalue("shared_es_settings")
    return settings


def searchable_now(store: Store) -> None:
    """Make the writes of ``store`` searchable at once.

    On Elasticsearch a write is searchable after the next refresh (within a second) or at once to the store
    object that made it; a test that writes through one store object and reads through another (as a crawl
    process and the service do) refreshes instead of waiting.
    """
    if store.backend == "elasticsearch":
        store._refresh()  # type: ignore[attr-defined]
