"""Running crawls from a long-lived process (CLI, scheduler, API): each crawl in a child process."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from pydantic import SecretStr

from crawlers.child_watch import POLL_SECONDS, ChildWatch, CrawlError, CrawlStopped
from crawlers.health import record_crawl
from crawlers.process_env import HEALTH_KEY, PARENT_ENV
from crawlers.sources import load_all_sources
from service.config_files import ConfigError
from service.settings import Settings

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
LOG_FILE = ("logs", "crawl.log")


__all__ = ["CrawlError", "CrawlStopped", "check_source", "crawl_sources"]


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reveal(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def settings_payload(settings: Settings) -> str:
    """The settings as JSON for the child process, secrets included (sent over a pipe, never argv)."""
    return json.dumps(_reveal(settings.model_dump()), ensure_ascii=False)


def _nice(settings: Settings) -> list[str]:
    """POSIX nice(1) before Python starts, so Scrapy's imports run below the server's CPU priority too."""
    nice = shutil.which("nice") if settings.scheduler.crawl_niceness else None
    return [nice, "-n", str(settings.scheduler.crawl_niceness)] if nice else []


def _crawl_args(settings: Settings, ids: list[str], check: bool, now: datetime | None) -> list[str]:
    args = ["--config", str(settings.config_dir), "--settings-stdin"]
    if _use_hosts and _store_ready:
        args.append("--store-ready")
    if now is not None:
        args += ["--now", now.isoformat()]
    if check:
        args.append("--check")
    return [*args, "--", *ids]


def crawl_command(settings: Settings, ids: list[str], check: bool = False, now: datetime | None = None) -> list[str]:
    """The child process's command line: the crawl entry point, below the server's CPU priority."""
    return [*_nice(settings), sys.executable, "-m", "crawlers.crawl_process", *_crawl_args(settings, ids, check, now)]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    # The child ends when this process does (see crawlers.crawl_process.die_with_parent).
    env[PARENT_ENV] = str(os.getpid())
    return env


def _run(
    settings: Settings,
    ids: list[str],
    check: bool,
    timeout: float | None,
    now: datetime | None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    log_path = settings.data_path(*LOG_FILE)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if stop is not None and stop.is_set():
        raise CrawlStopped("服务正在停止，抓取未开始")
    watch = ChildWatch(ids, timeout, stop, settings.scheduler.crawl_stop_seconds, check=check)
    if _use_hosts:
        start = log_path.stat().st_size if log_path.exists() else 0
        with _lent_host(settings, log_path) as host:
            output, returncode = host.crawl(_crawl_args(settings, ids, check, now), settings_payload(settings), watch)
    else:
        with log_path.open("ab") as log:
            start = log.tell()
            output, returncode = _run_child(settings, crawl_command(settings, ids, check, now), log, watch)
    result = _last_json_line(output)
    if result is None and watch.stopping:
        # Asked to stop before Scrapy was up: the signal ended it before it fetched anything.
        raise CrawlStopped(f"{watch.why}：抓取进程在开始抓取前已结束")
    if result is None:
        raise CrawlError(f"抓取进程异常退出（代码 {returncode}）：{_tail(log_path, start)}")
    if not result.get("ok"):
        if "file" in result:
            raise ConfigError(
                result["file"], result.get("path", ""), result.get("reason", ""), result.get("explanation")
            )
        raise CrawlError(str(result.get("error", "未知错误")))
    if watch.stopping:
        watch.stopped_in_time()
        if check and watch.interrupted:
            raise KeyboardInterrupt  # a check shows nothing of a partial fetch
        return _stopped_results(result["sources"], ids)
    return _record_health(settings, result["sources"])


def _run_child(settings: Settings, command: list[str], log: IO[bytes], watch: ChildWatch) -> tuple[str, int]:
    """Run one crawl process to its end under ``watch``; its output and exit code.

    The child has a session of its own: a Ctrl-C at the terminal reaches only this process, which then asks
    the child to stop once (a second signal would make Scrapy drop its last batch unwritten); a second Ctrl-C
    here ends the child at once.
    """
    proc = subprocess.Popen(  # noqa: S603 - our own module, arguments are source ids
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=_child_env(), start_new_session=True
    )
    payload: bytes | None = settings_payload(settings).encode("utf-8")
    interrupted = False
    try:
        while True:
            try:
                out, _ = proc.communicate(payload, timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                payload = None  # sent (or being sent): communicate goes on with the rest
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True
                payload = None
                watch.request_stop()
            watch.look(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # After a Ctrl-C the crawl ended (or was ended) like one stopped with the service: the caller reports what
    # it wrote (counts marked ``stopped``) rather than only "interrupted".
    watch.check()
    return out.decode("utf-8", errors="replace"), proc.returncode


def _stopped_results(results: dict[str, Any], ids: list[str]) -> dict[str, Any]:
    """The counts of a crawl stopped with the service: its health is not judged (pages it never fetched are no
    fault of the source), and ``stopped`` says the rest comes with the next crawl."""
    for sid in ids:
        results.setdefault(sid, {"new": 0, "updated": 0, "skipped": 0, "errors": 0})
    for counts in results.values():
        if isinstance(counts, dict):
            counts.pop(HEALTH_KEY, None)
            counts["stopped"] = True
    return results


def _record_health(settings: Settings, results: dict[str, Any]) -> dict[str, Any]:
    """Record each crawled source's health from the summary its crawl process returned, here in the parent
    (which has the database open anyway): the crawl process then never loads the database layer."""
    for counts in results.values():
        pending = counts.pop(HEALTH_KEY, None) if isinstance(counts, dict) else None
        if not isinstance(pending, dict):
            continue
        record = record_crawl(settings, str(pending["source"]), pending["summary"])
        counts["consecutive_failures"] = record.consecutive_failures
        if "invalid" not in counts:
            counts["healthy"] = record.healthy
            counts["failure"] = record.last_failure if not record.healthy else None
    return results


# -- crawl hosts (yuqing worker) -------------------------------------------------------------------------
# A fresh Python process per crawl costs seconds of imports (Scrapy, the pipeline, jieba's dictionary):
# more than crawling a small source. Workers crawl many sources all day, so they keep warm host processes
# that imported all that once and fork a new child per crawl (crawl_process.serve_forks). Hosts are lent
# out one per running crawl: a worker keeps as many as it ran crawls at once, whichever thread asks (its
# matching lane, or a thread pool reusing threads, never starts one of its own).

_use_hosts = False
_store_ready = False
_idle_hosts: list[CrawlHost] = []
_hosts_lock = threading.Lock()


def use_crawl_hosts(enabled: bool = True, store_ready: bool = False) -> None:
    """Crawl through warm host processes in this process (``yuqing worker``); off: one process per crawl.

    ``store_ready``: this process initialised the item store (index, templates) itself, so its crawls skip it.
    """
    global _use_hosts, _store_ready
    _use_hosts = enabled
    _store_ready = enabled and store_ready


def start_crawl_hosts(settings: Settings, count: int) -> None:
    """Start ``count`` idle hosts now (``yuqing worker`` at its start, one per crawl it runs at once): their
    imports (~2 s of CPU each) run beside the worker's own start, not inside its first crawls."""
    log_path = settings.data_path(*LOG_FILE)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    hosts = [CrawlHost(log_path, _nice(settings)) for _ in range(count)]
    with _hosts_lock:
        _idle_hosts.extend(hosts)


