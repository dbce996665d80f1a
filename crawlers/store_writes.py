"""The store step's threads on Elasticsearch: one batch grouped into events, one batch written, both beside the
crawl.

A batch's candidate lookup and bulk write mostly wait for the cluster. The crawl (Scrapy's reactor thread) used
to wait with them: for the lookup, then for the write before it, while it could have been cleaning,
normalising and signing the next items. Now each batch is handed to a grouping thread (lookup, grouping,
staging), which hands its write to a writer thread; the crawl goes on until it has the next full batch and
waits only while the batch before is still being grouped. At most three batches are in the air: one being
filled, one being grouped, one being written.

A batch's reposts of the batch in flight must still be found. A write of new items is staged
(``stage_upsert``): its documents are built before it is sent and shown to the candidate lookups as written
until the cluster answers, so the next lookup runs beside it. Any other write is waited for before the next
lookup. When a staged write does not store exactly what it showed (a document refused, the store unreachable
and the batch spooled), the next batch is looked up again after it, as if it had waited. Batches are grouped
one after the other, in the order the crawl filled them.

Stores that do not say their writes overlap (``overlaps_writes``: SQLite, whose writes are local and quick) are
grouped and written at once, in the crawl's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, Protocol

from service.store.base import Item, UpsertResult

# A batch grows to at most this many times crawl.batch_size while the batch before is in the air (see busy).
GROWTH = 5


class Counts(Protocol):
    """What a write is counted into (the crawl's store step)."""

    def count(self, batch: list[Item], written: Callable[[], UpsertResult]) -> None: ...


class StoreWrites:
    """One batch being grouped and one write in flight per store, each on a thread of its own."""

    def __init__(self, store: Any) -> None:
        self.overlap = bool(getattr(store, "overlaps_writes", False))
        self.store = store
        self.writer: ThreadPoolExecutor | None = None
        self.grouper: ThreadPoolExecutor | None = None
        self.pending: tuple[Counts, list[Item], Future[UpsertResult], Any] | None = None
        self.grouping: Future[None] | None = None

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` (a batch's lookup, grouping and write) after the batch before it: on the grouping thread
        when the store's writes overlap, else now. Waits only for the batch still being grouped."""
        if not self.overlap:
            job()
            return
        self.drain()
        if self.grouper is None:
            self.grouper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yuqing-store-group")
        self.grouping = self.grouper.submit(job)

    def busy(self, held: int, batch_size: int) -> bool:
        """Whether a full batch of ``held`` items had better grow than wait: the batch before is still being
        grouped (its lookup, or its wait for the write in flight before its own is handed over) and the batch is
        under GROWTH times ``batch_size``.

        When the cluster is what holds the crawl up, a batch of 100 made it answer twice as many requests as
        needed (a bulk write and a lookup each): the cluster's cost per request is about that of 20 documents
        (benchmarks/es_ingest.py). Grown batches make fewer requests exactly while the cluster is the slower
        side; when it keeps up, batches stay at ``batch_size``, and items wait no longer for their batch.
        """
        return held < GROWTH * batch_size and self.grouping is not None and not self.grouping.done()

    def drain(self) -> None:
        """Wait until the batch handed over last is grouped and its write handed to the writer (errors raised)."""
        if self.grouping is not None:
            grouping, self.grouping = self.grouping, None
            grouping.result()

    def shown(self) -> bool:
        """Whether the write in flight (if any) shows its documents to candidate lookups."""
        return self.pending is None or self.pending[3] is not None

    def stage(self, batch: list[Item]) -> Any:
        """The store's staged upsert of ``batch`` (documents shown to lookups from now on), or None."""
        stage = getattr(self.store, "stage_upsert", None) if self.overlap else None
        return stage(batch) if stage is not None else None

    def write(self, counts: Counts, batch: list[Item], staged: Any = None) -> None:
        """Write ``batch``, counted into ``counts`` (``staged``: its staged upsert): in the background when the
        store allows, else now."""
        self.settle()
        if not self.overlap:
            counts.count(batch, lambda: self.store.upsert(batch))
            return
        if self.writer is None:
            self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yuqing-store-write")
        job = staged.send if staged is not None else partial(self.store.upsert, batch)
        self.pending = (counts, batch, self.writer.submit(job), staged)

    def settle(self) -> bool:
        """Wait for the write in flight, if any, and count it; whether lookups made beside it saw what it
        stored (True when none could: it showed nothing)."""
        if self.pending is None:
            return True
        counts, batch, future, staged = self.pending
        self.pending = None
        counts.count(batch, future.result)
        return staged is None or bool(staged.exact)

    def finish(self) -> None:
        """Wait until every batch handed over is grouped, written and counted."""
        self.drain()
        self.settle()

    def close(self) -> None:
        """Finish and let the threads go (the next batch starts others)."""
        try:
            self.finish()
        finally:
            for pool in (self.grouper, self.writer):
                if pool is not None:
                    pool.shutdown(wait=True)
            self.grouper = self.writer = None
