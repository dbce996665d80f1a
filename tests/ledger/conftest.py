"""Fixtures for ledger tests: a migrated database per backend, a frozen clock, the default config."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service import clock
from service.db import Database
from service.ledger.config import LedgerConfig
from tests.ledger.builders import T0, make_config


@pytest.fixture
def frozen() -> Iterator[clock.FrozenClock]:
    """The process clock frozen at T0 (restored afterwards)."""
    previous = clock.get_clock()
    frozen = clock.FrozenClock(T0)
    clock.set_clock(frozen)
    yield frozen
    clock.set_clock(previous)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated ledger database (SQLite, and real PostgreSQL where available)."""
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def config() -> LedgerConfig:
    return make_config()
