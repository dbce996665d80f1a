"""Stopping `yuqing run` in the middle of a crawl: the process ends within seconds, nothing is lost or doubled.

The product runs as an operator starts it; its one source is a slow local site whose fourth detail page never
answers while the test waits, so a crawl is certainly under way (pages fetched, more queued behind the
politeness delay, one request in flight) when the SIGTERM comes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.crawlers.site import Page, Request, Site
from tests.foundation.conftest import run_cli_session
from tests.servers.process import free_port

pytestmark = pytest.mark.long_running(60)

ENTRIES = 12
HANGING = 4  # the detail request that never answers while the product runs (by order of arrival)
GRACE = 3  # scheduler.crawl_stop_seconds
# Generous for a loaded 2-core machine: the stop itself takes the grace plus a few seconds. Before the fix
# the process waited for the hanging page (minutes) and for every queued page behind a 1 s delay.
STOP_BOUND = 40.0


def _detail(number: int) -> str:
    return (
        f"<html><body><table><tr><td>工单编号</td><td>GD{number:04d}</td></tr>"
        f"<tr><td class='title'>第{number}号投诉：某路段第{number}处路灯不亮</td></tr>"
        f"<tr><td class='content'>市民反映某路段第{number}处路灯连续{number + 2}晚不亮，存在安全隐患。</td></tr>"
        "<tr><td>受理时间</td><td>2026-11-20 09:00</td></tr></table></body></html>"
    )


class SlowSite:
    """The list page and ENTRIES detail pages; the HANGING-th detail request waits until ``release``."""

    def __init__(self) -> None:
        self.site = Site()
        self.hanging = threading.Event()
        self.release = threading.Event()
        self.arrivals = 0
        self._lock = threading.Lock()
        links = "".join(f'<li><a href="/detail/{n}.html">第{n}号</a></li>' for n in range(1, ENTRIES + 1))
        self.site.html("/list.html", f"<html><body><ul class='orders'>{links}</ul></body></html>")
        for n in range(1, ENTRIES + 1):
            self.site.handle(f"/detail/{n}.html", self._answer(n))

    def _answer(self, number: int) -> Callable[[Request], Page]:
        def answer(request: Request) -> Page:
            with self._lock:
                self.arrivals += 1
                hang = self.arrivals == HANGING
            if hang:
                self.hanging.set()
                self.release.wait(300)
            return Page(200, _detail(number).encode("utf-8"), "text/html; charset=utf-8")

        return answer

    def close(self) -> None:
        self.release.set()
        self.site.close()


def _write_config(config: Path, base: str, delay: float, grace: float = GRACE) -> None:
    config.mkdir(exist_ok=True)
    (config / "settings.yaml").write_text(
        f"scheduler:\n  crawl_niceness: 0\n  crawl_stop_seconds: {grace:g}\n", encoding="utf-8"
    )
    (config / "sources.yaml").write_text(
        f"""crawl:
  autothrottle: false
  download_delay: {delay:g}
  concurrency_per_domain: 1
  timeout: 280
  retries: 0
  batch_size: 100
sources:
  - id: slow-12345
    name: 慢速热线
    channel: hotline
    type: html
    start_urls: ["{base}/list.html"]
    interval: 1h
    obey_robots: false
    list:
      items: "ul.orders > li"
      url: "a::attr(href)"
    fields:
      external_id: "label:工单编号"
      title: "td.title"
      content: "td.content"
      published_at: "label:受理时间"
""",
        encoding="utf-8",
    )
    (config / "departments.yaml").write_text(
        """departments:
  - id: city
    name: 市城管局
    rules:
      - id: city-lights
        expr: '路灯 AND 不亮'
        severity: normal
