"""Crawl throughput: pages/s and CPU per page through the whole yuqing pipeline vs a bare Scrapy spider.

Usage: ``python benchmarks/crawl.py [--lists 40] [--per-list 20] [--rounds 3] [--profile FILE]``.
Serves GBK list and detail pages on loopback (every detail page a distinct generated complaint), then
times, in interleaved rounds (the side that goes first alternates), (1) ``crawlers.runner.crawl_sources``:
the product's crawl process with spider, clean, normalize, dedupe (MinHash band keys), the batched
near-duplicate candidate lookup and batched SQLite upserts into a fresh store (the data dir holding what
the warm-up crawl kept there, as an installed product's does), and (2) a bare Scrapy
spider that fetches the same pages and does nothing with them. Both are child processes at the same CPU
priority (the product's crawl niceness is set to 0 here, as the bare spider runs). Reported per side:
medians of wall seconds, pages/s, CPU seconds per page (user + system of the child process), and the
start-up cost (one list page with no items: process start, imports, reactor) measured the same way.
The ratio is pipeline pages/s over bare pages/s (goal: >= 0.5).

``--profile FILE`` runs one extra pipeline crawl under cProfile inside the crawl process and writes the
stats to FILE (``python -m pstats FILE``); it is not part of the timed rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.matching import make_item, place_pool  # noqa: E402
from crawlers.runner import _child_env, crawl_sources, settings_payload  # noqa: E402
from service.db import Database  # noqa: E402
from service.rules.config import KEEP_DIR  # noqa: E402
from service.settings import Settings, load_settings  # noqa: E402

BARE_SPIDER = """
import sys, scrapy
from scrapy.crawler import CrawlerProcess

class Bare(scrapy.Spider):
    name = "bare"
    start_urls = [sys.argv[1]]
    def parse(self, response):
        for href in response.css("ul.orders a::attr(href)").getall():
            yield response.follow(href, self.detail)
        nxt = response.css("a.next::attr(href)").get()
        if nxt:
            yield response.follow(nxt, self.parse)
    def detail(self, response):
        return None

process = CrawlerProcess({"LOG_LEVEL": "ERROR", "ROBOTSTXT_OBEY": False, "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
                          "AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0, "TELNETCONSOLE_ENABLED": False,
                          "REMOTE_CONTROL_ENABLED": False})
process.crawl(Bare)
process.start()
"""

# Run instead of ``python -m crawlers.crawl_process`` for --profile: the same entry point under cProfile.
PROFILED = """
import cProfile, runpy, sys, time
out = sys.argv.pop(1)
sys.argv[0] = "crawlers.crawl_process"
profile = cProfile.Profile(time.process_time)  # CPU time: the machine's load does not distort the shares
try:
    profile.runcall(runpy.run_module, "crawlers.crawl_process", run_name="__main__")
except SystemExit:
    pass
profile.dump_stats(out)
"""


def _site(lists: int, per_list: int) -> ThreadingHTTPServer:
    """Site ``/<lists>/list_<n>.html`` (``per_list`` detail links each, ``next`` up to ``lists``); ``/0/``: none."""
    # Distinct pages: a page repeated everywhere makes every item a near-duplicate of the first and
    # skips the store's candidate lookup, which flattered the pipeline (0.76 then, 0.35 on distinct pages).
    places = place_pool(random.Random(1), 20000)

    def detail(ident: str) -> bytes:
        title, body = make_item(random.Random(ident), places)
        return (
            f'<html><head><meta charset="gbk"></head><body><h1>{title} {ident}</h1>'
            f"<table><tr><td>受理时间：</td><td>2023年7月21日 10:00</td></tr></table>"
            f'<div class="c"><p>{body}</p><p>编号 {ident}</p></div></body></html>'
        ).encode("gbk")

    # Generated before any round: the server's own work must not weigh on either side.
    bodies = {f"{n}_{k}": detail(f"{n}_{k}") for n in range(1, lists + 1) for k in range(per_list)}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

        def do_GET(self) -> None:
            lists_text, _, name = self.path.strip("/").partition("/")
            if name.startswith("list_") and lists_text.isdigit():
                lists, n = int(lists_text), int(name[5:-5])
                count = per_list if lists > 0 else 0
                rows = "".join(f'<li><a href="d_{n}_{k}.html">工单{n}-{k}</a></li>' for k in range(count))
                nav = f'<a class="next" href="list_{n + 1}.html">下一页</a>' if n < lists else ""
                data = (
                    f'<html><head><meta charset="gbk"></head><body><ul class="orders">{rows}</ul>{nav}</body></html>'
                ).encode("gbk")
            elif name.startswith("d_") and name[2:-5] in bodies:
                data = bodies[name[2:-5]]
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _sources_yaml(start_url: str, lists: int) -> str:
    return f"""crawl: {{autothrottle: false, download_delay: 0, concurrency_per_domain: 16, retries: 0}}
sources:
  - id: bench
    name: 基准
    channel: hotline
    type: html
    obey_robots: false
    start_urls: ["{start_url}"]
    interval: 1h
    max_pages: {max(lists, 1)}
    list: {{items: "ul.orders > li", url: "a::attr(href)", next: "a.next::attr(href)"}}
    fields: {{title: h1, content: div.c, published_at: "label:受理时间"}}
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    """Wall and child-process CPU seconds of ``run`` (which waits for its child process)."""
    cpu, start = _children_cpu(), time.perf_counter()
    run()
    return time.perf_counter() - start, _children_cpu() - cpu


