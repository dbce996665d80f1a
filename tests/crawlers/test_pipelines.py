"""The crawl pipeline as Scrapy builds it: clean -> normalize -> dedupe -> store, one component a step."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from scrapy.exceptions import DropItem, NotConfigured
from scrapy.pipelines import ItemPipelineManager
from scrapy.utils.test import get_crawler

from crawlers.items import RawItem
from crawlers.pipelines import CleanPipeline, DedupePipeline, NormalizePipeline, Shared, StorePipeline, to_item
from crawlers.settings import scrapy_settings
from crawlers.sources import CrawlDefaults
from service.clock import SHANGHAI
from service.store.sqlite import SqliteStore

STEPS = ["CleanPipeline", "NormalizePipeline", "DedupePipeline", "StorePipeline"]


def _built(settings: dict[str, object]) -> list[str]:
    """The pipeline components Scrapy itself builds from ``settings``, in the order items pass them."""
    manager = ItemPipelineManager.from_crawler(get_crawler(settings_dict=settings))
    return [type(component).__name__ for component in manager.middlewares]


def test_the_pipeline_order_is_declared_and_scrapy_builds_it(tmp_path: Path) -> None:
    conf = scrapy_settings(CrawlDefaults())
    declared = sorted(conf["ITEM_PIPELINES"], key=conf["ITEM_PIPELINES"].get)
    assert [name.rsplit(".", 1)[1] for name in declared] == STEPS
    store = SqliteStore(tmp_path / "items.db")
    try:
        assert _built({"ITEM_PIPELINES": conf["ITEM_PIPELINES"], "YUQING_STORE": Shared(store)}) == STEPS
    finally:
        store.close()
    check = scrapy_settings(CrawlDefaults(), check_mode=True)["ITEM_PIPELINES"]
    assert _built({"ITEM_PIPELINES": check}) == ["CleanPipeline", "NormalizePipeline", "CollectPipeline"]


def test_a_crawler_without_a_store_raises_not_configured_and_scrapy_leaves_the_store_out() -> None:
    with pytest.raises(NotConfigured, match="YUQING_STORE"):
        StorePipeline.from_crawler(get_crawler())
    with pytest.raises(NotConfigured):
        StorePipeline.from_crawler(get_crawler(settings_dict={"YUQING_STORE": Shared(None)}))
    conf = scrapy_settings(CrawlDefaults())
    assert _built({"ITEM_PIPELINES": conf["ITEM_PIPELINES"]}) == STEPS[:-1]


def _raw(reply: str = "暂无答复") -> RawItem:
    return RawItem(
        source="hotline",
        channel="hotline",
        url="http://gov.example/12345/detail/1.html",
        external_id="A-1",
        title="<b>路灯</b> 不亮",
        content="<p>幸福路&amp;和平路口</p><p>三盏路灯不亮</p>",
        published_at="2026-11-20 09:30",
        reply=reply,
    )


def test_each_step_does_its_part_and_together_they_make_the_stored_item() -> None:
    crawler = get_crawler()
    cleaned = CleanPipeline.from_crawler(crawler).process_item(_raw())
    assert (cleaned.title, cleaned.content, cleaned.reply) == ("路灯 不亮", "幸福路&和平路口\n三盏路灯不亮", None)
    with pytest.raises(DropItem):
        CleanPipeline.from_crawler(crawler).process_item(RawItem(source="s", channel="hotline", title="<br>"))
    item = NormalizePipeline.from_crawler(crawler).process_item(cleaned)
    assert item.published_at == datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    fetched = item.fetched_at
    assert item == to_item(_raw(), fetched, SHANGHAI)
    # Text that only looks like markup after cleaning stays as it is: nothing is cleaned twice.
    literal = NormalizePipeline.from_crawler(crawler).process_item(
        CleanPipeline.from_crawler(crawler).process_item(_raw(reply="&lt;b&gt;已处理&lt;/b&gt;"))
    )
    assert literal.reply == "<b>已处理</b>"


def test_dedupe_passes_an_item_once_per_crawl_unless_it_changed_and_gives_it_repost_keys() -> None:
    dedupe = DedupePipeline.from_crawler(get_crawler())
    fetched = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    first = dedupe.process_item(to_item(_raw(), fetched, SHANGHAI))
    assert first.lsh, "the near-duplicate keys are set for the store's batch lookup"
    with pytest.raises(DropItem):
        dedupe.process_item(to_item(_raw(), fetched, SHANGHAI))
    changed = dedupe.process_item(to_item(_raw(reply="已修复"), fetched, SHANGHAI))
    assert changed.id == first.id
    assert changed.reply == "已修复"


def test_scrapy_does_not_read_the_spiders_source_at_every_page(monkeypatch: pytest.MonkeyPatch) -> None:
    # Scrapy's check for generators returning a value reads and parses a callback's source, cached by the
    # callback object; a bound method is a new object at every response, so it ran once per page.
    import inspect

    from scrapy.utils import misc

    from crawlers.spiders.base import SourceSpider

    reads: list[int] = []
    real = inspect.getsource
    monkeypatch.setattr(inspect, "getsource", lambda obj: reads.append(1) or real(obj))
    spider = SourceSpider.__new__(SourceSpider)
    spider.settings = get_crawler(settings_dict=scrapy_settings(CrawlDefaults())).settings  # type: ignore[misc]
    for _ in range(3):
        misc.warn_on_generator_with_return_value(spider, spider.parse_detail)
    assert len(reads) == 0
