"""Item pipelines in Scrapy's own style, one component a step (ITEM_PIPELINES in crawlers/settings.py):

clean (HTML to text) -> normalize (dates, id, fingerprint) -> dedupe (repeats in this crawl, repost keys)
-> store (batches put into events and upserted; counts for the crawl summary).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from scrapy.exceptions import DropItem, NotConfigured
from scrapy.utils.asyncio import CallLaterResult, call_later
from w3lib.url import canonicalize_url

from crawlers.dates import parse_date
from crawlers.items import RawItem
from crawlers.process_env import STOP_REQUESTED
from crawlers.store_writes import StoreWrites
from crawlers.text import html_to_text
from service import clock
from service.items.duplicates import assign_events, with_signature
from service.store.base import Item, Store, UpsertResult, item_id

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class Shared:
    """Hands one object (the store) to every crawler: Scrapy deep-copies settings, this survives it."""

    def __init__(self, value: Any) -> None:
        self.value = value
        # The store's write in flight, shared by the crawlers of this process (see StorePipeline).
        self.writes = StoreWrites(value)

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


@dataclass(frozen=True)
class CleanRecord:
    """A record as plain text: what CleanPipeline hands to NormalizePipeline (nothing here is HTML any more)."""

    raw: RawItem
    title: str
    content: str
    external_id: str | None
    order_no: str | None
    department: str
    status: str
    reply: str | None
    published_at: Any
    replied_at: Any


def clean(raw: RawItem) -> CleanRecord:
    """The record's HTML fragments as text: one-line fields, paragraphs kept in the content, no placeholder reply.

    Raises ValueError when the record has no text at all.
    """
    title = _one_line(raw.title)
    content = html_to_text(raw.content)
    if not title and not content:
        raise ValueError("标题和正文都为空")
    return CleanRecord(
        raw=raw,
        title=title,
        content=content,
        external_id=_one_line(raw.external_id) or None,
        # A JSON source may give the number as a number.
        order_no=_one_line(raw.order_no if isinstance(raw.order_no, str) else str(raw.order_no or "")) or None,
        department=_one_line(raw.department),
        status=_one_line(raw.status),
        reply=_reply(raw.reply),
        published_at=_date_text(raw.published_at),
        replied_at=_date_text(raw.replied_at),
    )


def normalize(record: CleanRecord, fetched_at: datetime, zone: ZoneInfo) -> Item:
    """A cleaned record as a stored Item: dates parsed relative to the crawl time, stable id and fingerprint."""
    raw = record.raw
    url = raw.url or None
    key_url = canonicalize_url(url) if url else None
    item = Item(
        id=item_id(raw.source, record.external_id, key_url),
        source=raw.source,
        channel=raw.channel,
        external_id=record.external_id,
        order_no=record.order_no,
        url=url,
        title=record.title,
        content=record.content,
        published_at=parse_date(record.published_at, now=fetched_at, zone=zone),
        fetched_at=fetched_at,
        department=record.department or None,
        status=record.status or None,
        reply=record.reply,
        replied_at=parse_date(record.replied_at, now=fetched_at, zone=zone),
        extra=dict(raw.extra),
    )
    return item.with_fingerprint()


def to_item(raw: RawItem, fetched_at: datetime, zone: ZoneInfo) -> Item:
    """What the clean and normalize steps make of one record (ValueError when it has no text)."""
    return normalize(clean(raw), fetched_at, zone)


def _record_error(crawler: Crawler, url: str, reason: str) -> None:
    """Count a failure into the spider's crawl summary (the pipelines also run under plain Scrapy spiders)."""
    spider = crawler.spider
    if spider is not None and hasattr(spider, "record_error"):
        spider.record_error(url, reason)


class CleanPipeline:
    """RawItem -> CleanRecord (see ``clean``); a record without text is dropped and counted as an error."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CleanPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, RawItem):
            return item
        try:
            return clean(item)
        except ValueError as exc:
            _record_error(self.crawler, item.url or item.list_url or "?", str(exc))
            raise DropItem(str(exc)) from exc


class NormalizePipeline:
    """CleanRecord -> Item (see ``normalize``), dated relative to the crawl's clock in the configured zone."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.zone = ZoneInfo(crawler.settings.get("YUQING_TIMEZONE", "Asia/Shanghai"))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NormalizePipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, CleanRecord):
            return item
        return normalize(item, clock.now(), self.zone)


class DedupePipeline:
    """Duplicates within one crawl, and the near-duplicate keys reposts are grouped by.

    An item met again unchanged in the same crawl (a notice on two overlapping list pages) goes no further;
    a changed copy passes and replaces the earlier one. Every item leaves with its LSH band keys, which the
    store pipeline's batch lookup and the store's index use to find reposts (service/items/duplicates.py).
    """

    def __init__(self) -> None:
        self.seen: dict[str, str | None] = {}  # item id -> fingerprint of the copy that went on

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupePipeline:
        return cls()

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, Item):
            return item
        if item.id in self.seen and self.seen[item.id] == item.fingerprint:
            # Expected on overlapping pages, so not worth a warning line per item.
            raise DropItem(f"already in this crawl: {item.id}", log_level="DEBUG")
        self.seen[item.id] = item.fingerprint
        return with_signature(item)


