"""Every role's pages in a real browser, on a desktop (1440×900) and a phone (390×844).

Each page must land where the role may be, fit the screen without sideways scrolling, show messages in
Chinese and log no error in the browser console. Screenshots go to test-artifacts/console/ for CI.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import chinese_calendar
import httpx
import pytest

from service import clock
from tests.console.conftest import PASSWORD, ConsoleServer, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.long_running(180)]

DESKTOP = (1440, 900)
PHONE = (390, 844)
ROLE_PAGES = {
    "officer1": ["/alerts", "/tickets", "/rules", "/dashboard", "/ledger", "/sources", "/sla"],
    "env1": ["/alerts", "/tickets", "/dashboard", "/ledger", "/sla"],
    "leader1": ["/dashboard", "/alerts", "/tickets", "/rules", "/ledger", "/sources", "/sla"],
    "auditor1": ["/audit"],
    "admin1": ["/users", "/alerts", "/tickets", "/rules", "/dashboard", "/ledger", "/sources", "/sla"],
}
HOMES = {"officer1": "/alerts", "env1": "/tickets", "leader1": "/dashboard", "auditor1": "/audit", "admin1": "/alerts"}
# Where people read messages: errors, notices, empty-list notes, summaries.
MESSAGES = ".error, .toast:not(.hidden), .banner:not(.hidden), .empty:not(.hidden), [role=alert], [role=status], .muted"
# Words that are fine in Latin letters: product and file names, units of the trade.
ALLOWED = {"Excel", "CSV", "TOTP", "RSS", "JSON", "HTML", "ECharts", "URL", "xlsx", "csv"}
ENGLISH = re.compile(r"[A-Za-z]{4,}")
FILE_NAME = re.compile(r"[\w.-]+\.(?:yaml|xlsx|csv|log|jsonl)\b|/api/v1/[\w/-]*")


def _english_words(page) -> list[str]:
    texts = page.eval_on_selector_all(MESSAGES, "nodes => nodes.map(n => n.innerText || '')")
    found = []
    for text in texts:
        text = FILE_NAME.sub("", text)  # file names and API paths are what the person must use
        found += [w for w in ENGLISH.findall(text) if w not in ALLOWED and not w.startswith(("demo", "env", "water"))]
    return found


def _overflow(page) -> int:
    """How many CSS pixels the page is wider than the window (0 when nothing scrolls sideways)."""
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


def _local_day() -> date:
    return clock.to_local(clock.now()).date()


WORK = (
    ("化工厂夜间排污角色页面测试，附近居民反映河道有刺鼻异味", "化工厂向河里排污，异味严重。"),
    ("小区停水角色页面测试", "小区已停水两天，无人处理。"),
)
# Other events than WORK (a near-duplicate would join WORK's tickets instead of opening new ones).
NEXT_DAY_WORK = (
    ("东郊工厂凌晨排污角色页面次日测试", "东郊一家工厂凌晨向鱼塘排污，鱼大量死亡，水面漂着黑色油污。"),
    ("老城区水管爆裂角色页面次日测试", "老城区路口水管爆裂，路面积水半米，车辆无法通行。"),
)


def _make_work(console_server: ConsoleServer, work: tuple[tuple[str, str], ...] = WORK) -> None:
    for title, content in work:
        console_server.ingest(title, content)
    for title, _ in work:
        console_server.wait_for("officer1", "/api/v1/tickets", lambda t, title=title: t.get("title") == title)


@pytest.fixture(scope="module")
def some_work(console_server: ConsoleServer) -> date:
    """A few alerts and tickets so lists, cards and charts have something to show; the local day they began."""
    day = _local_day()
    _make_work(console_server)
    return day


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("username", list(ROLE_PAGES))
def test_each_role_lands_home_and_every_page_fits(open_as, some_work, username: str, viewport) -> None:
    page = open_as(username, viewport)
    page.goto("/")
    assert page.url.endswith(HOMES[username]), f"{username} landed on {page.url}"
    kind = "desktop" if viewport == DESKTOP else "phone"
    problems = []
    for path in ROLE_PAGES[username]:
        response = page.goto(path)
        assert response is not None
        assert response.status == 200, f"{username} {path}: {response.status}"
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)  # charts draw after their data arrives
        assert "无权访问" not in page.title()
        if (wide := _overflow(page)) > 0:
            problems.append(f"{path}: {wide}px wider than the {viewport[0]}px window")
        if words := _english_words(page):
            problems.append(f"{path}: English in messages: {words}")
        brand = page.locator(".brand").bounding_box()
        if brand and brand["height"] > 40:
            problems.append(f"{path}: the brand wraps ({brand['height']}px high)")
        screenshot(page, f"role-{username}-{kind}-{path.strip('/')}")
    assert not page.errors, page.errors
    assert not page.console_errors, page.console_errors
    assert not problems, "\n".join(problems)


def test_auditor_filters_the_audit_log_and_sees_the_chain_state(open_as, console_server: ConsoleServer) -> None:
    with console_server.client("env1"):
        pass  # a login of env1 to find
    page = open_as("auditor1")
    page.goto("/audit")
    page.wait_for_selector("#chain-status.ok")
    assert "哈希链完整" in page.text_content("#chain-status")
    page.wait_for_selector("#audit-rows tr")
    page.fill("#a-user", "env1")
    page.select_option("#a-event", "login")
    page.click("#a-apply")
    page.wait_for_function(
        "() => { const rows = [...document.querySelectorAll('#audit-rows tr')];"
        " return rows.length > 0 && rows.every(r => r.children[2].textContent === 'env1'); }"
    )
    rows = page.locator("#audit-rows tr")
    assert rows.count() >= 1
    assert rows.first.locator("td").nth(3).text_content() == "登录"
    assert not page.console_errors, page.console_errors


def test_the_audit_page_refuses_a_reversed_date_range_instead_of_showing_nothing(
    open_as, console_server: ConsoleServer
) -> None:
    page = open_as("auditor1")
    page.goto("/audit")
    page.wait_for_selector("#audit-rows tr")
    page.fill("#a-from", "2026-11-30")
    page.fill("#a-to", "2026-11-01")
    page.click("#a-apply")
    page.wait_for_selector("#audit-summary.error")
    assert page.text_content("#audit-summary") == "开始日期 2026-11-30 晚于结束日期 2026-11-01，请对调两个日期"
    assert page.locator("#audit-rows tr").count() == 0
    assert page.locator("#audit-empty").is_hidden(), "not “没有符合条件的记录”: the range is wrong, not the log empty"
    page.fill("#a-from", "")
    page.fill("#a-to", "")
    page.click("#a-apply")
    page.wait_for_selector("#audit-rows tr")
    assert "error" not in (page.get_attribute("#audit-summary", "class") or "")
    assert not page.console_errors, page.console_errors


def test_admin_creates_a_department_user_who_must_change_the_password(
    open_as, console_server: ConsoleServer, chromium
) -> None:
    page = open_as("admin1")
    page.goto("/users")
    page.wait_for_selector("#user-rows tr[data-username='officer1']")
    page.fill("#u-username", "newdept1")
    page.select_option("#u-role", "department")
    page.select_option("#u-department", "water")
    page.click("#u-save")
    page.wait_for_selector("#u-result:not(.hidden)")
    temp = page.text_content("#u-temp-password").split("：", 1)[1]
    # The list reloads after the result is shown: wait for it rather than read it mid-reload.
    page.wait_for_selector("#user-rows tr[data-username='newdept1']")
    assert page.locator("#user-rows tr[data-username='newdept1']").count() == 1
    # A new admin gets a QR code drawn by the service itself.
    page.fill("#u-username", "newadmin1")
    page.select_option("#u-role", "admin")
    page.click("#u-save")
    page.wait_for_selector("#u-qr:not(.hidden)")
    assert page.get_attribute("#u-qr-img", "src").startswith("data:image/svg+xml")
    assert page.evaluate("() => document.getElementById('u-qr-img').naturalWidth") > 100
    screenshot(page, "users-admin-qr")

    newcomer = open_as(None)
    newcomer.goto("/login")
    newcomer.fill("#username", "newdept1")
    newcomer.fill("#password", temp)
    newcomer.click("#login-submit")
    newcomer.wait_for_url(re.compile(r"/password$"))
    assert newcomer.locator("#must-change").is_visible()
    newcomer.fill("#p-current", temp)
    newcomer.fill("#p-new", PASSWORD + "x")
    newcomer.fill("#p-again", PASSWORD + "x")
    newcomer.click("#p-submit")
    newcomer.wait_for_url(re.compile(r"/tickets$"))
    assert "市水务局" in newcomer.text_content(".who")
    assert not page.console_errors + newcomer.console_errors


def test_locked_account_is_told_so_at_login(open_as, console_server: ConsoleServer) -> None:
    page = open_as(None)
    page.goto("/login")
    for _ in range(5):
        page.fill("#username", "water1")
        page.fill("#password", "Wrong-password-9")
        page.click("#login-submit")
        page.wait_for_selector("#login-error:not(:empty)")
        page.wait_for_function("() => !document.getElementById('login-submit').disabled")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_function("() => document.getElementById('login-error').textContent.includes('锁定')")
    assert "联系管理员解锁" in page.text_content("#login-error")
    with console_server.client("admin1") as admin:
        assert admin.post("/api/v1/users/water1/unlock").status_code == 200
    page.click("#login-submit")
    page.wait_for_url(re.compile(r"/tickets$"))


def test_ticket_list_updates_live_and_ticket_shows_source_number_and_link(
    open_as, console_server: ConsoleServer
) -> None:
    page = open_as("env1")
    page.goto("/tickets")
    page.wait_for_load_state("networkidle")
    console_server.ingest("化工厂排污实时工单列表测试", "化工厂向河里排污，异味严重。")
    row = page.locator("#ticket-rows tr", has_text="实时工单列表测试")
    row.wait_for(timeout=30000)  # no reload, no click: the alert stream brought it
    assert row.locator("a.ext", has_text="原文").get_attribute("href").startswith("http://127.0.0.1:9/detail/")
    row.locator("a", has_text="实时工单列表测试").click()
    page.wait_for_selector(".ext-id")
    assert page.text_content(".ext-id").startswith("编号 console-")
    assert "示例市12345热线" in page.text_content("#t-items")
    assert not page.console_errors, page.console_errors


def _dashboard_figures(page) -> dict[str, int]:
    page.goto("/dashboard")
    page.wait_for_function("() => /^\\d+$/.test(document.getElementById('fig-new').textContent)")
    return {k: int(page.text_content(f"#fig-{k}")) for k in ("today", "new", "soon", "overdue")}


def test_dashboard_shows_todays_figures_at_the_top(open_as, some_work: date, console_server: ConsoleServer) -> None:
    page = open_as("leader1", PHONE)
    figures = _dashboard_figures(page)
    if figures["today"] < 2 and _local_day() != some_work:
        # Midnight in Beijing (16:00 UTC) came after the module made its tickets: 今日新增 starts again from 0.
        _make_work(console_server, NEXT_DAY_WORK)
        figures = _dashboard_figures(page)
    assert figures["today"] >= 2  # the tickets this module made
    assert figures["new"] >= 1
    assert _overflow(page) <= 0
    screenshot(page, "dashboard-figures-phone")
    assert not page.console_errors, page.console_errors


def _without_package_data(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return True
    return False


def _missing_years(first: date, last: date) -> list[int]:
    """Years from ``first``'s to the one after ``last``'s that have no package holiday data."""
    return [year for year in range(first.year, last.year + 2) if _without_package_data(year)]


def _notices_on(day: date) -> list[str]:
    """The calendar notices an admin reads on local day ``day`` while holidays.yaml is absent."""
    return [
        f"{year} 年法定节假日安排未配置，工作日按周一至周五计算；请在 holidays.yaml 中补充"
        for year in _missing_years(day, day)
    ]


def test_admin_is_told_of_a_coming_year_without_holidays_until_holidays_yaml_has_it(
    open_as, console_server: ConsoleServer
) -> None:
    holidays = console_server.settings.config_dir / "holidays.yaml"
    assert not holidays.exists()
    page = open_as("admin1")
    before = _local_day()
    page.goto("/users")
    page.wait_for_selector("#user-rows tr")
    # Either side of New Year's midnight in Beijing (16:00 UTC on 31 December) when the run crosses it.
    assert page.locator(".calendar-notice").all_text_contents() in (_notices_on(before), _notices_on(_local_day()))
    page.goto("/sla")  # the same notices, worded for the SLA page
    assert page.locator(".calendar-notice").count() in (len(_notices_on(before)), len(_notices_on(_local_day())))
    missing = _missing_years(before, _local_day())
    # A Saturday of each missing year: the year counts as configured, and no working day changes.
    saturdays = [date(year, 1, 1) + timedelta(days=(5 - date(year, 1, 1).weekday()) % 7) for year in missing]
    holidays.write_text(
        "holidays:\n" + "".join(f"  - {day.isoformat()}\n" for day in saturdays) + "workdays: []\n", encoding="utf-8"
    )
    try:
        page.goto("/users")
        page.wait_for_selector("#user-rows tr")
        assert page.locator(".calendar-notice").count() == 0
        page.goto("/sla")
        assert page.locator(".calendar-notice").count() == 0
    finally:
        holidays.unlink()


def test_audit_details_name_fields_and_values_in_chinese_and_stay_text(open_as, console_server: ConsoleServer) -> None:
    console_server.ingest("化工厂排污审计详情测试", "化工厂向河里排污，异味严重。")
    ticket = console_server.wait_for("env1", "/api/v1/tickets", lambda t: "审计详情测试" in (t.get("title") or ""))
    with console_server.client("env1") as client:
        done = client.post(
            f"/api/v1/tickets/{ticket['id']}/actions", json={"action": "acknowledge", "version": ticket["version"]}
        )
        assert done.status_code == 200, done.text
    hostile = '<img src=x onerror="window.__pwned=1">'
    refused = httpx.post(f"{console_server.base_url}/api/v1/auth/login", json={"username": hostile, "password": "x"})
    assert refused.status_code in (400, 401), refused.text
    page = open_as("auditor1")
    page.goto("/audit")
    page.wait_for_selector("#audit-rows tr")
    details = page.locator("#audit-rows td.detail")
    acknowledged = next(t for t in details.all_text_contents() if f"工单：{ticket['id']}；" in t)
    assert "动作：签收" in acknowledged
    assert "新状态：已签收" in acknowledged
    assert not re.search(r"[a-z_]{3,}", acknowledged), acknowledged  # no field or status codes left
    refusal = page.locator("#audit-rows tr", has_text=hostile)
    assert refusal.locator("td").nth(2).text_content() == hostile
    assert refusal.locator("td.detail").text_content() == "原因：用户不存在"
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("#audit-rows img").count() == 0
    assert not page.console_errors, page.console_errors


def test_a_one_letter_username_is_refused_in_the_forms_words(open_as, console_server: ConsoleServer) -> None:
    page = open_as("admin1", PHONE)
    page.goto("/users")
    page.wait_for_selector("#user-rows tr[data-username='officer1']")
    page.fill("#u-username", "x")
    page.click("#u-save")
    page.wait_for_function("() => document.querySelector('#u-error').textContent !== ''")
    assert page.text_content("#u-error") == "用户名至少 2 个字符"
    assert page.locator("#user-rows tr[data-username='x']").count() == 0
