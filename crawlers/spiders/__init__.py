"""Generic spiders, one per source type; a source gets its own subclass carrying its config."""

from __future__ import annotations

from typing import Any

from scrapy.settings.default_settings import DEFAULT_REQUEST_HEADERS

from crawlers.browser import browser_settings
from crawlers.sources import CrawlDefaults, Source
from crawlers.spiders.base import SourceSpider
from crawlers.spiders.html import HtmlSourceSpider
from crawlers.spiders.json_api import JsonSourceSpider
from crawlers.spiders.rss import FeedSourceSpider

SPIDER_TYPES: dict[str, type[SourceSpider]] = {
    "html": HtmlSourceSpider,
    "json": JsonSourceSpider,
    "rss": FeedSourceSpider,
}


def spider_for(source: Source, crawl: CrawlDefaults, check_mode: bool = False) -> type[SourceSpider]:
    """A spider class for this source, with its per-source Scrapy settings (robots.txt, user agent)."""
    base = SPIDER_TYPES[source.type]
    custom: dict[str, Any] = {
        "ROBOTSTXT_OBEY": source.obey_robots,
        "USER_AGENT": source.user_agent or crawl.user_agent,
    }
    if source.render == "browser":
        custom.update(browser_settings(source, crawl))
    if source.headers:
        # Sent with every request of the source (Referer, Origin, X-Requested-With); Scrapy's own
        # Referer of a followed link still wins for detail pages.
        custom["DEFAULT_REQUEST_HEADERS"] = {**DEFAULT_REQUEST_HEADERS, **source.headers}
    return type(
        f"{base.__name__}_{source.id.replace('-', '_')}",
        (base,),
        {
            "name": source.id,
            "source": source,
            "crawl": crawl,
            "check_mode": check_mode,
            "custom_settings": custom,
        },
    )
