"""A crawl into Elasticsearch prepares and looks up its next batch while the cluster writes the last one.

The bulk write of a batch mostly waits for the cluster; the crawl used to wait with it, first before it
cleaned a single item more, then before its next candidate lookup. Now the write runs on a thread of its own
and shows its documents to the lookups until the cluster answers, so the next batch is looked up beside it and
reposts of the batch in flight are still found. A write that does not store what it showed (a document the
cluster refuses) makes the crawl look the next batch up again after it, as if it had waited.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import pytest
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from crawlers.items import RawItem
from crawlers.pipelines import CleanPipeline, DedupePipeline, NormalizePipeline, Shared, StorePipeline
from service.settings import ElasticsearchSettings
from service.store.base import Item
from service.store.elasticsearch import ElasticsearchStore

pytestmark = pytest.mark.elasticsearch

# Long enough (and the same in the repost) that repost detection groups the two.
STORY = (
    "河西区幸福路化工厂最近一个月每天夜里十一点以后排放刺鼻气体，附近三个小区的居民门窗紧闭也能闻到，"
    "老人孩子咳嗽不止，居民多次向环保部门反映，至今没有人来处理，希望尽快查处并公开结果。"
)
# A bound for waits that only a broken implementation reaches (one that waits for the write before the lookup).
GATE_SECONDS = 20


class GatedStore(ElasticsearchStore):
    """The real store; its bulk writes wait until the crawl's second lookup is done, every call recorded."""

    def __init__(self, settings: ElasticsearchSettings) -> None:
        super().__init__(settings)
        self.events: list[tuple[str, list[str]]] = []
        self.gate = threading.Event()
        self.writer_threads: set[int] = set()

    def _bulk_write(self, docs: dict[str, dict[str, Any]], create: Collection[str]) -> tuple[dict[str, str], list[str]]:
        self.writer_threads.add(threading.get_ident())
        self.events.append(("write starts", list(docs)))
        if not self.gate.wait(GATE_SECONDS):
            raise TimeoutError("the write waited for the crawl, which waited for the write")
        result = super()._bulk_write(docs, create)
        self.events.append(("write done", list(docs)))
        return result

    def lsh_candidates(self, keys: Mapping[str, Sequence[int]], limit: int = 50) -> dict[str, list[Item]]:
        lookups = sum(kind == "lookup" for kind, _ in self.events)
        self.events.append(("lookup", list(keys)))
        found = super().lsh_candidates(keys, limit=limit)
        if lookups >= 1:
            self.gate.set()  # the second lookup is done: the first write may go on
        return found


def _order(store: GatedStore) -> list[str]:
    """The recorded calls; whether the writer thread started the first write before or after the crawl's second
    lookup is up to the scheduler, so the two read in one order."""
    kinds = [kind for kind, _ in store.events]
    return kinds[:1] + sorted(kinds[1:3]) + kinds[3:]


@pytest.fixture
def gated(shared_es_settings: ElasticsearchSettings) -> Iterator[GatedStore]:
    store = GatedStore(shared_es_settings)
    store.init()
    yield store
    store.gate.set()
    store.close()


def _raw(n: int, title: str, content: str, **fields: Any) -> RawItem:
    url = f"http://gov.example/d/{n}.html"
    return RawItem(source="hotline", channel="hotline", url=url, title=title, content=content, **fields)


def _pipeline(store: ElasticsearchStore) -> tuple[Any, list[Any], StorePipeline]:
    """The crawl's pipeline into ``store`` in batches of two: the crawler, the steps before the store, the store."""
    crawler = get_crawler(settings_dict={"YUQING_STORE": Shared(store), "YUQING_BATCH_SIZE": 2})
    crawler.stats = MemoryStatsCollector(crawler)
    steps: list[Any] = [CleanPipeline(crawler), NormalizePipeline(crawler), DedupePipeline()]
    return crawler, steps, StorePipeline.from_crawler(crawler)


