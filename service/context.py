"""The running application's shared parts: settings, database, store. Built once per process."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from service.audit_key import load_audit_key
from service.db import Database, register_process_database
from service.secrets_at_rest import load_secrets_key, use_secrets_key
from service.settings import Settings
from service.store import Store, make_store


@dataclass
class AppContext:
    settings: Settings
    db: Database
    store: Store
    # Set when the process begins to stop: long work (a crawl) winds down instead of running to its end.
    stopping: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def create(cls, settings: Settings) -> AppContext:
        """Objects only; nothing is connected until first use, so a down backend does not stop start-up."""
        use_secrets_key(load_secrets_key(settings))
        db = Database(
            settings.database_url,
            echo=settings.database.echo,
            busy_timeout=settings.database.busy_timeout_seconds,
            pool_size=settings.database.pool_size,
            max_overflow=settings.database.max_overflow,
            audit_key=load_audit_key(settings),
        )
        # Source health and the store's spool reach the database through process_database: this pool.
        register_process_database(db)
        return cls(settings=settings, db=db, store=make_store(settings, db))

    def close(self) -> None:
        self.store.close()
        self.db.dispose()


_current: AppContext | None = None


def set_current(ctx: AppContext | None) -> None:
    """Make ``ctx`` the context scheduled jobs run in (they are stored by reference, not by value)."""
    global _current
    _current = ctx


def current() -> AppContext:
    if _current is None:
        raise RuntimeError("no application context: start through the yuqing CLI or create_app()")
    return _current
