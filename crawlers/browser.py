"""Rendering single-page apps with headless Chromium (scrapy-playwright), for sources with ``render: browser``.

Only such sources get the Playwright download handler; every other source keeps Scrapy's plain HTTP one.
The browser is Debian's Chromium (``crawl.chromium``): nothing is downloaded at run time. The browser talks
only to the source's own origins (scheme, host and port of its start_urls): every other request the page
makes (scripts, XHR, images of another origin) is aborted, and Chromium resolves no name itself: each host
of those origins is mapped to the address the crawl looked up once and checked (``--host-resolver-rules``),
so neither another origin nor a name that later points elsewhere (DNS rebinding) is ever reached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from scrapy_playwright.page import PageMethod

from crawlers.middlewares import origin_of, pin
from crawlers.sources import CrawlDefaults, Source

HANDLER = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]


def abort_predicate(allowed: set[tuple[str, str, int]]) -> Callable[[Any], bool]:
    """Playwright's per-request abort check: True for every request outside the source's own origins."""

    def abort(request: Any) -> bool:
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob"):
            return False  # inline resources of the page itself
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return True
        try:
            return origin_of(parts.scheme, parts.hostname.lower(), parts.port) not in allowed
        except ValueError:
            return True

    return abort


def host_resolver_rules(origins: set[tuple[str, str, int]]) -> str:
    """Chromium's ``--host-resolver-rules``: each host of ``origins`` mapped to the address the crawl checked
    and pinned (crawlers.middlewares.pin), every other name unresolvable. Chromium never looks a name up
    itself, so a page cannot reach another address through DNS rebinding."""
    rules = []
    for host in sorted({host for _scheme, host, _port in origins}):
        _addresses, pinned = pin(host)
        if pinned == host:
            rules.append(f"EXCLUDE {host}")  # an IP address: the rules would otherwise catch it too
        elif pinned is not None:
            rules.append(f"MAP {host} {pinned}")
    rules.append("MAP * ~NOTFOUND")
    return ", ".join(rules)


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
        "PLAYWRIGHT_LAUNCH_OPTIONS": {
            "executable_path": crawl.chromium,
            "headless": True,
            "args": [*CHROMIUM_ARGS, f"--host-resolver-rules={host_resolver_rules(source.trusted_origins)}"],
        },
        "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": int(crawl.timeout * 1000),
        "PLAYWRIGHT_ABORT_REQUEST": abort_predicate(source.trusted_origins),
    }


def render_meta(wait_for: str | None, timeout: float) -> dict[str, Any]:
    """Request meta that renders the page and waits until ``wait_for`` (a CSS selector) shows."""
    methods = [PageMethod("wait_for_load_state", "networkidle")]
    if wait_for:
        methods.append(PageMethod("wait_for_selector", wait_for, timeout=int(timeout * 1000)))
    return {"playwright": True, "playwright_page_methods": methods}
