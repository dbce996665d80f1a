"""Markup, SQL and template strings in every text input come back as the same inert data.

Crawled titles and contents, rule expressions, rule test texts, ticket notes/results/response URLs, a
login name and a search query each carry the strings below. The API returns them unchanged as JSON
(not executed, not altered, no 500), the tables are all still there afterwards, and the console pages
that show configured names contain them HTML-escaped only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from service.feed.models import Alert
from service.ledger.models import Ticket
from service.settings import Settings
from service.store.base import ItemQuery
from service.users.models import User
from tests.auth.fixtures import PASSWORD
from tests.item_stores import on_both_item_stores
from tests.security.conftest import DEPARTMENTS, ROLES, World

PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' OR 1=1 --",
    "'; DROP TABLE tickets; --",
    "{{7*7}}",
    "${7*7}",
]
RAW_MARKUP = ("<script>alert(1)", "<img src=x onerror=alert(1)>")
EVIL_NAME = "市生态环境局<script>alert(1)</script>{{7*7}}"
EVIL_SOURCE = '"><img src=x onerror=alert(1)>青川新闻'
SOURCES = f"""
sources:
  - id: evil-news
    name: '{EVIL_SOURCE}'
    channel: media
    type: rss
    start_urls: ["http://127.0.0.1:9/rss.xml"]
    interval: 1h
