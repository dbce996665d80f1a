"""Crawls that meet hostile answers (403, 429, slow and huge pages) and a crawl killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawlers.runner import crawl_sources, settings_payload
from service.settings import Settings
from service.store import make_store
from service.store.base import ItemQuery
from tests.crawlers.conftest import make_settings
from tests.crawlers.site import Page, Request, Site

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
HTML = "text/html; charset=utf-8"
DETAIL = '<html><body><h1>{title}</h1><div class="c">{title}的详细情况。</div><b class="no">{no}</b></body></html>'


def _detail(title: str, no: str, status: int = 200, **kw: Any) -> Page:
    return Page(status, DETAIL.format(title=title, no=no).encode(), HTML, **kw)


def _list(links: list[str], next_href: str | None = None) -> str:
    nav = f'<a class="next" href="{next_href}">下一页</a>' if next_href else ""
    rows = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    return f'<html><body><ul class="list">{rows}</ul>{nav}</body></html>'


def _source(sid: str, start: str, max_pages: int = 5) -> str:
    return f"""  - id: {sid}
    name: 测试 {sid}
    channel: hotline
    type: html
    start_urls: ["{start}"]
    interval: 1h
    max_pages: {max_pages}
    list: {{items: "ul.list > li", url: "a::attr(href)", next: "a.next::attr(href)"}}
    fields: {{title: h1, content: div.c, external_id: b.no}}
"""


class BusyOnce:
    """Answers 429 with Retry-After: 1 the first time, the page afterwards."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, req: Request) -> Page:
        self.calls += 1
        if self.calls == 1:
            return Page(429, "访问过于频繁".encode(), HTML, headers={"Retry-After": "1"})
        return _detail("高峰期排队", "H-3")


def _stored(settings: Settings, source: str) -> list[str]:
    store = make_store(settings)
    try:
        return sorted(i.external_id or "" for i in store.search(ItemQuery(source=source, size=200)).results)
    finally:
        store.close()


def test_error_answers_are_counted_and_the_crawl_goes_on(site: Site, tmp_path: Path) -> None:
    pages = ["ok1.html", "forbidden.html", "busy.html", "throttled.html", "slow.html", "huge.html", "ok2.html"]
    site.html("/http/list.html", _list(pages))
    site.set("/http/ok1.html", _detail("小区停水", "H-1"))
    site.set("/http/ok2.html", _detail("路灯不亮", "H-2"))
    site.set("/http/forbidden.html", Page(403, b"<h1>403 Forbidden</h1>", HTML))
    site.handle("/http/busy.html", BusyOnce())
    site.set("/http/throttled.html", Page(429, b"slow down", HTML, headers={"Retry-After": "3600"}))
    # Far past the 1 s timeout: a crawl process starved of CPU for a second or two (load 20 on 2 cores) sees
    # the timer and a 2.5 s answer at once and may take the answer.
    site.set("/http/slow.html", _detail("慢页面", "H-4", delay=15))
    site.set("/http/huge.html", _detail("大页面" + "很长的正文" * 20000, "H-5"))  # about 300 KB
    crawl = """crawl:
  autothrottle: false
  download_delay: 0
  timeout: 1
  retries: 1
  max_download_mb: 0.05
  concurrency_per_domain: 8
sources:
"""
    settings = make_settings(tmp_path, crawl + _source("http", f"{site.base}/http/list.html"))
    started = time.monotonic()
    counts = crawl_sources(settings, now=NOW, timeout=240)["http"]
    # About 5 s on an idle machine, 24 s seen at load 17 on 2 cores. Honouring the hour-long Retry-After
    # or hanging on the slow page would take the full crawl limit, so 120 s still tells them apart.
    assert time.monotonic() - started < 120
    assert _stored(settings, "http") == ["H-1", "H-2", "H-3"]
    reasons = {s["url"].rsplit("/", 1)[-1]: s["reason"] for s in counts["error_samples"]}
    assert reasons["forbidden.html"] == "HTTP 403"
    assert reasons["throttled.html"] == "HTTP 429"
    assert "请求超时" in reasons["slow.html"]
    assert "大小上限" in reasons["huge.html"]
    assert counts["errors"] == 4
    assert counts["new"] == 3
    assert site.hits["/http/forbidden.html"] == 1  # a 403 is an answer, not an accident: no retry
    assert site.hits["/http/throttled.html"] == 1  # an hour's Retry-After is not waited for
    assert site.hits["/http/slow.html"] == 2  # one retry after the timeout
    busy = site.times["/http/busy.html"]
    assert len(busy) == 2
    assert busy[1] - busy[0] >= 0.95  # Retry-After: 1 was honoured


KILL_ITEMS = 60


def _kill_site(site: Site, slow: bool = True) -> None:
    per_page = 20
    for p in range(KILL_ITEMS // per_page):
        links = [f"d{i}.html" for i in range(p * per_page, (p + 1) * per_page)]
        last = p == KILL_ITEMS // per_page - 1
        site.html(f"/kill/list_{p + 1}.html", _list(links, None if last else f"list_{p + 2}.html"))
    for i in range(KILL_ITEMS):
        # A slow government server: every detail page takes 50-100 ms.
        delay = 0.05 + (i % 6) * 0.01 if slow else 0.0
        site.set(f"/kill/d{i}.html", _detail(f"第{i}号工单", f"K-{i}", delay=delay))


def test_a_crawl_killed_with_sigkill_loses_and_duplicates_nothing(site: Site, tmp_path: Path) -> None:
    _kill_site(site)
    crawl = """crawl:
  autothrottle: false
  download_delay: 0
  timeout: 5
  retries: 1
  concurrency_per_domain: 4
  batch_size: 5
sources:
"""
    settings = make_settings(tmp_path, crawl + _source("kill", f"{site.base}/kill/list_1.html"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    cmd = [
        sys.executable,
        "-m",
        "crawlers.crawl_process",
        "--config",
        str(settings.config_dir),
        "--settings-stdin",
        "--",
        "kill",
    ]
    with (tmp_path / "killed.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=log, stderr=log, env=env)
        assert proc.stdin is not None
        proc.stdin.write(settings_payload(settings).encode("utf-8"))
        proc.stdin.close()
        store = make_store(settings)
        try:
            deadline = time.monotonic() + 120  # start-up alone takes tens of seconds on a loaded CI machine
            while store.count(ItemQuery(source="kill")) < 5:
                assert proc.poll() is None, "the crawl ended before it could be killed"
                assert time.monotonic() < deadline, "nothing was stored within two minutes"
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
            survived = store.count(ItemQuery(source="kill"))
        finally:
            store.close()
    assert 0 < survived < KILL_ITEMS

    _kill_site(site, slow=False)  # the same pages, answered at once: the re-runs need not be slow
    again = crawl_sources(settings, ["kill"], now=NOW, timeout=120)["kill"]
    assert again["new"] == KILL_ITEMS - survived
    assert again["skipped"] == survived
    assert again["errors"] == 0
    assert _stored(settings, "kill") == sorted(f"K-{i}" for i in range(KILL_ITEMS))

    third = crawl_sources(settings, ["kill"], now=NOW, timeout=120)["kill"]
    assert (third["new"], third["updated"], third["skipped"]) == (0, 0, KILL_ITEMS)
