"""Running crawls from a long-lived process (CLI, scheduler, API): each crawl in a child process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from crawlers.sources import load_all_sources
from service.config_files import ConfigError
from service.settings import Settings

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
LOG_FILE = ("logs", "crawl.log")


PARENT_ENV = "YUQING_CRAWL_PARENT"


class CrawlError(RuntimeError):
    """The crawl process failed as a whole (crashed, timed out, printed no result)."""


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


def crawl_command(settings: Settings, ids: list[str], check: bool = False, now: datetime | None = None) -> list[str]:
    """The child process's command line: the crawl entry point, below the server's CPU priority."""
    cmd = [sys.executable, "-m", "crawlers.crawl_process", "--config", str(settings.config_dir), "--settings-stdin"]
    nice = shutil.which("nice") if settings.scheduler.crawl_niceness else None
    if nice:  # POSIX nice(1): set before Python starts, so Scrapy's imports run at the lower priority too
        cmd = [nice, "-n", str(settings.scheduler.crawl_niceness), *cmd]
    if now is not None:
        cmd += ["--now", now.isoformat()]
    if check:
        cmd.append("--check")
    return [*cmd, "--", *ids]


def _run(
    settings: Settings, ids: list[str], check: bool, timeout: float | None, now: datetime | None
) -> dict[str, Any]:
    cmd = crawl_command(settings, ids, check, now)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    # The child ends when this process does (see crawlers.crawl_process.die_with_parent).
    env[PARENT_ENV] = str(os.getpid())
    log_path = settings.data_path(*LOG_FILE)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        start = log.tell()
        try:
            proc = subprocess.run(  # noqa: S603 - our own module, arguments are source ids
                cmd,
                input=settings_payload(settings).encode("utf-8"),
                stdout=subprocess.PIPE,
                stderr=log,
                timeout=timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise CrawlError(f"抓取超时（{timeout} 秒）") from exc
    result = _last_json_line(proc.stdout.decode("utf-8", errors="replace"))
    if result is None:
        raise CrawlError(f"抓取进程异常退出（代码 {proc.returncode}）：{_tail(log_path, start)}")
    if not result.get("ok"):
        if "file" in result:
            raise ConfigError(result["file"], result.get("path", ""), result.get("reason", ""))
        raise CrawlError(str(result.get("error", "未知错误")))
    return result["sources"]


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
) -> dict[str, dict[str, Any]]:
    """Crawl the sources (all enabled ones when none are named) in a child process; counts per source.

    Each value has ``new``, ``updated``, ``skipped`` (unchanged), ``errors`` and health details
    (``healthy``, ``failure``, ``error_samples``). ConfigError for a bad sources.yaml or unknown id,
    CrawlError when the crawl process itself fails. ``now`` fixes the crawl time (tests).
    """
    if not _validate_ids(settings, source_ids):
        return {}  # nothing configured: no child process, no reactor
    return _run(settings, list(source_ids), False, timeout, now)


def check_source(
    settings: Settings, source_id: str, timeout: float | None = 120, now: datetime | None = None
) -> dict[str, Any]:
    """Fetch one list page and one detail page of a source; the extracted items, nothing stored."""
    _validate_ids(settings, [source_id])
    return _run(settings, [source_id], True, timeout, now)[source_id]
