"""Watching a running crawl child: its time limit, and a stop of the service (STOP_SIGNAL first, then SIGKILL)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

from loguru import logger

from crawlers.process_env import STOP_SIGNAL

# Seconds between looks at a running crawl: how soon a stop of the service reaches it.
POLL_SECONDS = 0.5


class CrawlError(RuntimeError):
    """The crawl process failed as a whole (crashed, timed out, printed no result)."""


class CrawlStopped(CrawlError):
    """The service is stopping: the crawl was not started, or did not end within its grace and was killed.

    What it had stored stays stored (each batch is one write); what it had not, the next crawl finds new.
    """


class ChildWatch:
    """Decides at each look at a running crawl child whether to ask it to stop or to end it.

    A stop of the service (``stop`` set, or ``request_stop`` after a Ctrl-C in the CLI) sends ``STOP_SIGNAL``:
    the crawl writes what it fetched, drops the requests not yet sent and ends once the pages under way are in
    (crawlers.crawl_process._StopRequest). A child still running ``grace`` seconds later is killed; so is one
    past the crawl's time limit.
    """

    def __init__(
        self, ids: list[str], timeout: float | None, stop: threading.Event | None, grace: float, check: bool = False
    ) -> None:
        self.ids = ids
        # ``yuqing sources check`` fetches without storing: its messages must not speak of written items.
        self.check_only = check
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.stop = stop
        self.grace = grace
        self._asked = False
        self.stop_by: float | None = None  # when a child asked to stop is killed
        self.killed: str | None = None  # "stopped" or "timeout"

    @property
    def interrupted(self) -> bool:
        """The stop came from Ctrl-C in ``yuqing crawl`` (``request_stop``), not from a stop of the service."""
        return self._asked

    @property
    def why(self) -> str:
        """How a stopped crawl's messages begin: the user interrupted it, or the service is stopping."""
        return "已中断" if self._asked else "服务正在停止"

    @property
    def stopping(self) -> bool:
        """The child was asked to stop (its results, if any, are of a partial crawl)."""
        return self.stop_by is not None

    def request_stop(self) -> None:
        """Stop this crawl like a stop of the service (Ctrl-C in ``yuqing crawl``)."""
        self._asked = True

    def look(self, pid: int) -> None:
        """Signal the child as a stop request or the time limit says; at most once each."""
        if self.killed:
            return
        now = time.monotonic()
        if self.stop_by is None and (self._asked or (self.stop is not None and self.stop.is_set())):
            self.stop_by = now + self.grace
            _signal(pid, STOP_SIGNAL)
            logger.info(
                "正在停止：已通知抓取进程（来源 {}）停止，{}，最多等待 {:g} 秒",
                ", ".join(self.ids) or "全部",
                "检查不保存条目" if self.check_only else "已抓到的条目写入存储后退出",
                self.grace,
            )
        if self.stop_by is not None and now >= self.stop_by:
            self.killed = "stopped"
            _signal(pid, signal.SIGKILL)
            logger.warning(
                "抓取进程（来源 {}）{:g} 秒内未结束，已强制终止：{}",
                ", ".join(self.ids) or "全部",
                self.grace,
                self._what_stays,
            )
        elif self.deadline is not None and now >= self.deadline:
            self.killed = "timeout"
            _signal(pid, signal.SIGKILL)

    def check(self) -> None:
        """After the child ended: CrawlStopped or CrawlError when it was killed."""
        if self.killed == "stopped":
            raise CrawlStopped(f"{self.why}：抓取进程 {self.grace:g} 秒内未结束，已强制终止；{self._what_stays}")
        if self.killed == "timeout":
            raise CrawlError(f"抓取超时（{self.timeout} 秒）")

    @property
    def _what_stays(self) -> str:
        """What a killed child leaves behind: the items a crawl wrote; nothing for a check, which writes none."""
        if self.check_only:
            return "检查只抓取并显示提取结果，不保存任何条目，可重新运行检查"
        return "已写入的条目保留，未写入的下次抓取时补齐"

    def stopped_in_time(self) -> None:
        """Log that a child asked to stop ended by itself, its last batch written (a check writes nothing)."""
        logger.info(
            "抓取进程（来源 {}）已按停止请求结束，{}",
            ", ".join(self.ids) or "全部",
            "检查未保存任何条目" if self.check_only else "已抓到的条目均已写入存储",
        )


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended meanwhile
        os.kill(pid, signum)
