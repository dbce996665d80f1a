"""Rendering single-page apps with headless Chromium (scrapy-playwright), for sources with ``render: browser``.

Only such sources get the Playwright download handler; every other source keeps Scrapy's plain HTTP one.
The browser is Debian's Chromium (``crawl.chromium``): nothing is downloaded at run time. What the page
itself loads (scripts, XHR) passes the same host rule as the crawl's own requests: http(s) only, and no
internal address other than the hosts named in the source's start_urls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from crawlers.middlewares import is_internal, origin_of, resolve
from crawlers.sources import CrawlDefaults, Source

HANDLER = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]


def abort_predicate(trusted: set[tuple[str, str, int]]) -> Callable[[Any], bool]:
    """Playwright's per-request abort check: True for requests the crawl itself would refuse."""
    verdicts: dict[str, bool] = {}

    def abort(request: Any) -> bool:
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob"):
            return False  # inline resources of the page itself
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return True
        host = parts.hostname.lower()
        try:
            if origin_of(parts.scheme, host, parts.port) in trusted:
                return False
        except ValueError:
            return True
        if host not in verdicts:
            verdicts[host] = any(is_internal(a) for a in resolve(host))
        return verdicts[host]

    return abort


def browser_settings(source: Source, crawl: CrawlDefaults) -> dict[str, Any]:
    """Per-spider Scrapy settings that send this source's requests through headless Chromium."""
    return {
        "DOWNLOAD_HANDLERS": {
            "http": HANDLER,
            "https": HANDLER,
            "file": None,
            "data": None,
            "ftp": None,
            "s3": None,
        },
        "PLAYWRIGHT_BROWSER_TYPE": "chromium",
        "PLAYWRIGHT_LAUNCH_OPTIONS": {"executable_path": crawl.chromium, "headless": True, "args": CHROMIUM_ARGS},
        "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": int(crawl.timeout * 1000),
        "PLAYWRIGHT_ABORT_REQUEST": abort_predicate(source.trusted_origins),
    }


def render_meta(wait_for: str | None, timeout: float) -> dict[str, Any]:
    """Request meta that renders the page and waits until ``wait_for`` (a CSS selector) shows."""
    from scrapy_playwright.page import PageMethod

    methods = [PageMethod("wait_for_load_state", "networkidle")]
    if wait_for:
        methods.append(PageMethod("wait_for_selector", wait_for, timeout=int(timeout * 1000)))
    return {"playwright": True, "playwright_page_methods": methods}
