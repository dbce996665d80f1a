"""What a failed request tells the officer: one Chinese line per kind of failure, for the sources page."""

from __future__ import annotations

from scrapy.exceptions import DownloadCancelledError, DownloadTimeoutError, IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError

from crawlers.middlewares import BlockedAddress
from crawlers.sources import CrawlDefaults

# Network failures by exception class name (Twisted's and Scrapy's wrappers of them), as people read them.
NETWORK_ERRORS = {
    "ConnectionRefusedError": "连接被拒绝（对方服务器未运行或端口不对）",
    "DownloadConnectionRefusedError": "连接被拒绝（对方服务器未运行或端口不对）",
    "DNSLookupError": "域名解析失败（地址写错或网络不通）",
    "ConnectionLost": "连接中断",
    "ConnectionDone": "连接被对方关闭",
    "ResponseNeverReceived": "对方没有返回任何内容（连接中断）",
    "TCPTimedOutError": "连接超时",
    "NoRouteError": "网络不可达",
}


class NotSent(IgnoreRequest):
    """A request the crawl dropped unsent because the service is stopping: no fault of the source; the next
    crawl fetches the page."""


def failure_reason(exc: BaseException, crawl: CrawlDefaults) -> str:
    """The reason recorded for a request that failed with ``exc`` (HTTP errors, timeouts, refused hosts)."""
    if isinstance(exc, HttpError):
        return f"HTTP {exc.response.status}"
    if isinstance(exc, BlockedAddress):
        return str(exc)
    if isinstance(exc, IgnoreRequest) and "robots.txt" in str(exc):
        return "robots.txt 禁止抓取（如确有授权，可在 sources.yaml 设置 obey_robots: false）"
    if isinstance(exc, DownloadTimeoutError):
        return f"请求超时（超过 {crawl.timeout:g} 秒，可调整 crawl.timeout）"
    if isinstance(exc, DownloadCancelledError) and "max size" in str(exc):
        return f"页面超过大小上限（crawl.max_download_mb: {crawl.max_download_mb:g} MB），已放弃"
    if type(exc).__name__ in NETWORK_ERRORS:
        # Officers read this on the sources page: the class name and Twisted's text are for the log.
        return NETWORK_ERRORS[type(exc).__name__]
    return f"{type(exc).__name__}: {exc}".rstrip(": ")
