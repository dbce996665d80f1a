"""Item pipelines: clean and normalize raw records, then group near-duplicates and store them in batches."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from scrapy.exceptions import DropItem
from w3lib.url import canonicalize_url

from crawlers.dates import parse_date
from crawlers.items import RawItem
from crawlers.text import html_to_text
from service import clock
from service.items.duplicates import assign_events
from service.store.base import Item, Store, item_id

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class Shared:
    """Hands one object (the store) to every crawler: Scrapy deep-copies settings, this survives it."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __deepcopy__(self, memo: dict[int, Any]) -> Shared:
        return self


# What sites print where no reply exists yet; stored as "no reply", not as a reply text.
_NO_REPLY = {"暂无", "暂无答复", "暂无回复", "暂无回复内容", "无", "-", "--", "/", "待回复", "尚未回复", "未回复"}


def _one_line(fragment: Any) -> str:
    return " ".join(html_to_text(fragment).split("\n")) if isinstance(fragment, str) else ""


def _reply(fragment: Any) -> str | None:
    text = html_to_text(fragment) if isinstance(fragment, str) else ""
    return None if not text or text in _NO_REPLY else text


def _date_text(value: Any) -> Any:
    return html_to_text(value) if isinstance(value, str) else value


def to_item(raw: RawItem, fetched_at: datetime, zone: ZoneInfo) -> Item:
    """A RawItem as a stored Item: clean text, parsed dates, stable id and fingerprint.

    Raises ValueError when the record has nothing to identify it or no text at all.
    """
    title = _one_line(raw.title)
    content = html_to_text(raw.content)
    if not title and not content:
        raise ValueError("标题和正文都为空")
    external_id = _one_line(raw.external_id) or None
    url = raw.url or None
    key_url = canonicalize_url(url) if url else None
    item = Item(
        id=item_id(raw.source, external_id, key_url),
        source=raw.source,
        channel=raw.channel,
        external_id=external_id,
        url=url,
        title=title,
        content=content,
        published_at=parse_date(_date_text(raw.published_at), now=fetched_at, zone=zone),
        fetched_at=fetched_at,
        department=_one_line(raw.department) or None,
        status=_one_line(raw.status) or None,
        reply=_reply(raw.reply),
        replied_at=parse_date(_date_text(raw.replied_at), now=fetched_at, zone=zone),
        extra=dict(raw.extra),
    )
    return item.with_fingerprint()


class NormalisePipeline:
    """RawItem -> Item (see ``to_item``); records without text are dropped and counted as errors."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.zone = ZoneInfo(crawler.settings.get("YUQING_TIMEZONE", "Asia/Shanghai"))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NormalisePipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Item:
        if not isinstance(item, RawItem):
            return item
        try:
            return to_item(item, clock.now(), self.zone)
        except ValueError as exc:
            spider = self.crawler.spider
            if spider is not None and hasattr(spider, "record_error"):
                spider.record_error(item.url or item.list_url or "?", str(exc))
            raise DropItem(str(exc)) from exc


class StorePipeline:
    """Repost grouping and batched upserts through the Store protocol; counts into crawler stats.

    Grouping happens per batch (service/items/duplicates.py): one candidate lookup in the store for the
    whole batch, then the upsert.
    """

    def __init__(self, crawler: Crawler, store: Store, batch_size: int) -> None:
        self.crawler = crawler
        self.store = store
        self.batch_size = batch_size
        self.pending: dict[str, Item] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        shared = crawler.settings.get("YUQING_STORE")
        if not isinstance(shared, Shared):
            raise RuntimeError("YUQING_STORE is not set: run crawls through crawlers.crawl_process")
        return cls(crawler, shared.value, crawler.settings.getint("YUQING_BATCH_SIZE", 100))

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, Item):
            return item
        self.pending[item.id] = item
        if len(self.pending) >= self.batch_size:
            self.flush()
        return item

    def flush(self) -> None:
        """Write the pending batch; count new/updated/unchanged and dead-lettered items."""
        if not self.pending:
            return
        batch = list(self.pending.values())
        self.pending.clear()
        # An unreachable store groups the batch within itself; its writes are then spooled.
        batch, _decisions = assign_events(self.store, batch)
        stats = self.crawler.stats
        assert stats is not None
        try:
            result = self.store.upsert(batch)
        except Exception as exc:  # the store is down: the batch is lost for this run, counted as errors
            logger.error("store upsert of %d items failed: %s", len(batch), exc)
            stats.inc_value("yuqing/errors_store", len(batch))
            spider = self.crawler.spider
            if spider is not None and hasattr(spider, "record_error"):
                spider.record_error("(store)", f"写入存储失败: {exc}")
            return
        stats.inc_value("yuqing/new", len(result.new))
        stats.inc_value("yuqing/updated", len(result.updated))
        stats.inc_value("yuqing/unchanged", len(result.unchanged))
        if result.dead_lettered:
            stats.inc_value("yuqing/dead_lettered", len(result.dead_lettered))
            spider = self.crawler.spider
            for ident, reason in result.dead_lettered:
                if spider is not None and hasattr(spider, "record_error"):
                    spider.record_error(ident, f"存储拒收: {reason}")

    def close_spider(self) -> None:
        self.flush()


class CollectPipeline:
    """Check mode: keeps the normalized items on the spider instead of storing them."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CollectPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        spider = self.crawler.spider
        if isinstance(item, Item) and spider is not None:
            spider.__dict__.setdefault("checked_items", []).append(item)
        return item
