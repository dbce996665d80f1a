"""What every item store backend must do; runs on SQLite and on a real Elasticsearch."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service import clock
from service.masking import mask_text
from service.store import elasticsearch, sqlite_search
from service.store.base import ItemQuery, Store
from tests.store.builders import DAY0, make_item
from tests.store.conftest import START


def test_upsert_counts_new_updated_and_unchanged(store: Store) -> None:
    items = [make_item(n) for n in range(3)]
    first = store.upsert(items)
    assert sorted(first.new) == sorted(i.id for i in items)
    assert first.updated == first.unchanged == first.dead_lettered == []

    changed = items[1].model_copy(update={"content": "市民反映问题已经变化"})
    second = store.upsert([items[0], changed, items[2], make_item(3)])
    assert second.unchanged == [items[0].id, items[2].id]
    assert second.updated == [changed.id]
    assert second.new == [make_item(3).id]
    assert store.count() == 4


def test_a_recrawl_that_changes_only_bookkeeping_is_unchanged(store: Store) -> None:
    item = make_item(1)
    store.upsert([item])
    later = item.model_copy(update={"fetched_at": item.fetched_at + timedelta(days=3)})
    assert store.upsert([later]).unchanged == [item.id]


def test_update_keeps_discovery_match_and_event_but_takes_new_content(
    store: Store, frozen_clock: clock.FrozenClock
) -> None:
    item = make_item(1)
    store.upsert([item])
    frozen_clock.advance(timedelta(minutes=5))
    store.mark_matched([item.id])
    store.set_event([item.id], "event-1")
    frozen_clock.advance(timedelta(hours=2))
    store.upsert([item.model_copy(update={"status": "已办结", "reply": "已处理"})])

    stored = store.get(item.id)
    assert stored is not None
    assert stored.status == "已办结"
    assert stored.reply == "已处理"
    assert stored.stored_at == START
    assert stored.matched_at == START + timedelta(minutes=5)
    assert stored.updated_at == START + timedelta(hours=2, minutes=5)
    assert stored.event_id == "event-1"


def test_items_round_trip_with_aware_times_and_extra(store: Store) -> None:
    item = make_item(7, department="市生态环境局", extra={"phone_masked": "138****0000", "tags": ["环保"]})
    store.upsert([item])
    stored = store.get(item.id)
    assert stored is not None
    assert stored.published_at == item.published_at
    assert stored.published_at.utcoffset() == timedelta(0)
    assert stored.department == "市生态环境局"
    assert stored.extra == item.extra
    assert stored.fingerprint == item.compute_fingerprint()


def test_the_sources_own_work_order_number_is_stored_and_a_later_one_updates_the_item(store: Store) -> None:
    without = make_item(8)
    store.upsert([without])
    assert store.get(without.id).order_no is None
    numbered = make_item(8, order_no="GD20260000123").with_fingerprint()
    assert store.upsert([numbered]).updated == [numbered.id]  # the number appearing later is a change
    assert store.get(numbered.id).order_no == "GD20260000123"
    # Items without a number keep the fingerprint they had before the field existed (no mass re-write).
    assert without.compute_fingerprint() == make_item(8).compute_fingerprint()


def test_get_and_get_many_keep_the_order_asked(store: Store) -> None:
    items = [make_item(n) for n in range(4)]
    store.upsert(items)
    wanted = [items[2].id, "no-such-item", items[0].id, items[3].id]
    assert [i.id for i in store.get_many(wanted)] == [items[2].id, items[0].id, items[3].id]
    assert store.get("no-such-item") is None
    assert store.get_many([]) == []


def test_search_matches_a_chinese_phrase_exactly(store: Store) -> None:
    together = make_item(1, title="关于化工厂排污的投诉", content="夜间有刺鼻气味")
    apart = make_item(2, title="化工园区附近的厂房", content="化工和厂都在这里，但不连在一起")
    in_content = make_item(3, title="群众来信", content="河边那家化工厂又在排放")
    store.upsert([together, apart, in_content])

    page = store.search(ItemQuery(q="化工厂"))
    assert {i.id for i in page.results} == {together.id, in_content.id}
    assert page.total == 2
    # Every term is required.
    both = store.search(ItemQuery(q="化工厂 刺鼻"))
    assert [i.id for i in both.results] == [together.id]
    assert store.search(ItemQuery(q="化工厂 死鱼")).total == 0


def test_text_is_kept_as_published_and_search_folds_case_and_width(store: Store) -> None:
    full = make_item(1, title="关于（二期）小区ＡＢ栋供暖", content="室温只有１２度，请尽快解决！")
    store.upsert([full])
    kept = store.get(full.id)
    assert kept is not None
    assert kept.title == "关于（二期）小区ＡＢ栋供暖"
    assert kept.content == "室温只有１２度，请尽快解决！"
    for q in ("12度", "１２度", "ab栋", "(二期)", "度,请", "12"):
        assert [i.id for i in store.search(ItemQuery(q=q)).results] == [full.id], q
    assert store.search(ItemQuery(q="13度")).total == 0


def test_search_filters_by_channel_source_and_published_range(store: Store) -> None:
    hotline = make_item(1)
    mailbox = make_item(2, channel="mailbox", source="mayor-mail")
    media = make_item(30, channel="media", source="news")
    store.upsert([hotline, mailbox, media])

    assert [i.id for i in store.search(ItemQuery(channel="mailbox")).results] == [mailbox.id]
    assert [i.id for i in store.search(ItemQuery(source="news")).results] == [media.id]
    # from is inclusive, to is exclusive.
    window = ItemQuery(date_from=DAY0 + timedelta(hours=1), date_to=DAY0 + timedelta(hours=30))
    assert [i.id for i in store.search(window).results] == [mailbox.id, hotline.id]
    assert store.count(window) == 2
    assert store.count(ItemQuery(channel="media", source="demo-12345")) == 0


def test_search_pages_newest_published_first_with_total(store: Store) -> None:
    items = [make_item(n) for n in range(7)]
    store.upsert(items)
    newest_first = [i.id for i in reversed(items)]

    pages = [store.search(ItemQuery(page=p, size=3)) for p in (1, 2, 3, 4)]
    assert [p.total for p in pages] == [7, 7, 7, 7]
    assert [len(p.results) for p in pages] == [3, 3, 1, 0]
    assert [i.id for p in pages for i in p.results] == newest_first


def test_texts_are_read_newest_first_a_page_at_a_time_from_the_masked_copy_on_request(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What rule trials read: plain rows, the query's filters and terms, undated items last, no count."""
    monkeypatch.setattr(sqlite_search, "TEXT_PAGE", 3)
    monkeypatch.setattr(elasticsearch, "_TEXT_PAGE", 3)
    items = [
        make_item(n, title=f"排污工单{n}" if n % 2 else f"工单{n}", content=f"电话13812345{n:03d}") for n in range(7)
    ]
    items.append(make_item(7, title="排污工单7", published_at=None))
    store.upsert(items)
    by_id = {i.id: i for i in items}

    pages = list(store.iter_texts(ItemQuery()))
    assert [len(p) for p in pages] == [3, 3, 2]
    rows = [row for page in pages for row in page]
    assert [by_id[r[0]].external_id for r in rows] == [f"WO-{n}" for n in (6, 5, 4, 3, 2, 1, 0, 7)]
    assert rows[0] == (items[6].id, "demo-12345", items[6].published_at, "工单6", "电话13812345006")
    assert rows[-1][2] is None

    masked = [row for page in store.iter_texts(ItemQuery(masked=True), limit=4) for row in page]
    assert [r[0] for r in masked] == [r[0] for r in rows[:4]]
    assert [r[4] for r in masked] == [mask_text(by_id[r[0]].content) for r in masked]
    assert masked[0][4] == "电话138****5006"

    def ids(query: ItemQuery) -> list[str | None]:
        return [by_id[r[0]].external_id for page in store.iter_texts(query) for r in page]

    assert ids(ItemQuery(q="排污")) == ["WO-5", "WO-3", "WO-1", "WO-7"]
    assert ids(ItemQuery(q="排污", date_from=DAY0 + timedelta(hours=2))) == ["WO-5", "WO-3"]
    # Fewer items in the window than matches of the term: SQLite walks the window instead.
    assert ids(ItemQuery(q="排污", date_from=DAY0 + timedelta(hours=4))) == ["WO-5"]
    assert ids(ItemQuery(q="排污", channel="mailbox")) == []


