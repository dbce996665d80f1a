"""render: browser — a local single-page app whose letters exist only after its JavaScript ran, crawled
through scrapy-playwright with the system Chromium."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from crawlers.runner import crawl_sources
from service.store import make_store
from service.store.base import ItemQuery
from tests.crawlers.conftest import FAST_CRAWL, make_settings
from tests.crawlers.site import Page, Request, Site

pytestmark = pytest.mark.browser
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
LETTERS = {"7": ("夜间施工噪音扰民", "工地每天凌晨两点还在施工。"), "8": ("公交站台破损", "站台顶棚漏雨。")}

SHELL = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>留言板</title></head>
<body><div id="app">加载中……</div><script>
const q = new URLSearchParams(location.search);
const app = document.getElementById('app');
if (q.get('id')) {
  fetch('/spa/api/letter?id=' + q.get('id')).then(r => r.json()).then(d => {
    app.innerHTML = '<h1 class="title"></h1><div class="content"></div>';
    app.querySelector('.title').textContent = d.title;
    app.querySelector('.content').textContent = d.content;
  });
} else {
  setTimeout(() => fetch('/spa/api/list').then(r => r.json()).then(rows => {
    app.innerHTML = '<ul class="letters">' + rows.map(r =>
      '<li><a href="/spa/?id=' + r.id + '">' + r.title + '</a></li>').join('') + '</ul>';
  }), 300);
}
</script></body></html>"""

SOURCES = """
sources:
  - id: spa-board
    name: 单页应用留言板
    channel: mailbox
    type: html
    render: browser
    render_wait: "div.content"
    start_urls: ["{base}/spa/"]
    interval: 1h
    max_pages: 1
    list: {{items: "ul.letters > li", url: "a::attr(href)"}}
    fields: {{title: h1.title, content: div.content}}
  - id: spa-plain
    name: 同一网站不渲染
    channel: mailbox
    type: html
    start_urls: ["{base}/spa/"]
    interval: 1h
    max_pages: 1
    list: {{items: "ul.letters > li", url: "a::attr(href)"}}
    fields: {{title: h1.title, content: div.content}}
"""


def _json(data: Any) -> Page:
    return Page(200, json.dumps(data, ensure_ascii=False).encode(), "application/json; charset=utf-8")


def spa(req: Request) -> Page:
    return Page(200, SHELL.encode(), "text/html; charset=utf-8")


def letter(req: Request) -> Page:
    title, content = LETTERS[req.query["id"]]
    return _json({"title": title, "content": content})


def test_a_single_page_app_is_rendered_before_the_selectors_run(
    chromium_present: None, site: Site, tmp_path_factory: pytest.TempPathFactory
) -> None:
    site.handle("/spa/", spa)
    site.handle("/spa/api/list", lambda req: _json([{"id": k, "title": v[0]} for k, v in LETTERS.items()]))
    site.handle(
        "/spa/api/letter", lambda req: _json(dict(zip(("title", "content"), LETTERS[req.query["id"]], strict=True)))
    )
    settings = make_settings(tmp_path_factory.mktemp("spa"), FAST_CRAWL + SOURCES.format(base=site.base))
    counts = crawl_sources(settings, now=NOW, timeout=240)
    rendered = counts["spa-board"]
    assert rendered["errors"] == 0, rendered["error_samples"]
    assert rendered["new"] == 2
    store = make_store(settings)
    try:
        items = {i.title: i.content for i in store.search(ItemQuery(source="spa-board")).results}
    finally:
        store.close()
    assert items == dict(LETTERS.values())
    # The same site without a browser shows only its empty shell: a source failure, not "0 new".
    plain = counts["spa-plain"]
    assert plain["new"] == 0
    assert not plain["healthy"]


def test_what_the_page_loads_passes_the_host_rule() -> None:
    from types import SimpleNamespace

    from crawlers.browser import abort_predicate

    abort = abort_predicate({("http", "127.0.0.1", 8000)})
    assert not abort(SimpleNamespace(url="http://127.0.0.1:8000/app.js"))  # the source's own origin
    assert abort(SimpleNamespace(url="http://127.0.0.1:9200/"))  # another port of that host: another service
    assert abort(SimpleNamespace(url="http://10.0.0.7/admin"))  # another internal address
    assert abort(SimpleNamespace(url="http://localhost:9200/"))
    assert abort(SimpleNamespace(url="file:///etc/passwd"))
    assert not abort(SimpleNamespace(url="data:image/png;base64,AAAA"))
    # A public host too: Chromium resolves only the source's own hosts (pinned), nothing else.
    assert abort(SimpleNamespace(url="https://cdn.example.com/app.js"))
