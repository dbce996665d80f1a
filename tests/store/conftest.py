"""The ``store`` fixture: each contract test runs once per backend, on a fresh, initialised store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service import clock
from service.store.base import Store

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def frozen_clock() -> Iterator[clock.FrozenClock]:
    """The process clock, stopped at START for the test."""
    previous = clock.get_clock()
    frozen = clock.FrozenClock(START)
    clock.set_clock(frozen)
    yield frozen
    clock.set_clock(previous)


@pytest.fixture(params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.elasticsearch)])
def store(request: pytest.FixtureRequest, tmp_path: Path, frozen_clock: clock.FrozenClock) -> Iterator[Store]:
    if request.param == "sqlite":
        from service.store.sqlite import SqliteStore

        backend: Store = SqliteStore(tmp_path / "items.sqlite3")
    else:
        from service.store.elasticsearch import ElasticsearchStore

        # The session's shared index, emptied for this test (a test's own index costs seconds to create).
        backend = ElasticsearchStore(request.getfixturevalue("shared_es_settings"))
    backend.init()
    yield backend
    backend.close()
