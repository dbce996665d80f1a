"""A phone (390 px): work-order numbers stay whole, the alert card's links and buttons keep their words."""

from __future__ import annotations

import pytest

from tests.console.conftest import ConsoleServer, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.long_running(120)]

PHONE = (390, 844)
LONG_NO = "GD202611300001234567"  # a 12345 number with a long serial
ENDLESS_NO = "XJ" + "0123456789" * 8  # longer than the phone is wide: scrolls inside its own box


def _one_line(page, selector: str) -> list[str]:
    """Texts of ``selector`` elements drawn on more than one line (a word cut in two)."""
    return page.eval_on_selector_all(
        selector,
        """nodes => nodes.filter(n => {
            const lh = parseFloat(getComputedStyle(n).lineHeight) || parseFloat(getComputedStyle(n).fontSize) * 1.6;
            return n.getBoundingClientRect().height > lh * 1.5;
        }).map(n => n.textContent)""",
    )


@pytest.fixture(scope="module")
def numbered(console_server: ConsoleServer) -> None:
    console_server.ingest(
        "东郊化工厂凌晨排污，手机版式测试", "东郊化工厂凌晨向排水渠排污，刺鼻异味持续到早上。", order_no=LONG_NO
    )
    console_server.ingest(
        "北岸工厂偷排废水超长编号测试", "北岸工厂把废水偷排进鱼塘，鱼大量死亡，附近有污染异味。", order_no=ENDLESS_NO
    )
    console_server.wait_for("env1", "/api/v1/tickets", lambda t: t.get("order_no") == ENDLESS_NO)
    console_server.wait_for("env1", "/api/v1/tickets", lambda t: t.get("order_no") == LONG_NO)


def test_work_order_numbers_stay_whole_on_a_phone_and_the_page_never_scrolls_sideways(
    open_as, numbered, console_server: ConsoleServer
) -> None:
    page = open_as("env1", PHONE)
    for path in ("/tickets", "/ledger"):
        page.goto(path)
        page.wait_for_selector(f".order-no:has-text('{LONG_NO}')")
        assert _one_line(page, ".order-no") == [], path
        assert _one_line(page, ".orig .ext") == [], path
        assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0, path
        endless = page.locator(".order-no", has_text=ENDLESS_NO).first
        box, card = endless.bounding_box(), page.locator("tr", has=endless).bounding_box()
        assert box is not None
        assert card is not None
        assert box["x"] + box["width"] <= card["x"] + card["width"] + 1, path  # it scrolls within the card
        screenshot(page, f"phone-order-numbers{path.replace('/', '-')}")


def test_alert_card_links_and_buttons_keep_their_words_on_a_phone(open_as, numbered) -> None:
    page = open_as("officer1", PHONE)
    page.goto("/alerts")
    page.wait_for_selector(".alert .triage-group button")
    assert _one_line(page, ".alert .links > a, .alert .links > .state, .alert .triage-group button") == []
    # The two buttons sit side by side, whole, at the end of the card.
    for card in page.locator(".alert:has(.triage-group)").all()[:5]:
        # One look at the card and its buttons: a live alert arriving between two looks moves the card down
        # by a card's height, which read as buttons a card apart.
        ok, noise, inner = card.evaluate(
            """card => [...card.querySelectorAll('.triage-group button'), card].map(e => {
                const r = e.getBoundingClientRect();
                return {x: r.x, y: r.y, width: r.width};
            })"""
        )
        assert abs(ok["y"] - noise["y"]) < 2
        assert noise["x"] + noise["width"] <= inner["x"] + inner["width"]
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    screenshot(page, "phone-alert-card")


def _labels_overlapping_content(page) -> list[str]:
    """Phone cards: cells whose column name (drawn in the cell's left margin) would lie over its content,
    or stick out below an empty cell into the next card."""
    return page.eval_on_selector_all(
        "table.grid td[data-label]:not([data-label=''])",
        """cells => cells.filter(td => td.offsetParent !== null
              && (parseFloat(getComputedStyle(td).paddingLeft) < 80 || td.getBoundingClientRect().height < 20))
            .map(td => `${td.dataset.label}: ${td.textContent}`)""",
    )


def test_column_names_never_lie_over_the_cells_of_any_phone_card(open_as, numbered, console_server) -> None:
    ticket = console_server.wait_for("env1", "/api/v1/tickets", lambda t: t.get("order_no") == LONG_NO)
    page = open_as("env1", PHONE)
    for path in ("/tickets", "/ledger", f"/tickets/{ticket['id']}"):
        page.goto(path)
        page.wait_for_selector("table.grid td[data-label]")
        assert _labels_overlapping_content(page) == [], path
    auditor = open_as("auditor1", PHONE)
    auditor.goto("/audit")
    auditor.wait_for_selector("#audit-rows td[data-label]")
    assert _labels_overlapping_content(auditor) == []
    screenshot(page, "phone-ticket-deadlines")


def test_a_long_response_address_in_the_timeline_never_pushes_the_ticket_page_sideways(
    open_as, console_server: ConsoleServer
) -> None:
    title = "化工厂排污手机时间线测试"
    console_server.ingest(title, "化工厂夜间排污，回应地址很长。")
    ticket = console_server.wait_for("env1", "/api/v1/tickets", lambda t: t["title"] == title)
    long_url = "https://www.example.gov.cn/hdjl/mailbox/letter/" + "XJ20261130" * 8 + ".html"
    with console_server.client("env1") as client:
        path = f"/api/v1/tickets/{ticket['id']}/actions"
        acknowledged = client.post(path, json={"action": "acknowledge", "version": ticket["version"]})
        assert acknowledged.status_code == 200, acknowledged.text
        responded = client.post(
            path,
            json={"action": "respond", "response_url": long_url, "version": acknowledged.json()["version"]},
        )
        assert responded.status_code == 200, responded.text
    page = open_as("env1", PHONE)
    page.goto(f"/tickets/{ticket['id']}")
    page.wait_for_selector(f"#t-timeline a.ext[href='{long_url}']")
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    screenshot(page, "phone-ticket-long-response-url")
