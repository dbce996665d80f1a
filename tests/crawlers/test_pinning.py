"""DNS pinning, tested with a real resolver: a name is looked up once, and the crawl (Scrapy and Chromium
alike) connects only to the address that lookup gave and the guard checked.

The resolver is a small DNS server on loopback that answers ``127.0.0.1`` to the first query for a name
and ``127.0.0.2`` to every later one (DNS rebinding). Origin A listens on 127.0.0.1:P, the rebinding target
on 127.0.0.2:P (the same port), and another origin on 127.0.0.1:Q; sources.yaml points the crawl at the
DNS server with ``crawl.dns_servers``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from scrapy import Request

from crawlers import middlewares
from crawlers.runner import crawl_sources
from service.settings import Settings
from service.store import make_store
from service.store.base import Item, ItemQuery
from tests.crawlers.conftest import FAST_CRAWL, make_settings
from tests.crawlers.dns_server import ScriptedDNS, scripted_dns
from tests.crawlers.site import Site

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
DETAIL = '<html><body><h1 class="title">{title}</h1><div class="content">{body}</div></body></html>'


@pytest.fixture(scope="module")
def dns() -> Iterator[ScriptedDNS]:
    yield from scripted_dns()


@pytest.fixture(scope="module")
def rebound(site: Site) -> Iterator[Site]:
    """The address a rebound name points to later: 127.0.0.2, on origin A's port."""
    server = Site("127.0.0.2", site.port)
    yield server
    server.close()


def _stored(settings: Settings, source: str) -> list[Item]:
    store = make_store(settings)
    try:
        return list(store.search(ItemQuery(source=source, size=50)).results)
    finally:
        store.close()


def test_the_guard_checks_and_pins_the_first_answer_of_the_configured_resolver(dns: ScriptedDNS) -> None:
    """In-process: a name that is public for the check and loopback a moment later gets the public address."""
    from twisted.internet import reactor

    dns.script("news.rebind.test", "93.184.216.34", "127.0.0.1")
    middlewares.use_dns_servers([dns.address])
    try:

        class _Crawler:
            spider = None

        guard = middlewares.HostGuardMiddleware(_Crawler())  # type: ignore[arg-type]
        guard.process_request(Request("http://news.rebind.test/a.html"))
        guard.process_request(Request("http://news.rebind.test/b.html"))
        answered: list[str] = []
        middlewares.PinnedResolver(reactor, 0, 5.0).getHostByName("news.rebind.test").addCallback(answered.append)
        assert answered == ["93.184.216.34"], "the connection goes to the checked address"
        assert dns.queries["news.rebind.test"] == 1, "the name was looked up once, through the configured resolver"
    finally:
        middlewares.use_dns_servers([])


def test_a_crawl_connects_only_to_the_address_it_checked(
    site: Site, rebound: Site, dns: ScriptedDNS, tmp_path_factory: pytest.TempPathFactory
) -> None:
    dns.script("www.rebind.test", "127.0.0.1", "127.0.0.2")
    for server, who in ((site, "甲"), (rebound, "换绑后的地址")):
        server.html(
            "/pin/list.html", f'<ul><li><a href="d1.html">{who}一</a></li><li><a href="d2.html">{who}二</a></li></ul>'
        )
        for n in (1, 2):
            server.html(f"/pin/d{n}.html", DETAIL.format(title=f"{who}的来信{n}", body=f"{who}的正文{n}"))
    yaml = (
        FAST_CRAWL
        + f"""  dns_servers: ["{dns.address}"]
sources:
  - id: pinned
    name: 固定地址
    channel: hotline
    type: html
    start_urls: ["http://www.rebind.test:{site.port}/pin/list.html"]
    interval: 1h
    list: {{items: "li", url: "a::attr(href)"}}
    fields: {{title: h1.title, content: div.content}}
"""
    )
    settings = make_settings(tmp_path_factory.mktemp("pinned"), yaml)
    counts = crawl_sources(settings, now=NOW, timeout=180)["pinned"]
    assert counts["new"] == 2, counts
    assert sorted(i.title for i in _stored(settings, "pinned")) == ["甲的来信1", "甲的来信2"]
    assert rebound.hits == {}, "nothing went to the address the name pointed to later"
    assert dns.queries["www.rebind.test"] == 1, "one lookup for the whole crawl (list, robots.txt, details)"


BROWSER_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><div id="app">加载中</div>
<script>
const app = document.getElementById('app');
new Image().src = '{other}/pixel.gif';
fetch('{other}/steal').catch(() => null).finally(() =>
  fetch('/spa/api/letter').then(r => r.json()).then(d => {{
    app.innerHTML = '<h1 class="title"></h1><div class="content"></div>';
    app.querySelector('.title').textContent = d.title;
    app.querySelector('.content').textContent = d.content;
  }}));
</script></body></html>"""


@pytest.mark.browser
def test_a_rendered_page_reaches_only_the_checked_address_of_its_own_origin(
    chromium_present: None,
    site: Site,
    rebound: Site,
    other_origin: Site,
    dns: ScriptedDNS,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """render: browser: Chromium resolves no name itself and requests to another origin are aborted."""
    dns.script("spa.rebind.test", "127.0.0.1", "127.0.0.2")
    for server, who in ((site, "甲"), (rebound, "换绑后的地址")):
        server.html("/spa/page.html", BROWSER_PAGE.format(other=other_origin.base))
        server.raw(
            "/spa/api/letter",
            f'{{"title": "{who}渲染的来信", "content": "{who}页面脚本取回的正文"}}'.encode(),
            "application/json; charset=utf-8",
        )
    other_origin.raw("/steal", b"{}", "application/json")
    other_origin.raw("/pixel.gif", b"GIF89a", "image/gif")
    yaml = (
        FAST_CRAWL
        + f"""  dns_servers: ["{dns.address}"]
sources:
  - id: rendered
    name: 浏览器渲染
    channel: mailbox
    type: html
    render: browser
    render_wait: "div.content"
    start_urls: ["http://spa.rebind.test:{site.port}/spa/list.html"]
    interval: 1h
    max_pages: 1
    list: {{items: "li", url: "a::attr(href)"}}
    fields: {{title: h1.title, content: div.content}}
"""
    )
    site.html("/spa/list.html", '<ul><li><a href="page.html">一封信</a></li></ul>')
    rebound.html("/spa/list.html", '<ul><li><a href="page.html">换绑</a></li></ul>')
    settings = make_settings(tmp_path_factory.mktemp("rendered"), yaml)
    counts = crawl_sources(settings, now=NOW, timeout=240)["rendered"]
    assert counts["new"] == 1, counts
    (stored,) = _stored(settings, "rendered")
    assert (stored.title, stored.content) == ("甲渲染的来信", "甲页面脚本取回的正文")
    assert site.hits.get("/spa/api/letter") == 1, "the page's own request went to the checked address"
    assert rebound.hits == {}, "Chromium never followed the name to its later address"
    assert other_origin.hits == {}, "the page's requests to another origin were aborted"
    assert dns.queries["spa.rebind.test"] == 1