def _feed(steps: list[Any], sink: StorePipeline, raw: RawItem) -> Item:
    """One record through the steps into the store step; the item."""
    value: Any = raw
    for step in steps:
        value = step.process_item(value)
    sink.process_item(value)
    return value


def _crawl(store: ElasticsearchStore, raws: list[RawItem]) -> tuple[list[Item], dict[str, Any]]:
    """The records through the crawl's pipeline in batches of two; the items and the crawl's stats."""
    crawler, steps, sink = _pipeline(store)
    items = [_feed(steps, sink, raw) for raw in raws]
    sink.close_spider()
    return items, crawler.stats.get_stats()


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": "值"}
    for _ in range(depth):
        value = {"level": value}
    return value


OTHER = "幸福路与和平路口三盏路灯坏了两个星期，晚上行人看不清路，希望尽快修复。"
LAST = "市民反映人民路公交站台顶棚破损漏雨，雨天候车的人只能站在雨里。"


def test_the_next_batch_is_looked_up_while_the_last_one_is_written(gated: GatedStore) -> None:
    items, stats = _crawl(
        gated,
        [
            _raw(1, "化工厂夜间排放刺鼻气体", STORY),
            _raw(2, "小区门口路灯不亮", OTHER),
            _raw(3, "【转】居民反映化工厂夜里排放异味", f"来源：河西日报\n{STORY}"),
            _raw(4, "公交站台破损", LAST),
        ],
    )
    original, _other, repost, last = items
    # The first write was answered after the second lookup (it could not be before: the gate), and answered at
    # all: a crawl that waits for the write before the lookup makes it time out instead.
    assert _order(gated) == ["lookup", "lookup", "write starts", "write done", "write starts", "write done"]
    assert "yuqing/errors_store" not in stats
    assert threading.get_ident() not in gated.writer_threads
    # The lookup beside the write found the repost among the items being written.
    assert gated.get(repost.id).event_id == original.id
    assert gated.get(last.id).event_id == last.id
    assert stats.get("yuqing/new") == 4


def test_a_batch_is_looked_up_again_when_the_write_beside_it_stored_less(gated: GatedStore) -> None:
    # Hostile input: an object deeper than the cluster's depth limit. The original is refused (dead-lettered),
    # so its repost must not be put into the event of an item that is not stored.
    items, stats = _crawl(
        gated,
        [
            _raw(1, "化工厂夜间排放刺鼻气体", STORY, extra={"raw": _nested(25)}),
            _raw(2, "小区门口路灯不亮", OTHER),
            _raw(3, "【转】居民反映化工厂夜里排放异味", f"来源：河西日报\n{STORY}"),
            _raw(4, "公交站台破损", LAST),
        ],
    )
    original, _other, repost, _last = items
    assert gated.get(original.id) is None
    assert gated.get(repost.id).event_id == repost.id
    # Looked up beside the write, then again after it.
    assert _order(gated) == ["lookup", "lookup", "write starts", "write done", "lookup", "write starts", "write done"]
    assert stats.get("yuqing/new") == 3
    assert stats.get("yuqing/dead_lettered") == 1


class LookupGatedStore(ElasticsearchStore):
    """The real store; its first candidate lookup waits until the test lets it go, the threads recorded."""

    def __init__(self, settings: ElasticsearchSettings) -> None:
        super().__init__(settings)
        self.gate = threading.Event()
        self.lookup_threads: set[int] = set()

    def lsh_candidates(self, keys: Mapping[str, Sequence[int]], limit: int = 50) -> dict[str, list[Item]]:
        self.lookup_threads.add(threading.get_ident())
        if not self.gate.wait(GATE_SECONDS):
            raise TimeoutError("the lookup waited for the crawl, which waited for the lookup")
        return super().lsh_candidates(keys, limit=limit)


