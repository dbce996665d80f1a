"""Items stored before the LSH band index existed get their band keys at `yuqing init` (both stores),
so a repost of an old item joins its event instead of opening a second ticket."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from service.items.duplicates import assign_events, backfill_bands
from service.settings import ElasticsearchSettings
from service.store.base import Item
from service.store.elasticsearch import ElasticsearchStore
from service.store.sqlite import SqliteStore
from tests.items.test_reposts import ORIGINAL, ORIGINAL_TITLE, REPOST, REPOST_TITLE, _news
from tests.ledger.builders import run_cli

# The items table of the release before band backfill (SimHash columns, band keys without a marker).
LEGACY_SCHEMA = """
CREATE TABLE items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, source TEXT NOT NULL,
    channel TEXT NOT NULL, external_id TEXT, url TEXT, title TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '', published_at TEXT, fetched_at TEXT NOT NULL, department TEXT,
    status TEXT, reply TEXT, replied_at TEXT, event_id TEXT, simhash INTEGER,
    band0 INTEGER, band1 INTEGER, band2 INTEGER, band3 INTEGER, fingerprint TEXT NOT NULL,
    stored_at TEXT NOT NULL, updated_at TEXT NOT NULL, matched_at TEXT, extra TEXT NOT NULL DEFAULT '{}',
    title_masked TEXT NOT NULL DEFAULT '', content_masked TEXT NOT NULL DEFAULT ''
);
CREATE INDEX items_band0 ON items(band0);
CREATE TABLE item_lsh (band INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (band, seq)) WITHOUT ROWID;
"""
STAMP = "2026-03-01T02:00:00.000000+00:00"


def _legacy_row(conn: sqlite3.Connection, item: Item, simhash: int) -> None:
    conn.execute(
        "INSERT INTO items (id, source, channel, external_id, title, content, fetched_at, fingerprint,"
        " stored_at, updated_at, matched_at, event_id, simhash, band0) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (item.id, item.source, item.channel, item.external_id, item.title, item.content, STAMP, "f", STAMP, STAMP,
         STAMP, item.id, simhash, simhash & 0xFFFF),
    )  # fmt: skip


def _repost_event(store, original: Item) -> str | None:
    grouped, _ = assign_events(store, [_news(2, REPOST_TITLE, REPOST, source="portal")])
    return grouped[0].event_id


def test_yuqing_init_backfills_band_keys_of_an_old_sqlite_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = data / "items.sqlite3"
    original = _news(1, ORIGINAL_TITLE, ORIGINAL)
    others = [_news(10 + n, f"旧工单{n}", f"市民反映第{n}号小区路灯不亮，晚上出行不便。") for n in range(3)]
    conn = sqlite3.connect(path)
    conn.executescript(LEGACY_SCHEMA)
    _legacy_row(conn, original, 12345)
    for n, item in enumerate(others):
        _legacy_row(conn, item, 999 + n)
    conn.commit()
    conn.close()

    store = SqliteStore(path)
    try:
        assert _repost_event(store, original) != original.id  # the old item is invisible to detection
    finally:
        store.close()
    config = tmp_path / "config"
    config.mkdir()
    env = {
        "YUQING_DATA_DIR": str(data),
        "YUQING_DATABASE__URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "YUQING_STORE__BACKEND": "sqlite",
    }
    result = run_cli("--config", str(config), "init", env=env)
    assert result.returncode == 0, result.stderr
    assert "已为 4 条旧条目补建转载比对索引" in result.stdout

    store = SqliteStore(path)
    try:
        assert _repost_event(store, original) == original.id
        assert list(store.iter_without_bands()) == []
        assert store.get(original.id).matched_at is not None  # nothing else of the old rows changed
    finally:
        store.close()
    again = run_cli("--config", str(config), "init", env=env)
    assert again.returncode == 0, again.stderr
    assert "补建" not in again.stdout  # done once


@pytest.mark.elasticsearch
def test_backfill_gives_old_elasticsearch_documents_band_keys_in_batches(
    es_settings: ElasticsearchSettings, frozen_clock
) -> None:
    store = ElasticsearchStore(es_settings)
    store.init()
    original = _news(1, ORIGINAL_TITLE, ORIGINAL)
    fillers = [_news(10 + n, f"旧稿件{n}", f"第{n}期城市建设简报：道路维修进展顺利。") for n in range(4)]
    try:
        # Documents as the release before MinHash wrote them: a SimHash and its bands, no band keys.
        for item in [original, *fillers]:
            doc = item.model_dump(mode="json", exclude={"lsh"}) | {"simhash": 12345, "band0": 57, "event_id": item.id}
            # The test node's write queue holds one task (to exercise the store's bulk retries): a raw write
            # retries a 429 rejection itself.
            raw = store._es.options(retry_on_status=(429,), max_retries=20)
            raw.index(index=store.alias, id=item.id, document=doc, refresh=True)
        assert _repost_event(store, original) != original.id
        store.init()  # upgrading keeps the documents
        assert backfill_bands(store, batch_size=2) == 5
        assert _repost_event(store, original) == original.id
        assert backfill_bands(store) == 0
        assert store.get(original.id).title == ORIGINAL_TITLE  # old fields are not read back as item fields
    finally:
        store.close()
