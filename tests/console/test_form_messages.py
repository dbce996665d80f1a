"""Forms speak the console's own Chinese sentences, naming the field, instead of the browser's bubbles.

The browser's built-in checks (``required``, ``type="url"``) stop the submit event before the page's own
check runs and answer in the browser's language ("Please fill out this field." in an English Chromium), so
every form carries ``novalidate`` and the page or the API says what is wrong.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.console.conftest import ConsoleServer

pytestmark = pytest.mark.browser


def test_an_empty_ledger_date_is_told_by_the_page_not_by_a_browser_bubble(open_as) -> None:
    page = open_as("officer1")
    page.goto("/ledger")
    page.wait_for_function("document.getElementById('l-from').value !== ''")  # the page's script has run
    page.fill("#l-from", "")
    page.click("#export-xlsx")
    page.wait_for_selector("#ledger-error:not([hidden])")
    assert "发现日期" in page.text_content("#ledger-error")
    assert page.url.endswith("/ledger")  # nothing downloaded, still on the page


def test_a_response_address_that_is_not_a_web_address_is_named_in_chinese(
    open_as, console_server: ConsoleServer
) -> None:
    title = "化工厂排污回应地址测试"
    console_server.ingest(title, "化工厂夜间排污，请核查。")
    ticket = console_server.wait_for("env1", "/api/v1/tickets", lambda t: t["title"] == title)
    page = open_as("env1")
    page.goto(f"/tickets/{ticket['id']}")
    page.click("#t-actions button[data-action='acknowledge']")
    page.click("#af-submit")
    page.click("#t-actions button[data-action='respond']")
    page.fill("#af-url", "见政府网站")
    page.click("#af-submit")
    page.wait_for_selector("#af-error:not(:empty)")
    assert "回应链接" in page.text_content("#af-error")
    assert page.errors == []


def test_every_console_form_leaves_checking_to_the_page() -> None:
    templates = Path(__file__).resolve().parents[2] / "service" / "console" / "templates"
    forms = [
        (path.name, tag)
        for path in sorted(templates.glob("*.html"))
        for tag in re.findall(r"<form\b[^>]*>", path.read_text(encoding="utf-8"))
    ]
    assert len(forms) >= 5
    assert [f for f in forms if "novalidate" not in f[1]] == []


def test_the_rule_form_says_what_is_wrong_with_the_rule_number(open_as) -> None:
    page = open_as("officer1")
    page.goto("/rules")
    page.click("#rule-new")
    page.fill("#r-expr", "排污 AND 化工厂")
    for rule_id, said in (("", "请填写规则编号"), ("x" * 80, "规则编号最多 64 个字符"), ("化工厂", "只能包含小写字母")):
        page.fill("#r-id", rule_id)
        page.click("#r-save")
        page.wait_for_function(
            "said => document.getElementById('r-error').textContent.includes(said)", arg=said, timeout=10000
        )


def test_a_printed_ticket_has_no_empty_action_line_and_prints_where_the_original_is(
    open_as, console_server: ConsoleServer
) -> None:
    title = "化工厂排污领导打印测试"
    console_server.ingest(title, "化工厂白天排污，领导打印工单。")
    ticket = console_server.wait_for("leader1", "/api/v1/tickets", lambda t: t["title"] == title)
    page = open_as("leader1")  # reads only: the page says "当前状态下没有您可执行的操作"
    page.goto(f"/tickets/{ticket['id']}")
    page.wait_for_selector("#t-actions p")
    page.emulate_media(media="print")
    try:
        assert page.locator("#t-actions").is_hidden()
        link = page.locator("#t-items a.ext").first
        printed = link.evaluate("a => getComputedStyle(a, '::after').content")
        assert "http://127.0.0.1:9/detail/" in printed, printed
    finally:
        page.emulate_media(media="screen")


def test_a_rule_named_in_the_editor_is_shown_by_that_name_on_its_alerts(open_as, console_server: ConsoleServer) -> None:
    page = open_as("officer1")
    page.goto("/rules")
    page.click("#rule-new")
    page.fill("#r-name", "水管漏水投诉")
    page.fill("#r-id", "water-leak-walk")
    page.select_option("#r-department", "water")
    page.fill("#r-expr", "漏水 AND 投诉测试")
    page.click("#r-save")
    page.wait_for_selector("#rule-rows tr[data-id='water-leak-walk'] .rule-id")
    assert "水管漏水投诉" in page.text_content("#rule-rows tr[data-id='water-leak-walk']")
    console_server.ingest("楼道水管漏水投诉测试", "三号楼水管漏水一周无人修。")
    console_server.wait_for("officer1", "/api/v1/alerts", lambda a: "water-leak-walk" in a["rule_ids"])
    page.goto("/alerts")
    card = page.locator("#feed > li", has_text="水管漏水投诉测试")
    card.wait_for()
    assert "规则：水管漏水投诉" in card.text_content()
    assert "water-leak-walk" not in card.text_content()
