"""Generic spiders, one per source type; a source gets its own subclass carrying its config."""

from __future__ import annotations

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
    custom = {
        "ROBOTSTXT_OBEY": source.obey_robots,
        "USER_AGENT": source.user_agent or crawl.user_agent,
    }
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
