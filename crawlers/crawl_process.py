"""Crawl process entry point: ``python -m crawlers.crawl_process --config DIR [--check] SOURCE_ID...``.

Runs the spiders of the named sources (all enabled ones when none are named) in one Scrapy
process and prints one JSON line with the per-source counts on stdout; Scrapy's log goes to stderr.
A Twisted reactor cannot be restarted, so long-lived processes call this through crawlers.runner.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import importlib
import json
import os
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

# Before anything of ours: Scrapy's HTTP download handler makes deprecated class aliases as it is imported, each
# calling inspect.stack(), which reads the source of every frame on the stack and scans every loaded module for
# each one. Imported by the engine mid-crawl, deep in Twisted's stack with ~1,300 modules loaded, that cost
# ~0.1 s CPU of every crawl; here, the stack is short and few modules are loaded yet.
import scrapy.core.downloader.handlers.http11  # noqa: F401

from crawlers.process_env import HEALTH_KEY, PARENT_ENV, STOP_REQUESTED, STOP_SIGNAL
from crawlers.sources import SourcesFile, load_all_sources
from crawlers.spiders.base import SourceSpider
from service import clock
from service.config_files import ConfigError
from service.settings import Settings, load_settings

EXIT_BAD_INPUT = 2


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m crawlers.crawl_process", description="抓取 sources.yaml 中的来源")
    parser.add_argument("--config", default=None, help="配置目录（默认 YUQING_CONFIG_DIR 或 ./config）")
    parser.add_argument("--settings-stdin", action="store_true", help="从标准输入读取 JSON 格式的设置")
    parser.add_argument("--check", action="store_true", help="只取一个列表页和一个详情页，不入库")
    parser.add_argument("--now", default=None, help="以此时间（ISO 8601）作为抓取时间，用于测试")
    parser.add_argument("--host", action="store_true", help="常驻模式：预先加载，按标准输入的请求逐个派生抓取进程")
    parser.add_argument("--store-ready", action="store_true", help="条目存储已由工作进程初始化，跳过检查")
    parser.add_argument("sources", nargs="*", help="来源 id；不写则抓取全部启用的来源")
    return parser.parse_args(argv)


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def _select(sources: SourcesFile, ids: list[str]) -> list[str]:
    known = {s.id for s in sources.sources}
    for sid in ids:
        bad = sources.invalid_source(sid)
        if bad is not None:
            raise bad.error
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ConfigError("sources.yaml", "", f"未知的来源: {', '.join(unknown)}")
    return ids or [s.id for s in sources.sources if s.enabled]


def _invalid_results(sources: SourcesFile, named: list[str]) -> dict[str, Any]:
    """Invalid sources of a crawl of all sources: each a failed source with its file, key path and reason."""
    if named:
        return {}
    results: dict[str, Any] = {}
    for bad in sources.invalid:
        reason = f"配置无效，已跳过：{bad.error}"
        counts: dict[str, Any] = {"new": 0, "updated": 0, "skipped": 0, "errors": 1, "pages": 0, "entries": 0}
        counts["error_samples"] = [{"url": bad.error.file, "reason": reason}]
        counts["invalid"] = {"file": bad.error.file, "path": bad.error.path, "reason": bad.error.reason}
        if bad.source_id:
            counts[HEALTH_KEY] = {"source": bad.source_id, "summary": {"config_error": reason}}
        counts["healthy"] = False
        counts["failure"] = reason
        results[bad.label] = counts
    return results


def run(settings: Settings, source_ids: list[str], check: bool = False, store_ready: bool = False) -> dict[str, Any]:
    """Crawl the sources in this process (which must not have run a reactor before).

    Each source's result carries its crawl summary under ``HEALTH_KEY``: the parent (crawlers.runner)
    records the source's health, so that this process never loads the database layer (SQLAlchemy and
    Alembic, ~0.5 s CPU of every crawl's start-up).
    """
    from scrapy.crawler import CrawlerProcess

    from crawlers.middlewares import use_dns_servers
    from crawlers.pipelines import Shared
    from crawlers.settings import scrapy_settings
    from crawlers.spiders import spider_for
    from service.rules.config import KEEP_DIR, keep_folding_tables

    keep_folding_tables(settings.data_path(KEEP_DIR))  # the tables every stored item is folded with: read, not built
    sources = load_all_sources(settings)
    ids = _select(sources, source_ids)
    invalid = {} if check else _invalid_results(sources, source_ids)
    if not ids:
        return invalid
    store = None
    if not check:
        from service.store import make_store

        store = make_store(settings)
        if not store_ready:
            # On Elasticsearch nine requests to the cluster (templates, mappings, health: master-node tasks); a
            # worker did them once at its start, its crawls need not repeat them.
            store.init()
        # Place names of departments.yaml regions and places.txt: repost detection keeps places apart.
        from service.items.places import configure

        configure(settings.config_dir, settings.data_path(KEEP_DIR))
    # Before any spider class is built: render: browser sources pin their hosts when they are built.
    use_dns_servers(sources.crawl.dns_servers)
    scrapy_conf = scrapy_settings(sources.crawl, check_mode=check)
    scrapy_conf["YUQING_STORE"] = Shared(store)
    scrapy_conf["YUQING_TIMEZONE"] = settings.timezone
    scrapy_conf["LOG_INSTALL_ROOT_HANDLER"] = False
    process = CrawlerProcess(scrapy_conf)
    # Scrapy's configure_logging (run by CrawlerProcess) resets its loggers: route them through loguru again
    # (the sinks stay: adding one again costs loguru a scan of the interpreter's library paths).
    from loguru import logger

    from service.logs import route_stdlib

    route_stdlib(logger.level(settings.logging.level.upper()).no)
    crawlers = {}
    for sid in ids:
        crawler = process.create_crawler(spider_for(sources.get(sid), sources.crawl, check_mode=check))
        crawlers[sid] = crawler
        process.crawl(crawler)
    STOP.attach(process, list(crawlers.values()))
    try:
        if STOP.requested:
            return invalid  # asked to stop before the first page: nothing fetched, nothing to write
        # What the crawl has set up by now (modules, Scrapy, the sources, the store) lives as long as it: out of
        # the collector's full passes, which walked it all twice or three times per 2,000 items (a tenth of the
        # store step's CPU, holding the lock every thread needs; benchmarks/es_ingest.py).
        gc.freeze()
        process.start()
    finally:
        if store is not None:
            store.close()
    results: dict[str, Any] = {}
    for sid, crawler in crawlers.items():
        spider = crawler.spider
        summary: dict[str, Any] = (
            spider.summary() if isinstance(spider, SourceSpider) else {"errors": 1, "error_samples": []}
        )
        if check:
            items = getattr(spider, "checked_items", [])
            results[sid] = {**summary, "items": [i.model_dump(mode="json") for i in items]}
            continue
        stats = crawler.stats.get_stats() if crawler.stats else {}
        counts: dict[str, Any] = {
            "new": int(stats.get("yuqing/new", 0)),
            "updated": int(stats.get("yuqing/updated", 0)),
            "skipped": int(stats.get("yuqing/unchanged", 0)),
            "errors": int(summary.get("errors", 0)),
            "pages": summary.get("pages", 0),
            "entries": summary.get("entries", 0),
            "error_samples": summary.get("error_samples", []),
        }
        if stats.get("yuqing/spooled"):
            counts["spooled"] = int(stats["yuqing/spooled"])
        counts[HEALTH_KEY] = {"source": sid, "summary": summary}
        results[sid] = counts
    return {**results, **invalid}


class _StopRequest:
    """The parent's stop request (``STOP_SIGNAL``: the service is stopping), turned into a quick, clean stop.

    Scrapy's own graceful stop lets every request already queued in the downloader wait out its politeness
    delay (a minute and more with AutoThrottle), so here the crawl instead writes what it fetched at once,
    drops the requests still waiting for their turn and then stops gracefully: the pages under way finish and
    the last batch is written. Pages never fetched are new to the next crawl; the parent kills a crawl that
    still runs after its grace (crawlers.child_watch), which then loses only what arrived after the write.
    """

    def __init__(self) -> None:
        self.requested = False
        self.process: Any = None
        self.crawlers: list[Any] = []

    def attach(self, process: Any, crawlers: list[Any]) -> None:
        self.process, self.crawlers = process, crawlers

    def __call__(self, signum: int, frame: Any) -> None:
        if self.requested:
            return
        self.requested = True
        if self.process is not None:
            from twisted.internet import reactor

            # Runs in the reactor's thread: a signal handler must not touch the crawl's state itself.
            reactor.callFromThread(self.stop)

    def stop(self) -> None:
        from loguru import logger

        dropped = 0
        for crawler in self.crawlers:
            crawler.signals.send_catch_log(signal=STOP_REQUESTED)
            dropped += _drop_queued_requests(crawler)
        logger.info("抓取进程收到停止请求：放弃 {} 个尚在排队的请求，正在进行的请求结束后退出", dropped)
        self.process.stop()


STOP = _StopRequest()


def _drop_queued_requests(crawler: Any) -> int:
    """Fail the requests waiting in the downloader's slots for their politeness delay (Scrapy 2.x internals,
    pinned in pyproject.toml); none of them has been sent."""
    from crawlers.spiders.failures import NotSent

    slots = getattr(getattr(crawler.engine, "downloader", None), "slots", {})
    dropped = 0
    for slot in list(slots.values()):
        while slot.queue:
            _request, waiting = slot.queue.popleft()
            waiting.errback(NotSent("服务正在停止，未请求"))
            dropped += 1
    return dropped


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """End this crawl when the process that started it dies (Linux).

    A worker killed mid-crawl (SIGKILL, out of memory) cannot stop its child; left running, the orphan
    would crawl the source while the queue's retry crawls it again: two crawls of one source at once.
    """
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(parent):
        os._exit(1)  # the parent died before the signal was armed


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; exit 0 after a crawl (failures are in the counts), 2 on bad input."""
    die_with_parent()
    args = _parse_args(argv)
    if args.host:
        return serve_forks()
    return _crawl(args, sys.stdin.read() if args.settings_stdin else None)


