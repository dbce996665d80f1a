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
#
# Files that share a session server of their own run on one worker as one unit (SHARED_SERVER_DIRS): every
# browser test of tests/console/ uses the one console service (`yuqing run` with six users, ~20-40 s to
# start on a loaded CI machine) and one Chromium, which a second worker would start again for one file.
SHARED_SERVER_DIRS = ("tests/console/",)


def xdist_unit(nodeid: str) -> str:
    """The unit of work a test is handed out in: its file, or the directory of files sharing a server."""
    path = nodeid.split("::", 1)[0]
    return next((d for d in SHARED_SERVER_DIRS if path.startswith(d)), path)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "long_running(seconds): the file takes about this long; it starts first")
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False  # the order below is the one wanted; xdist keeps it


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`--dist loadfile`, with the units of ``xdist_unit`` (a shared-server directory is one unit)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedServerScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_unit(nodeid)

    return SharedServerScheduling(config, log)


def _expected_seconds(tests: list[pytest.Item]) -> float:
    """The sum of the ``long_running`` figures of the files among ``tests``."""
    first_of_file = {item.nodeid.split("::", 1)[0]: item for item in reversed(tests)}
    marks = (item.get_closest_marker("long_running") for item in first_of_file.values())
    return sum(float(mark.args[0]) for mark in marks if mark)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(xdist_unit(item.nodeid), []).append(item)
    ordered = sorted(units.values(), key=lambda tests: (-_expected_seconds(tests), -len(tests)))
    items[:] = [item for tests in ordered for item in tests]


# -- end of suite order ------------------------------------------------------------------------------------
