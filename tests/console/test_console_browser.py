"""The console in a real browser (Debian's Chromium): what officers, departments and leaders see and do."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.console.conftest import PASSWORD, ConsoleServer, screenshot

pytestmark = pytest.mark.browser

XSS_TITLE = '化工厂排污注入测试<img src=x onerror="window.__xss=1">'
XSS_CONTENT = '工厂夜间排污，异味刺鼻<script>window.__xss=2</script><svg onload="window.__xss=3"></svg>'


def _ticket_of(server: ConsoleServer, item_marker: str, department: str) -> dict:
    return server.wait_for(
        "officer1", "/api/v1/tickets", lambda t: item_marker in (t.get("title") or "") and t["department"] == department
    )


def test_login_form_then_logout(open_as, console_server: ConsoleServer) -> None:
    page = open_as(None)
    page.goto("/tickets")
    assert "/login" in page.url  # pages need a login first
    page.fill("#username", "officer1")
    page.fill("#password", "wrong-password-1A")
    page.click("#login-submit")
    page.wait_for_selector("#login-error:not(:empty)")
    assert "错误" in page.text_content("#login-error")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(re.compile(r"/tickets$"))  # back where the user wanted to go
    assert page.text_content(".who .user") == "officer1"
    screenshot(page, "tickets-officer")
    page.click("#logout")
    page.wait_for_url(re.compile(r"/login"))
    page.goto("/alerts")
    assert "/login" in page.url  # the session is gone on the server, not only in the browser


def test_officer_sees_new_alert_live_with_highlight_and_badge(open_as, console_server: ConsoleServer) -> None:
    page = open_as("officer1")
    page.goto("/alerts")
    page.wait_for_selector("#live-state.ok")
    before = page.locator("#feed > li").count()
    console_server.ingest("青川化工厂夜间排污实时测试", "居民反映化工厂排放污水，河道有异味。")
    alert = page.locator("#feed > li", has_text="夜间排污实时测试")
    alert.wait_for(timeout=30000)  # arrives over SSE: no reload
    assert page.locator("#feed > li").count() == before + 1
    marks = alert.locator("mark").all_text_contents()
    assert "化工厂" in marks
    assert "排污" in marks
    assert "unread" in (alert.get_attribute("class") or "")
    assert page.text_content("#unread-badge") == "1"
    assert page.title().startswith("(1)")
    assert alert.locator(".dept").text_content() == "市生态环境局"
    # Filters: another channel hides it, its own channel shows it.
    page.select_option("#f-channel", "media")
    assert alert.count() == 0
    page.select_option("#f-channel", "hotline")
    assert alert.count() == 1
    screenshot(page, "alerts-live")
    page.click("#mark-read")
    assert page.locator("#unread-badge").is_hidden()


def test_department_acknowledges_and_responds_but_not_other_departments(open_as, console_server: ConsoleServer) -> None:
    event = f"console-event-{time.monotonic_ns()}"
    console_server.ingest("化工厂排污台账测试甲", "化工厂向河里排污，异味严重。", event_id=event)
    console_server.ingest("小区停水台账测试乙", "小区已停水两天，无人处理。")
    own = _ticket_of(console_server, "台账测试甲", "env")
    other = _ticket_of(console_server, "台账测试乙", "water")
    # A repost of the same event joins the ticket: its timeline gets an "attach_item" entry.
    console_server.ingest("【转】化工厂排污台账测试甲", "化工厂向河里排污，异味严重。", channel="media", event_id=event)
    console_server.wait_for("env1", "/api/v1/tickets", lambda t: t["id"] == own["id"] and t["item_count"] == 2)

    page = open_as("env1")
    page.goto("/tickets")
    row = page.locator(f"#ticket-rows tr[data-id='{own['id']}']")
    row.wait_for()
    assert page.locator(f"#ticket-rows tr[data-id='{other['id']}']").count() == 0
    assert "台账测试乙" not in page.text_content("#ticket-rows")
    assert "剩" in row.locator("td.left").text_content()  # time left for the current stage

    row.locator("a[href^='/tickets/']").click()  # the title; "原文" opens the source site
    page.wait_for_selector("#t-actions button[data-action='acknowledge']")
    page.click("#t-actions button[data-action='acknowledge']")
    page.click("#af-submit")
    page.wait_for_selector("#t-actions button[data-action='respond']")
    assert "已签收" in page.text_content("#t-facts")
    page.click("#t-actions button[data-action='respond']")
    page.click("#af-submit")
    assert "回应链接" in page.text_content("#af-error")  # required before anything is sent
    page.fill("#af-url", "https://www.example.gov.cn/hdjl/reply/1.html")
    page.fill("#af-note", "已在政府网站公开回应")
    page.click("#af-submit")
    page.wait_for_selector("#t-timeline li:has-text('回应')")
    assert "已回应" in page.text_content("#t-facts")
    # Every entry reads in Chinese: the repost's arrival too, never its code.
    timeline = page.text_content("#t-timeline")
    assert "追加条目" in timeline
    assert not re.search(r"[a-z]+_[a-z]+", timeline), timeline
    screenshot(page, "ticket-detail")

    # Another department's ticket: the page says it is not there, and shows none of it.
    page.goto(f"/tickets/{other['id']}")
    page.wait_for_selector("#t-error:not(.hidden)")
    assert "无权查看" in page.text_content("#t-error")
    assert "台账测试乙" not in page.content()
    assert page.locator("nav a[href='/rules']").count() == 0


def test_hostile_item_text_is_shown_as_text_and_never_runs(open_as, console_server: ConsoleServer) -> None:
    page = open_as("officer1")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto("/alerts")
    page.wait_for_selector("#live-state.ok")
    console_server.ingest(XSS_TITLE, XSS_CONTENT)
    alert = page.locator("#feed > li", has_text="onerror")
    alert.wait_for(timeout=30000)
    assert "<img src=x onerror=" in alert.locator(".title").text_content()
    assert page.locator("#feed img, #feed script, #feed svg").count() == 0
    ticket = _ticket_of(console_server, "排污注入测试", "env")
    page.goto(f"/tickets/{ticket['id']}")
    page.wait_for_selector("#t-items li")
    assert "onerror" in page.text_content("#t-items")
    assert page.locator("#t-items img, #t-items script, #t-items svg").count() == 0
    page.wait_for_timeout(300)  # a stray onerror would fire on the failed image load
    assert page.evaluate("window.__xss") is None
    assert dialogs == []
    assert page.errors == []


def test_rule_editor_marks_parse_error_and_tests_live(open_as, console_server: ConsoleServer) -> None:
    console_server.ingest("化工厂排污回测样本", "河边异味很重")
    page = open_as("officer1")
    page.goto("/rules")
    page.wait_for_selector("#rule-rows tr[data-id='env-pollution']")
    # The list names a rule as departments.yaml does, its id (what the editor and API use) beneath.
    named = page.locator("#rule-rows tr[data-id='env-pollution'] td.rule-name")
    assert named.locator("div").all_text_contents() == ["化工厂排污异味", "env-pollution"]
    page.fill("#r-sample", "青川化工厂排污，河边异味很重")
    page.fill("#r-expr", "(排污 OR 异味) AND AND 化工厂")
    page.wait_for_selector("#r-parse-error:not(.hidden)")
    marked = page.text_content("#r-parse-error mark.err")
    assert marked in ("A", " ")  # the error is marked where it is, inside the expression
    page.fill("#r-expr", "(排污 OR 异味) AND 化工厂")
    page.wait_for_selector("#r-sample-result .matched")
    assert page.locator("#r-parse-error").is_hidden()
    assert set(page.locator("#r-sample-result mark").all_text_contents()) >= {"排污", "化工厂", "异味"}
    page.click("#r-backtest")  # the last 7 days of stored items, before saving
    hit = page.locator("#r-backtest-result li", has_text="回测样本")
    hit.wait_for()
    assert "化工厂" in hit.locator("mark").all_text_contents()
    assert "示例市12345热线" in hit.inner_text()  # the source by its name, not its id
    assert "demo-12345" not in hit.inner_text()
    screenshot(page, "rules-editor")


def test_leader_dashboard_draws_charts_from_served_echarts(open_as, console_server: ConsoleServer) -> None:
    console_server.ingest("化工厂排污看板测试", "化工厂排污")
    page = open_as("leader1")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto("/dashboard")
    page.wait_for_selector("#chart-ontime svg")
    page.wait_for_selector("#chart-volume svg")
    assert page.evaluate("typeof window.echarts.init") == "function"
    assert all(u.startswith(console_server.base_url) for u in requests), requests
    screenshot(page, "dashboard")
    page.goto("/ledger")
    with page.expect_download() as download_info:
        page.click("#export-csv")
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    assert "看板测试" in Path(download.path()).read_text(encoding="utf-8-sig")
    for path, name in [("/ledger", "ledger"), ("/sources", "sources"), ("/sla", "sla")]:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        screenshot(page, name)
    assert "示例市12345热线" in page.goto("/sources").text()
    assert page.errors == []


def test_a_failing_source_is_shown_above_the_alert_feed(open_as, console_server: ConsoleServer) -> None:
    # The only configured source points at a closed port: its scheduled crawl fails soon after start.
    page = open_as("officer1")
    page.goto("/alerts")
    banner = page.locator("#source-health")
    deadline = time.monotonic() + 120
    while "示例市12345热线" not in (banner.text_content() or "") and time.monotonic() < deadline:
        page.wait_for_timeout(2000)
        page.reload()
    assert banner.is_visible()
    assert "连续失败" in banner.text_content()
    page.goto("/sources")
    assert "异常" in page.locator("table.grid").text_content()


def test_a_cut_alert_excerpt_is_marked_as_cut_and_never_shows_a_clipped_number_as_whole(
    open_as, console_server: ConsoleServer
) -> None:
    """Excerpts are cut from the masked text: where the cut falls inside a phone number the feed must show "…"."""
    filler = "居民多次反映情况，" * 12
    content = f"{filler}化工厂夜里排污截断测试，异味刺鼻。{filler}联系电话13912345678"
    console_server.ingest("截断摘录测试", content)
    page = open_as("officer1")
    page.goto("/alerts")
    alert = page.locator("#feed > li", has_text="截断摘录测试")
    alert.wait_for(timeout=30000)
    excerpt = alert.locator(".snippets .snippet").first.text_content() or ""
    assert "化工厂" in excerpt
    body = excerpt.removeprefix("正文")
    assert body.startswith("…"), excerpt  # cut after the start of the content
    assert body.endswith("…"), excerpt  # and before its end (the phone number is not in the excerpt)
    assert not page.errors, page.errors


def test_the_sources_page_says_type_and_period_in_chinese_with_the_raw_value_kept(
    open_as, console_server: ConsoleServer
) -> None:
    page = open_as("admin1", viewport=(900, 768))  # a narrow office window: the address column is what wraps
    page.goto("/sources")
    row = page.locator("table.grid tbody tr", has_text="示例市12345热线")
    kind, period = row.locator("td.source-type"), row.locator("td.source-interval")
    assert kind.text_content() == "RSS 订阅"
    assert period.text_content() == "每 15 分钟"
    # The value as written in sources.yaml, for the admin who edits it.
    assert kind.get_attribute("title") == "rss"
    assert period.get_attribute("title") == "15m"
    # Short labels stay on one line at desktop width (每 15 分钟 was broken after 每 15 beside long addresses).
    for cell in (kind, period, row.locator("td").nth(2)):
        lines = cell.evaluate(
            "td => { const r = document.createRange(); r.selectNodeContents(td); return r.getClientRects().length; }"
        )
        assert lines == 1, (cell.text_content(), lines)
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0  # and nothing scrolls
    assert page.errors == []


def test_a_printed_ticket_shows_its_record_without_the_buttons(open_as, console_server: ConsoleServer) -> None:
    title = "化工厂排污打印测试"
    console_server.ingest(title, "化工厂凌晨排污，打印工单。")
    ticket = console_server.wait_for("officer1", "/api/v1/tickets", lambda t: t["title"] == title)
    page = open_as("officer1")
    page.goto(f"/tickets/{ticket['id']}")
    page.wait_for_selector("#t-actions button")
    page.emulate_media(media="print")
    try:
        visible_buttons = page.eval_on_selector_all(
            "main button", "nodes => nodes.filter(n => n.offsetParent !== null).map(n => n.textContent)"
        )
        assert visible_buttons == []
        assert page.locator("text=返回工单队列").is_hidden()
        assert page.locator("h2", has_text="可执行操作").is_hidden()
        for kept in ("#t-facts", "#t-deadlines", "#t-items", "#t-timeline"):
            assert page.locator(kept).is_visible(), kept
        screenshot(page, "ticket-print")
    finally:
        page.emulate_media(media="screen")
    assert page.errors == []
