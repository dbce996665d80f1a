"""``database_url``: a fresh ledger database per test at the newest schema, on SQLite and on real PostgreSQL.
``empty_database_url``: the same, never migrated (for tests of the migrations themselves).

A migration costs about a second per database (Alembic loads every revision); several hundred tests take
a ledger database each. So each test process migrates once per backend, into a template (a file on SQLite,
a template database on PostgreSQL), and every test gets a copy of its own: the schema the start-up path
would have built, and the start-up path still runs on it (it finds the database at every head).

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
def fresh_postgres_database(server_url: str, template: str | None = None) -> Iterator[str]:
    """A new database on the test server (dropped afterwards), empty or a copy of ``template``; its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    copy = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def ledger_database(kind: str, request: pytest.FixtureRequest, tmp_path: Path, migrated: bool = True) -> Iterator[str]:
    """The URL of a fresh ledger database of ``kind`` ("sqlite" or "postgres"), migrated unless told not."""
    if kind == "sqlite":
        path = tmp_path / "ledger.db"
        yield migrated_sqlite(path) if migrated else f"sqlite:///{path}"
        return
    template = request.getfixturevalue("_postgres_template") if migrated else None
    with fresh_postgres_database(request.getfixturevalue("postgres_url"), template) as url:
        yield url


@pytest.fixture(scope="session")
def _postgres_template(postgres_url: str) -> Iterator[str]:
    """The name of a database on the session's server migrated to the newest schema, to copy per test."""
    name = f"template_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(make_url(postgres_url).set(database=name).render_as_string(hide_password=False))
    try:
        db.migrate()
    finally:
        db.dispose()  # CREATE DATABASE ... TEMPLATE refuses a template anyone is connected to
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_database_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(ledger_database_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with ledger_database(ledger_database_kind, request, tmp_path) as url:
        yield url


@pytest.fixture
def empty_database_url(ledger_database_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database never migrated: for tests of what migrating (or the start-up path on a new database) does."""
    with ledger_database(ledger_database_kind, request, tmp_path, migrated=False) as url:
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
