"""Crawl throughput: pages/s through the whole yuqing pipeline vs a bare Scrapy spider on the same pages.

Usage: ``python benchmarks/crawl.py [--lists 25] [--per-list 20]``. Serves GBK list and detail pages
on loopback, then times (1) ``crawlers.runner.crawl_sources`` (spider, cleaning, dates, SimHash,
near-duplicate lookup, SQLite upserts) and (2) a bare spider that only fetches the same pages. Both
run in a child process with the same politeness settings switched off, so the ratio is the cost of
our pipeline per page.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BARE_SPIDER = """
import sys, scrapy
from scrapy.crawler import CrawlerProcess

class Bare(scrapy.Spider):
    custom_settings = {}
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


def _site(lists: int, per_list: int) -> ThreadingHTTPServer:
    import random

    from benchmarks.matching import make_item, place_pool

    # Distinct pages: a page repeated everywhere makes every item a near-duplicate of the first and
    # skips the store's candidate lookup, which flattered the pipeline (0.76 then, 0.35 on distinct pages).
    places = place_pool(random.Random(1), 20000)

    def body_of(ident: str) -> str:
        return make_item(random.Random(ident), places)[1]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

        def do_GET(self) -> None:
            path = self.path.strip("/")
            if path.startswith("list_"):
                n = int(path[5:-5])
                rows = "".join(f'<li><a href="d_{n}_{k}.html">工单{n}-{k}</a></li>' for k in range(per_list))
                nav = f'<a class="next" href="list_{n + 1}.html">下一页</a>' if n < lists else ""
                page = f'<html><head><meta charset="gbk"></head><body><ul class="orders">{rows}</ul>{nav}</body></html>'
            elif path.startswith("d_"):
                ident = path[2:-5]
                page = (
                    f'<html><head><meta charset="gbk"></head><body><h1>化工厂异味投诉 {ident}</h1>'
                    f"<table><tr><td>受理时间：</td><td>2023年7月21日 10:00</td></tr></table>"
                    f'<div class="c"><p>{body_of(ident)}</p><p>编号 {ident}</p></div></body></html>'
                )
            else:
                self.send_response(404)
                self.end_headers()
                return
            data = page.encode("gbk")
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    """Run both crawls and print pages/s and the ratio as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--lists", type=int, default=25)
    parser.add_argument("--per-list", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from crawlers.runner import crawl_sources
    from service.settings import load_settings

    server = _site(args.lists, args.per_list)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    pages = args.lists * (args.per_list + 1)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config"
        config.mkdir()
        (config / "sources.yaml").write_text(
            f"""crawl: {{autothrottle: false, download_delay: 0, concurrency_per_domain: 16, retries: 0}}
sources:
  - id: bench
    name: 基准
    channel: hotline
    type: html
    obey_robots: false
    start_urls: ["{base}/list_1.html"]
    interval: 1h
    max_pages: {args.lists}
    list: {{items: "ul.orders > li", url: "a::attr(href)", next: "a.next::attr(href)"}}
    fields: {{title: h1, content: div.c, published_at: "label:受理时间"}}
""",
            encoding="utf-8",
        )
        script = Path(tmp) / "bare_spider.py"
        script.write_text(BARE_SPIDER, encoding="utf-8")
        fulls, bares, stored = [], [], 0

        def pipeline(round_no: int) -> None:
            nonlocal stored
            settings = load_settings(config, data_dir=str(Path(tmp) / f"data{round_no}"))  # a fresh store
            start = time.perf_counter()
            stored = crawl_sources(settings, ["bench"])["bench"]["new"]
            fulls.append(time.perf_counter() - start)

        def bare_run(round_no: int) -> None:
            start = time.perf_counter()
            subprocess.run([sys.executable, str(script), f"{base}/list_1.html"], check=True)
            bares.append(time.perf_counter() - start)

        # Interleaved rounds, alternating which side goes first; medians reported.
        for round_no in range(args.rounds):
            order = (pipeline, bare_run) if round_no % 2 == 0 else (bare_run, pipeline)
            for side in order:
                side(round_no)
        full, bare = statistics.median(fulls), statistics.median(bares)
        counts = {"new": stored}
    server.shutdown()
    result = {
        "pages": pages,
        "stored": counts["new"],
        "pipeline_seconds": round(full, 2),
        "bare_seconds": round(bare, 2),
        "pipeline_pages_per_s": round(pages / full, 1),
        "bare_pages_per_s": round(pages / bare, 1),
        "ratio": round((pages / full) / (pages / bare), 2),
        "rounds": args.rounds,
        "note": "medians of interleaved rounds on distinct pages; both include ~2-3 s of process start",
    }
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
