"""A disk spool in front of a remote store: items written while Elasticsearch is unreachable are kept
on disk and replayed, in order, as soon as it answers again. Nothing is lost; replays never duplicate
because item ids are deterministic and upserts are idempotent."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loguru import logger

from service.files import file_lock, write_text_atomic
from service.store.base import Item, Store, StoreUnavailable, UpsertResult


class SpoolingStore:
    """A Store that spools writes to ``spool_dir`` when the inner store is unavailable."""

    def __init__(self, inner: Store, spool_dir: Path) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.spool_dir = Path(spool_dir)
        self._thread_lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        # Reads and everything else go straight to the backend.
        return getattr(self.inner, name)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # The crawler subprocess and the service share the spool: one writer/replayer at a time.
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        with self._thread_lock, file_lock(self.spool_dir / ".lock"):
            yield

    def _files(self) -> list[Path]:
        if not self.spool_dir.exists():
            return []
        return sorted(self.spool_dir.glob("*.jsonl"))

    def pending(self) -> int:
        """Items waiting in the spool."""
        total = 0
        for path in self._files():
            with open(path, encoding="utf-8") as handle:
                total += sum(1 for line in handle if line.strip())
        return total

    def _spool(self, items: Sequence[Item]) -> Path:
        final = self.spool_dir / f"{time.time_ns():020d}-{os.getpid()}.jsonl"
        # Atomic and on disk before the caller is told the items are safe: a replay never sees half a file.
        write_text_atomic(final, "".join(item.model_dump_json() + "\n" for item in items), durable=True)
        return final

    def _replay_locked(self) -> int:
        replayed = 0
        for path in self._files():
            with open(path, encoding="utf-8") as handle:
                items = [Item.model_validate(json.loads(line)) for line in handle if line.strip()]
            self.inner.upsert(items)  # StoreUnavailable propagates: the file stays for next time
            path.unlink()
            replayed += len(items)
        if replayed:
            logger.info("已将 {} 条暂存条目重新写入 {}", replayed, self.backend)
        return replayed

    def replay(self) -> int:
        """Write spooled items to the backend; returns how many. StoreUnavailable if it is still down."""
        if not self._files():
            return 0
        with self._locked():
            return self._replay_locked()

    def upsert(self, items: Sequence[Item]) -> UpsertResult:
        if not items:
            return UpsertResult()
        with self._locked():
            try:
                self._replay_locked()
                return self.inner.upsert(items)
            except StoreUnavailable as exc:
                path = self._spool(items)
                logger.warning("条目存储不可用（{}）：{} 条条目已暂存到 {}", exc, len(items), path)
                return UpsertResult(spooled=[i.id for i in items])

    def health(self) -> dict[str, Any]:
        health = self.inner.health()
        health["spooled"] = self.pending()
        return health
