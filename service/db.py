"""The ledger-side database: SQLAlchemy 2 engine, sessions and Alembic migrations."""

from __future__ import annotations

import ast
import functools
import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, Table, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import CursorResult, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.dml import UpdateBase

if TYPE_CHECKING:
    from service.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Packages whose ``*.models`` modules declare tables (Alembic autogenerate and checks need them all).
MODEL_PACKAGES = ("service", "alerting")

# Stable constraint names make Alembic migrations reproducible on SQLite and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # Every model maps one table; the declared FromClause is wider than what Core's insert/update accept.
    __table__: ClassVar[Table]


class DatabaseUnavailable(Exception):
    """The database cannot be reached or migrated."""


# A request never waits on its own write lock (one session per request), so a long wait can only be another
# writer; bounded, so a stuck writer shows as an error in seconds instead of a 30 s stall.
SQLITE_BUSY_TIMEOUT_SECONDS = 5.0
# Connections: one per request thread (up to 40 in the server's thread pool), SSE polls, scheduler jobs.
POOL_SIZE = 10
MAX_OVERFLOW = 60


def rows_affected(session: Session, statement: UpdateBase) -> int:
    """Run an UPDATE or DELETE in ``session``; how many rows it touched (optimistic locks compare this to 1)."""
    # Session.execute is typed as returning a plain Result; for DML it is the CursorResult carrying rowcount.
    result = cast("CursorResult[Any]", session.execute(statement))
    return result.rowcount


def make_engine(
    url: str,
    echo: bool = False,
    *,
    busy_timeout: float = SQLITE_BUSY_TIMEOUT_SECONDS,
    pool_size: int = POOL_SIZE,
    max_overflow: int = MAX_OVERFLOW,
) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a bounded busy timeout so the scheduler and API can share it."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow)
    engine = create_engine(url, **kwargs)
    if sqlite:

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cur.close()

    return engine


class Database:
    """An engine and its session factory."""

    def __init__(
        self,
        url: str,
        echo: bool = False,
        *,
        busy_timeout: float = SQLITE_BUSY_TIMEOUT_SECONDS,
        pool_size: int = POOL_SIZE,
        max_overflow: int = MAX_OVERFLOW,
        audit_key: bytes = b"",
    ) -> None:
        self.url = url
        self.engine = make_engine(
            url, echo=echo, busy_timeout=busy_timeout, pool_size=pool_size, max_overflow=max_overflow
        )
        # Sessions carry the audit chain's HMAC key (service.audit_key): the key never enters the database.
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info={"audit_key": audit_key})

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def health(self) -> dict[str, Any]:
        """``{"status": "ok"|"down"}``; never raises."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return {
                "status": "down",
                "backend": self.engine.dialect.name,
                "error": str(getattr(exc, "orig", None) or exc)[:300],
            }
        return {"status": "ok", "backend": self.engine.dialect.name}

    def migrate(self) -> None:
        """Bring the schema to the newest revision of every branch."""
        migrate(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


_process_databases: dict[str, Database] = {}
_process_lock = threading.Lock()


def process_database(settings: Settings) -> Database:
    """This process's own small pool on the settings' database, for code that runs without an AppContext.

    A crawl process writes source health and spooled items through it; the running context shares it
    (``AppContext.create`` registers its own here), so an API process opens no second pool.
    """
    url = settings.database_url
    with _process_lock:
        db = _process_databases.get(url)
        if db is None:
            db = _process_databases[url] = Database(
                url, busy_timeout=settings.database.busy_timeout_seconds, pool_size=2, max_overflow=4
            )
        return db


def register_process_database(db: Database) -> None:
    """Make ``db`` what ``process_database`` answers for its URL in this process (the context's own)."""
    with _process_lock:
        _process_databases[db.url] = db


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


@functools.cache
def script_heads() -> frozenset[str]:
    """The newest revision of every branch, read from the revision files' text.

    Alembic's own answer loads every revision module (one imports the ledger's roll-up and with it most of
    the service): about half a second of CPU that a command on an up-to-date database paid for nothing.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, expr = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, expr = node.target, node.value
            else:
                continue
            if not isinstance(target, ast.Name) or target.id not in ("revision", "down_revision"):
                continue
            value = ast.literal_eval(expr)
            if target.id == "revision":
                revisions.add(value)
            elif value:
                parents.update([value] if isinstance(value, str) else value)
    return frozenset(revisions - parents)


def database_heads(engine: Engine) -> frozenset[str]:
    """The revisions the database says it is at (empty for a database never migrated)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return frozenset()
        return frozenset(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def migrate(engine: Engine) -> None:
    """Run ``alembic upgrade heads`` on this engine (domains add their tables on branches off the base).

    A database already at every head is left alone: the upgrade would do nothing, yet loading the revision
    scripts and the models costs every command and every start a fraction of a second of CPU.
    """
    cfg = alembic_config(engine)
    try:
        if database_heads(engine) == script_heads():
            # What the upgrade's env.py would have done: every process that migrated had every table
            # declared (a foreign key names a table by string; the ORM resolves it when it flushes).
            import_models()
            return
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable(
            f"database {engine.url.render_as_string()}: {getattr(exc, 'orig', None) or exc}"
        ) from exc


def import_models() -> None:
    """Import every module that declares tables so Base.metadata is complete.

    Tables live in the ``models`` modules of every top-level package (``service.*`` and ``alerting``),
    so no domain has to import another's models just to get them registered.
    """
    for package in MODEL_PACKAGES:
        for base in importlib.import_module(package).__path__:
            # Found by file name, not by importing every subpackage to look inside (pkgutil.walk_packages
            # did): that loaded the notifiers, the command line and the matcher into every command that
            # opens the database, for nothing.
            found = [*Path(base).rglob("models.py"), *Path(base).rglob("models/__init__.py")]
            for path in sorted(found):
                parts = path.relative_to(base).with_suffix("").parts
                importlib.import_module(".".join((package, *(parts[:-1] if parts[-1] == "__init__" else parts))))


def count_by_day(session: Session, column: Any, start: datetime, days: int, *where: Any) -> list[int]:
    """Rows whose ``column`` falls in each of ``days`` 24-hour periods from ``start``, in one query.

    One conditional count per day over a single range scan of ``column`` (indexed where it is used);
    portable between SQLite and PostgreSQL, unlike their date functions.
    """
    bounds = [start + timedelta(days=i) for i in range(days + 1)]
    counts = [func.count().filter(column >= bounds[i], column < bounds[i + 1]) for i in range(days)]
    row = session.execute(select(*counts).where(column >= bounds[0], column < bounds[-1], *where)).one()
    return [int(n or 0) for n in row]
