"""Cost growth of the Elasticsearch item store from 10k to 100k to 1M items and on toward 10M: ingest and items queries.

Usage::

    nice -n 10 python benchmarks/scale_es.py --sizes 10000,100000,1000000,2000000,4000000,10000000 \\
        --until 03:40 --heap 3g [--rounds 5] [--out /tmp/yq-scale-es.jsonl]
    nice -n 10 python benchmarks/scale_es.py --conn /tmp/yq-es10m/conn.json --rounds 5   # the es_load.py node

Starts a single Elasticsearch node as the tests do (integration-test zip via Maven, loopback, the machine's
JDK; ``YUQING_TEST_ES_URL`` uses a running one, and ``--measure-only`` measures its index as it is), then
grows one index through the product's own ``ElasticsearchStore.upsert`` (masked copies, search keys, the
mget of existing ids, bulk with retries) in batches from two threads, and measures each size as it passes
it. Items are those of ``benchmarks/scale.py`` (the same numbers always give the same items) and the items
queries are its ``ITEM_QUERIES`` plus deep pages, each answered by ``store.search`` exactly as
``GET /api/v1/items`` asks it.

At each size every query runs in ``--rounds`` interleaved rounds (rotated order); the figures are the median
and the worst round. Baseline in the same run: a bare ``match_all`` of 20 documents in index order (no sort,
no count). Each query's CPU is reported too (medians): this process's and, when the node is one this starts or
``--conn`` names, the node's (all of it: a load running alongside counts too). Ingest is reported per step in
items per wall second and per CPU second of the benchmark process plus the Elasticsearch node (both sides of
the write). Growing stops at ``--until`` (UTC, HH:MM); the size
then reached is measured too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from benchmarks.matching import place_pool
from benchmarks.scale import ITEM_QUERIES, deep_page, make_items, trial_pairs
from service.settings import ElasticsearchSettings
from service.store.base import ItemQuery, encode_cursor, item_id
from service.store.elasticsearch import ElasticsearchStore
from tests.servers.elasticsearch import USERNAME, ElasticsearchServer, elasticsearch_server

_TICKS = os.sysconf("SC_CLK_TCK")


def session_cpu(session: int | None) -> float:
    """CPU seconds used so far by every process of a session (the node's launcher and its JVM)."""
    if session is None:
        return 0.0
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid pgrp session ... utime(12) stime(13).
        if int(fields[3]) == session:
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def grow(store: ElasticsearchStore, start: int, stop: int, places: list[str], batch: int, threads: int) -> None:
    """Store items ``start`` .. ``stop - 1`` through the product's upsert, ``threads`` batches in flight."""

    def write(first: int) -> None:
        result = store.upsert(make_items(first, min(batch, stop - first), places))
        if result.dead_lettered:
            raise RuntimeError(f"dead-lettered: {result.dead_lettered[:3]}")

    with ThreadPoolExecutor(threads) as pool:
        for done in pool.map(write, range(start, stop, batch)):
            del done


def index_stats(store: ElasticsearchStore) -> dict[str, Any]:
    stats = store._es.indices.stats(index=store.alias, metric="docs,store,segments")["_all"]["primaries"]
    return {
        "docs": stats["docs"]["count"],
        "store_mb": round(stats["store"]["size_in_bytes"] / 2**20, 1),
        "segments": stats["segments"]["count"],
    }


def cursor_at(store: ElasticsearchStore, number: int) -> str:
    """The ``next`` cursor a client holds after paging down to item ``number`` (newest first)."""
    (item,) = make_items(number, 1, place_pool(random.Random(1), 2000))
    doc = store._es.get(index=store.alias, id=item_id(item.source, external_id=item.external_id))["_source"]
    millis = int(datetime.fromisoformat(doc["published_at"]).timestamp() * 1000)
    return encode_cursor([millis, doc["stored_seq"]])


def queries(store: ElasticsearchStore, whole: ElasticsearchStore, count: int) -> dict[str, Callable[[], object]]:
    def search(**fields: Any) -> Callable[[], object]:
        return lambda: store.search(ItemQuery(**fields))

    half = cursor_at(store, count // 2)
    # Before/after of windows (service/store/es_windows.py) on the same index: the store as it is, which asks
    # text terms and deep offsets of the newest documents first, against the same store asking the whole index
    # (WINDOW_TRIES = 0: the request of the release before). Same answers (tests/store/test_es_windows.py).
    pairs: dict[str, Callable[[], object]] = {}
    for name, fields in (
        ("list page 500 (offset)", {"page": 500}),
        ("q 问题", {"q": "问题"}),
        ("q 排污", {"q": "排污"}),
        ("q 夜间施工", {"q": "夜间施工"}),
        ("q 排污 + department", {"q": "排污", "department": "d007"}),
    ):
        pairs[f"{name}: whole index (before)"] = partial(whole.search, ItemQuery(**fields))
        pairs[f"{name}: windows"] = search(**fields)
    return {
        **pairs,
        "bare match_all, 20 docs (baseline)": lambda: store._es.search(
            index=store.alias, size=20, track_total_hits=False
        ),
        "list page 50 (offset)": search(page=50),
        "list page 500 (offset, end of window)": search(page=500),
        "50 keyset pages in a row": lambda: deep_page(store, ItemQuery(), 50),
        "keyset page at half depth": search(after=half),
        "keyset page at half depth, q 问题": search(after=half, q="问题"),
        **{name: search(**fields) for name, fields in ITEM_QUERIES.items()},
        # Rule trials on the last 7 days beside the previous implementation (benchmarks/scale.py).
        **trial_pairs(store),
    }


def measure(
    store: ElasticsearchStore, count: int, rounds: int, node: int | None = None, only: str = ""
) -> dict[str, dict[str, float]]:
    """Every query (whose name holds ``only``) in ``rounds`` interleaved rounds: wall median and worst, CPU
    medians (this process, node)."""
    store._es.indices.refresh(index=store.alias)
    whole = ElasticsearchStore(store.settings)
    whole.WINDOW_TRIES = 0
    sides = {name: side for name, side in queries(store, whole, count).items() if only in name}
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    node_cpu: dict[str, list[float]] = {name: [] for name in names}
    totals: dict[str, Any] = {}
    load = os.getloadavg()[0]
    for round_no in range(rounds):
        shift = round_no % len(names)
        order = names[shift:] + names[:shift]
        # Every other round backwards: a pair listed side by side (a trial and its previous code) would otherwise
        # always run in the same order, the first paying for the pages the second then finds cached.
        for name in order if round_no % 2 == 0 else order[::-1]:
            started, started_cpu, started_node = time.perf_counter(), time.process_time(), session_cpu(node)
            answer = sides[name]()
            times[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
            node_cpu[name].append(session_cpu(node) - started_node)
            total = getattr(answer, "total", None)
            if total is not None:
                totals[name] = f"{total}{'+' if getattr(answer, 'total_capped', False) else ''}"
    load = (load + os.getloadavg()[0]) / 2
    print(f"\n{count:,} items ({rounds} rounds, ms; load average {load:.1f} on {os.cpu_count()} cores)", flush=True)
    print(f"{'query':48}{'median':>9}{'worst':>9}{'CPU py':>8}{'CPU ES':>8}  total", flush=True)
    out: dict[str, dict[str, float]] = {}
    for name in names:
        median, worst = statistics.median(times[name]) * 1000, max(times[name]) * 1000
        py, es = statistics.median(cpu[name]) * 1000, statistics.median(node_cpu[name]) * 1000
        out[name] = {"median_ms": round(median, 1), "worst_ms": round(worst, 1), "cpu_ms": round(py, 1)}
        if node is not None:
            out[name]["node_cpu_ms"] = round(es, 1)
        node_text = f"{es:8.0f}" if node is not None else f"{'-':>8}"
        print(f"{name:48}{median:9.0f}{worst:9.0f}{py:8.0f}{node_text}  {totals.get(name, '')}", flush=True)
    whole.close()
    return out


def deadline_of(until: str | None) -> float:
    if not until:
        return float("inf")
    hour, minute = (int(p) for p in until.split(":"))
    now = datetime.now(UTC)
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--heap", default="2g", help="maximum JVM heap of the node this starts")
    parser.add_argument("--batch", type=int, default=2000, help="items per upsert call")
    parser.add_argument("--threads", type=int, default=2, help="upsert calls in flight")
    parser.add_argument("--until", help="stop growing at this UTC time (HH:MM) and measure the size reached")
    parser.add_argument(
        "--measure-only", action="store_true", help="measure the index as it is (with YUQING_TEST_ES_URL)"
    )
    parser.add_argument("--prefix", default="yq-scale", help="index prefix (benchmarks/es_load.py: yq10m)")
    parser.add_argument(
        "--conn",
        type=Path,
        help="measure the node benchmarks/es_load.py started (its conn.json; implies --measure-only --prefix yq10m)",
    )
    parser.add_argument("--out", default="/tmp/yq-scale-es.jsonl", help="one JSON line per size measured")
    parser.add_argument("--only", default="", help="measure only the queries whose name holds this text (trial)")
    args = parser.parse_args()
    sizes = sorted(int(c) for c in args.sizes.split(","))
    deadline = deadline_of(args.until)
    places = place_pool(random.Random(1), 2000)
    with ExitStack() as stack:
        if args.conn:
            conn = json.loads(args.conn.read_text())
            server = ElasticsearchServer(conn["url"], USERNAME, conn["password"], "es_load", conn.get("pid"))
            args.measure_only, args.prefix = True, "yq10m"
        else:
            server = stack.enter_context(elasticsearch_server(write_queue_size=None, heap=args.heap))
        settings = ElasticsearchSettings(
            hosts=[server.url],
            username=server.username,
            password=SecretStr(server.password),
            index_prefix=args.prefix,
            request_timeout=120,
        )
        store = ElasticsearchStore(settings)
        store.init()
        stack.callback(store.close)
        done = 0
        if args.measure_only:
            store._es.indices.refresh(index=store.alias)
            reached = store.count()
            print(f"{reached:,} items; index {index_stats(store)}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", flush=True)
            figures = measure(store, reached, args.rounds, server.pid, args.only)
            with open(args.out, "a", encoding="utf-8") as log:
                log.write(json.dumps({"size": reached, "queries": figures}, ensure_ascii=False) + "\n")
            return
        for size in sizes:
            step = 50_000 if size > 100_000 else 10_000
            while done < size and time.time() < deadline:
                target = min(size, done + step)
                wall, cpu, es_cpu = time.perf_counter(), time.process_time(), session_cpu(server.pid)
                grow(store, done, target, places, args.batch, args.threads)
                wall = time.perf_counter() - wall
                cpu, es_cpu = time.process_time() - cpu, session_cpu(server.pid) - es_cpu
                n = target - done
                done = target
                print(
                    f"  {done:>10,} items: {n / wall:,.0f} items/s wall, {n / (cpu + es_cpu):,.0f} per CPU s "
                    f"(python {cpu:.1f} s, node {es_cpu:.1f} s CPU for {n:,})",
                    flush=True,
                )
                with open(args.out, "a", encoding="utf-8") as log:
                    log.write(
                        json.dumps(
                            {"ingest_to": done, "items": n, "wall_s": wall, "python_cpu_s": cpu, "es_cpu_s": es_cpu}
                        )
                        + "\n"
                    )
            reached = done
            stats = index_stats(store)
            print(f"reached {reached:,} items; index {stats}", flush=True)
            figures = measure(store, reached, args.rounds, server.pid, args.only)
            with open(args.out, "a", encoding="utf-8") as log:
                log.write(json.dumps({"size": reached, "index": stats, "queries": figures}, ensure_ascii=False) + "\n")
            if done < size:
                print(f"stopped growing at {reached:,} items ({args.until} UTC)", flush=True)
                break


if __name__ == "__main__":
    main()
