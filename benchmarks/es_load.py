"""Load millions of items into one persistent Elasticsearch node fast, as the store would have written them.

Usage::

    nice -n 10 python benchmarks/es_load.py node --dir /tmp/yq-es10m --heap 4g      # start (or restart) the node
    nice -n 10 python benchmarks/es_load.py load --dir /tmp/yq-es10m --total 10000000 --workers 3 --until 06:15
    python benchmarks/es_load.py stop --dir /tmp/yq-es10m

``node`` lays the node out as the tests do (integration-test zip, loopback, basic auth) but in ``--dir``, so the
data survives for re-measuring; its URL and password are kept in ``<dir>/conn.json`` and ``scale_es.py`` uses
the node through ``YUQING_TEST_ES_URL``. ``load`` creates the index with the product's own ``store.init()``
(template, mappings, index sort) and writes the documents the product's ``es_layout.document`` builds for the
items of ``benchmarks/scale.py`` (one year of dates for ``--total`` items, ``stored_at``/``stored_seq`` set as
``ElasticsearchStore.upsert`` sets them for a new item), but with raw ``helpers.bulk`` from ``--workers``
processes, refresh off and no replica while loading (restored at the end): the store's own write path is
measured by ``benchmarks/es_ingest.py``; this only gets an index of that size within the time at hand.
Loading resumes from the number of documents already in the index and stops at ``--until`` (UTC, HH:MM).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import secrets
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from elasticsearch import Elasticsearch, helpers
from pydantic import SecretStr

from benchmarks.matching import place_pool
from benchmarks.scale import make_items
from service.settings import ElasticsearchSettings
from service.store.elasticsearch import ElasticsearchStore
from service.store.es_layout import document
from tests.servers import elasticsearch as es_server
from tests.servers.process import free_port

PREFIX = "yq10m"
CHUNK = 2000


def start_node(run: Path, heap: str) -> dict[str, Any]:
    """Start the node in ``run`` (laid out on first use) and wait until it answers; returns conn.json."""
    cached = es_server.distribution(es_server.ES_VERSION)
    user = es_server.run_as()
    conn_file = run / "conn.json"
    if conn_file.exists():
        conn = json.loads(conn_file.read_text())
        home = Path(conn["home"])
    else:
        run.mkdir(parents=True, exist_ok=True)
        run.chmod(0o755)  # the node's user must reach its own directory inside
        home = es_server._node_dir(cached, run, user)
        http_port, transport_port = free_port(), free_port()
        (run / "config" / "elasticsearch.yml").write_text(
            es_server._config(home, run, http_port, transport_port, None), encoding="utf-8"
        )
        user.chown_tree(run)
        password = secrets.token_urlsafe(18)
        env = es_server._env(run / "config", run, heap)
        es_server._add_superuser(home, run, env, password, user)
        conn = {"url": f"http://127.0.0.1:{http_port}", "password": password, "home": str(home)}
        conn_file.write_text(json.dumps(conn))
    env = es_server._env(run / "config", run, heap)
    # Measured as production runs it: the tests' nodes stop at the JIT's quick tier (C1) to start faster,
    # which makes long-running search code slower; a node started before this ran with C1 (08:00 run).
    env["ES_JAVA_OPTS"] = env["ES_JAVA_OPTS"].replace(es_server.JIT, "").strip()
    env["CLI_JAVA_OPTS"] = ""
    proc = es_server._launch(home, run, env, user)
    es_server._wait_ready(conn["url"], (es_server.USERNAME, conn["password"]), proc, run / "logs" / "console.log")
    conn["pid"] = proc.pid
    conn_file.write_text(json.dumps(conn))
    return conn


def store_of(conn: dict[str, Any]) -> ElasticsearchStore:
    settings = ElasticsearchSettings(
        hosts=[conn["url"]],
        username=es_server.USERNAME,
        password=SecretStr(conn["password"]),
        index_prefix=PREFIX,
        request_timeout=120,
    )
    return ElasticsearchStore(settings)


def documents(first: int, count: int, total: int, places: list[str], now: datetime) -> list[dict[str, Any]]:
    """What ElasticsearchStore.upsert writes for these items as new ones (see its _upsert_chunk)."""
    base_seq = int(now.timestamp() * 1_000_000) * 1000
    out = []
    for item in make_items(first, count, places, per_year=total):
        item = item.with_fingerprint()
        doc = document(item.model_copy(update={"stored_at": now, "updated_at": now}))
        doc["stored_seq"] = base_seq + int(item.external_id.split("-")[1])
        out.append(doc)
    return out


def _work(args: tuple[dict[str, Any], str, list[int], int, str]) -> int:
    conn, index, firsts, total, now_iso = args
    es = Elasticsearch(conn["url"], basic_auth=(es_server.USERNAME, conn["password"]), request_timeout=300)
    places = place_pool(random.Random(1), 2000)
    now = datetime.fromisoformat(now_iso)
    done = 0
    for first in firsts:
        docs = documents(first, min(CHUNK, total - first), total, places, now)
        actions = ({"_index": index, "_id": d["id"], "_source": d} for d in docs)
        # The node accepts requests up to tests.servers.elasticsearch.MAX_CONTENT_MB (4 MB).
        ok, _errors = helpers.bulk(es, actions, chunk_size=CHUNK, max_chunk_bytes=3 * 2**20, max_retries=5)
        done += ok
    return done


def load(conn: dict[str, Any], total: int, workers: int, until: str, max_gb: float) -> None:
    store = store_of(conn)
    store.init()
    es = store._es
    index = next(iter(es.indices.get_alias(name=store.alias)))
    es.indices.put_settings(
        index=index,
        settings={"refresh_interval": "-1", "number_of_replicas": 0, "translog.durability": "async"},
    )
    es.indices.refresh(index=index)
    have = es.count(index=index)["count"]
    start = (have // CHUNK) * CHUNK
    print(f"{datetime.now(UTC):%H:%M:%S} index {index}: {have} documents, loading from {start} to {total}", flush=True)
    deadline = datetime.now(UTC).replace(hour=int(until[:2]), minute=int(until[3:]), second=0)
    now_iso = datetime.now(UTC).isoformat()
    # Work in steps of 48 chunks (≈100k items): progress, size and deadline are checked between steps.
    step = CHUNK * 48
    t0, loaded = time.monotonic(), 0
    with multiprocessing.Pool(workers) as pool:
        for lo in range(start, total, step):
            firsts = list(range(lo, min(lo + step, total), CHUNK))
            parts = [(conn, index, firsts[w::workers], total, now_iso) for w in range(workers)]
            loaded += sum(pool.map(_work, parts))
            stats = es.indices.stats(index=index, metric="store,docs")["_all"]["primaries"]
            size_gb = stats["store"]["size_in_bytes"] / 2**30
            reached = lo + len(firsts) * CHUNK if lo + step < total else total
            rate = loaded / (time.monotonic() - t0)
            projected = size_gb / max(reached, 1) * total
            print(
                f"{datetime.now(UTC):%H:%M:%S} reached {min(reached, total):,} ({rate:,.0f} docs/s since start),"
                f" {size_gb:.2f} GB on disk, {projected:.1f} GB projected at {total:,}",
                flush=True,
            )
            if projected > max_gb and reached >= 100_000:
                print(f"stopping: {projected:.1f} GB projected exceeds --max-gb {max_gb}", flush=True)
                break
            if datetime.now(UTC) >= deadline:
                print("stopping: --until reached", flush=True)
                break
    es.indices.put_settings(index=index, settings={"refresh_interval": None, "translog.durability": "request"})
    es.indices.refresh(index=index)
    print(f"{datetime.now(UTC):%H:%M:%S} done: {es.count(index=index)['count']:,} documents", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["node", "load", "stop"])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/yq-es10m"))
    parser.add_argument("--heap", default="4g")
    parser.add_argument("--total", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--until", default="06:15")
    parser.add_argument("--max-gb", type=float, default=40.0)
    args = parser.parse_args()
    if args.command == "node":
        conn = start_node(args.dir, args.heap)
        print(json.dumps(conn))
    elif args.command == "stop":
        conn = json.loads((args.dir / "conn.json").read_text())
        # The node runs in its own session (see tests.servers.elasticsearch._launch): stop that group only.
        os.killpg(conn["pid"], signal.SIGTERM)
    else:
        load(json.loads((args.dir / "conn.json").read_text()), args.total, args.workers, args.until, args.max_gb)


if __name__ == "__main__":
    main()