def settings_from_payload(settings_json: str) -> Settings:
    """The parent's settings (crawlers.runner.settings_payload), its config dir included.

    Validation alone would let YUQING_CONFIG_DIR in the inherited environment replace the config dir the
    parent chose (``--config``, or the demo's copy that points at ``--demo-port``): crawls then read
    another sources.yaml.
    """
    payload = json.loads(settings_json)
    settings = Settings.model_validate(payload)
    if payload.get("config_dir"):
        settings.config_dir = Path(payload["config_dir"])
    return settings


def _crawl(args: argparse.Namespace, settings_json: str | None) -> int:
    signal.signal(STOP_SIGNAL, STOP)
    try:
        settings = settings_from_payload(settings_json) if settings_json is not None else load_settings(args.config)
        # The parent appends this process's stderr to logs/crawl.log: route Scrapy through loguru so
        # crawled personal data is masked there as everywhere else.
        from service.logs import setup_logging

        setup_logging(settings.logging.level)
        if args.now:
            clock.set_clock(clock.FrozenClock(datetime.fromisoformat(args.now)))
        results = run(settings, args.sources, check=args.check, store_ready=args.store_ready)
    except ConfigError as exc:
        _emit(
            {
                "ok": False,
                "error": str(exc),
                "file": exc.file,
                "path": exc.path,
                "reason": exc.reason,
                "explanation": exc.explanation,
            }
        )
        return EXIT_BAD_INPUT
    except ValueError as exc:
        _emit({"ok": False, "error": str(exc)})
        return EXIT_BAD_INPUT
    _emit({"ok": True, "sources": results})
    return 0


