"""The SSRF guard for sources added through the API or console.

Hosts named in sources.yaml are vouched for by the administrator who edits the file; a URL typed into
the console is not, so it must be http(s) and resolve only to public addresses unless
``security.allow_private_source_hosts`` says otherwise (intranet deployments).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from crawlers.middlewares import is_internal, resolve


class UnsafeSourceURL(ValueError):
    """A URL the crawler must not be pointed at; the message says why, in Chinese."""


def check_source_url(url: str, allow_private: bool = False, dns_servers: Sequence[str] = ()) -> None:
    """Raise UnsafeSourceURL unless ``url`` is http(s) and (unless allowed) resolves to public addresses only.

    ``dns_servers``: the crawl's resolvers (sources.yaml crawl.dns_servers), so the check sees what the crawl sees.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeSourceURL(f"只允许 http 或 https 地址: {url}")
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeSourceURL(f"地址缺少主机名: {url}")
    if parts.username or parts.password:
        raise UnsafeSourceURL(f"地址中不能包含用户名或密码: {url}")
    if allow_private:
        return
    addresses = resolve(host, dns_servers)
    if not addresses:
        raise UnsafeSourceURL(f"无法解析主机名: {host}")
    internal = [a for a in addresses if is_internal(a)]
    if internal:
        raise UnsafeSourceURL(f"拒绝指向内网、回环或链路本地地址的来源: {host} ({', '.join(internal)})")