class StorePipeline:
    """Batched writes through the Store protocol, counted into the crawler's stats.

    Built by Scrapy through ``from_crawler`` from the store the crawl process opened (``YUQING_STORE``);
    without one it raises NotConfigured and Scrapy leaves it out. Each batch is put into events with one
    candidate lookup in the store (service/items/duplicates.py: the batch is what makes it one lookup),
    then upserted (on Elasticsearch beside the crawl, see crawlers/store_writes.py).
    """

    def __init__(
        self,
        crawler: Crawler,
        store: Store,
        batch_size: int,
        writes: StoreWrites | None = None,
        batch_seconds: float | None = None,
    ) -> None:
        self.crawler = crawler
        self.store = store
        self.batch_size = batch_size
        # A batch not full after this many seconds is written anyway (crawl.batch_seconds).
        self.batch_seconds = batch_seconds
        self._due: CallLaterResult | None = None
        self.pending: dict[str, Item] = {}
        self.writes = writes if writes is not None else StoreWrites(store)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        shared = crawler.settings.get("YUQING_STORE")
        if not isinstance(shared, Shared) or shared.value is None:
            raise NotConfigured("YUQING_STORE is not set: crawls that store items run through crawlers.crawl_process")
        pipeline = cls(
            crawler,
            shared.value,
            crawler.settings.getint("YUQING_BATCH_SIZE", 100),
            shared.writes,
            crawler.settings.getfloat("YUQING_BATCH_SECONDS", 5.0),
        )
        crawler.signals.connect(pipeline.write_now, signal=STOP_REQUESTED)
        return pipeline

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, Item):
            return item
        self.pending[item.id] = item
        if len(self.pending) >= self.batch_size and not self.writes.busy(len(self.pending), self.batch_size):
            self.flush()
        elif self._due is None and self.batch_seconds and self.crawler.crawling:
            # Only in a running crawl: the timer needs the crawl's event loop.
            self._due = call_later(self.batch_seconds, self._flush_due)
        return item

    def _flush_due(self) -> None:
        self._due = None
        held = len(self.pending)  # flush empties it before it can fail
        try:
            self.flush()
        except Exception as exc:  # a timer's error would otherwise surface as an English "Unhandled error"
            logger.error("按时写入 %d 条条目失败：%s", held, exc)

    def flush(self) -> None:
        """Hand the pending batch over to be grouped and written (on Elasticsearch beside the crawl)."""
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if not self.pending:
            return
        batch = list(self.pending.values())
        self.pending.clear()
        self.writes.submit(partial(self._store, batch))

    def _store(self, batch: list[Item]) -> None:
        """Put the batch into events and write it; a failure loses the batch for this run, counted as errors."""
        try:
            self._group_and_write(batch)
        except Exception as exc:  # not the store being down (that spools): a defect, so with its traceback
            logger.error("写入 %d 条条目到存储失败：%s", len(batch), exc, exc_info=True)
            stats = self.crawler.stats
            assert stats is not None
            stats.inc_value("yuqing/errors_store", len(batch))
            _record_error(self.crawler, "(store)", f"写入存储失败: {exc}")

    def _group_and_write(self, batch: list[Item]) -> None:
        # The lookup sees every earlier batch's write: one in flight is waited for unless it shows its documents.
        if not self.writes.shown():
            self.writes.settle()
        # An unreachable store groups the batch within itself; its writes are then spooled.
        grouped, _decisions = assign_events(self.store, batch)
        staged = self.writes.stage(grouped)
        try:
            if not self.writes.settle():
                # The write beside the lookup stored other than it showed: look again now that it is answered.
                if staged is not None:
                    staged.withdraw()
                    staged = None
                grouped, _decisions = assign_events(self.store, batch)
                staged = self.writes.stage(grouped)
            self.writes.write(self, grouped, staged)
        except BaseException:
            # Never handed to the writer: lookups must not go on seeing its documents as written.
            if staged is not None:
                staged.withdraw()
            raise

    def write_now(self) -> None:
        """The crawl is asked to stop: write the items held so far, not waiting for a full batch, so that a crawl
        killed after its grace (crawlers.child_watch) loses only the pages that arrived after this."""
        held = len(self.pending)
        self.flush()
        self.writes.finish()
        logger.info("收到停止请求：已把抓到的 %d 条条目写入存储", held)

    def count(self, batch: list[Item], written: Callable[[], UpsertResult]) -> None:
        """Count the write of ``batch`` (``written`` gives its result or raises) into this crawl's stats."""
        stats = self.crawler.stats
        assert stats is not None
        try:
            result = written()
        except Exception as exc:  # the store is down: the batch is lost for this run, counted as errors
            logger.error("写入 %d 条条目到存储失败：%s", len(batch), exc)
            stats.inc_value("yuqing/errors_store", len(batch))
            _record_error(self.crawler, "(store)", f"写入存储失败: {exc}")
            return
        stats.inc_value("yuqing/new", len(result.new))
        stats.inc_value("yuqing/updated", len(result.updated))
        stats.inc_value("yuqing/unchanged", len(result.unchanged))
        if result.spooled:
            # Safe in the database while the cluster is away, stored by the next write or the replay job.
            stats.inc_value("yuqing/spooled", len(result.spooled))
        if result.dead_lettered:
            stats.inc_value("yuqing/dead_lettered", len(result.dead_lettered))
            for ident, reason in result.dead_lettered:
                _record_error(self.crawler, ident, f"存储拒收: {reason}")

    def close_spider(self) -> None:
        self.flush()
        self.writes.close()


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
