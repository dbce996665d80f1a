"""The console on the Elasticsearch item store, in a real browser: the service in its own process as in
production, items stored by another process (as a crawl stores them). The other console tests run on the
embedded SQLite store.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import yaml
from elasticsearch import Elasticsearch

from tests.console.conftest import ConsoleServer, pages, screenshot, start_console
from tests.servers.elasticsearch import ElasticsearchServer

pytestmark = [pytest.mark.browser, pytest.mark.elasticsearch]

PHONE = "13812345678"


@pytest.fixture(scope="module")
def es_console(
    tmp_path_factory: pytest.TempPathFactory, es_server: ElasticsearchServer, es_admin: Elasticsearch
) -> Iterator[ConsoleServer]:
    """`yuqing run` keeping its items in the session's Elasticsearch, with one officer."""
    prefix = f"c{uuid.uuid4().hex[:12]}"
    store = {
        "backend": "elasticsearch",
        "elasticsearch": {
            "hosts": [es_server.url],
            "username": es_server.username,
            "password": es_server.password,
            "index_prefix": prefix,
        },
    }
    settings = yaml.safe_dump({"store": store}, allow_unicode=True)
    try:
        with start_console(tmp_path_factory.mktemp("console-es"), {"officer1": ("officer", None)}, settings) as server:
            yield server
    finally:
        es_admin.indices.delete(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)
        es_admin.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-items")


@pytest.fixture
def open_es_as(chromium, es_console: ConsoleServer):
    yield from pages(chromium, es_console)


def test_an_item_stored_in_elasticsearch_alerts_live_shows_masked_and_is_found_by_a_rule_trial(
    open_es_as, es_console: ConsoleServer
) -> None:
    page = open_es_as("officer1")
    page.goto("/alerts")
    page.wait_for_selector("#live-state.ok")
    es_console.ingest("澜江化工厂夜间排污检索测试", f"居民反映化工厂排放污水，河道有异味，联系电话{PHONE}。")
    # Matched by the service from the shared index and pushed over SSE: no reload.
    alert = page.locator("#feed > li", has_text="夜间排污检索测试")
    alert.wait_for(timeout=30000)
    assert {"化工厂", "排污"} <= set(alert.locator("mark").all_text_contents())
    assert PHONE not in alert.text_content()
    screenshot(page, "alerts-live-elasticsearch")

    # The ticket page reads the item back from Elasticsearch, personal data masked for an officer.
    ticket = es_console.wait_for("officer1", "/api/v1/tickets", lambda t: "检索测试" in (t.get("title") or ""))
    page.goto(f"/tickets/{ticket['id']}")
    item = page.locator("#t-items li.item", has_text="检索测试")
    item.wait_for(timeout=20000)  # the first ticket page may wait for jieba
    assert "138****5678" in item.locator(".item-text").text_content()

    # Trying a rule on the last 7 days searches the store's masked copy.
    page.goto("/rules")
    page.fill("#r-expr", "化工厂 AND 排污")
    page.click("#r-backtest")
    hit = page.locator("#r-backtest-result li", has_text="检索测试")
    hit.wait_for()
    assert "化工厂" in hit.locator("mark").all_text_contents()
    page.fill("#r-expr", f"排污 AND {PHONE}")
    page.click("#r-backtest")
    page.wait_for_selector("#r-backtest-result .summary")
    assert page.locator("#r-backtest-result li", has_text="检索测试").count() == 0, "hidden digits are not searchable"
    assert not page.errors
