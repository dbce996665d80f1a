"""Scrapy settings of a yuqing crawl, built from the ``crawl:`` section of sources.yaml."""

from __future__ import annotations

from typing import Any

from crawlers.sources import CrawlDefaults

# 5xx and 429 are worth another try; 404 and other 4xx are answers, not accidents.
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]


def item_pipelines(check_mode: bool = False) -> dict[str, int]:
    """clean -> normalize -> dedupe -> store, in this order; a check keeps what it normalized instead of storing."""
    if check_mode:
        return {
            "crawlers.pipelines.CleanPipeline": 100,
            "crawlers.pipelines.NormalizePipeline": 300,
            "crawlers.pipelines.CollectPipeline": 800,
        }
    return {
        "crawlers.pipelines.CleanPipeline": 100,
        "crawlers.pipelines.NormalizePipeline": 300,
        "crawlers.pipelines.DedupePipeline": 500,
        "crawlers.pipelines.StorePipeline": 800,
    }


def scrapy_settings(crawl: CrawlDefaults, check_mode: bool = False) -> dict[str, Any]:
    """The Scrapy settings shared by all sources of one run (per-source ones live on the spider class)."""
    return {
        "BOT_NAME": "yuqing",
        "USER_AGENT": crawl.user_agent,
        "ROBOTSTXT_OBEY": True,
        # No consoles listening on ports from inside a crawl process.
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "LOG_LEVEL": "INFO",
        # Scrapy logs the versions of a dozen libraries at every crawl's start (reading package metadata:
        # ~0.05 s of CPU per crawl); they are in `pip list` and never change between crawls.
        "LOG_VERSIONS": [],
        "COOKIES_ENABLED": True,
        "AUTOTHROTTLE_ENABLED": crawl.autothrottle,
        "AUTOTHROTTLE_START_DELAY": max(crawl.download_delay, 0.5),
        "AUTOTHROTTLE_MAX_DELAY": 30.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "DOWNLOAD_DELAY": crawl.download_delay,
        "CONCURRENT_REQUESTS": 16,
        # Our item pipelines are synchronous, so Scrapy's 100 concurrent item slots gain nothing, and it
        # starts that many asyncio tasks for the output of every response (a measurable cost per page).
        "CONCURRENT_ITEMS": 1,
        # Scrapy checks each callback for a generator returning a value by reading and parsing its source,
        # and caches the answer by the callback object: a bound method is a new object at every response, so
        # it read and parsed our detail callback's source once per page (~0.2 ms). Our callbacks are ours.
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.concurrency_per_domain,
        "RETRY_ENABLED": crawl.retries > 0,
        "RETRY_TIMES": crawl.retries,
        "RETRY_HTTP_CODES": RETRY_HTTP_CODES,
        "DOWNLOAD_TIMEOUT": crawl.timeout,
        "DOWNLOAD_MAXSIZE": int(crawl.max_download_mb * 1024 * 1024),
        "DOWNLOAD_WARNSIZE": int(crawl.max_download_mb * 1024 * 1024 / 2),
        "REDIRECT_MAX_TIMES": 5,
        # Only http(s): file://, data:, ftp:// and s3:// have no business in a public-opinion crawl.
        "DOWNLOAD_HANDLERS": {"file": None, "data": None, "ftp": None, "s3": None},
        # Connections go to the address the host guard checked (crawlers.middlewares.PINS).
        "TWISTED_DNS_RESOLVER": "crawlers.middlewares.PinnedResolver",
        "DOWNLOADER_MIDDLEWARES": {
            "crawlers.middlewares.HostGuardMiddleware": 50,
            # Replaced by a subclass at the same position that honours Retry-After.
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "crawlers.middlewares.RetryAfterMiddleware": 550,
        },
        "ITEM_PIPELINES": item_pipelines(check_mode),
        "YUQING_BATCH_SIZE": crawl.batch_size,
        "YUQING_BATCH_SECONDS": crawl.batch_seconds,
        "HTTPCACHE_ENABLED": False,
    }
