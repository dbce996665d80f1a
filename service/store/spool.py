"""The outage spool in front of Elasticsearch: items written while the cluster is unreachable are kept in
the database (``item_spool``) and replayed, in order, as soon as it answers again.

The spool is in the shared database, not on one machine's disk: a worker that spooled and then died
(or whose machine is gone) leaves nothing stranded, because any worker, the scheduler's replay job or
the next write anywhere replays it. Nothing is lost; replays never duplicate because item ids are
deterministic and upserts are idempotent. Spools written to disk by earlier versions (``data/spool/``)
are replayed too.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loguru import logger
from sqlalchemy import delete, func, insert, inspect, select

from service import clock
from service.db import Database
from service.files import file_lock
from service.store.base import Item, Store, StoreUnavailable, UpsertResult
from service.store.models import SpooledItem

# Items replayed per transaction: one bulk write to the cluster each, rows deleted with it.
REPLAY_BATCH = 500


def _writer() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class SpoolingStore:
    """A Store that spools writes into the database when the inner store is unavailable."""

    def __init__(self, inner: Store, db: Database, legacy_dir: Path | None = None) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.db = db
        self.legacy_dir = Path(legacy_dir) if legacy_dir else None
        self._thread_lock = threading.Lock()
        self._table_seen = False

    def _table_ready(self) -> bool:
        """Whether the database has the spool table (``yuqing init`` creates it); once seen, never asked again.

        Items can reach the store before the database is migrated (a crawl on a fresh installation): a write
        must then not fail on the spool, which cannot hold anything yet.
        """
        if not self._table_seen:
            self._table_seen = inspect(self.db.engine).has_table(SpooledItem.__tablename__)
        return self._table_seen

    def __getattr__(self, name: str) -> Any:
        # Reads and everything else go straight to the backend.
        return getattr(self.inner, name)

    def pending(self) -> int:
        """Items waiting in the spool (all machines' together, plus this machine's old disk spool)."""
        if not self._table_ready():
            return sum(len(_read_lines(path)) for path in self._legacy_files())
        with self.db.session() as session:
            total = int(session.scalar(select(func.count()).select_from(SpooledItem)) or 0)
        return total + sum(len(_read_lines(path)) for path in self._legacy_files())

    def _spool(self, items: Sequence[Item]) -> None:
        if not self._table_ready():
            raise StoreUnavailable("Elasticsearch 不可用，且数据库尚未初始化、无法暂存条目：请先运行 `yuqing init`")
        now = clock.now()
        writer = _writer()
        rows = [
            {"item_id": i.id, "payload": i.model_dump_json(), "spooled_at": now, "spooled_by": writer} for i in items
        ]
        # Committed before the caller is told the items are safe.
        with self.db.session() as session:
            session.execute(insert(SpooledItem), rows)

    def _replay_rows(self) -> int:
        replayed = 0
        if not self._table_ready():
            return 0
        while True:
            with self.db.session() as session:
                query = select(SpooledItem).order_by(SpooledItem.seq).limit(REPLAY_BATCH)
                # Two workers replaying at once take different rows (PostgreSQL); SQLite has one writer anyway.
                rows = session.scalars(query.with_for_update(skip_locked=True)).all()
                if not rows:
                    return replayed
                items = [Item.model_validate_json(row.payload) for row in rows]
                self.inner.upsert(items)  # StoreUnavailable propagates: the rows stay for next time
                session.execute(delete(SpooledItem).where(SpooledItem.seq.in_([row.seq for row in rows])))
            replayed += len(items)

    def _legacy_files(self) -> list[Path]:
        if self.legacy_dir is None or not self.legacy_dir.exists():
            return []
        return sorted(self.legacy_dir.glob("*.jsonl"))

    def _replay_legacy(self) -> int:
        replayed = 0
        files = self._legacy_files()
        if not files or self.legacy_dir is None:
            return 0
        with file_lock(self.legacy_dir / ".lock"):
            for path in self._legacy_files():
                items = [Item.model_validate(json.loads(line)) for line in _read_lines(path)]
                self.inner.upsert(items)
                path.unlink()
                replayed += len(items)
        return replayed

    def _replay_locked(self) -> int:
        replayed = self._replay_legacy() + self._replay_rows()
        if replayed:
            logger.info("已将 {} 条暂存条目重新写入 {}", replayed, self.backend)
        return replayed

    def replay(self) -> int:
        """Write spooled items to the backend; returns how many. StoreUnavailable if it is still down."""
        with self._thread_lock:
            return self._replay_locked()

    def upsert(self, items: Sequence[Item]) -> UpsertResult:
        if not items:
            return UpsertResult()
        return self._write(items, lambda: self.inner.upsert(items))[0]

    def _write(self, items: Sequence[Item], write: Callable[[], UpsertResult]) -> tuple[UpsertResult, int]:
        """Replay the spool, then ``write`` the items; spool them when the backend is unavailable. The result,
        and how many spooled items were replayed first."""
        replayed = 0
        with self._thread_lock:
            try:
                replayed = self._replay_locked()
                return write(), replayed
            except StoreUnavailable as exc:
                self._spool(items)
                logger.warning("条目存储不可用（{}）：{} 条条目已暂存到数据库，恢复后由任一进程重放", exc, len(items))
                return UpsertResult(spooled=[i.id for i in items]), replayed

    def stage_upsert(self, items: Sequence[Item]) -> SpooledStage | None:
        """The backend's staged upsert (see ElasticsearchStore.stage_upsert), spooled like ``upsert`` when the
        backend is unavailable at send time; None when the backend stages nothing."""
        stage = getattr(self.inner, "stage_upsert", None)
        staged = stage(items) if stage is not None else None
        return SpooledStage(self, items, staged) if staged is not None else None

    def health(self) -> dict[str, Any]:
        health = self.inner.health()
        try:
            health["spooled"] = self.pending()
        except Exception as exc:  # health must answer whatever went wrong; the database has its own entry
            logger.warning("无法统计暂存条目：{}", exc)
            health["spooled"] = None
        return health


class SpooledStage:
    """A staged upsert of the backend sent through the spool: replayed spool first, spooled on an outage."""

    def __init__(self, spool: SpoolingStore, items: Sequence[Item], staged: Any) -> None:
        self.spool = spool
        self.items = items
        self.staged = staged
        self.replayed = 0

    @property
    def exact(self) -> bool:
        """Every document was written as shown (False when spooled instead), and nothing else before it: items
        replayed from the spool were not shown to the lookups made beside this write."""
        return bool(self.staged.exact) and not self.replayed

    def send(self) -> UpsertResult:
        try:
            result, self.replayed = self.spool._write(self.items, self.staged.send)
            return result
        finally:
            self.staged.withdraw()  # spooled or not sent: no longer shown as written

    def withdraw(self) -> None:
        self.staged.withdraw()


def _read_lines(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return [line for line in handle if line.strip()]
    except FileNotFoundError:  # replayed by another process meanwhile
        return []
