"""Workers: items/s and alert latency with 1, 2 and 4 `yuqing worker` processes, and items per CPU second.

Usage: ``python benchmarks/workers.py [--sources 60] [--rounds 3]``. Starts a throwaway PostgreSQL and a
single-node Elasticsearch (the test servers), serves ``--sources`` local sources of two orders each (one
matching a rule), and per round and worker count: a fresh database and index, the workers started and
registered, then every source's crawl deferred at once (what the scheduler does when they fall due) and
timed until every item is stored and matched. Rounds interleave the worker counts and rotate their order
(1, 2, 4 / 2, 4, 1 / 4, 1, 2 ...) so that no count always runs first or last on a machine whose load drifts;
the figures are medians. Alert latency is per item, from its ``stored_at`` in the store to its alert row.
The baseline is one worker: the ratio says what adding workers buys on this machine. CPU seconds are
those of the worker processes and their crawl processes (not the servers); the load average at each
round's start is printed, because on a shared machine it moves the wall-clock figures far more than the
CPU ones. Each worker's start-up (until its CPU settles: crawl hosts importing Scrapy, jieba's dictionary)
is not in the burst's figures; its CPU is printed in a column of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from service.db import Database  # noqa: E402
from service.feed.models import Alert  # noqa: E402
from service.scheduling import queue  # noqa: E402
from service.settings import load_settings  # noqa: E402
from service.store import make_store  # noqa: E402
from tests.crawlers.site import Page, Site  # noqa: E402
from tests.servers import elasticsearch as es_servers  # noqa: E402
from tests.servers.elasticsearch import elasticsearch_server  # noqa: E402
from tests.servers.postgres import postgres_server  # noqa: E402

DEPARTMENTS = """departments:
  - id: env
    name: 市生态环境局
    rules:
      - {id: env-smell, expr: '异味 AND 化工厂', severity: major}
"""


def build_site(site: Site, sources: int) -> None:
    for s in range(sources):
        titles = [f"化工厂夜间异味（{s}）", f"路灯不亮（{s}）"]
        links = "".join(f'<li><a href="/s{s}/d{n}.html">{t}</a></li>' for n, t in enumerate(titles))
        site.html(f"/s{s}/list.html", f"<html><body><ul class='orders'>{links}</ul></body></html>")
        for n, title in enumerate(titles):
            body = f"<html><body><span class='no'>S{s}-{n}</span><h1>{title}</h1><div class='content'>{title}"
            filler = "".join(chr(0x4E00 + (s * 7919 + n * 104729 + i * 31) % 20000) for i in range(300))
            site.set(f"/s{s}/d{n}.html", Page(200, (body + filler + "</div></body></html>").encode(), "text/html"))


def sources_yaml(base: str, sources: int) -> str:
    head = "crawl:\n  autothrottle: false\n  download_delay: 0\n  timeout: 30\n  retries: 1\nsources:\n"
    return head + "".join(
        f"""  - id: b-{s}
    name: 来源{s}
    channel: hotline
    type: html
    start_urls: ["{base}/s{s}/list.html"]
    interval: 1d
    list: {{items: "ul.orders > li", url: "a::attr(href)"}}
    fields: {{external_id: "span.no", title: "h1::text", content: "div.content"}}
"""
        for s in range(sources)
    )


def cpu_seconds(pid: int) -> float:
    """CPU of a process and of its children (waited or still running), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15]) / tick
        # Children of every thread: a worker starts its crawl host from a worker thread, not the main one.
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pending.extend(int(c) for c in task.read_text().split())
    return total


def settled_cpu(procs: list[subprocess.Popen], limit: float = 300.0) -> float:
    """The workers' CPU once their start-up is over (crawl hosts importing Scrapy, jieba's dictionary): less
    than 0.05 s more in half a second, or ``limit`` seconds. Start-up is reported apart from the burst."""
    deadline = time.monotonic() + limit
    before = sum(cpu_seconds(p.pid) for p in procs)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = sum(cpu_seconds(p.pid) for p in procs)
        if now - before < 0.05:
            return now
        before = now
    return before


