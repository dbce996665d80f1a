"""Elasticsearch ingest: the crawl pipeline into Elasticsearch vs raw ``elasticsearch.helpers.bulk``.

Usage: ``python benchmarks/es_ingest.py [--items 2000] [--rounds 3]``. Starts the test suite's single-node
Elasticsearch (tests/servers/elasticsearch.py: the integration-test zip from Maven Central, loopback, basic
auth; here without the one-slot write queue the tests use to provoke rejections) and generates ``--items``
distinct complaints as a crawl delivers them (records with HTML fragments). Then, in interleaved rounds (the
side that goes first alternates), each into a fresh index:

1. **pipeline**: the records through the crawl's own pipeline components, Clean -> Normalize -> Dedupe ->
   Store, into an ``ElasticsearchStore`` (``init`` not timed). Per batch of ``crawl.batch_size`` (100,
   ``--batch``) the
   store step makes one near-duplicate candidate lookup (``lsh_candidates``: one search for ids and versions,
   a second one only for documents the store does not hold) and one upsert (one bulk of ``create``). Since
   2026-11-30 20:00 each batch is looked up, grouped and staged on the store's grouping thread and written on its
   writer thread (crawlers/store_writes.py) while the crawl's thread cleans and signs the next items, and a full
   batch grows (up to five times) while the batch before is still in the air.
2. **raw bulk**: ``elasticsearch.helpers.bulk`` of the documents the product writes for the same items
   (built once before the rounds with ``service.store.es_layout.document``) into an index with the same
   mappings and settings (the items index's sort order included, since 2026-11-30 09:00).

Both sides end when their last write is acknowledged and a refresh made it searchable. Reported: medians of
wall seconds and documents/s, CPU milliseconds per document of this process (the client side: everything
the product computes) and of the Elasticsearch node, and the ratio of documents/s (goal >= 0.7). Caches
the product keeps between batches are emptied between rounds, so no round reuses another's work.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from elasticsearch import Elasticsearch, helpers  # noqa: E402
from scrapy.statscollectors import MemoryStatsCollector  # noqa: E402
from scrapy.utils.test import get_crawler  # noqa: E402

from benchmarks.matching import make_item, place_pool  # noqa: E402
from crawlers.items import RawItem  # noqa: E402
from crawlers.pipelines import CleanPipeline, DedupePipeline, NormalizePipeline, Shared, StorePipeline, to_item  # noqa: E402
from crawlers.sources import CrawlDefaults  # noqa: E402
from crawlers.text import html_to_text  # noqa: E402
from service import clock  # noqa: E402
from service.items import duplicates  # noqa: E402
from service.settings import ElasticsearchSettings  # noqa: E402
from service.store.base import search_key  # noqa: E402
from service.store.elasticsearch import ElasticsearchStore  # noqa: E402
from service.store.es_layout import document, item_index_settings, item_mappings  # noqa: E402
from tests.servers.elasticsearch import elasticsearch_server  # noqa: E402

# What the store step hands to the store at once: crawl.batch_size's default. --batch to compare (500 measured
# no faster on 2026-11-30).
BATCH = CrawlDefaults().batch_size


def records(count: int) -> list[RawItem]:
    """Distinct generated complaints as a detail page yields them (HTML fragments, a date to parse)."""
    places = place_pool(random.Random(1), 20000)
    out = []
    for n in range(count):
        title, body = make_item(random.Random(n), places)
        out.append(
            RawItem(
                source="bench",
                channel="hotline",
                url=f"http://127.0.0.1/d_{n}.html",
                title=f"<h1>{title} {n}</h1>",
                content=f"<div><p>{body}</p><p>编号 {n}</p></div>",
                published_at="2023年7月21日 10:00",
            )
        )
    return out


def cpu_of_children() -> float:
    """CPU seconds of this process's descendants (the Elasticsearch node and its launcher), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    tasks = Path(f"/proc/{os.getpid()}/task").glob("*/children")
    pending = [int(child) for task in tasks for child in task.read_text().split()]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:13]) / tick
            for task in Path(f"/proc/{current}/task").glob("*/children"):
                pending.extend(int(c) for c in task.read_text().split())
    return total


def forget_caches() -> None:
    """Empty what the product remembers between batches, so a round never reuses another round's work."""
    duplicates._recent.entries.clear()
    duplicates._recent.size = 0
    html_to_text.cache_clear()
    search_key.cache_clear()


