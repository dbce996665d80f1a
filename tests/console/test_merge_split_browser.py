"""并单/拆单 buttons on the ticket page in a real browser, as an officer on a desktop (1440×900) and a phone (390×844).

A complaint and a news report about one place are suggested as 可能是同一事件: the report arrives while
the officer has the complaint open, and the suggestion appears there without a reload (pushed over the
alert stream when the report is matched). The officer merges the report into the complaint with
并入本工单, then splits it out again with 拆出为新工单. The page must fit the screen without sideways
scrolling and log no error.
"""

from __future__ import annotations

import time

import pytest

from tests.console.conftest import ConsoleServer, screenshot
from tests.console.test_console_roles import DESKTOP, PHONE, _overflow

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_officer_merges_a_suggested_ticket_and_splits_the_item_out_again(
    open_as, console_server: ConsoleServer, viewport
) -> None:
    kind = "desktop" if viewport == DESKTOP else "phone"
    marker = f"并拆{kind}{time.monotonic_ns() % 100000}"
    console_server.ingest(
        f"柳岸社区化工厂夜里异味{marker}", "河西区柳岸社区东边的化工厂每天夜里排放刺鼻异味，居民无法开窗。"
    )
    first = console_server.wait_for("officer1", "/api/v1/tickets", lambda t: t["title"].endswith(marker))
    page = open_as("officer1", viewport)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"/tickets/{first['id']}")
    page.locator("#t-items li.item").first.wait_for()
    # The report arrives while the officer looks at the complaint: the suggestion is pushed, no reload.
    console_server.ingest(
        f"居民反映化工园区异味扰民{marker}",
        "记者在河西区柳岸社区走访，多名居民说附近化工厂傍晚以后气味明显，环保部门已派人取样。",
        channel="media",
        source="qc-daily",
    )
    second = console_server.wait_for(
        "officer1", "/api/v1/tickets", lambda t: t["title"] == f"居民反映化工园区异味扰民{marker}"
    )
    suggestion = page.locator("#t-related li", has_text=f"工单 {second['id']}")
    suggestion.wait_for(timeout=30_000)
    assert "同在" in suggestion.inner_text()
    assert _overflow(page) == 0, f"{_overflow(page)}px wider than the window"
    screenshot(page, f"merge-split-{kind}-suggested")

    suggestion.locator("button.merge").click()
    page.locator("#t-items li.item").nth(1).wait_for()
    assert page.locator("#t-items li.item").count() == 2
    page.locator("#t-related li", has_text=f"工单 {second['id']}").wait_for(state="detached")
    assert "并单" in page.locator("#t-timeline").inner_text()
    assert _overflow(page) == 0, f"{_overflow(page)}px wider than the window after merging"
    screenshot(page, f"merge-split-{kind}-merged")

    report = page.locator("#t-items li.item", has_text=f"居民反映化工园区异味扰民{marker}")
    report.locator("button.split").click()
    page.locator("#t-items li.item").nth(1).wait_for(state="detached")
    assert page.locator("#t-items li.item").count() == 1
    assert page.locator("#t-items button.split").count() == 0  # one item left: nothing to split
    assert "拆单" in page.locator("#t-timeline").inner_text()
    assert _overflow(page) == 0, f"{_overflow(page)}px wider than the window after splitting"
    screenshot(page, f"merge-split-{kind}-split")
    new = console_server.wait_for("officer1", "/api/v1/tickets", lambda t: t.get("split_from") == first["id"])
    assert new["title"] == f"居民反映化工园区异味扰民{marker}"
    assert not page.errors, page.errors
    assert not page.console_errors, page.console_errors
