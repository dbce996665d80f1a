"""The base of the generic spiders: one source per spider, error bookkeeping, decoding, page limits."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import scrapy
from scrapy.exceptions import DownloadCancelledError, DownloadTimeoutError, IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawlers.encoding import choose_encoding
from crawlers.extract import looks_like_challenge
from crawlers.middlewares import BlockedAddress
from crawlers.sources import CrawlDefaults, Source
from crawlers.spiders.paging import ListPager

MAX_ERROR_SAMPLES = 20
logger = logging.getLogger(__name__)


def guarded(callback: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """A callback whose exceptions become a recorded error for the page; the crawl goes on."""

    @functools.wraps(callback)
    def wrapper(self: SourceSpider, response: Response, **kwargs: Any) -> Iterator[Any]:
        try:
            yield from callback(self, response, **kwargs)
        except Exception as exc:  # a hostile page must not stop the crawl
            self.record_error(response.url, f"解析失败: {type(exc).__name__}: {exc}")

    return wrapper


class SourceSpider(scrapy.Spider):
    """Fetches one configured source and yields RawItems; subclasses know html, json or rss."""

    source: ClassVar[Source]
    crawl: ClassVar[CrawlDefaults]
    # Check mode (``yuqing sources check``): one list page and one detail page, nothing stored.
    check_mode: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trusted_hosts = self.source.trusted_hosts
        self.errors = 0
        self.error_samples: list[dict[str, str]] = []
        self.pages = 0
        self.entries = 0  # list entries (or records) found
        self.items_yielded = 0
        self.missing_title = 0
        self.challenge = False
        self.seen_pages: set[str] = set()
        self.seen_entries: set[str] = set()
        spec = self.source.list_
        self.pager = ListPager(spec, self.source.encoding, self.on_error) if spec is not None else None

    def first_list_requests(self, callback: Callable[..., Any]) -> Iterator[scrapy.Request]:
        """The requests of the start URLs, each the first page of its list."""
        assert self.pager is not None
        for url in self.source.start_urls:
            key, request = self.pager.first(url, callback)
            self.seen_pages.add(key)
            yield request

    def next_list_request(
        self,
        page: Response,
        callback: Callable[..., Any],
        next_link: str | None = None,
        cursor: str | None = None,
    ) -> scrapy.Request | None:
        """The request of the list page after ``page``; None past max_pages or when it was seen (a loop)."""
        if self.pager is None or page.meta["page"] >= self.max_pages:
            return None
        following = self.pager.after(page, callback, next_link=next_link, cursor=cursor)
        if following is None or following[0] in self.seen_pages:
            return None
        self.seen_pages.add(following[0])
        return following[1]

    @property
    def max_pages(self) -> int:
        return 1 if self.check_mode else self.source.max_pages

    def record_error(self, url: str, reason: str) -> None:
        """Count an error of this source and keep a sample with its URL and reason."""
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append({"url": url, "reason": reason})
        logger.warning("%s: %s: %s", self.source.id, url, reason)

    def on_error(self, failure: Failure) -> None:
        """Errback of every request: HTTP errors, timeouts, refused hosts."""
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        exc = failure.value
        if isinstance(exc, HttpError):
            reason = f"HTTP {exc.response.status}"
        elif isinstance(exc, BlockedAddress):
            reason = str(exc)
        elif isinstance(exc, IgnoreRequest) and "robots.txt" in str(exc):
            reason = "robots.txt 禁止抓取（如确有授权，可在 sources.yaml 设置 obey_robots: false）"
        elif isinstance(exc, DownloadTimeoutError):
            reason = f"请求超时（超过 {self.crawl.timeout:g} 秒，可调整 crawl.timeout）"
        elif isinstance(exc, DownloadCancelledError) and "max size" in str(exc):
            reason = f"页面超过大小上限（crawl.max_download_mb: {self.crawl.max_download_mb:g} MB），已放弃"
        else:
            reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
        self.record_error(url, reason)

    def request(self, url: str, callback: Callable[..., Any], **meta: Any) -> scrapy.Request:
        """A request to ``url`` with this spider's errback."""
        return scrapy.Request(url, callback=callback, errback=self.on_error, meta=meta)

    def decoded(self, response: Response) -> TextResponse:
        """The response read with the right charset (sources.yaml ``encoding`` wins; see choose_encoding)."""
        encoding = choose_encoding(
            response.body,
            (response.headers.get("Content-Type") or b"").decode("latin-1"),
            self.source.encoding,
        )
        cls = response.__class__ if isinstance(response, TextResponse) else scrapy.http.HtmlResponse
        return cls(
            url=response.url,
            status=response.status,
            headers=response.headers,
            body=response.body,
            encoding=encoding,
            request=response.request,
        )

    def note_challenge(self, response: TextResponse) -> bool:
        """Record a WAF/captcha interstitial answered with 200; True when the page is one."""
        if looks_like_challenge(response.text):
            self.challenge = True
            self.record_error(response.url, "验证页面（WAF/验证码拦截），不是内容")
            return True
        return False

    def summary(self) -> dict[str, Any]:
        """What this crawl saw, for counts and source health."""
        return {
            "pages": self.pages,
            "entries": self.entries,
            "items": self.items_yielded,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "challenge": self.challenge,
            "missing_title": self.missing_title,
        }
