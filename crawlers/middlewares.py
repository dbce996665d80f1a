"""Downloader middlewares: the host guard (http(s) only, no unnamed internal hosts) and Retry-After waits."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.resolver import CachingThreadedResolver
from scrapy.utils.asyncio import sleep
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.response import response_status_message
from twisted.internet import defer
from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

# A longer pause asked by Retry-After is not waited for inside a crawl: the answer counts as an error
# and the next scheduled crawl tries again.
MAX_RETRY_AFTER = 60.0


class BlockedAddress(IgnoreRequest):
    """A link or redirect pointed at a host the crawl may not visit."""


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def is_internal(address: str) -> bool:
    """Anything but a global unicast address (``ipaddress.is_global``): loopback, private, link-local, shared
    address space (100.64.0.0/10, where cloud metadata such as Alibaba's 100.100.100.200 lives), reserved,
    multicast, unspecified, and IPv6 forms that carry such an IPv4 address (mapped, 6to4, NAT64)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return True
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            ip = embedded
    return not ip.is_global or ip.is_multicast


# Resolvers named in sources.yaml ``crawl.dns_servers`` ("address" or "address:port"); empty means the
# system resolver. One crawl runs in one process, so the crawl process sets this once (use_dns_servers).
_DNS_SERVERS: list[tuple[str, int]] = []
DNS_TIMEOUT = 5.0


def dns_server(text: str) -> tuple[str, int]:
    """``"10.0.0.53"``, ``"10.0.0.53:5353"``, ``"[fd00::53]:53"`` or ``"fd00::53"`` as (address, port)."""
    text = text.strip()
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        address, port = text.split(":")
    else:
        address, port = text, "53"
    ipaddress.ip_address(address)  # ValueError: a resolver is named by its address
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"端口无效: {text}")
    return address, int(port)


def use_dns_servers(servers: Sequence[str]) -> None:
    """Look names up through ``servers`` from now on (an intranet resolver; tests point it at their own).

    Called once by the crawl process before anything is looked up; names already looked up keep their
    addresses and pins (the address checked is the address used).
    """
    _DNS_SERVERS[:] = [dns_server(server) for server in servers]


def _lookup(host: str, servers: Sequence[tuple[str, int]]) -> list[str]:
    # dnspython is imported when a crawl names its own resolvers (sources.yaml crawl.dns_servers): most crawls
    # use the system's, and its import was ~0.13 s CPU of every crawl's start. tests/foundation/
    # test_architecture.py allows these imports inside a function.
    import dns.exception
    import dns.nameserver
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port) for address, port in servers]
    resolver.lifetime = DNS_TIMEOUT
    found: set[str] = set()
    for kind in ("A", "AAAA"):
        try:
            found.update(str(record) for record in resolver.resolve(host, kind, search=False))
        except dns.exception.DNSException:
            continue
    return sorted(found)


def resolve(host: str, servers: Sequence[str] | None = None) -> list[str]:
    """Addresses of a host name (an IP literal resolves to itself); [] when it does not resolve.

    Through ``servers`` when given, else through the crawl's resolvers (use_dns_servers) or the system's.
    """
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [host.strip("[]")]
    chosen = [dns_server(server) for server in servers] if servers else _DNS_SERVERS
    if chosen:
        return _lookup(host, chosen)
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


Origin = tuple[str, str, int]

# Host name -> the IPv4 address the guard checked. The crawl connects to exactly that address (see
# PinnedResolver): a name that resolves to a public address for the check and to 127.0.0.1 a moment
# later for the connection (DNS rebinding) gets nowhere. One crawl runs in one process.
PINS: dict[str, str] = {}


def origin_of(scheme: str, host: str, port: int | None) -> Origin:
    """``(scheme, host, port)`` with the scheme's default port filled in."""
    return scheme, host.lower(), port or (443 if scheme == "https" else 80)


def pin(host: str) -> tuple[list[str], str | None]:
    """The addresses of ``host`` (looked up once per crawl) and the IPv4 address connections go to.

    The first lookup decides: later lookups of the name (DNS rebinding) are never made.
    """
    if host not in _LOOKED_UP:
        addresses = resolve(host)
        _LOOKED_UP[host] = addresses
        ipv4 = [a for a in addresses if ":" not in a]
        if ipv4:
            PINS.setdefault(host, ipv4[0])
    return _LOOKED_UP[host], PINS.get(host)


_LOOKED_UP: dict[str, list[str]] = {}


class HostGuardMiddleware:
    """Refuses non-http(s) URLs and, outside the trusted origins, hosts that resolve to an internal address.

    Start origins (scheme, host and port of ``start_urls``) are trusted: intranet 12345 systems live on
    private addresses. Everything reached from them by a link or a redirect to another origin, even another
    port of the same host, must be on the public internet. Redirects pass through here again because Scrapy
    reschedules the redirected request. Every host, trusted or not, is looked up once and the address
    checked is pinned for the connection (PINS), so a name cannot point elsewhere later in the crawl.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HostGuardMiddleware:
        return cls(crawler)

    def _trusted(self) -> set[Origin]:
        spider = self.crawler.spider
        return set(getattr(spider, "trusted_origins", ()) or ())

    def process_request(self, request: Request, spider: Any = None) -> None:
        parts = urlparse_cached(request)
        if parts.scheme not in ("http", "https"):
            raise BlockedAddress(f"不允许的协议: {parts.scheme or '(无)'}")
        host = (parts.hostname or "").lower()
        if not host:
            raise BlockedAddress("URL 缺少主机名")
        try:
            port = parts.port
        except ValueError as exc:
            raise BlockedAddress(f"端口无效: {request.url}") from exc
        addresses, pinned = pin(host)
        if origin_of(parts.scheme, host, port) not in self._trusted() and any(is_internal(a) for a in addresses):
            raise BlockedAddress(f"拒绝访问内网地址: {host}")
        if pinned is None:
            raise BlockedAddress(f"无法解析主机名（没有 IPv4 地址）: {host}")


class PinnedResolver(CachingThreadedResolver):
    """Scrapy's resolver, answering a host the guard checked with the address it checked (no second lookup)."""

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:  # noqa: N802 - Twisted API
        pinned = PINS.get(name.lower())
        if pinned is not None:
            return defer.succeed(pinned)
        return super().getHostByName(name, timeout)


def retry_after_seconds(value: bytes | str | None) -> float | None:
    """Seconds a Retry-After header asks to wait (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    text = (value.decode("latin-1") if isinstance(value, bytes) else value).strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    # Real wall time on purpose: this is a wait on the network, not a recorded time (clock.now may be frozen).
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class RetryAfterMiddleware(RetryMiddleware):
    """Scrapy's retry middleware that first waits as long as a 429/503 answer's Retry-After asks.

    Only the one request waits; the rest of the crawl goes on. A wait beyond MAX_RETRY_AFTER is not
    retried at all, so the answer is counted as an error of the crawl.
    """

    # Scrapy runs coroutine downloader-middleware methods, but types the base method as synchronous.
    async def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        if wait is not None and wait > MAX_RETRY_AFTER:
            return response
        if wait:
            # Scrapy's sleep waits on whichever reactor Scrapy installed (importing one here would install it).
            await sleep(wait)
        return self._retry(request, response_status_message(response.status)) or response
