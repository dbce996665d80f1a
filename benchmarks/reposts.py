"""Repost detection: pairwise precision/recall on tests/data/reposts.jsonl, and cost per new item.

Usage: ``python benchmarks/reposts.py [--sizes 10000,100000,1000000] [--rounds 5] [--quality-only] [--heldout]``
(``--heldout``: quality only, on the held-out city of tests/data/heldout_city.py instead of the tuned set.)

Quality: the 404 labelled items are fed through ``assign_events`` (what the crawl pipeline does) into a
fresh SQLite store in batches of 20, once in publication order (originals before their reposts) and in
five shuffled orders (reposts before originals too). A pair of items is predicted "same" when they end
in one event, and is truly "same" when they are the same story (original and its reposts); follow-ups,
same-place and same-problem items and template notices are their own stories.

Cost: a SQLite store is filled with N background items (distinct random texts' LSH keys written straight
into the tables, so filling 1M items takes minutes, not hours), then batches of 100 new items are
grouped against it: ``assign_events`` (normalize, MinHash, one batch lookup, exact comparison). The
baseline in the same process, interleaved round by round, is the SimHash grouping it replaced (64-bit
SimHash over character bigrams, one query of its four 16-bit bands per item, kept here in a table of its
own since the store no longer has it). Medians of the rounds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.items import duplicates
from service.items.places import gazetteer
from service.store.base import Item, to_signed64
from service.store.sqlite import SqliteStore

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "reposts.jsonl"
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def load() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_heldout() -> list[dict]:
    """The held-out city (tests/data/heldout_city.py), never used for tuning."""
    from tests.data.heldout_city import records

    return records()


def as_item(r: dict, prefix: str = "") -> Item:
    return Item(
        id=prefix + r["id"],
        source="bench",
        channel=r["channel"],
        external_id=prefix + r["id"],
        title=r["title"],
        content=r["content"],
        fetched_at=NOW,
    )


def evaluate(records: list[dict], order: list[dict]) -> tuple[float, float, Counter, Counter]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "items.sqlite3")
        store.init()
        event: dict[str, str] = {}
        for start in range(0, len(order), 20):
            grouped, _ = duplicates.assign_events(store, [as_item(r) for r in order[start : start + 20]])
            store.upsert(grouped)
            event.update({i.id: i.event_id or i.id for i in grouped})
        store.close()
    tp = fp = fn = 0
    missed: Counter = Counter()
    wrong: Counter = Counter()
    for a, b in combinations(records, 2):
        predicted = event[a["id"]] == event[b["id"]]
        truth = a["story"] == b["story"]
        tp += predicted and truth
        if predicted and not truth:
            fp += 1
            wrong[f"{a['kind']}~{b['kind']}"] += 1
        if truth and not predicted:
            fn += 1
            missed[a["variant"] if a["kind"] == "repost" else b["variant"]] += 1
    return tp / max(1, tp + fp), tp / max(1, tp + fn), missed, wrong


def quality(shuffles: int, heldout: bool = False) -> None:
    records = load_heldout() if heldout else load()
    kinds = Counter(r["kind"] for r in records)
    print(f"evaluation set: {len(records)} items {dict(kinds)}")
    positives = sum(1 for a, b in combinations(records, 2) if a["story"] == b["story"])
    print(f"pairs: {positives} repost pairs, {len(records) * (len(records) - 1) // 2 - positives} other pairs")
    chrono = sorted(records, key=lambda r: (r["kind"] == "repost", r["id"]))
    p, r, missed, wrong = evaluate(records, chrono)
    print(f"publication order:   precision {p:.4f}  recall {r:.4f}  missed {dict(missed)}  wrong {dict(wrong)}")
    ps, rs = [], []
    for seed in range(shuffles):
        order = records[:]
        random.Random(seed).shuffle(order)
        p, r, missed, wrong = evaluate(records, order)
        ps.append(p)
        rs.append(r)
        print(f"shuffled (seed {seed}):  precision {p:.4f}  recall {r:.4f}  missed {dict(missed)}  wrong {dict(wrong)}")
    print(f"shuffled, median:    precision {statistics.median(ps):.4f}  recall {statistics.median(rs):.4f}")


# -- cost ------------------------------------------------------------------------------------------


def old_simhash(text: str) -> int | None:
    """The SimHash grouping this replaced (crawlers/simhash.py before issue 13), as the baseline."""
    import re

    clean = re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).lower())
    grams = Counter(clean[i : i + 2] for i in range(len(clean) - 1)) if len(clean) > 2 else Counter([clean])
    if not grams:
        return None
    weights = [0] * 64
    for feature, weight in grams.items():
        h = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "big")
        for bit in range(64):
            weights[bit] += weight if h >> bit & 1 else -weight
    value = 0
    for bit, w in enumerate(weights):
        if w > 0:
            value |= 1 << bit
    return to_signed64(value)


def fill(path: Path, n: int, rnd: random.Random) -> None:
    """N background items with random band keys and SimHash values, written straight into the tables."""
    store = SqliteStore(path)
    store.init()
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    # Full-text indexing is not what is measured: the background rows skip it. Band rows go to a plain
    # table first and into the band index sorted at the end (a sorted B-tree build, not random inserts).
    for trigger in ("items_ai", "items_masked_ai", "items_search_ai"):
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("CREATE TEMP TABLE fill_lsh (band INTEGER, seq INTEGER)")
    # The baseline's SimHash and its four 16-bit bands, indexed as the store indexed them before.
    conn.execute("CREATE TABLE old_simhash (seq INTEGER PRIMARY KEY, simhash INTEGER, b0, b1, b2, b3)")
    for i in range(4):
        conn.execute(f"CREATE INDEX old_band{i} ON old_simhash(b{i})")
    stamp = NOW.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    bands_per_item = duplicates.BANDS + duplicates.LEAD_BANDS
    done = 0
    while done < n:
        chunk = min(20_000, n - done)
        conn.execute("BEGIN")
        rows = []
        old_rows = []
        band_rows = []
        for k in range(done, done + chunk):
            sh = rnd.getrandbits(64)
            rows.append((f"bg{k}", "bg", "media", f"背景条目{k}", "", stamp, "f", stamp, stamp, 1))
            old_rows.append((k + 1, to_signed64(sh), *[(sh >> (16 * i)) & 0xFFFF for i in range(4)]))
            band_rows += [(to_signed64(rnd.getrandbits(64)), k + 1) for _ in range(bands_per_item)]
        conn.executemany(
            "INSERT INTO items (id, source, channel, title, content, fetched_at, fingerprint, stored_at, updated_at,"
            " lsh_done) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany("INSERT INTO old_simhash VALUES (?, ?, ?, ?, ?, ?)", old_rows)
        conn.executemany("INSERT INTO fill_lsh (band, seq) VALUES (?, ?)", band_rows)
        conn.execute("COMMIT")
        done += chunk
    conn.execute("INSERT OR IGNORE INTO item_lsh (band, seq) SELECT band, seq FROM fill_lsh ORDER BY band, seq")
    conn.execute("ANALYZE")
    conn.close()


def old_group(conn: sqlite3.Connection, items: list[Item]) -> None:
    """The replaced per-item lookup: rows sharing a 16-bit band, read whole, then the exact Hamming check."""
    for item in items:
        sh = old_simhash(f"{item.title}\n{item.content}")
        if sh is None:
            continue
        unsigned = sh & 0xFFFFFFFFFFFFFFFF
        bands = [(unsigned >> (16 * i)) & 0xFFFF for i in range(4)]
        rows = conn.execute(
            "SELECT items.*, old_simhash.simhash FROM old_simhash JOIN items USING (seq)"
            " WHERE b0 = ? OR b1 = ? OR b2 = ? OR b3 = ? ORDER BY seq LIMIT 1000",
            bands,
        ).fetchall()
        [r for r in rows if ((r[-1] ^ sh) & 0xFFFFFFFFFFFFFFFF).bit_count() <= 3]


def cost(sizes: list[int], rounds: int) -> None:
    records = load()
    rnd = random.Random(1)
    print(f"{'stored':>10} {'new: CPU ms/item':>17} {'old SimHash: CPU ms/item':>25} {'ratio new/old':>14}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "items.sqlite3"
            began = time.perf_counter()
            fill(path, n, rnd)
            filled = time.perf_counter() - began
            store = SqliteStore(path)
            old_conn = sqlite3.connect(path)
            new_t: list[float] = []
            old_t: list[float] = []
            for round_no in range(rounds):
                batch = [as_item(r, prefix=f"r{round_no}-") for r in rnd.sample(records, 100)]
                # Interleaved: the order of the two alternates between rounds.
                for which in ("new", "old") if round_no % 2 == 0 else ("old", "new"):
                    # CPU time: the machine is shared, wall-clock would measure the neighbours.
                    t0 = time.process_time()
                    if which == "new":
                        duplicates.assign_events(store, batch)
                        new_t.append((time.process_time() - t0) * 1000 / len(batch))
                    else:
                        old_group(old_conn, batch)
                        old_t.append((time.process_time() - t0) * 1000 / len(batch))
            store.close()
            old_conn.close()
            new_ms, old_ms = statistics.median(new_t), statistics.median(old_t)
            print(f"{n:>10} {new_ms:>17.3f} {old_ms:>25.3f} {new_ms / old_ms:>14.2f}   (filled in {filled:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shuffles", type=int, default=5)
    parser.add_argument("--quality-only", action="store_true")
    parser.add_argument("--heldout", action="store_true", help="quality on the held-out city instead")
    args = parser.parse_args()
    quality(args.shuffles, args.heldout)
    if args.heldout:
        return
    if not args.quality_only:
        # A first call builds jieba's dictionary and the MinHash permutations: not per-item cost.
        duplicates.assign_events(SqliteStore(Path(tempfile.mkdtemp()) / "warm.sqlite3"), [as_item(load()[0])])
        gazetteer().extract("青川市河西区")
        cost([int(s) for s in args.sizes.split(",")], args.rounds)


if __name__ == "__main__":
    main()
