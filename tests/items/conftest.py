"""Repost tests run on both item stores (the ``store`` fixture of tests/store) and on the whole app, whose
PostgreSQL run keeps its items in Elasticsearch (tests/item_stores.py)."""

from __future__ import annotations

from tests.item_stores import backends, item_store, ledger_database_kind  # noqa: F401 - fixtures: both item stores
from tests.matching.conftest import app_settings  # noqa: F401 - fixture: the app with a departments.yaml
from tests.store.conftest import frozen_clock, store  # noqa: F401 - fixtures
