"""The ingest trigger: a thread in the scheduler process that matches new items within a moment of
their being stored (whoever stored them: a crawl subprocess, the API, a replayed spool)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from loguru import logger

from service.context import AppContext
from service.matching.engine import engine_for
from service.store.base import StoreUnavailable


class MatchingWorker:
    """``run`` is what to do when new items wait: match them here (default), or, with a task queue,
    ask a worker to (the composition root passes that in)."""

    def __init__(self, ctx: AppContext, run: Callable[[], object] | None = None) -> None:
        self.ctx = ctx
        self._run = run or (lambda: engine_for(self.ctx).run())
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="matching-worker", daemon=True)

    def start(self) -> None:
        """Start the thread (again, with a new thread, if the previous one died)."""
        if self._thread.ident is not None and not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="matching-worker", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        """Whether the worker thread still runs (or was never started)."""
        return self._thread.is_alive() or self._thread.ident is None

    def wake(self) -> None:
        """Match now (called after an in-process ingest)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def _has_new(self) -> bool:
        return next(iter(self.ctx.store.iter_unmatched(1)), None) is not None

    def _loop(self) -> None:
        poll = self.ctx.settings.alerts.poll_seconds
        failures = 0
        while not self._stop.is_set():
            self._wake.wait(poll if failures == 0 else min(60.0, poll * 2**failures))
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if self._has_new():
                    self._run()
                failures = 0
            except StoreUnavailable as exc:
                failures = min(failures + 1, 8)
                logger.warning("匹配已暂停，条目存储不可用：{}", exc)
            except Exception:  # the worker must outlive a bad batch; the sweep job retries it
                failures = min(failures + 1, 8)
                logger.exception("匹配运行失败")