PRELOADED = (
    "scrapy.crawler",
    "crawlers.pipelines",
    "crawlers.settings",
    "crawlers.spiders",
    "service.items.duplicates",
    "service.items.places",
    "service.logs",
    "service.store.elasticsearch",
    "service.store.sqlite",
    # An Elasticsearch store spools into the database when the cluster is away: SQLAlchemy, Alembic and the
    # PostgreSQL driver were three quarters of every forked crawl's CPU (1.1 s of 1.4 s) when left to the child.
    "service.db",
    "service.store.spool",
    "psycopg",
    "sqlalchemy.dialects.postgresql.psycopg",
)


def _preload() -> None:
    """Import what every crawl needs once, before forking: Scrapy's components named in its default
    settings, the pipeline, the stores. Never the reactor: each crawl installs its own. jieba's dictionary
    is not loaded here: a crawl's gazetteer has a tokenizer of its own, loaded from the data dir's copy
    (service.items.places) when a crawl first compares places."""
    import scrapy.settings.default_settings as defaults
    from scrapy.utils.misc import load_object

    for module in PRELOADED:
        importlib.import_module(module)
    paths: set[str] = set()
    for value in vars(defaults).values():
        names = value.keys() if isinstance(value, dict) else [value]
        paths.update(n for n in names if isinstance(n, str) and n.startswith("scrapy.") and "reactor" not in n)
    for handler in defaults.DOWNLOAD_HANDLERS_BASE.values():
        if isinstance(handler, str):
            paths.add(handler)
    for path in sorted(paths):
        with contextlib.suppress(Exception):  # a name that is not a class path (a format string, say)
            load_object(path)
    from sqlalchemy.engine import make_url

    from service.items.duplicates import warm_up
    from service.store.base import search_key

    search_key("预热 Warm-up")  # builds the folding tables every stored item needs
    warm_up()  # and the tables of every item's repost signature
    # SQLAlchemy compiles its URL pattern at the first URL parsed (the spool's database, in every crawl).
    make_url("postgresql+psycopg://warm@localhost/warm")
    if "twisted.internet.reactor" in sys.modules:
        raise RuntimeError("a reactor was installed before forking crawls")


