"""In a real browser: an open ticket page follows what others do to the ticket, without losing a form."""

from __future__ import annotations

import pytest

from tests.console.conftest import ConsoleServer, screenshot
from tests.console.test_console_roles import DESKTOP, _overflow

pytestmark = pytest.mark.browser


def test_open_ticket_page_shows_another_users_action_live_and_keeps_the_form_being_typed(
    open_as, console_server: ConsoleServer
) -> None:
    console_server.ingest("化工厂排污工单页实时测试", "化工厂向河里排污，异味严重。")
    ticket = console_server.wait_for(
        "officer1", "/api/v1/tickets", lambda t: "工单页实时测试" in (t.get("title") or "")
    )
    officer = open_as("officer1", DESKTOP)
    officer.goto(f"/tickets/{ticket['id']}")
    officer.wait_for_selector("#t-timeline li", timeout=20000)  # the first ticket page may wait for jieba
    officer.wait_for_selector("#live-state.ok", timeout=10000)
    assert "签收" not in officer.text_content("#t-timeline")
    # The officer starts a 督办 and is typing when the department acknowledges the ticket.
    officer.click("#t-actions button[data-action='escalate']")
    officer.fill("#af-note", "请尽快核实排污情况")
    with console_server.client("env1") as client:
        done = client.post(f"/api/v1/tickets/{ticket['id']}/actions", json={"action": "acknowledge", "version": 1})
        assert done.status_code == 200, done.text
    # Without a reload: the new status and the timeline entry of the department's user.
    officer.wait_for_function(
        "() => document.querySelector('#t-facts').textContent.includes('已签收')"
        " && document.querySelector('#t-timeline').textContent.includes('签收')",
        timeout=30000,
    )
    assert "已签收" in officer.text_content("#t-timeline")  # the entry's move: 待签收 → 已签收
    # The form is still open with what was typed, and says the ticket changed underneath it.
    assert officer.is_visible("#action-form")
    assert officer.input_value("#af-note") == "请尽快核实排污情况"
    assert officer.is_visible("#af-notice")
    assert officer.text_content("#af-notice") == "工单已被他人更新"
    assert _overflow(officer) <= 0
    screenshot(officer, "ticket-live-update-desktop")
    # The submit carries the current version: accepted, not refused as a stale edit.
    officer.click("#af-submit")
    officer.wait_for_selector("#action-form", state="hidden", timeout=10000)
    assert officer.text_content("#toast") == "督办成功"
    with console_server.client("officer1") as client:
        now = client.get(f"/api/v1/tickets/{ticket['id']}").json()
    assert now["status"] == "acknowledged"
    assert now["escalated"] is True
    assert [e["action"] for e in now["timeline"]][-2:] == ["acknowledge", "escalate"]
    assert not officer.errors, officer.errors
    assert not officer.console_errors, officer.console_errors
