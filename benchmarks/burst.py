"""Bursts and trickles end to end: from "stored" to "on the SSE alert stream" of a running `yuqing run`.

Usage: ``python benchmarks/burst.py [--departments 200] [--rules 10000] [--items 1000] [--trickle 30]
[--rounds 3] [--database sqlite|postgresql]``

The configuration is the city-scale one of issue 17: 200 departments sharing 10,000 structured rules in
departments.yaml (a 2 MB file). The product runs as an operator starts it (`yuqing run`: API, console and
scheduler in one process, SQLite item store, ledger on SQLite or a throwaway PostgreSQL); an officer's SSE
alert stream is open. This process plays the crawler: it stores items straight into the item store (as a
crawl subprocess does) and notes when each write returned. Per alert, the latency is the moment it arrived
on the stream minus the moment its item was stored.

Each round runs a burst (``--items`` distinct generated complaints stored in one write) and a trickle
(``--trickle`` single items, each stored once the previous one's alerts arrived); the order of the two
alternates between rounds. Reported per round and as medians over rounds: p50 / p99 / max latency, the
product process's CPU seconds for the phase (the baseline: wall clock over CPU says how much of the wait was
the machine, not the product), and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.matching import EVENTS, SUBJECTS, make_item, place_pool
from benchmarks.workers import cpu_seconds
from service.settings import load_settings
from service.store import make_store
from service.store.base import Item, item_id
from tests.servers.postgres import postgres_server
from tests.servers.product import running_product

START_TIMEOUT = 1800.0  # 10k rules imported and compiled by a niced process on a loaded machine
PHASE_TIMEOUT = 600.0


def write_departments(path: Path, departments: int, rules: int, places: list[str], rng: random.Random) -> None:
    depts = [{"id": f"d{d:03d}", "name": f"部门{d}", "rules": []} for d in range(departments)]
    for r in range(rules):
        depts[r % departments]["rules"].append(
            {
                "id": f"r{r}",
                "regions": rng.sample(places, rng.randint(1, 3)),
                "subjects": rng.sample(SUBJECTS, rng.randint(1, 2)),
                "events": rng.sample(EVENTS, rng.randint(1, 3)),
                "severity": rng.choice(["minor", "normal", "major", "critical"]),
            }
        )
    path.write_text(yaml.safe_dump({"departments": depts}, allow_unicode=True), encoding="utf-8")


def items(rng: random.Random, places: list[str], count: int, tag: str) -> list[Item]:
    now = datetime.now(UTC)
    out = []
    for n in range(count):
        title, content = make_item(rng, places)
        out.append(
            Item(
                id=item_id("bench", f"{tag}-{n}"),
                source="bench",
                channel="hotline",
                external_id=f"{tag}-{n}",
                url=f"http://127.0.0.1/{tag}/{n}",
                title=title,
                content=content,
                fetched_at=now,
                published_at=now,
            )
        )
    return out


class Stream:
    """An officer's open alert stream: when each alert (by item) arrived."""

    def __init__(self, base: str, token: str) -> None:
        self.arrived: dict[int, tuple[str, float]] = {}  # alert id -> (item id, monotonic arrival)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(base, token), daemon=True)
        self._thread.start()

    def _read(self, base: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        timeout = httpx.Timeout(60, read=None)
        with httpx.stream("GET", f"{base}/api/v1/alerts/stream", headers=headers, timeout=timeout) as response:
            name = ""
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name == "alert":  # not "related" (suggestion ids)
                    payload = json.loads(line[6:])
                    with self._lock:
                        self.arrived.setdefault(payload["id"], (payload["item_id"], time.monotonic()))

    def for_items(self, ids: set[str]) -> list[tuple[str, float]]:
        with self._lock:
            return [(item, at) for item, at in self.arrived.values() if item in ids]

    def close(self) -> None:
        self._stop.set()


class Product:
    """What the benchmark reads of the running product: matched flags and alert counts."""

    def __init__(self, settings_items: Path, ledger_url: str) -> None:
        self.items_path = settings_items
        self.ledger_url = ledger_url

    def unmatched(self, ids: list[str]) -> int:
        with contextlib.closing(sqlite3.connect(f"file:{self.items_path}?mode=ro", uri=True, timeout=60)) as conn:
            marks = ",".join("?" * len(ids))
            return conn.execute(
                f"SELECT count(*) FROM items WHERE id IN ({marks}) AND matched_at IS NULL", ids
            ).fetchone()[0]

    def alerts(self, ids: list[str]) -> int:
        engine = create_engine(self.ledger_url)
        try:
            with engine.connect() as conn:
                marks = ",".join(f":i{n}" for n in range(len(ids)))
                params = {f"i{n}": v for n, v in enumerate(ids)}
                return (
                    conn.execute(text(f"SELECT count(*) FROM alerts WHERE item_id IN ({marks})"), params).scalar() or 0
                )
        finally:
            engine.dispose()


def deliver(store, product: Product, stream: Stream, batch: list[Item]) -> tuple[list[float], float]:
    """Store ``batch`` in one write; the latency of each of its alerts (s) and the time all had arrived."""
    ids = [i.id for i in batch]
    wanted = set(ids)
    store.upsert(batch)
    stored = time.monotonic()
    deadline = stored + PHASE_TIMEOUT
    expected = None
    while time.monotonic() < deadline:
        if expected is None and product.unmatched(ids) == 0:
            expected = product.alerts(ids)
        got = stream.for_items(wanted)
        if expected is not None and len(got) >= expected:
            return [at - stored for _, at in got], time.monotonic() - stored
        time.sleep(0.05)
    raise TimeoutError(f"{len(batch)} item(s): alerts not all on the stream within {PHASE_TIMEOUT:.0f} s")


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q + 0.5) - 1))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--departments", type=int, default=200)
    parser.add_argument("--rules", type=int, default=10000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--trickle", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--places", type=int, default=100000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    rng = random.Random(17)
    places = place_pool(rng, args.places)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        config = root / "config"
        config.mkdir()
        write_departments(config / "departments.yaml", args.departments, args.rules, places, rng)
        if args.database == "postgresql":
            database_url = stack.enter_context(postgres_server())
        else:
            database_url = f"sqlite:///{root / 'data' / 'yuqing.db'}"
        (root / "data").mkdir()
        os.environ["YUQING_DATA_DIR"] = str(root / "data")
        started = time.monotonic()
        product = stack.enter_context(
            running_product(
                root,
                database_url,
                command="run",
                users={"officer1": ("officer", None)},
                config_dir=config,
                start_timeout=START_TIMEOUT,
            )
        )
        settings = load_settings(config)
        store = make_store(settings)
        store.init()
        reader = Product(settings.sqlite_store_path, database_url)
        stream = Stream(product.base, product.token("officer1"))
        # Warm-up (not measured): the first matching run imports and compiles the rules.
        warm = items(rng, places, 20, "warm")
        deliver(store, reader, stream, warm)
        print(f"product up and rules compiled in {time.monotonic() - started:.1f} s", flush=True)
        pid = product.proc.pid
        results: dict[str, list[dict[str, float]]] = {"burst": [], "trickle": []}
        for rnd in range(args.rounds):
            phases = ["burst", "trickle"] if rnd % 2 == 0 else ["trickle", "burst"]
            for phase in phases:
                load = os.getloadavg()[0]
                generated = items(rng, places, args.items if phase == "burst" else args.trickle, f"{phase}{rnd}")
                cpu0, t0 = cpu_seconds(pid), time.monotonic()
                if phase == "burst":
                    latencies, _ = deliver(store, reader, stream, generated)
                else:
                    latencies = []
                    for one in generated:
                        latencies += deliver(store, reader, stream, [one])[0]
                wall, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
                row = {
                    "alerts": len(latencies),
                    "first": min(latencies, default=float("nan")),
                    "p50": quantile(latencies, 0.5),
                    "p99": quantile(latencies, 0.99),
                    "max": max(latencies, default=float("nan")),
                    "wall": wall,
                    "cpu": cpu,
                    "load": load,
                }
                results[phase].append(row)
                print(
                    f"round {rnd + 1} {phase} (load {load:.1f}): {row['alerts']} alerts, stored -> on stream "
                    f"p50 {row['p50']:.2f} s, p99 {row['p99']:.2f} s, max {row['max']:.2f} s; "
                    f"phase {wall:.1f} s wall, product {cpu:.2f} s CPU",
                    flush=True,
                )
        stream.close()
        store.close()
        print(f"\nmedians of {args.rounds} rounds ({args.database} ledger, {args.rules} rules):")
        for phase, rows in results.items():
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            print(
                f"{phase}: p50 {med['p50']:.2f} s, p99 {med['p99']:.2f} s, max {med['max']:.2f} s "
                f"(worst round p99 {max(r['p99'] for r in rows):.2f} s); product CPU {med['cpu']:.2f} s "
                f"for {med['wall']:.1f} s wall (wall/CPU {med['wall'] / med['cpu']:.1f}), load {med['load']:.1f}"
            )


if __name__ == "__main__":
    main()