def close_crawl_hosts() -> None:
    """Stop the idle host processes, if any (they would also end with this process)."""
    with _hosts_lock:
        hosts = list(_idle_hosts)
        _idle_hosts.clear()
    for host in hosts:
        host.close()


@contextlib.contextmanager
def _lent_host(settings: Settings, log_path: Path) -> Iterator[CrawlHost]:
    """An idle live host (a new one when none is idle), given back after the crawl if it still lives."""
    host = None
    with _hosts_lock:
        while _idle_hosts and host is None:
            candidate = _idle_hosts.pop()
            if candidate.alive():
                host = candidate
    if host is None:
        host = CrawlHost(log_path, _nice(settings))
    try:
        yield host
    finally:
        if host.alive():
            with _hosts_lock:
                _idle_hosts.append(host)


class CrawlHost:
    """One host process (``python -m crawlers.crawl_process --host``) and its request pipe."""

    def __init__(self, log_path: Path, nice: list[str]) -> None:
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own module
                [*nice, sys.executable, "-m", "crawlers.crawl_process", "--host"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=_child_env(),
                # Signals reach its crawls only through this process (ChildWatch): a Ctrl-C at the worker's
                # terminal would otherwise end the host, and with it (die_with_parent) every crawl unwritten.
                start_new_session=True,
            )
        self._buffer = b""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait(timeout=30)

    def _line(self, deadline: float) -> dict[str, Any] | None:
        """The next JSON line from the host; None at end of file. TimeoutError past ``deadline``."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            wait = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                raise TimeoutError
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            value = json.loads(line)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def crawl(self, args: list[str], settings_json: str, watch: ChildWatch) -> tuple[str, int]:
        """Run one crawl in a fresh child of the host; its output lines and exit code."""
        assert self.proc.stdin is not None
        request = json.dumps({"args": args, "settings": settings_json}, ensure_ascii=False) + "\n"
        try:
            self.proc.stdin.write(request.encode("utf-8"))
            self.proc.stdin.flush()
        except OSError as exc:
            self.close()
            raise CrawlError(f"抓取进程异常退出：{exc}") from exc
        lines: list[str] = []
        child = None
        while True:
            try:
                value = self._line(time.monotonic() + POLL_SECONDS)
            except TimeoutError:
                if child is not None:
                    watch.look(child)
                elif watch.deadline is not None and time.monotonic() >= watch.deadline:
                    self.close()
                    raise CrawlError(f"抓取超时（{watch.timeout} 秒）") from None
                continue
            if value is None:
                self.close()
                raise CrawlError("抓取进程异常退出（常驻抓取进程已退出）")
            if "started" in value:
                child = int(value["started"])
                watch.look(child)
            elif "done" in value:
                watch.check()
                return "\n".join(lines), int(value["done"])
            else:
                lines.append(json.dumps(value, ensure_ascii=False))


def _last_json_line(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "ok" in value:
            return value
    return None


def _tail(path: Path, start: int, limit: int = 2000) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(start)
            data = fh.read()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", errors="replace").strip()


def _validate_ids(settings: Settings, source_ids: Sequence[str]) -> list[str]:
    """The ids to crawl (all enabled ones when none are named); ConfigError for unknown ids."""
    sources = load_all_sources(settings)
    for sid in source_ids:
        bad = sources.invalid_source(sid)
        if bad is not None:
            raise bad.error
    known = {s.id for s in sources.sources}
    unknown = [i for i in source_ids if i not in known]
    if unknown:
        raise ConfigError("sources.yaml", "", f"未知的来源: {', '.join(unknown)}")
    return list(source_ids) or [s.id for s in sources.sources if s.enabled] + [b.label for b in sources.invalid]


def crawl_sources(
    settings: Settings,
    source_ids: Sequence[str] = (),
    timeout: float | None = None,
    now: datetime | None = None,
    stop: threading.Event | None = None,
) -> dict[str, dict[str, Any]]:
    """Crawl the sources (all enabled ones when none are named) in a child process; counts per source.

    Each value has ``new``, ``updated``, ``skipped`` (unchanged), ``errors`` and health details
    (``healthy``, ``failure``, ``error_samples``). ConfigError for a bad sources.yaml or unknown id,
    CrawlError when the crawl process itself fails. ``now`` fixes the crawl time (tests). When ``stop`` is set
    (the service is stopping) the crawl is asked to stop: its counts then say ``stopped``, or CrawlStopped
    when it did not end within ``scheduler.crawl_stop_seconds``.
    """
    if not _validate_ids(settings, source_ids):
        return {}  # nothing configured: no child process, no reactor
    return _run(settings, list(source_ids), False, timeout, now, stop)


def check_source(
    settings: Settings, source_id: str, timeout: float | None = 120, now: datetime | None = None
) -> dict[str, Any]:
    """Fetch one list page and one detail page of a source; the extracted items, nothing stored."""
    _validate_ids(settings, [source_id])
    return _run(settings, [source_id], True, timeout, now)[source_id]
