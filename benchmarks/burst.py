"""A burst of items through matching: time from "stored" to "every alert committed" (what the SSE feed shows).

Usage: ``python benchmarks/burst.py [--departments 200] [--rules 10000] [--items 1000] [--rounds 3]``

The configuration is the city-scale one of issue 17: 200 departments sharing 10,000 structured rules in
departments.yaml (a 2 MB file), SQLite item store and ledger. Each round stores a fresh burst of distinct
generated complaints (the generator of ``benchmarks/matching.py``) and times the product's own
``MatchingEngine.run`` until it returns; the SSE stream polls the alerts table, so an alert is on the stream
within one poll interval (``alerts.stream_poll_seconds``) of its commit. Also reported: a trickle of single
items, each matched on its own (p99 over the trickle), and the matcher alone on the same items (the floor).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.matching import EVENTS, SUBJECTS, make_item, place_pool
from service.context import AppContext
from service.matching.engine import MatchingEngine, department_hits
from service.settings import Settings
from service.store.base import Item, item_id


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--departments", type=int, default=200)
    parser.add_argument("--rules", type=int, default=10000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--trickle", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--places", type=int, default=100000)
    args = parser.parse_args()
    rng = random.Random(17)
    places = place_pool(rng, args.places)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "config").mkdir()
        write_departments(root / "config" / "departments.yaml", args.departments, args.rules, places, rng)
        settings = Settings(config_dir=root / "config", data_dir=root / "data")
        ctx = AppContext.create(settings)
        ctx.db.migrate()
        ctx.store.init()
        engine = MatchingEngine(ctx)
        # The share of the burst spent deciding 可能是同一事件 (related tickets, reposts linking two events).
        suggesting: list[float] = []
        suggesting_cpu: list[float] = []
        decide = engine._suggest

        def timed_suggest(*args: object) -> None:
            t0, c0 = time.perf_counter(), time.process_time()
            decide(*args)  # type: ignore[arg-type]
            suggesting.append(time.perf_counter() - t0)
            suggesting_cpu.append(time.process_time() - c0)

        engine._suggest = timed_suggest  # type: ignore[method-assign]
        started = time.perf_counter()
        engine.rulebook.refresh()
        print(f"rules loaded and compiled in {time.perf_counter() - started:.1f} s")
        bursts, floors, trickles, alerts = [], [], [], []
        for rnd in range(args.rounds):
            burst = items(rng, places, args.items, f"b{rnd}")
            ctx.store.upsert(burst)
            matcher = engine.rulebook.current()
            t0 = time.perf_counter()
            for item in burst:
                department_hits(matcher, item)
            floors.append(time.perf_counter() - t0)
            t0, c0 = time.perf_counter(), time.process_time()
            suggesting.clear()
            suggesting_cpu.clear()
            report = engine.run()
            bursts.append(time.perf_counter() - t0)
            suggested = sum(suggesting)
            alerts.append(report.alerts)
            for item in items(rng, places, args.trickle, f"t{rnd}"):
                ctx.store.upsert([item])
                t0 = time.perf_counter()
                engine.run()
                trickles.append(time.perf_counter() - t0)
            print(
                f"round {rnd + 1}: burst of {len(burst)} matched and written in {bursts[-1]:.2f} s "
                f"({time.process_time() - c0:.2f} s CPU incl. trickle), {report.alerts} alerts, "
                f"{report.tickets_created} tickets; matcher alone {floors[-1]:.2f} s; "
                f"suggestions {suggested:.2f} s, {sum(suggesting_cpu):.2f} s CPU "
                f"(ratio {suggested / bursts[-1]:.2f} of the burst)"
            )
        trickles.sort()
        p99 = trickles[min(len(trickles) - 1, int(len(trickles) * 0.99))]
        print(
            f"median burst {statistics.median(bursts):.2f} s for {args.items} items "
            f"({statistics.median(alerts):.0f} alerts); matcher alone {statistics.median(floors):.2f} s "
            f"(ratio {statistics.median(floors) / statistics.median(bursts):.2f}); "
            f"trickle p99 {p99 * 1000:.0f} ms over {len(trickles)} single items"
        )
        ctx.close()


if __name__ == "__main__":
    main()
