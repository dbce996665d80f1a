"""``database_url``: a fresh, empty ledger database per test, on SQLite and on real PostgreSQL.

``item_store``: the item store app-level tests run on, SQLite unless a module asks for both
(tests/item_stores.py).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.db import Database


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new empty database on the test server (dropped afterwards); its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def ledger_database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh ledger database of ``kind`` ("sqlite" or "postgres")."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    with fresh_postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_database_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(ledger_database_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with ledger_database(ledger_database_kind, request, tmp_path) as url:
        yield url


@pytest.fixture
def postgres_database_url(postgres_url: str) -> Iterator[str]:
    """A fresh database on real PostgreSQL only (what needs PostgreSQL: the task queue)."""
    with fresh_postgres_database(postgres_url) as url:
        yield url


_template: Path | None = None
_template_lock = threading.Lock()


def migrated_sqlite(path: Path) -> str:
    """A migrated SQLite ledger at ``path`` (a copy of one migrated once per test process); its URL.

    For tests that call a stage without a running app (a crawl writes source health to the database)
    and must not pay a full migration (seconds) each.
    """
    global _template
    with _template_lock:
        if _template is None:
            target = Path(tempfile.mkdtemp(prefix="yuqing-ledger-")) / "ledger.db"
            db = Database(f"sqlite:///{target}")
            db.migrate()
            db.dispose()
            _template = target
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def item_store() -> str:
    """The item store of the app under test: the embedded default; tests/item_stores.py runs on both."""
    return "sqlite"