class Bench:
    """The two sides against one site, each run in a fresh child process."""

    def __init__(self, base: str, tmp: Path) -> None:
        self.base = base
        self.tmp = tmp
        self.script = tmp / "bare_spider.py"
        self.script.write_text(BARE_SPIDER, encoding="utf-8")
        self.runs = 0
        self.stored = 0

    def _settings(self, lists: int) -> Settings:
        self.runs += 1
        config = self.tmp / f"config{self.runs}"
        config.mkdir()
        (config / "sources.yaml").write_text(_sources_yaml(f"{self.base}/{lists}/list_1.html", lists), "utf-8")
        data = self.tmp / f"data{self.runs}"
        kept = self.tmp / "data1" / KEEP_DIR
        if kept.is_dir():
            # A fresh store in an installed product: what earlier processes kept in the data dir (the folding
            # tables) is there, as it is for every crawl but an installation's first.
            shutil.copytree(kept, data / KEEP_DIR)
        settings = load_settings(config, data_dir=str(data))  # a fresh store
        # The crawl records its source's health in the ledger database, which `yuqing init` has made by then.
        data.mkdir(parents=True, exist_ok=True)
        ledger = Database(settings.database_url)
        ledger.migrate()
        ledger.dispose()
        # The bare spider runs at the benchmark's own priority: so does the product's crawl here.
        settings.scheduler.crawl_niceness = 0
        return settings

    def pipeline(self, lists: int) -> tuple[float, float]:
        settings = self._settings(lists)

        def run() -> None:
            new = crawl_sources(settings, ["bench"])["bench"]["new"]
            if lists:
                self.stored = new

        return _timed(run)

    def bare(self, lists: int) -> tuple[float, float]:
        url = f"{self.base}/{lists}/list_1.html"
        return _timed(lambda: subprocess.run([sys.executable, str(self.script), url], check=True))

    def profile(self, lists: int, out: Path) -> None:
        settings = self._settings(lists)
        script = self.tmp / "profiled.py"
        script.write_text(PROFILED, encoding="utf-8")
        args = ["--config", str(settings.config_dir), "--settings-stdin", "--", "bench"]
        subprocess.run(
            [sys.executable, str(script), str(out), *args],
            input=settings_payload(settings).encode(),
            env=_child_env(),
            check=True,
            stdout=subprocess.DEVNULL,
        )


def _side(walls: list[float], cpus: list[float], pages: int, startup: tuple[float, float]) -> dict[str, float]:
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return {
        "seconds": round(wall, 2),
        "pages_per_s": round(pages / wall, 1),
        "cpu_seconds": round(cpu, 2),
        "cpu_ms_per_page": round(1000 * cpu / pages, 2),
        "startup_seconds": round(startup[0], 2),
        "startup_cpu_seconds": round(startup[1], 2),
        # What each page costs once the process is up.
        "cpu_ms_per_page_after_startup": round(1000 * (cpu - startup[1]) / pages, 2),
    }


def main() -> None:
    """Run both crawls in interleaved rounds and print the medians and the ratio as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--lists", type=int, default=40)
    parser.add_argument("--per-list", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats of one pipeline crawl")
    args = parser.parse_args()
    server = _site(args.lists, args.per_list)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    pages = args.lists * (args.per_list + 1)
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(base, Path(tmp))
        if args.profile is not None:
            bench.profile(args.lists, args.profile.resolve())
            print(f"profile written to {args.profile}", file=sys.stderr)
            return
        bench.pipeline(1)  # warms the page cache for both sides
        times: dict[str, tuple[list[float], list[float]]] = {"pipeline": ([], []), "bare": ([], [])}
        starts: dict[str, tuple[list[float], list[float]]] = {"pipeline": ([], []), "bare": ([], [])}
        sides = {"pipeline": bench.pipeline, "bare": bench.bare}
        for round_no in range(args.rounds):
            order = ("pipeline", "bare") if round_no % 2 == 0 else ("bare", "pipeline")
            for name in order:
                wall, cpu = sides[name](args.lists)
                times[name][0].append(wall)
                times[name][1].append(cpu)
                print(f"round {round_no + 1} {name}: {wall:.1f} s, {cpu:.1f} s CPU", file=sys.stderr)
            for name in order:
                wall, cpu = sides[name](0)  # one list page, no items: start-up
                starts[name][0].append(wall)
                starts[name][1].append(cpu)
        stored = bench.stored
    server.shutdown()
    startup = {name: (statistics.median(w), statistics.median(c)) for name, (w, c) in starts.items()}
    full = _side(*times["pipeline"], pages, startup["pipeline"])
    bare = _side(*times["bare"], pages, startup["bare"])
    result = {
        "pages": pages,
        "stored": stored,
        "rounds": args.rounds,
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "pipeline": full,
        "bare": bare,
        "ratio": round(full["pages_per_s"] / bare["pages_per_s"], 2),
        "cpu_ratio": round(bare["cpu_ms_per_page"] / full["cpu_ms_per_page"], 2),
        "note": "medians of interleaved rounds on distinct pages; both sides at the same CPU priority",
    }
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
