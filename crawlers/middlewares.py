"""Downloader middleware keeping crawls on http(s) and off internal addresses the administrator did not name."""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler


class BlockedAddress(IgnoreRequest):
    """A link or redirect pointed at a host the crawl may not visit."""


def is_internal(address: str) -> bool:
    """Loopback, private, link-local, reserved, multicast or unspecified: not the public internet."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified


def resolve(host: str) -> list[str]:
    """Addresses of a host name (an IP literal resolves to itself); [] when it does not resolve."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [host.strip("[]")]
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


class HostGuardMiddleware:
    """Refuses non-http(s) URLs and any host other than a start host that resolves to an internal address.

    Start hosts are trusted (intranet 12345 systems live on private addresses); everything reached
    from them by a link or a redirect must be on the public internet. Redirects pass through here
    again because Scrapy reschedules the redirected request.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._verdicts: dict[str, bool] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HostGuardMiddleware:
        return cls(crawler)

    def _trusted(self) -> set[str]:
        spider = self.crawler.spider
        return set(getattr(spider, "trusted_hosts", ()) or ())

    def process_request(self, request: Request, spider: Any = None) -> None:
        parts = urlparse_cached(request)
        if parts.scheme not in ("http", "https"):
            raise BlockedAddress(f"不允许的协议: {parts.scheme or '(无)'}")
        host = (parts.hostname or "").lower()
        if not host:
            raise BlockedAddress("URL 缺少主机名")
        if host in self._trusted():
            return
        if host not in self._verdicts:
            addresses = resolve(host)
            self._verdicts[host] = any(is_internal(a) for a in addresses)
        if self._verdicts[host]:
            raise BlockedAddress(f"拒绝访问内网地址: {host}")