def test_the_crawl_prepares_the_next_items_while_a_batch_is_looked_up(
    shared_es_settings: ElasticsearchSettings,
) -> None:
    store = LookupGatedStore(shared_es_settings)
    store.init()
    try:
        crawler, steps, sink = _pipeline(store)
        raws = [
            _raw(1, "化工厂夜间排放刺鼻气体", STORY),
            _raw(2, "小区门口路灯不亮", OTHER),
            _raw(3, "【转】居民反映化工厂夜里排放异味", f"来源：河西日报\n{STORY}"),
            _raw(4, "公交站台破损", LAST),
        ]
        items = []
        for n, raw in enumerate(raws):
            # The first batch is handed over at the second item; its lookup is held until the third item is
            # through. A crawl that looks the batch up itself would stop here (and the lookup time out).
            items.append(_feed(steps, sink, raw))
            if n == 2:
                assert not store.gate.is_set()
                store.gate.set()
        sink.close_spider()
        stats = crawler.stats.get_stats()
        assert threading.get_ident() not in store.lookup_threads
        assert stats.get("yuqing/new") == 4
        assert "yuqing/errors_store" not in stats
        original, _other, repost, _last = items
        # Grouped as before: the second batch's lookup saw the first batch's items.
        assert store.get(repost.id).event_id == original.id
    finally:
        store.gate.set()
        store.close()


class BrokenLookupStore(ElasticsearchStore):
    """The real store whose first candidate lookup fails with a defect (not the cluster being away)."""

    def __init__(self, settings: ElasticsearchSettings) -> None:
        super().__init__(settings)
        self.lookups = 0

    def lsh_candidates(self, keys: Mapping[str, Sequence[int]], limit: int = 50) -> dict[str, list[Item]]:
        self.lookups += 1
        if self.lookups == 1:
            raise ValueError("坏的候选结果")
        return super().lsh_candidates(keys, limit=limit)


def test_a_batch_that_fails_beside_the_crawl_is_counted_and_the_crawl_goes_on(
    shared_es_settings: ElasticsearchSettings, caplog: pytest.LogCaptureFixture
) -> None:
    store = BrokenLookupStore(shared_es_settings)
    store.init()
    try:
        raws = [_raw(1, "化工厂夜间排放刺鼻气体", STORY), _raw(2, "小区门口路灯不亮", OTHER)]
        raws.append(_raw(3, "公交站台破损", LAST))
        _items, stats = _crawl(store, raws)
    finally:
        store.close()
    # The first batch is lost for this run and says so in the crawl summary; the next one is stored.
    assert stats.get("yuqing/errors_store") == 2
    assert stats.get("yuqing/new") == 1
    assert "写入 2 条条目到存储失败：坏的候选结果" in caplog.text


class CountingGatedStore(LookupGatedStore):
    """The gated store that records how many items each lookup asked for."""

    def __init__(self, settings: ElasticsearchSettings) -> None:
        super().__init__(settings)
        self.asked: list[int] = []

    def lsh_candidates(self, keys: Mapping[str, Sequence[int]], limit: int = 50) -> dict[str, list[Item]]:
        self.asked.append(len(keys))
        return super().lsh_candidates(keys, limit=limit)


def test_while_the_cluster_is_busy_the_next_batch_grows_instead_of_stopping_the_crawl(
    shared_es_settings: ElasticsearchSettings,
) -> None:
    store = CountingGatedStore(shared_es_settings)
    store.init()
    try:
        crawler, steps, sink = _pipeline(store)
        streets = ["幸福路", "和平路", "人民路", "解放路", "建设路", "胜利路", "光明街", "文化街", "新华路", "中山路"]
        for n, street in enumerate(streets):
            # The first batch's lookup is held all along: the crawl goes on, its next batch grows (up to five
            # times crawl.batch_size) instead of waiting for the cluster.
            story = f"{street}{n}号门口的路灯坏了{n + 2}天，晚上行人看不清路。"
            _feed(steps, sink, _raw(n, f"{street}路灯不亮", story))
        assert not store.gate.is_set()
        store.gate.set()
        sink.close_spider()
        stats = crawler.stats.get_stats()
        assert store.asked == [2, 8]
        assert stats.get("yuqing/new") == 10
    finally:
        store.gate.set()
        store.close()