class Bench:
    def __init__(self, url: str, username: str, password: str, raws: list[RawItem], batch: int = BATCH) -> None:
        self.batch = batch
        self.settings = {"hosts": [url], "username": username, "password": password, "request_timeout": 60.0}
        self.es = Elasticsearch([url], basic_auth=(username, password), request_timeout=60)
        self.raws = raws
        now = clock.now()
        items = [duplicates.with_signature(to_item(r, now, clock.SHANGHAI)) for r in raws]
        self.docs = []
        for seq, item in enumerate(items):
            doc = document(item.model_copy(update={"stored_at": now, "updated_at": now, "event_id": item.id}))
            doc["stored_seq"] = seq
            self.docs.append((item.id, doc))
        self.prefixes: list[str] = []

    def pipeline(self) -> int:
        """The records through Clean -> Normalize -> Dedupe -> Store into a fresh store; items stored."""
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        self.prefixes.append(prefix)
        store = ElasticsearchStore(ElasticsearchSettings(index_prefix=prefix, **self.settings))
        store.init()
        crawler = get_crawler(settings_dict={"YUQING_STORE": Shared(store), "YUQING_BATCH_SIZE": self.batch})
        crawler.stats = MemoryStatsCollector(crawler)
        steps: list[Any] = [
            CleanPipeline.from_crawler(crawler),
            NormalizePipeline.from_crawler(crawler),
            DedupePipeline.from_crawler(crawler),
        ]
        sink = StorePipeline.from_crawler(crawler)

        def run() -> None:
            for raw in self.raws:
                value: Any = raw
                for step in steps:
                    value = step.process_item(value)
                sink.process_item(value)
            sink.close_spider()
            store._refresh()

        self.timed = _timed(run)
        stored = int(crawler.stats.get_value("yuqing/new", 0))
        store.close()
        return stored

    def raw(self) -> int:
        """helpers.bulk of the same documents into a fresh index with the same mappings; documents indexed."""
        index = f"bench-raw-{uuid.uuid4().hex[:8]}"
        self.prefixes.append(index)
        es_settings = ElasticsearchSettings(**self.settings)
        self.es.indices.create(
            index=index, settings=item_index_settings(es_settings), mappings=item_mappings(es_settings.analyzer)
        )

        def run() -> None:
            actions = ({"_index": index, "_id": i, "_source": doc} for i, doc in self.docs)
            # The test node accepts requests up to 4 MB (tests/servers/elasticsearch.py MAX_CONTENT_MB).
            helpers.bulk(self.es, actions, max_chunk_bytes=3 * 1024 * 1024)
            self.es.indices.refresh(index=index)

        self.timed = _timed(run)
        return int(self.es.count(index=index)["count"])

    def clean_up(self) -> None:
        for name in self.prefixes:
            self.es.indices.delete(index=f"{name}*", ignore_unavailable=True)
        self.prefixes.clear()


def _timed(run: Callable[[], None]) -> tuple[float, float, float]:
    cpu, node, start = time.process_time(), cpu_of_children(), time.perf_counter()
    run()
    return time.perf_counter() - start, time.process_time() - cpu, cpu_of_children() - node


def main() -> None:
    """Start the node, run the interleaved rounds, print the medians and the ratio as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=BATCH, help="items per store write (crawl.batch_size)")
    args = parser.parse_args()
    raws = records(args.items)
    with elasticsearch_server(write_queue_size=None) as server:
        bench = Bench(server.url, server.username, server.password, raws, args.batch)
        sides = {"pipeline": bench.pipeline, "raw_bulk": bench.raw}
        figures: dict[str, list[tuple[float, float, float]]] = {"pipeline": [], "raw_bulk": []}
        for name in sides:  # warm-up of the node and of both code paths, not counted
            forget_caches()
            sides[name]()
        bench.clean_up()
        # As a crawl process does before its crawl starts (crawlers/crawl_process.py): what was set up by now
        # (here also the records and the raw side's documents) is kept out of the collector's full passes.
        gc.freeze()
        for round_no in range(args.rounds):
            order = ("pipeline", "raw_bulk") if round_no % 2 == 0 else ("raw_bulk", "pipeline")
            for name in order:
                forget_caches()
                count = sides[name]()
                assert count == len(raws), f"{name} stored {count} of {len(raws)}"
                figures[name].append(bench.timed)
                wall, cpu, node = bench.timed
                line = f"round {round_no + 1} {name}: {wall:.1f} s, {cpu:.1f} s CPU here, {node:.1f} s CPU in ES"
                print(line, file=sys.stderr)
            bench.clean_up()
    result: dict[str, Any] = {
        "documents": len(raws),
        "rounds": args.rounds,
        "batch": args.batch,
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }
    for name, runs in figures.items():
        wall = statistics.median(r[0] for r in runs)
        result[name] = {
            "seconds": round(wall, 2),
            "docs_per_s": round(len(raws) / wall, 1),
            "client_cpu_ms_per_doc": round(1000 * statistics.median(r[1] for r in runs) / len(raws), 2),
            "es_cpu_ms_per_doc": round(1000 * statistics.median(r[2] for r in runs) / len(raws), 2),
        }
    result["ratio"] = round(result["pipeline"]["docs_per_s"] / result["raw_bulk"]["docs_per_s"], 2)
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
