"""In a real browser: the ticket list follows every change live, the source's work-order number is shown,
and every dashboard chart (trend, hot terms and the rest) is readable on a phone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.console.conftest import ConsoleServer, screenshot
from tests.console.test_console_roles import DESKTOP, PHONE, _english_words, _overflow

pytestmark = pytest.mark.browser

CHARTS = ("chart-trend", "chart-terms", "chart-ontime", "chart-volume", "chart-sources", "chart-regions")

# The visible text boxes of one chart's SVG; pairs of them that overlap; boxes outside the chart.
LABEL_PROBLEMS = """(id) => {
  const host = document.getElementById(id);
  const frame = host.getBoundingClientRect();
  const boxes = [...host.querySelectorAll('svg text')]
    .filter((t) => (t.textContent || '').trim() && getComputedStyle(t).opacity !== '0')
    .map((t) => ({ text: t.textContent.trim(), r: t.getBoundingClientRect() }))
    .filter((b) => b.r.width > 0 && b.r.height > 0);
  const problems = [];
  for (const b of boxes) {
    if (b.r.left < frame.left - 1 || b.r.right > frame.right + 1) problems.push(`${id}: "${b.text}" outside the chart`);
  }
  for (let i = 0; i < boxes.length; i += 1) {
    for (let j = i + 1; j < boxes.length; j += 1) {
      const a = boxes[i].r, b = boxes[j].r;
      const dx = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const dy = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (dx > 1 && dy > 1) problems.push(`${id}: "${boxes[i].text}" overlaps "${boxes[j].text}"`);
    }
  }
  return { count: boxes.length, problems };
}"""


def _ticket_of(server: ConsoleServer, marker: str) -> dict:
    return server.wait_for("officer1", "/api/v1/tickets", lambda t: marker in (t.get("title") or ""))


def test_work_order_number_beside_the_original_link_in_list_ticket_and_ledger(
    open_as, console_server: ConsoleServer
) -> None:
    console_server.ingest("化工厂排污工单号测试", "化工厂向河里排污，异味严重。", order_no="GD2026T1601")
    ticket = _ticket_of(console_server, "工单号测试")
    assert ticket["order_no"] == "GD2026T1601"
    page = open_as("env1", PHONE)
    page.goto("/tickets")
    row = page.locator(f"#ticket-rows tr[data-id='{ticket['id']}']")
    row.wait_for()
    assert "工单号 GD2026T1601" in row.locator(".orig").text_content()
    assert row.locator(".orig a.ext", has_text="原文").count() == 1
    assert _overflow(page) <= 0
    page.goto(f"/tickets/{ticket['id']}")
    page.wait_for_selector("#t-facts .order-no", timeout=20000)  # the first ticket page may wait for jieba
    assert page.text_content("#t-facts .order-no") == "GD2026T1601"
    assert page.locator("#t-facts a.ext", has_text="原文").count() == 1
    assert page.text_content("#t-items .order-no") == "工单号 GD2026T1601"
    # The product itself opened the ticket: the timeline says so in words, not as a machine key.
    assert "系统（关键词匹配）" in page.text_content("#t-timeline")
    assert "system:" not in page.text_content("#t-timeline")
    assert _overflow(page) <= 0
    screenshot(page, "ticket-order-no-phone")
    page.goto("/ledger")
    ledger_row = page.locator("#ledger-rows tr", has_text="工单号测试")
    ledger_row.wait_for()
    assert "GD2026T1601" in ledger_row.text_content()
    assert ledger_row.locator("a.ext", has_text="原文").count() == 1
    assert _overflow(page) <= 0
    with page.expect_download() as download_info:
        page.click("#export-csv")
    text = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
    assert "工单号,原文链接" in text.splitlines()[0]
    line = next(line for line in text.splitlines() if "工单号测试" in line)
    assert ",GD2026T1601,http://127.0.0.1:9/detail/console-" in line  # the number, then the link
    assert not page.console_errors, page.console_errors


def test_ticket_list_follows_every_change_live_and_each_department_sees_only_its_own(
    open_as, console_server: ConsoleServer
) -> None:
    env = open_as("env1")
    water = open_as("water1", PHONE)
    officer = open_as("officer1")
    for page in (env, water, officer):
        page.goto("/tickets")
        page.wait_for_selector("#live-state.ok")
    officer.select_option("#f-status", "")  # every status: the officer watches the whole ledger
    console_server.ingest("化工厂排污实时改派测试", "化工厂向河里排污，异味严重。")
    ticket = _ticket_of(console_server, "实时改派测试")
    selector = f"#ticket-rows tr[data-id='{ticket['id']}']"
    env.locator(selector).wait_for(timeout=10000)  # created: arrives without a reload
    officer.locator(selector).wait_for(timeout=10000)
    # Acted on by the department: the officer's list shows the new status by itself.
    with console_server.client("env1") as client:
        done = client.post(f"/api/v1/tickets/{ticket['id']}/actions", json={"action": "acknowledge", "version": 1})
        assert done.status_code == 200, done.text
    officer.wait_for_function(
        f"() => (document.querySelector(\"{selector}\") || {{}}).textContent?.includes('已签收')", timeout=10000
    )
    assert water.locator(selector).count() == 0  # another department's ticket never reaches water
    # Reassigned by the officer: it leaves env's list and arrives in water's, both live.
    with console_server.client("officer1") as client:
        moved = client.post(
            f"/api/v1/tickets/{ticket['id']}/actions",
            json={"action": "reassign", "department": "water", "note": "属供水问题", "version": 2},
        )
        assert moved.status_code == 200, moved.text
    water.locator(selector).wait_for(timeout=10000)
    env.locator(selector).wait_for(state="detached", timeout=10000)
    assert "市水务局" in officer.locator(selector).text_content(timeout=10000) or officer.wait_for_function(
        f"() => document.querySelector(\"{selector}\").textContent.includes('市水务局')", timeout=10000
    )
    assert _overflow(water) <= 0
    screenshot(water, "tickets-live-water-phone")
    for page in (env, water, officer):
        assert not page.errors, page.errors
        assert not page.console_errors, page.console_errors


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_every_dashboard_chart_is_drawn_locally_and_its_labels_do_not_overlap(
    open_as, console_server: ConsoleServer, viewport
) -> None:
    for n in range(3):
        console_server.ingest(f"青川化工厂排污热词测试{n}", "居民反映化工厂排污，河道异味严重，希望相关部门尽快处理。")
    _ticket_of(console_server, "排污热词测试2")
    for username in ("leader1", "env1"):
        page = open_as(username, viewport)
        requests: list[str] = []
        page.on("request", lambda r, seen=requests: seen.append(r.url))
        page.goto("/dashboard")
        for chart in CHARTS:
            page.wait_for_selector(f"#{chart} svg text", timeout=15000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('#chart-terms svg text')].some(t => t.textContent === '化工厂')",
            timeout=20000,  # the first segmentation loads jieba's dictionary
        )
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)  # ECharts animates into place
        assert all(u.startswith(console_server.base_url) for u in requests), requests  # nothing from a CDN
        terms = page.eval_on_selector_all("#chart-terms svg text", "nodes => nodes.map(n => n.textContent)")
        assert not {"居民", "反映", "希望", "相关部门"} & set(terms)  # stop words are not hot terms
        trend_legend = "".join(page.eval_on_selector_all("#chart-trend svg text", "ns => ns.map(n => n.textContent)"))
        assert "工单" in trend_legend
        assert "预警" in trend_legend
        assert ("新增条目" in trend_legend) == (username == "leader1")  # items are not a department's figure
        problems = []
        for chart in CHARTS:
            found = page.evaluate(LABEL_PROBLEMS, chart)
            assert found["count"] > 0, chart
            problems += found["problems"]
        kind = "phone" if viewport == PHONE else "desktop"
        screenshot(page, f"dashboard-charts-{username}-{kind}")
        assert not problems, "\n".join(problems)
        assert _overflow(page) <= 0
        assert not _english_words(page)
        assert "统计了所选日期内最新的" in page.text_content("#terms-note")
        if viewport == DESKTOP and username == "leader1":
            _printed_charts_fit(page)
        assert not page.errors, page.errors
        assert not page.console_errors, page.console_errors


# Each chart's drawing size against its box, and the labels it shows.
CHART_FIT = """(id) => {
  const host = document.getElementById(id);
  const svg = host.querySelector('svg');
  const labels = [...svg.querySelectorAll('text')]
    .filter((t) => (t.textContent || '').trim() && getComputedStyle(t).opacity !== '0')
    .map((t) => t.textContent.trim());
  const drawn = [+svg.getAttribute('width'), +svg.getAttribute('height')];
  return { box: [host.clientWidth, host.clientHeight], drawn, labels };
}"""


def _printed_charts_fit(page) -> None:
    """Printing the dashboard (A4, shorter charts) redraws every chart to its printed box, keeping its labels."""
    on_screen = {chart: page.evaluate(CHART_FIT, chart) for chart in CHARTS}
    page.emulate_media(media="print")
    # Media-query listeners run at the next rendering step, before its animation-frame callbacks.
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    try:
        printed = {chart: page.evaluate(CHART_FIT, chart) for chart in CHARTS}
        assert {c: p["drawn"] for c, p in printed.items()} == {c: p["box"] for c, p in printed.items()}
        assert printed["chart-trend"]["box"] != on_screen["chart-trend"]["box"]  # the print layout differs
        assert sorted(printed["chart-terms"]["labels"]) == sorted(on_screen["chart-terms"]["labels"])
        problems = [problem for chart in CHARTS for problem in page.evaluate(LABEL_PROBLEMS, chart)["problems"]]
        assert not problems, "\n".join(problems)
    finally:
        page.emulate_media(media="screen")


def test_a_ledger_export_with_a_reversed_or_too_long_range_is_refused_on_the_page(
    open_as, console_server: ConsoleServer
) -> None:
    """The download replaces the page: a refused range must be said on the ledger page, in Chinese."""
    page = open_as("officer1", PHONE)
    page.goto("/ledger")
    page.wait_for_load_state("networkidle")
    for start, end, said in (
        ("2026-12-01", "2026-11-01", "开始日期不能晚于结束日期"),
        ("2025-01-01", "2026-11-01", "日期范围最多 366 天"),
    ):
        page.fill("#l-from", start)
        page.fill("#l-to", end)
        page.click("#export-csv")
        page.wait_for_timeout(300)
        assert page.url.endswith("/ledger"), page.url  # still in the console, not on a bare JSON answer
        assert said in (page.text_content("#ledger-error") or "")
        assert page.is_visible("#ledger-error")
    page.fill("#l-from", "2026-11-01")
    with page.expect_download(timeout=30000) as download:
        page.click("#export-xlsx")
    assert download.value.suggested_filename.endswith(".xlsx")
    assert not page.is_visible("#ledger-error")
    assert _overflow(page) <= 0
    assert not page.errors, page.errors


def test_a_mistyped_console_address_shows_a_chinese_page_and_the_api_keeps_json(
    open_as, console_server: ConsoleServer
) -> None:
    page = open_as("officer1", PHONE)
    answer = page.goto("/tickts")  # a typo, or an old bookmark
    assert answer is not None
    assert answer.status == 404
    assert "页面不存在" in (page.text_content("h1") or "")
    assert page.is_visible("#nav-alerts")  # the menu is there to go on from
    assert not _english_words(page), page.inner_text("main")
    assert _overflow(page) <= 0
    with console_server.client("officer1") as client:
        api = client.get("/api/v1/nosuch", headers={"Accept": "text/html"})
        assert api.status_code == 404
        assert api.headers["content-type"].startswith("application/json")
        assert client.get("/api/v1/tickets/99999").json()["detail"] == "工单 99999 不存在"
