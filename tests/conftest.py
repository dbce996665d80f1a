"""Shared fixtures. Each block below belongs to one area; add yours as a block of its own."""

from __future__ import annotations

import pytest

# -- real test servers (Elasticsearch, PostgreSQL): tests/servers/fixtures.py ---------------------------
# es_server, es_settings, postgres_url. Missing Java/Maven/PostgreSQL: skip locally, fail under CI=true.
pytest_plugins = ["tests.servers.fixtures", "tests.db_fixtures"]
# -- end of real test servers --------------------------------------------------------------------------

# -- accounts and audit: tests/auth/fixtures.py ----------------------------------------------------------
# frozen, app_settings, client (the app on database_url), accounts (add users, sign in).
pytest_plugins = [*pytest_plugins, "tests.auth.fixtures"]
# -- end of accounts and audit ---------------------------------------------------------------------------

# -- suite order: longest files first ---------------------------------------------------------------------
# With `-n 2 --dist loadfile` (scripts/test.sh, CI) each file runs whole on one worker, and xdist hands
# out files in order as workers free up. A file of minutes handed out last runs alone at the end while the
# other worker idles (the city test did: 6 of the suite's 20 minutes). A file that takes long says so with
# `pytest.mark.long_running(seconds)` (a rough figure from CI's --durations, only for ordering); such files
# start first, longest first, then the others by number of tests, as xdist would have ordered them.


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "long_running(seconds): the file takes about this long; it starts first")
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False  # the order below is the one wanted; xdist keeps it


def _expected_seconds(tests: list[pytest.Item]) -> float:
    marker = tests[0].get_closest_marker("long_running")
    return float(marker.args[0]) if marker else 0.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    files: dict[str, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    ordered = sorted(files.values(), key=lambda tests: (-_expected_seconds(tests), -len(tests)))
    items[:] = [item for tests in ordered for item in tests]


# -- end of suite order ------------------------------------------------------------------------------------