"""


@pytest.fixture
def app_settings(app_settings: Settings) -> Settings:
    config = Path(app_settings.config_dir)
    (config / "departments.yaml").write_text(
        DEPARTMENTS.replace("name: 市生态环境局", f"name: '{EVIL_NAME}'"), encoding="utf-8"
    )
    (config / "sources.yaml").write_text(SOURCES, encoding="utf-8")
    return app_settings


@pytest.fixture(autouse=True)
def tables_survive(world: World) -> Iterator[None]:
    """After each test: every table still there, no row of the world deleted."""
    ctx = world.client.app.state.ctx
    before = set(inspect(ctx.db.engine).get_table_names())
    assert {"tickets", "alerts", "users"} <= before
    yield
    assert set(inspect(ctx.db.engine).get_table_names()) == before
    with ctx.db.session() as session:
        assert session.execute(select(func.count()).select_from(User)).scalar_one() == len(ROLES)
        tickets = session.execute(select(func.count()).select_from(Ticket)).scalar_one()
        alerts = session.execute(select(func.count()).select_from(Alert)).scalar_one()
    assert tickets == alerts >= 2
    assert ctx.store.count(ItemQuery()) == tickets


@on_both_item_stores
def test_crawled_text_comes_back_unchanged(world: World) -> None:
    officer = world.headers("officer1")
    for payload in PAYLOADS:
        title, content = f"化工厂排污{payload}", f"{payload} 化工厂夜间排污，气味刺鼻 {payload}"
        ticket_id = world.new_ticket("env", title=title, content=content)
        ticket = world.client.get(f"/api/v1/tickets/{ticket_id}", headers=officer)
        assert ticket.status_code == 200, ticket.text
        assert ticket.headers["content-type"] == "application/json"
        body = ticket.json()
        assert body["title"] == title
        assert body["items"][0]["title"] == title
        assert body["items"][0]["content"] == content
    alerts = world.client.get("/api/v1/alerts", params={"size": 200}, headers=officer).json()["results"]
    titles = {a["title"] for a in alerts}
    assert {f"化工厂排污{p}" for p in PAYLOADS} <= titles
    snippet_text = "".join(s["text"] for a in alerts for s in a["snippets"])
    assert all(p in snippet_text for p in PAYLOADS)


@on_both_item_stores
def test_search_queries_are_data(world: World) -> None:
    officer = world.headers("officer1")
    world.new_ticket("env", title="化工厂排污<script>alert(1)</script>")
    for payload in PAYLOADS:
        found = world.client.get("/api/v1/items", params={"q": payload}, headers=officer)
        assert found.status_code == 200, f"{payload!r}: {found.text}"
        assert isinstance(found.json()["total"], int)
    # ' OR 1=1 matches nothing it does not contain: the query was not widened into "everything".
    everything = world.client.app.state.ctx.store.count(ItemQuery())
    widened = world.client.get("/api/v1/items", params={"q": "' OR 1=1 --"}, headers=officer).json()
    assert widened["total"] < everything
    markup = world.client.get("/api/v1/items", params={"q": "<script>alert(1)</script>"}, headers=officer).json()
    assert [r["title"] for r in markup["results"]] == ["化工厂排污<script>alert(1)</script>"]


def test_rule_expressions_and_test_texts_are_data(world: World) -> None:
    officer = world.headers("officer1")
    for n, payload in enumerate(PAYLOADS):
        structured = {"id": f"inj-s{n}", "department": "env", "subjects": [payload], "events": ["排污"]}
        created = world.client.post("/api/v1/rules", json=structured, headers=officer)
        assert created.status_code == 201, created.text
        assert created.json()["structured"]["subjects"] == [payload]
        if '"' not in payload:
            quoted = {"id": f"inj-e{n}", "department": "env", "expr": f'化工厂 AND "{payload}"'}
            created = world.client.post("/api/v1/rules", json=quoted, headers=officer)
            assert created.status_code == 201, created.text
            assert created.json()["expr"] == f'化工厂 AND "{payload}"'
        # Unquoted, the string is an expression of its own: it parses or is refused with a position.
        raw = world.client.post("/api/v1/rules/test", json={"expr": payload, "text": payload}, headers=officer)
        assert raw.status_code in (200, 422), raw.text
        if raw.status_code == 422:
            assert isinstance(raw.json()["detail"]["position"], int)
        tried = world.client.post(
            "/api/v1/rules/test",
            json={"expr": "化工厂", "text": f"化工厂{payload}", "title": payload},
            headers=officer,
        )
        assert tried.status_code == 200, tried.text
        assert tried.json()["matched"] is True
    listed = world.client.get("/api/v1/rules", headers=officer).json()["results"]
    stored = {r["id"]: r for r in listed}
    for n, payload in enumerate(PAYLOADS):
        assert stored[f"inj-s{n}"]["structured"]["subjects"] == [payload]


def test_ticket_notes_results_and_urls_are_data(world: World) -> None:
    env = world.headers("env1")
    for payload in PAYLOADS:
        ticket_id = world.new_ticket("env")
        url = f"/api/v1/tickets/{ticket_id}/actions"
        # A web address holds no blanks (a browser sends them as %20); its quotes and brackets stay as typed.
        address = "https://gov.example.cn/reply?q=" + payload.replace(" ", "%20")
        steps = [
            {"action": "acknowledge", "note": payload},
            {"action": "handle", "result": payload, "note": payload},
            {"action": "respond", "response_url": address, "note": payload},
        ]
        for step in steps:
            answer = world.client.post(url, json=step, headers=env)
            assert answer.status_code == 200, f"{step}: {answer.text}"
        not_a_url = world.client.post(url, json={"action": "respond", "response_url": payload}, headers=env)
        assert not_a_url.status_code in (409, 422), not_a_url.text
        body = world.client.get(f"/api/v1/tickets/{ticket_id}", headers=env).json()
        notes = [entry["note"] for entry in body["timeline"] if entry["action"] in ("acknowledge", "handle", "respond")]
        assert notes == [payload, payload, payload]
        urls = [entry.get("response_url") for entry in body["timeline"] if entry["action"] == "respond"]
        assert urls == [address]


def test_login_names_are_data(world: World) -> None:
    for payload in PAYLOADS:
        refused = world.client.post("/api/v1/auth/token", data={"username": payload, "password": PASSWORD})
        assert refused.status_code == 401, refused.text
        console = world.client.post("/api/v1/auth/login", json={"username": payload, "password": PASSWORD})
        assert console.status_code == 401, console.text
    records = world.client.get("/api/v1/audit", params={"size": 1000}, headers=world.headers("auditor1")).json()
    logged = [str(r) for r in records["results"]]
    for payload in PAYLOADS:
        assert any(payload in line for line in logged), f"{payload!r} not recorded as typed"
    # The accounts are all still there and still sign in.
    assert (
        world.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {world.fresh_token('env1')}"}).json()[
            "username"
        ]
        == "env1"
    )


@pytest.mark.parametrize("page", ["/tickets", "/tickets/{ticket}", "/alerts", "/rules", "/ledger", "/sources"])
def test_console_pages_escape_configured_names(world: World, page: str) -> None:
    ticket_id = world.new_ticket("env", title="化工厂排污<script>alert(1)</script>")
    signed_in = world.client.post("/api/v1/auth/login", json={"username": "officer1", "password": PASSWORD})
    assert signed_in.status_code == 200
    try:
        html = world.client.get(page.replace("{ticket}", str(ticket_id)))
    finally:
        world.client.cookies.clear()
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in html.headers["content-security-policy"]
    source = html.text
    for raw in RAW_MARKUP:
        assert raw not in source
    # The names are on the page, escaped: the check above is not passing because they are missing.
    if page == "/sources":
        assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;青川新闻" in source
    else:
        assert "市生态环境局&lt;script&gt;alert(1)&lt;/script&gt;{{7*7}}" in source