def test_ids_are_listed_without_texts_and_texts_read_by_id(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """What rule trials count with: ids in the listing order (their keys sort to it, undated last), and the
    texts of the few items they list or evaluate, read by handle from the masked copy or the original."""
    monkeypatch.setattr(sqlite_search, "TEXT_PAGE", 3)
    monkeypatch.setattr(elasticsearch, "_ID_PAGE", 3)
    monkeypatch.setattr(elasticsearch, "_ID_PAGE_FIRST", 3)
    items = [
        make_item(n, title=f"排污工单{n}" if n % 2 else f"工单{n}", content=f"电话13812345{n:03d}") for n in range(7)
    ]
    items.append(make_item(7, title="排污工单7", published_at=None))
    # Two at the same instant: the storage order decides, as in the listing.
    items.append(make_item(8, title="排污工单8", published_at=items[6].published_at))
    store.upsert(items)
    listed = [i.id for i in store.search(ItemQuery(size=20)).results]
    pages = list(store.iter_ids(ItemQuery()))
    assert [len(p) for p in pages] == [3, 3, 3]
    rows = [row for page in pages for row in page]
    assert sorted(rows, key=lambda r: r[1], reverse=True) == rows
    handles = [r[0] for r in rows]
    by_handle = store.texts_of(handles, masked=False)
    assert [by_handle[h][0] for h in handles] == listed
    of = {by_handle[h][0]: h for h in handles}
    assert [r[0] for p in store.iter_ids(ItemQuery(q="排污"), limit=2) for r in p] == [
        of[i.id] for i in store.search(ItemQuery(q="排污")).results[:2]
    ]
    masked = store.texts_of([of[items[3].id], of[items[0].id]], masked=True)
    assert masked == {
        of[items[3].id]: (items[3].id, "demo-12345", items[3].published_at, "排污工单3", "电话138****5003"),
        of[items[0].id]: (items[0].id, "demo-12345", items[0].published_at, "工单0", "电话138****5000"),
    }
    assert by_handle[of[items[3].id]][4] == "电话13812345003"
    # Exact where the index holds every substring; Elasticsearch only for one Han character.
    assert store.finds_exactly("排") is True
    assert store.finds_exactly("排污") is (store.backend == "sqlite")


def test_iter_unmatched_with_mark_matched_returns_each_item_once(store: Store, frozen_clock: clock.FrozenClock) -> None:
    early = [make_item(n) for n in range(5)]
    store.upsert(early)
    frozen_clock.advance(timedelta(minutes=1))
    late = [make_item(n) for n in range(5, 8)]
    store.upsert(late)

    seen: list[str] = []
    for batch in store.iter_unmatched(batch_size=3):
        assert len(batch) <= 3
        seen += [i.id for i in batch]
        store.mark_matched([i.id for i in batch])
    assert sorted(seen) == sorted(i.id for i in early + late)
    assert len(seen) == len(set(seen))
    # Oldest stored first: everything of the first upsert before anything of the second.
    assert set(seen[:5]) == {i.id for i in early}

    assert list(store.iter_unmatched()) == []
    assert store.counts()["unmatched"] == 0
    frozen_clock.advance(timedelta(hours=1))
    store.mark_matched([early[0].id])  # a second match does not move the first match time
    stored = store.get(early[0].id)
    assert stored is not None
    assert stored.matched_at == START + timedelta(minutes=1)


def test_an_item_just_upserted_is_unmatched_at_once(store: Store) -> None:
    store.upsert([make_item(1)])
    assert [[i.id for i in b] for b in store.iter_unmatched()] == [[make_item(1).id]]


def test_set_event_groups_items(store: Store) -> None:
    items = [make_item(n) for n in range(3)]
    store.upsert(items)
    store.set_event([items[0].id, items[2].id, "not-stored"], "evt-42")
    assert {i.id for i in store.search(ItemQuery(event_id="evt-42")).results} == {items[0].id, items[2].id}
    assert store.get(items[1].id).event_id is None  # type: ignore[union-attr]
    assert store.get("not-stored") is None


def test_items_without_band_keys_are_listed_until_their_keys_are_set(store: Store) -> None:
    signed = make_item(1, lsh=[11, 12])
    unsigned = [make_item(n) for n in range(2, 7)]  # written without band keys
    store.upsert([signed, *unsigned])
    batches = list(store.iter_without_bands(batch_size=2))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert {i.id for b in batches for i in b} == {i.id for i in unsigned}
    store.set_bands({unsigned[0].id: [31, 32], unsigned[1].id: [], "never-stored": [33]})
    assert {i.id for b in store.iter_without_bands() for i in b} == {i.id for i in unsigned[2:]}
    assert [i.id for i in store.lsh_candidates({"x": [31]})["x"]] == [unsigned[0].id]
    assert store.lsh_candidates({"x": [33]}) == {}
    # New keys replace old ones; a re-crawl written without keys keeps them (and stays done).
    store.set_bands({signed.id: [41]})
    assert store.lsh_candidates({"x": [11]}) == {}
    store.upsert([unsigned[0].model_copy(update={"content": "改过的正文"})])
    assert [i.id for i in store.lsh_candidates({"x": [31]})["x"]] == [unsigned[0].id]
    assert unsigned[0].id not in {i.id for b in store.iter_without_bands() for i in b}


def test_lsh_candidates_answer_a_whole_batch_most_shared_bands_first(store: Store) -> None:
    a = make_item(1, lsh=[11, 12, 13, 14])
    b = make_item(2, lsh=[11, 12, 99])
    c = make_item(3, lsh=[14])
    unsigned = make_item(4)  # written without band keys: not in the band index
    store.upsert([a, b, c, unsigned])
    found = store.lsh_candidates({"x": [11, 12, 13], "y": [14, 500], "z": [777], "w": []}, limit=5)
    assert set(found) == {"x", "y"}  # keys without candidates are absent
    assert [i.id for i in found["x"]] == [a.id, b.id]  # a shares three bands, b two
    assert {i.id for i in found["y"]} == {a.id, c.id}
    assert found["x"][0].title == a.title  # whole items, ready for the exact comparison
    assert [i.id for i in store.lsh_candidates({"x": [11, 12, 13]}, limit=1)["x"]] == [a.id]
    # A re-crawl with new text replaces the item's bands; one written without bands keeps its old ones.
    store.upsert(
        [a.model_copy(update={"content": "改过的正文", "lsh": [21]}), b.model_copy(update={"content": "改", "lsh": []})]
    )
    assert {i.id for i in store.lsh_candidates({"x": [11]})["x"]} == {b.id}
    assert [i.id for i in store.lsh_candidates({"x": [21]})["x"]] == [a.id]


def test_counts_by_channel_source_and_unmatched(store: Store) -> None:
    store.upsert(
        [
            make_item(1),
            make_item(2),
            make_item(3, channel="mailbox", source="mayor-mail"),
            make_item(4, channel="media", source="news"),
        ]
    )
    store.mark_matched([make_item(1).id])
    counts = store.counts()
    assert counts["total"] == 4
    assert counts["unmatched"] == 3
    assert counts["by_channel"] == {"hotline": 2, "mailbox": 1, "media": 1}
    assert counts["by_source"] == {"demo-12345": 2, "mayor-mail": 1, "news": 1}


def test_a_document_the_backend_refuses_is_dead_lettered_not_lost(store: Store) -> None:
    # A band key given unsigned (not folded into a signed 64-bit long) fits neither backend's column.
    bad = make_item(2, lsh=[5, 0xFFFF_0000_0000_0001])
    items = [make_item(1), bad, make_item(3)]
    result = store.upsert(items)
    assert [i for i, _ in result.dead_lettered] == [bad.id]
    assert result.new == [items[0].id, items[2].id]
    assert len(result.new) + len(result.dead_lettered) == len(items)
    assert store.get(bad.id) is None
    assert store.count() == 2
    letters = store.dead_letters()
    assert [d.item_id for d in letters] == [bad.id]
    assert letters[0].reason
    assert letters[0].at == START


def test_health_is_ok_on_a_working_store(store: Store) -> None:
    health = store.health()
    assert health["status"] == "ok"
    assert health["backend"] == store.backend


def test_a_sqlite_store_file_from_before_the_work_order_number_gets_the_column(tmp_path) -> None:
    import sqlite3

    from service.store.sqlite import SqliteStore

    path = tmp_path / "old.sqlite3"
    old = SqliteStore(path)
    old.upsert([make_item(1)])
    old.close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE items DROP COLUMN order_no")  # the file as an earlier release left it
    conn.close()
    store = SqliteStore(path)
    try:
        assert store.get(make_item(1).id).order_no is None
        store.upsert([make_item(2, order_no="GD2")])
        assert store.get(make_item(2).id).order_no == "GD2"
    finally:
        store.close()


def test_day_counts_count_items_by_the_local_day_they_were_first_stored(
    store: Store, frozen_clock: clock.FrozenClock
) -> None:
    from datetime import datetime

    from service.clock import SHANGHAI

    # START is 09:00 in Shanghai on 2026-03-02. Two items that day, one at 23:30 local the same day,
    # one just after local midnight (still 2026-03-02 in UTC: the bucket is the local day), none the day after.
    store.upsert([make_item(1), make_item(2)])
    frozen_clock.set(datetime(2026, 3, 2, 23, 30, tzinfo=SHANGHAI))
    store.upsert([make_item(3)])
    frozen_clock.set(datetime(2026, 3, 3, 0, 10, tzinfo=SHANGHAI))
    store.upsert([make_item(4)])
    store.upsert([make_item(1, content="改过的正文")])  # an update is not a new item
    frozen_clock.set(datetime(2026, 3, 5, 12, 0, tzinfo=SHANGHAI))
    store.upsert([make_item(5)])
    start = datetime(2026, 3, 1, tzinfo=SHANGHAI)
    assert store.day_counts(start, 5) == [0, 3, 1, 0, 1]
    assert store.day_counts(datetime(2026, 3, 3, tzinfo=SHANGHAI), 1) == [1]


def test_day_counts_keep_an_item_stored_in_the_last_millisecond_of_a_local_day_on_that_day(
    store: Store, frozen_clock: clock.FrozenClock
) -> None:
    from datetime import datetime

    from service.clock import SHANGHAI

    # SQLite's julianday() rounds to the millisecond: 23:59:59.9996 in Beijing was counted as the next day's
    # item (or, on the trend's last day, not at all).
    frozen_clock.set(datetime(2026, 3, 2, 23, 59, 59, 999600, tzinfo=SHANGHAI))
    store.upsert([make_item(1)])
    frozen_clock.set(datetime(2026, 3, 3, 0, 0, tzinfo=SHANGHAI))  # the next day's first instant is the next day's
    store.upsert([make_item(2)])
    assert store.day_counts(datetime(2026, 3, 1, tzinfo=SHANGHAI), 3) == [0, 1, 1]
    assert store.day_counts(datetime(2026, 3, 2, tzinfo=SHANGHAI), 1) == [1]
