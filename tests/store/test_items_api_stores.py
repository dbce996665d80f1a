"""The items API on both item stores: the same answers, and deep pages refused with 400, never 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.settings import Settings
from service.store.base import Item, item_id
from tests.auth.fixtures import (  # noqa: F401 - fixtures
    Accounts,
    accounts,
    app_settings,
    cheap_argon2,
    client,
    frozen,
)

PUBLISHED = datetime(2026, 11, 20, 2, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.elasticsearch)])
def app_settings(request: pytest.FixtureRequest, app_settings: Settings) -> Settings:  # noqa: F811
    if request.param == "elasticsearch":
        app_settings.store.backend = "elasticsearch"
        app_settings.store.elasticsearch = request.getfixturevalue("es_settings")
    return app_settings


def _items(n: int) -> list[Item]:
    return [
        Item(
            id=item_id("demo-12345", str(i)),
            source="demo-12345",
            channel="hotline" if i % 2 else "mailbox",
            external_id=str(i),
            title=f"关于排污的投诉{i}",
            content=f"第{i}号工单：化工厂夜间排污",
            published_at=PUBLISHED - timedelta(minutes=i),
            fetched_at=PUBLISHED,
        )
        for i in range(n)
    ]


def test_items_search_pages_and_refuses_pages_beyond_the_window(client, accounts: Accounts, app_settings) -> None:  # noqa: F811
    store = client.app.state.ctx.store
    store.init()
    store.upsert(_items(30))
    accounts.add("officer1", "officer")
    headers = accounts.headers("officer1")
    first = client.get("/api/v1/items", params={"q": "排污", "size": 10}, headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["total"] == 30
    assert [r["title"] for r in body["results"][:2]] == ["关于排污的投诉0", "关于排污的投诉1"]
    hotline = client.get("/api/v1/items", params={"channel": "hotline", "size": 50}, headers=headers).json()
    assert hotline["total"] == 15
    deep = client.get("/api/v1/items", params={"page": 501, "size": 20}, headers=headers)
    # Elasticsearch pages only through its first 10,000 results: a clear 400, not a 500. SQLite pages on.
    if app_settings.store.backend == "elasticsearch":
        assert deep.status_code == 400, deep.text
        assert "10000" in deep.json()["detail"]
    else:
        assert deep.status_code == 200
        assert deep.json()["results"] == []


def test_items_page_with_a_cursor_through_every_result_once(client, accounts: Accounts) -> None:  # noqa: F811
    store = client.app.state.ctx.store
    store.init()
    items = _items(23)
    # Two items without a publication time sort last; the cursor must cross from dated to undated.
    items += [
        item.model_copy(update={"id": f"{item.id}-u", "external_id": f"u{n}", "published_at": None})
        for n, item in enumerate(items[:2])
    ]
    store.upsert(items)
    accounts.add("officer1", "officer")
    headers = accounts.headers("officer1")
    everything = client.get("/api/v1/items", params={"size": 100}, headers=headers).json()
    seen: list[str] = []
    params: dict[str, object] = {"size": 4}
    for _ in range(20):
        body = client.get("/api/v1/items", params=params, headers=headers).json()
        assert body["total"] == 25
        seen += [r["id"] for r in body["results"]]
        if body["next"] is None:
            break
        params = {"size": 4, "after": body["next"]}
    assert seen == [r["id"] for r in everything["results"]]
    assert len(set(seen)) == 25
    bad = client.get("/api/v1/items", params={"after": "not-a-cursor"}, headers=headers)
    assert bad.status_code == 400


def test_counts_stop_at_the_cap_and_say_so(client, accounts: Accounts, monkeypatch) -> None:  # noqa: F811
    import service.store.elasticsearch
    import service.store.sqlite

    # The cap is 10,000 in production; 10 here so the test stores a handful of items.
    monkeypatch.setattr(service.store.sqlite, "COUNT_CAP", 10)
    monkeypatch.setattr(service.store.elasticsearch, "COUNT_CAP", 10)
    store = client.app.state.ctx.store
    store.init()
    store.upsert(_items(25))
    accounts.add("officer1", "officer")
    headers = accounts.headers("officer1")
    many = client.get("/api/v1/items", params={"size": 5}, headers=headers).json()
    assert (many["total"], many["total_capped"]) == (10, True)
    few = client.get("/api/v1/items", params={"q": "投诉3"}, headers=headers).json()
    assert (few["total"], few["total_capped"]) == (1, False)
