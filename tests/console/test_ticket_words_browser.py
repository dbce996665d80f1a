"""In a real browser: time left in working days where the deadline counts them, and the 办理 entry as a ledger
shows it (who, when, against which deadline, the result), escaped and masked for a department user."""

from __future__ import annotations

import re

import pytest

from tests.console.conftest import ConsoleServer, screenshot
from tests.console.test_console_roles import DESKTOP, PHONE, _overflow

pytestmark = pytest.mark.browser

# What a stage of a major ticket counted in working days (办理 1wd, 回应 2wd) says, whatever today is.
WORKDAYS = re.compile(r"剩 \d+ 个工作日|今日 \d\d:\d\d 到期|剩 不足 1 个工作日")
HOSTILE = '约谈负责人（电话13812345678）<img src=x onerror="window.__pwned=1">'


def test_working_day_deadlines_read_in_working_days_and_the_handle_entry_shows_who_when_and_the_result(
    open_as, console_server: ConsoleServer
) -> None:
    title = "化工厂排污工作日时限测试"
    console_server.ingest(title, "化工厂夜间排污，异味严重。")
    # Sign-ins are limited per user and minute: the officer waits, env1 signs in once for the API, once in the browser.
    ticket = console_server.wait_for("officer1", "/api/v1/tickets", lambda t: t["title"] == title)
    assert ticket["severity"] == "major"
    with console_server.client("env1") as client:
        done = client.post(f"/api/v1/tickets/{ticket['id']}/actions", json={"action": "acknowledge", "version": 1})
        assert done.status_code == 200, done.text
        said = done.json()["time_left_text"]
    assert WORKDAYS.fullmatch(said["handle"]), said
    assert WORKDAYS.fullmatch(said["respond"]), said

    # The queue: the current stage is 办理, said in working days (not "剩 1天13小时").
    page = open_as("env1", DESKTOP)
    page.goto("/tickets")
    cell = page.wait_for_selector(f"#ticket-rows tr[data-id='{ticket['id']}'] td.left")
    assert WORKDAYS.fullmatch(cell.text_content()), cell.text_content()

    # The ticket: the current stage and the deadline table say working days too; 签收 was met.
    page.goto(f"/tickets/{ticket['id']}")
    page.wait_for_selector("#t-deadlines tr")
    facts = page.text_content("#t-facts")
    assert re.search(r"当前环节办理（(剩 \d+ 个工作日|今日 \d\d:\d\d 到期|剩 不足 1 个工作日)）", facts), facts
    states = [row.text_content() for row in page.query_selector_all("#t-deadlines tr td:last-child")]
    assert states[0] == "按时完成", states
    assert WORKDAYS.fullmatch(states[1]), states
    assert WORKDAYS.fullmatch(states[2]), states

    # 办理 through the page, with a result a citizen's words could carry (a phone number, markup).
    page.click("#t-actions button[data-action='handle']")
    page.fill("#af-note", HOSTILE)
    page.click("#af-submit")
    entry = page.wait_for_selector("#t-timeline li:has(dl.handling)")
    shown = dict(
        zip(
            [dt.text_content() for dt in entry.query_selector_all("dt")],
            [dd.text_content() for dd in entry.query_selector_all("dd")],
            strict=True,
        )
    )
    assert shown["办理人"] == "env1（市生态环境局）", shown
    assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d（按时，时限 \d{4}/\d\d/\d\d 23:59）", shown["办理时间"]), shown
    assert shown["办理结果"] == HOSTILE.replace("13812345678", "138****5678"), shown
    assert entry.query_selector("img") is None
    assert page.evaluate("() => window.__pwned") is None
    assert _overflow(page) <= 0
    screenshot(page, "ticket-handle-entry-desktop")
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    page.reload()
    page.wait_for_selector("#t-timeline dl.handling")
    assert _overflow(page) <= 0
    screenshot(page, "ticket-handle-entry-phone")
    assert not page.errors, page.errors
