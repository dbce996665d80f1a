"""Cost growth from 10k to 100k to 1M items on the embedded SQLite store: ingest, list, search, rule tests.

Usage::

    python benchmarks/scale.py generate --items 10000,100000,1000000 --dir /tmp/yq-scale
    python benchmarks/scale.py measure --items 10000,100000,1000000 --dir /tmp/yq-scale [--rounds 7]

``generate`` writes each store once through the product's own ``SqliteStore.upsert`` (schema, triggers and
every index included) and prints the ingest rate per step of the way; ``measure`` reuses those files. Items
are generated complaints of 60-400 characters (shorter than the matching benchmark's 300-2,000 so that a
million of them fit a shared disk: the three trigram indexes and the short-term index grow with the text),
over a year, 3 channels, 100 sources and 200 departments.

Every query runs in ``--rounds`` interleaved rounds (rotated order); the figures are the median and the
worst round (p99 is the worst of a handful of rounds). Baselines in the same run: the previous LIKE scan for
one- and two-character terms, and a bare primary-key lookup.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.matching import EVENTS, FILLER, PUNCT, SUBJECTS, place_pool
from service.store.base import Item, ItemQuery, Store, item_id, search_key
from service.store.sqlite import SqliteStore

START = datetime(2025, 6, 1, tzinfo=UTC)
CHANNELS = ("hotline", "mailbox", "media")


def make_items(start: int, count: int, places: list[str], per_year: int = 1_000_000) -> list[Item]:
    """Items number ``start`` .. ``start + count - 1``; the same numbers always give the same items.

    ``per_year``: how many items one year of publication dates holds (10M items over one year: 10_000_000)."""
    out = []
    for n in range(start, start + count):
        rng = random.Random(n)
        place = rng.choice(places)
        title = f"关于{place}{rng.choice(SUBJECTS)}{rng.choice(EVENTS)}的投诉"
        target = rng.randint(30, 200)
        parts = [place]
        length = len(place)
        while length < target:
            roll = rng.random()
            word = (
                rng.choice(SUBJECTS)
                if roll < 0.08
                else rng.choice(EVENTS)
                if roll < 0.16
                else rng.choice(PUNCT)
                if roll < 0.26
                else rng.choice(FILLER)
            )
            parts.append(word)
            length += len(word)
        if n % 50 == 0:
            parts.append(f"联系电话138{n % 10**8:08d}")
        source = f"src-{n % 100:03d}"
        published = START + timedelta(seconds=n * 31_536_000 // per_year + rng.randrange(3600))
        out.append(
            Item(
                id=item_id(source, external_id=f"WO-{n}"),
                source=source,
                channel=CHANNELS[n % 3],
                external_id=f"WO-{n}",
                url=f"https://12345.example.gov.cn/detail/{n}",
                title=title,
                content="".join(parts),
                published_at=published,
                fetched_at=published + timedelta(hours=1),
                department=f"d{n % 200:03d}",
            )
        )
    return out


def store_path(directory: Path, count: int) -> Path:
    return directory / f"items-{count}.sqlite3"


def generate(directory: Path, count: int, snapshots: set[int], base: Path | None = None, batch: int = 5000) -> None:
    """Store ``count`` items; at each count in ``snapshots`` also keep a copy (the smaller store).

    With ``base`` (a store this command wrote earlier, holding items 0 .. n-1) the new store starts as a copy of
    it and only items n .. count-1 are written, so a larger store grows from a smaller one.
    """
    path = store_path(directory, count)
    if path.exists():
        print(f"{path} exists; reusing it")
        return
    directory.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for leftover in directory.glob(partial.name + "*"):
        leftover.unlink()
    start = 0
    if base is not None:
        shutil.copyfile(base, partial)
    store = SqliteStore(partial)
    conn = store._conn()
    # A bigger page cache than the default 2 MB: the full-text indexes' merges at a million items otherwise
    # re-read their segments from disk for every batch. The rows still go through SqliteStore.upsert.
    conn.execute("PRAGMA cache_size = -262144")
    if base is not None:
        start = conn.execute("SELECT count(*) FROM items").fetchone()[0]
        print(f"continuing from {base} ({start:,} items)", flush=True)
    places = place_pool(random.Random(1), 2000)
    started, cpu = time.perf_counter(), time.process_time()
    step_started, step_cpu, step_done = started, cpu, start
    for first in range(start, count, batch):
        # One transaction per batch (upsert commits once per call).
        store.upsert(make_items(first, min(batch, count - first), places))
        done = min(first + batch, count)
        if done // 100_000 > (done - batch) // 100_000 or done >= count or done in snapshots:
            now, now_cpu = time.perf_counter(), time.process_time()
            rate = (done - step_done) / (now - step_started)
            cpu_rate = (done - step_done) / (now_cpu - step_cpu)
            print(
                f"  {done:>9} items: {rate:,.0f} items/s wall, {cpu_rate:,.0f} per CPU s (last step)",
                flush=True,
            )
            step_started, step_cpu, step_done = now, now_cpu, done
        if done in snapshots and done < count:
            copy = store_path(directory, done)
            if not copy.exists():
                conn.execute("ANALYZE")
                conn.execute("VACUUM INTO ?", (str(copy),))
                print(f"  kept a copy of the first {done} items as {copy}", flush=True)
    conn.execute("ANALYZE")
    store.close()
    for suffix in ("-wal", "-shm"):
        Path(str(partial) + suffix).unlink(missing_ok=True)
    partial.rename(path)
    total = time.perf_counter() - started
    size = path.stat().st_size / 2**20
    print(f"{count} items: {total:.0f} s wall in all, file {size:,.0f} MB", flush=True)


def like_scan(store: SqliteStore, term: str) -> int:
    """The previous way of answering a one- or two-character term: fold every row and LIKE it."""
    pattern = f"%{term}%"
    conn = store._conn()
    where = "WHERE yq_fold(title) LIKE ? OR yq_fold(content) LIKE ?"
    total = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM items {where} LIMIT 10001)",
        (pattern, pattern),
    ).fetchone()[0]
    conn.execute(
        f"SELECT * FROM items {where} ORDER BY published_at IS NULL, published_at DESC, seq DESC LIMIT 20",
        (pattern, pattern),
    ).fetchall()
    return total


def deep_page(store: Store, query: ItemQuery, pages: int) -> int:
    """Walk ``pages`` keyset pages of ``query`` (what a client following ``next`` does)."""
    page = store.search(query)
    for _ in range(pages - 1):
        if page.next is None:
            break
        page = store.search(query.model_copy(update={"after": page.next}))
    return len(page.results)


# What GET /api/v1/items asks the store, shared with benchmarks/scale_es.py (filters and terms).
ITEM_QUERIES: dict[str, dict[str, object]] = {
    "list page 1": {},
    "channel filter": {"channel": "mailbox"},
    "department filter": {"department": "d123"},
    "department + month": {
        "department": "d123",
        "date_from": START + timedelta(days=60),
        "date_to": START + timedelta(days=90),
    },
    "q 排污 (2 chars)": {"q": "排污"},
    "q 排污 masked": {"q": "排污", "masked": True},
    "q 塌 (1 char)": {"q": "塌"},
    "q 问题 (common 2 chars)": {"q": "问题"},
    "q 夜间施工 (4 chars)": {"q": "夜间施工"},
    "q 排污 + department": {"q": "排污", "department": "d007"},
    "q 问题 + department": {"q": "问题", "department": "d123"},
    "q 问题 + channel, page 20 (offset)": {"q": "问题", "channel": "hotline", "page": 20},
    "q 排污 11 (two short terms)": {"q": "排污 11"},
}


def previous_trial(store: Store, expr: str, since: datetime, limit: int) -> dict[str, object]:
    """The rule trial of main at 20c6507 (benchmarks/trial_previous.py), for an officer: the window's count and its
    limit-th item in two searches, the walk's suspects and the items listed read apart, 1,000 suspects always
    evaluated for an estimate."""
    from benchmarks import trial_previous
    from service.rules.language import parse

    found = trial_previous.run(store, parse(expr), since, limit, time.monotonic() + 60)
    return {"matched": found.matched, "items": found.items}


def trial_pairs(store: Store) -> dict[str, Callable[[], object]]:
    """Rule trials on the newest 7 days as an officer, each beside the previous implementation (on either store).

    Sets the clock to an hour after the newest item, so that the trials' window is the store's last week."""
    from types import SimpleNamespace

    from service import clock
    from service.principal import Principal
    from service.rules.api import RecentBody, test_rule_on_recent_items

    newest = store.search(ItemQuery(size=1)).results[0].published_at
    assert newest is not None
    clock.set_clock(clock.FrozenClock(newest + timedelta(hours=1)))
    ctx = SimpleNamespace(store=store, settings=SimpleNamespace(alerts=SimpleNamespace(recent_trial_max_seconds=60)))
    officer = Principal(user_id=1, username="bench", role="officer")

    def trial(expr: str, limit: int) -> Callable[[], object]:
        body = RecentBody(expr=expr, days=7, limit=limit)
        return lambda: test_rule_on_recent_items(body, officer, ctx)  # type: ignore[arg-type]

    since = clock.now() - timedelta(days=7)
    trials = {
        "排污 AND 化工厂, 2000": ("排污 AND 化工厂", 2000),
        "(偷排 OR 排污) AND 化工厂, 10000": ("(偷排 OR 排污) AND 化工厂", 10_000),
        "NOT 表扬, 2000": ("NOT 表扬", 2000),
        "NOT 表扬, 10000": ("NOT 表扬", 10_000),
        # Half the window holds 问题: the suspects a NOT rule is evaluated on.
        "NOT 问题, 10000": ("NOT 问题", 10_000),
    }
    # Each trial beside the previous implementation (baseline), interleaved with everything else.
    pairs: dict[str, Callable[[], object]] = {}
    for name, (expr, limit) in trials.items():
        pairs[f"rule trial {name}"] = trial(expr, limit)
        pairs[f"previous trial {name}"] = functools.partial(previous_trial, store, expr, since, limit)
    return pairs


def queries(store: SqliteStore) -> dict[str, Callable[[], object]]:
    conn = store._conn()
    last = conn.execute("SELECT max(seq) FROM items").fetchone()[0]

    def search(**fields: object) -> Callable[[], object]:
        return lambda: store.search(ItemQuery(**fields))

    return {
        **trial_pairs(store),
        "bare primary-key lookup": lambda: (
            store._conn().execute("SELECT * FROM items WHERE seq = ?", (last // 2,)).fetchone()
        ),
        "list page 50 (offset)": search(page=50),
        "50 keyset pages in a row": lambda: deep_page(store, ItemQuery(), 50),
        **{name: search(**fields) for name, fields in ITEM_QUERIES.items()},
        "q 问题 masked, 50 keyset pages": lambda: deep_page(store, ItemQuery(q="问题", masked=True), 50),
    }


def evict(store: SqliteStore) -> None:
    """Make the next query read the store from disk: its connection (and page cache) closed, the file's pages
    dropped from the OS page cache (``posix_fadvise(DONTNEED)``; pages another process maps may stay)."""
    store.close()
    for suffix in ("", "-wal"):
        path = Path(str(store.path) + suffix)
        if path.exists():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def measure(directory: Path, counts: list[int], rounds: int, scan: bool, only: str = "", cold: bool = False) -> None:
    # The folding tables are built once per process (seconds on a loaded machine), not per query.
    search_key("预热")
    for count in counts:
        store = SqliteStore(store_path(directory, count))
        started = time.perf_counter()
        store.init()
        opened = time.perf_counter() - started
        sides = {name: side for name, side in queries(store).items() if only in name}
        names = list(sides)
        times: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        load = os.getloadavg()[0]
        for round_no in range(rounds):
            shift = round_no % len(names)
            order = names[shift:] + names[:shift]
            # Every other round backwards: a pair listed side by side (a trial and its previous code) would otherwise
            # always run in the same order, the first paying for the pages the second then finds cached.
            for name in order if round_no % 2 == 0 else order[::-1]:
                if cold:
                    evict(store)
                started, started_cpu = time.perf_counter(), time.process_time()
                sides[name]()
                times[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - started_cpu)
        load = (load + os.getloadavg()[0]) / 2
        state = "cold: pages evicted before each query" if cold else "warm"
        print(f"\n{count:,} items ({rounds} rounds, {state}, ms; load average {load:.1f} on {os.cpu_count()} cores;")
        print(f"opening the store took {opened * 1000:.0f} ms)")
        print(f"{'query':44}{'median':>10}{'worst':>10}{'CPU med':>10}")
        for name in names:
            print(
                f"{name:44}{statistics.median(times[name]) * 1000:10.1f}{max(times[name]) * 1000:10.1f}"
                f"{statistics.median(cpu[name]) * 1000:10.1f}"
            )
        for name in names:
            baseline = name.replace("rule trial ", "previous trial ", 1)
            if name.startswith("rule trial ") and baseline in times:
                wall = statistics.median(times[name]) / statistics.median(times[baseline])
                used = statistics.median(cpu[name]) / statistics.median(cpu[baseline])
                print(f"{'ratio to previous: ' + name[11:]:44}{wall:10.3f}{'':10}{used:10.3f}")
        if scan:
            for term in ("排污", "塌"):
                started = time.perf_counter()
                like_scan(store, term)
                print(f"{'previous LIKE scan ' + term:44}{(time.perf_counter() - started) * 1000:10.1f}  (one run)")
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("generate", "measure"))
    parser.add_argument("--items", default="10000,100000,1000000")
    parser.add_argument("--dir", default="/tmp/yq-scale")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--from", dest="base", type=Path, help="generate: grow a copy of this smaller store")
    parser.add_argument("--batch", type=int, default=5000, help="generate: items per upsert (one transaction)")
    parser.add_argument("--no-scan", action="store_true", help="skip the one-run LIKE scan baseline")
    parser.add_argument("--only", default="", help="measure: only the queries whose name holds this text")
    parser.add_argument("--cold", action="store_true", help="measure: evict the store's pages before each query")
    args = parser.parse_args()
    counts = [int(c) for c in args.items.split(",")]
    if args.action == "generate":
        # One run writes the largest store and keeps the smaller ones as copies on the way.
        generate(Path(args.dir), max(counts), set(counts), args.base, args.batch)
    else:
        measure(Path(args.dir), counts, args.rounds, not args.no_scan, args.only, args.cold)


if __name__ == "__main__":
    main()