def _warm(settings_json: str) -> None:
    """Parse the sources here, in the host, before forking: each crawl then starts with them parsed (kept
    until the files change), instead of parsing a city's hundreds of sources per crawl."""
    with contextlib.suppress(Exception):  # a broken file is the crawl's to report, not the host's
        load_all_sources(settings_from_payload(settings_json))


def serve_forks() -> int:
    """Host mode (``--host``): one process per worker thread that imports Scrapy and the pipeline once, then
    forks a fresh child per crawl request (a Twisted reactor runs once per process).

    Requests are JSON lines on stdin: ``{"args": [...command-line arguments...], "settings": "<json>"}``.
    For each, this writes ``{"started": PID}``, then the child writes its result line, then this writes
    ``{"done": EXIT_CODE}`` (a negative code: killed by that signal, e.g. by the caller's timeout).
    Starting a crawl costs a fork instead of seconds of imports: what lets a worker crawl hundreds of sources.
    """
    _preload()
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        _warm(request["settings"])
        out.flush()
        # The preloaded modules and parsed sources, frozen before the fork: no crawl's collector walks them (nor
        # writes to their pages, which the crawls share with this host until then).
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # the crawl
            code = 70
            try:
                os.environ[PARENT_ENV] = str(os.getppid())
                die_with_parent()
                code = _crawl(_parse_args(request["args"]), request["settings"])
            except BaseException as exc:
                _emit({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        # The host's own collector walks them again: what it let go of meanwhile (earlier parsed sources) is freed.
        gc.unfreeze()
        _emit({"started": pid})
        _, status = os.waitpid(pid, 0)
        _emit({"done": os.waitstatus_to_exitcode(status)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