""",
        encoding="utf-8",
    )


def _stored(data: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(data / "items.sqlite3")) as conn:
        return [row[0] for row in conn.execute("SELECT external_id FROM items WHERE source = 'slow-12345'")]


def test_stopping_run_mid_crawl_ends_within_seconds_and_loses_nothing(tmp_path: Path) -> None:
    slow = SlowSite()
    config, data = tmp_path / "config", tmp_path / "data"
    _write_config(config, slow.site.base, delay=1)
    env = {**os.environ, "YUQING_DATA_DIR": str(data)}
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "--config", str(config), "run", "--port", str(free_port())],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        # The first crawl starts a few seconds after the server; a loaded CI machine takes minutes at worst.
        waited = time.monotonic()
        while not slow.hanging.wait(0.5):
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            assert time.monotonic() - waited < 240, (tmp_path / "run.log").read_text()[-3000:]
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=STOP_BOUND + 60)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        slow.release.set()
    output = (tmp_path / "run.log").read_text(encoding="utf-8")
    assert took < STOP_BOUND, f"stop took {took:.1f} s\n{output[-3000:]}"
    assert proc.returncode in (0, -signal.SIGTERM), output[-3000:]
    # What it did, in Chinese: the crawl was asked to stop, then killed after its grace (a page still hangs).
    assert "已通知抓取进程（来源 slow-12345）停止" in output, output[-3000:]
    assert f"{GRACE} 秒内未结束，已强制终止" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    crawl_log = (data / "logs" / "crawl.log").read_text(encoding="utf-8")
    assert "收到停止请求：已把抓到的" in crawl_log
    # The pages fetched before the stop were written although the batch (100) was far from full and the crawl
    # was killed: the stop request wrote them at once.
    before = _stored(data)
    assert 1 <= len(before) < ENTRIES, before
    assert len(before) == len(set(before))

    # The next crawl fetches the rest (no politeness delay: the test need not wait); matching then sees each
    # item exactly once.
    _write_config(config, slow.site.base, delay=0)
    crawl, match = run_cli_session(
        [(["--config", str(config), "crawl", "slow-12345"], ""), (["--config", str(config), "match"], "")],
        env=env,
    )
    slow.close()
    assert crawl.returncode == 0, crawl.stdout + crawl.stderr
    assert match.returncode == 0, match.stdout + match.stderr
    after = _stored(data)
    assert sorted(after) == sorted(f"GD{n:04d}" for n in range(1, ENTRIES + 1))
    with contextlib.closing(sqlite3.connect(data / "yuqing.db")) as conn:
        alerts = conn.execute("SELECT item_id, count(*) FROM alerts GROUP BY item_id").fetchall()
    assert len(alerts) == ENTRIES, alerts
    assert all(count == 1 for _item, count in alerts), alerts


def _interrupted(slow: SlowSite, command: list[str], env: dict[str, str], out: Path, answer: bool) -> tuple[int, float]:
    """Run a yuqing command as typed at a terminal, press Ctrl-C once the held page is asked for (``answer``: and
    then answer it); its exit code and how long it took to end after the Ctrl-C. Its output goes to ``out``."""
    log = out.open("w")
    # A session of its own, like a command typed at a terminal: the SIGINT below goes to this process only.
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", *command],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        waited = time.monotonic()
        while not slow.hanging.wait(0.5):
            assert proc.poll() is None, out.read_text()[-3000:]
            assert time.monotonic() - waited < 240, out.read_text()[-3000:]
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        if answer:
            slow.release.set()
        proc.wait(timeout=STOP_BOUND + 60)
        return proc.returncode, time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        slow.close()


@pytest.mark.parametrize("page_hangs", [True, False], ids=["killed-after-grace", "ends-by-itself"])
def test_ctrl_c_in_yuqing_crawl_writes_what_was_fetched_and_says_so(tmp_path: Path, page_hangs: bool) -> None:
    """Ctrl-C at the terminal reaches only the command (the crawl process has a session of its own): the command
    asks the crawl to stop and the pages fetched are written. It ends within seconds, exit code 130, saying in
    Chinese that it was interrupted (not that a service is stopping or that the crawl failed): with the counts
    of what was written when the crawl ended by itself, or that it was ended after its grace."""
    slow = SlowSite()
    config, data = tmp_path / "config", tmp_path / "data"
    # Ending by itself: the hanging page is answered right after the Ctrl-C, well within a long grace.
    _write_config(config, slow.site.base, delay=1, grace=GRACE if page_hangs else 120)
    env = {**os.environ, "YUQING_DATA_DIR": str(data)}
    init = subprocess.run(
        [sys.executable, "-m", "service.cli", "--config", str(config), "init"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    out = tmp_path / "crawl.out"
    code, took = _interrupted(slow, ["--config", str(config), "crawl", "slow-12345"], env, out, not page_hangs)
    output = out.read_text(encoding="utf-8")
    assert took < STOP_BOUND, f"stop took {took:.1f} s\n{output[-3000:]}"
    assert code == 130, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "已中断" in output, output[-3000:]
    assert "服务正在停止" not in output, output[-3000:]
    assert "抓取进程失败" not in output, output[-3000:]
    stored = _stored(data)
    assert 1 <= len(stored) < ENTRIES, stored
    if page_hangs:
        assert f"抓取进程 {GRACE} 秒内未结束，已强制终止" in output, output[-3000:]
    else:
        # The counts of what was written, then what the interruption means for the rest.
        assert f"slow-12345: new={len(stored)} " in output, output[-3000:]
        assert "已中断：本次抓取未完成" in output, output[-3000:]


def test_ctrl_c_in_yuqing_sources_check_says_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A check whose detail page hangs, interrupted at the terminal and ended after its grace: exit 130 and 已中断,
    not 抓取进程失败; and it does not claim written items are kept (a check writes nothing), it says so."""
    monkeypatch.setattr(sys.modules[__name__], "HANGING", 1)  # a check fetches a single detail page
    slow = SlowSite()
    config = tmp_path / "config"
    _write_config(config, slow.site.base, delay=0)
    env = {**os.environ, "YUQING_DATA_DIR": str(tmp_path / "data")}
    out = tmp_path / "check.out"
    code, _took = _interrupted(slow, ["--config", str(config), "sources", "check", "slow-12345"], env, out, False)
    output = out.read_text(encoding="utf-8")
    assert code == 130, output[-3000:]
    assert f"已中断：抓取进程 {GRACE} 秒内未结束" in output, output[-3000:]
    assert "不保存任何条目" in output, output[-3000:]
    assert "已写入的条目" not in output, output[-3000:]
    assert "写入存储" not in output, output[-3000:]
    assert "抓取进程失败" not in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