def one_round(
    server_url: str, es, site: Site, sources: int, workers: int, tmp: Path, timeout: float
) -> dict[str, float]:
    name = f"b_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    run = tmp / name
    config = run / "config"
    config.mkdir(parents=True)
    (config / "departments.yaml").write_text(DEPARTMENTS, encoding="utf-8")
    (config / "sources.yaml").write_text(sources_yaml(site.base, sources), encoding="utf-8")
    (config / "settings.yaml").write_text(
        f"database:\n  url: {url}\nqueue:\n  backend: procrastinate\n  poll_seconds: 0.5\n"
        # The crawls are the measured workload: at the benchmark's own priority, not 10 below it (at nice 19 on
        # a shared machine at load 23 a crawl host got 1 s of CPU in 5 minutes).
        "scheduler:\n  crawl_niceness: 0\n"
        f"store:\n  backend: elasticsearch\n  elasticsearch:\n    hosts: ['{es.url}']\n"
        f"    username: {es.username}\n    password: {es.password}\n    index_prefix: {name.replace('_', '-')}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "YUQING_DATA_DIR": str(run / "data")}
    os.environ["YUQING_DATA_DIR"] = env["YUQING_DATA_DIR"]
    settings = load_settings(config)
    db = Database(url)
    db.migrate()
    queue.ensure_schema(settings)
    store = make_store(settings)
    store.init()
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "service.cli", "--config", str(config), "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    try:
        while True:  # workers registered (two lanes each: crawls, matching): their start-up is not measured
            with psycopg.connect(libpq) as conn:
                row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
            if row and row[0] >= 2 * workers:
                break
            time.sleep(0.2)
        cpu0 = settled_cpu(procs)
        started = time.monotonic()
        deadline = started + timeout
        for s in range(sources):
            queue.defer(settings, f"crawl:b-{s}", "crawlers.scheduled:crawl_one", {"source_id": f"b-{s}"})
        done = False
        while time.monotonic() < deadline:  # bounded: a round that cannot finish is reported, not waited for
            # What the scheduler's matching trigger does: items stored in the last moment before a matching
            # run (not yet visible to a search of the store) are matched by the next one.
            queue.defer_match(settings)
            with db.session() as session:
                alerts = session.scalar(select(func.count()).select_from(Alert)) or 0
            if alerts >= sources and store.count() >= 2 * sources and not next(iter(store.iter_unmatched(1)), []):
                done = True
                break
            time.sleep(0.2)
        if not done:
            raise TimeoutError(f"{workers} worker(s) did not store and match {2 * sources} items in {timeout:.0f} s")
        elapsed = time.monotonic() - started
        cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu0
        with db.session() as session:
            rows = session.execute(select(Alert.item_id, Alert.created_at)).all()
        stored = {item.id: item.stored_at for item in store.get_many([r[0] for r in rows])}
        latencies = sorted(
            (created.replace(tzinfo=stored[item].tzinfo) - stored[item]).total_seconds()
            for item, created in rows
            if stored.get(item)
        )
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        queue.close()
        store.close()
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    items = 2 * sources
    return {
        "items_per_s": items / elapsed,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[max(0, int(len(latencies) * 0.99 + 0.5) - 1)],
        "items_per_cpu_s": items / cpu if cpu else float("nan"),
        "cpu_s": cpu,
        "start_cpu_s": cpu0 / workers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--round-timeout", type=float, default=600.0, help="seconds before a round is given up")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    # A niced benchmark on a busy shared machine: the JVM's start may take minutes, which is not measured.
    es_servers.START_TIMEOUT = 900.0
    site = Site()
    build_site(site, args.sources)
    results: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
    with (
        tempfile.TemporaryDirectory() as tmp,
        postgres_server() as pg,
        elasticsearch_server(write_queue_size=None) as es,
    ):
        for r in range(args.rounds):
            for n in counts[r % len(counts) :] + counts[: r % len(counts)]:
                load = os.getloadavg()[0]
                try:
                    result = one_round(pg, es, site, args.sources, n, Path(tmp), args.round_timeout)
                except TimeoutError as exc:
                    print(f"round {r + 1} workers={n} (load {load:.1f}): gave up: {exc}", flush=True)
                    continue
                results[n].append(result)
                figures = ", ".join(f"{k}={v:.2f}" for k, v in result.items())
                print(f"round {r + 1} workers={n} (load {load:.1f}): {figures}", flush=True)
    site.close()
    base = statistics.median(r["items_per_s"] for r in results[counts[0]] or [{"items_per_s": float("nan")}])
    finished = {n: len(rows) for n, rows in results.items()}
    print(f"\n{2 * args.sources} items from {args.sources} sources per round; medians of rounds finished {finished}")
    print(
        "| workers | items/s | vs 1 worker | alert latency p50 / p99 (s) | items per worker CPU second | CPU s "
        "| start-up CPU s per worker |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in counts:
        rows = results[n]
        if not rows:
            print(f"| {n} | no round finished | | | | | |")
            continue
        rate = statistics.median(r["items_per_s"] for r in rows)
        p50 = statistics.median(r["p50"] for r in rows)
        p99 = statistics.median(r["p99"] for r in rows)
        per_cpu = statistics.median(r["items_per_cpu_s"] for r in rows)
        cpu = statistics.median(r["cpu_s"] for r in rows)
        start = statistics.median(r["start_cpu_s"] for r in rows)
        print(
            f"| {n} | {rate:.1f} | {rate / base:.2f} | {p50:.2f} / {p99:.2f} | {per_cpu:.1f} | {cpu:.0f} "
            f"| {start:.1f} |"
        )


if __name__ == "__main__":
    main()
