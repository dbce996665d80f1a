"""A crawl into Elasticsearch prepares its next batch while the cluster writes the last one.

The bulk write of a batch mostly waits for the cluster; the crawl used to wait with it before it cleaned,
normalised and signed a single item more. Now the write runs on a thread of its own, and the next batch's
candidate lookup waits for it, so reposts of the batch in flight are still found.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from crawlers.items import RawItem
from crawlers.pipelines import CleanPipeline, DedupePipeline, NormalizePipeline, Shared, StorePipeline
from service.settings import ElasticsearchSettings
from service.store.base import Item, UpsertResult
from service.store.elasticsearch import ElasticsearchStore

pytestmark = pytest.mark.elasticsearch

# Long enough (and the same in the repost) that repost detection groups the two.
STORY = (
    "河西区幸福路化工厂最近一个月每天夜里十一点以后排放刺鼻气体，附近三个小区的居民门窗紧闭也能闻到，"
    "老人孩子咳嗽不止，居民多次向环保部门反映，至今没有人来处理，希望尽快查处并公开结果。"
)
# A bound for waits that only a broken implementation reaches (the old one wrote in the crawl's own thread).
GATE_SECONDS = 20


class GatedStore(ElasticsearchStore):
    """The real store; its writes wait for the test's go-ahead and every call is recorded in order."""

    def __init__(self, settings: ElasticsearchSettings) -> None:
        super().__init__(settings)
        self.events: list[tuple[str, list[str]]] = []
        self.gate = threading.Event()
        self.writer_threads: set[int] = set()

    def upsert(self, items: Sequence[Item]) -> UpsertResult:
        self.writer_threads.add(threading.get_ident())
        self.events.append(("write starts", [i.id for i in items]))
        if not self.gate.wait(GATE_SECONDS):
            raise TimeoutError("the write waited for the crawl, which waited for the write")
        result = super().upsert(items)
        self.events.append(("write done", [i.id for i in items]))
        return result

    def lsh_candidates(self, keys: Mapping[str, Sequence[int]], limit: int = 50) -> dict[str, list[Item]]:
        self.events.append(("lookup", list(keys)))
        return super().lsh_candidates(keys, limit=limit)


@pytest.fixture
def gated(shared_es_settings: ElasticsearchSettings) -> Iterator[GatedStore]:
    store = GatedStore(shared_es_settings)
    store.init()
    yield store
    store.gate.set()
    store.close()


def _raw(n: int, title: str, content: str) -> RawItem:
    url = f"http://gov.example/d/{n}.html"
    return RawItem(source="hotline", channel="hotline", url=url, title=title, content=content)


def test_the_next_batch_is_prepared_while_the_last_one_is_written(gated: GatedStore) -> None:
    crawler = get_crawler(settings_dict={"YUQING_STORE": Shared(gated), "YUQING_BATCH_SIZE": 2})
    crawler.stats = MemoryStatsCollector(crawler)
    steps: list[Any] = [CleanPipeline(crawler), NormalizePipeline(crawler), DedupePipeline()]
    sink = StorePipeline.from_crawler(crawler)

    def crawl(raw: RawItem) -> Item:
        value: Any = raw
        for step in steps:
            value = step.process_item(value)
        sink.process_item(value)
        return value

    original = crawl(_raw(1, "化工厂夜间排放刺鼻气体", STORY))
    other = crawl(_raw(2, "小区门口路灯不亮", "幸福路与和平路口三盏路灯坏了两个星期，晚上行人看不清路，希望尽快修复。"))
    # The first batch is being written (and waits for the gate): the crawl goes on with the next items.
    first_write = [("lookup", [original.id, other.id]), ("write starts", [original.id, other.id])]
    assert gated.events == first_write
    assert "yuqing/errors_store" not in crawler.stats.get_stats(), "the crawl waited for the write"
    repost = crawl(_raw(3, "【转】居民反映化工厂夜里排放异味", f"来源：河西日报\n{STORY}"))
    assert gated.events == first_write, "no lookup beside a write in flight"
    gated.gate.set()
    crawl(_raw(4, "公交站台破损", "市民反映人民路公交站台顶棚破损漏雨，雨天候车的人只能站在雨里。"))
    sink.close_spider()

    kinds = [kind for kind, _ in gated.events]
    assert kinds == ["lookup", "write starts", "write done", "lookup", "write starts", "write done"]
    assert threading.get_ident() not in gated.writer_threads
    # The lookup after the write found the repost among the items just written.
    assert gated.get(repost.id).event_id == original.id
    stats = crawler.stats.get_stats()
    assert stats.get("yuqing/new") == 4
    assert "yuqing/errors_store" not in stats
