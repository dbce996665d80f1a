"""The items API on both item stores: the same answers, and deep pages refused with 400, never 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.masking import mask_text
from service.rules import trial
from service.rules.language import parse
from service.rules.matcher import CompiledRule, Matcher
from service.store.base import Item, item_id
from tests.auth.fixtures import (  # noqa: F401 - fixtures
    Accounts,
    accounts,
    app_settings,
    cheap_argon2,
    client,
    frozen,
)
from tests.item_stores import backends, item_store, ledger_database_kind  # noqa: F401 - fixtures: both item stores

PUBLISHED = datetime(2026, 11, 20, 2, tzinfo=UTC)


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
    import service.store.base

    # The cap is 10,000 in production; 10 here so the test stores a handful of items.
    monkeypatch.setattr(service.store.base, "COUNT_CAP", 10)
    store = client.app.state.ctx.store
    store.init()
    store.upsert(_items(25))
    accounts.add("officer1", "officer")
    headers = accounts.headers("officer1")
    many = client.get("/api/v1/items", params={"size": 5}, headers=headers).json()
    assert (many["total"], many["total_capped"]) == (10, True)
    few = client.get("/api/v1/items", params={"q": "投诉3"}, headers=headers).json()
    assert (few["total"], few["total_capped"]) == (1, False)
    # Counted, not estimated, on both stores (SQLite estimates only a very common term within a filter).
    assert (many["total_estimated"], few["total_estimated"]) == (False, False)


def _recent_items(now: datetime) -> list[Item]:
    """120 items an hour apart, newest first: 100 in the last week, 20 older; phones in titles and texts."""
    words = ["排污", "噪音", "化工厂", "夜间", "异味", "投诉", "水", "施工"]
    items = []
    for i in range(120):
        title = f"{words[i % 8]}{words[(i * 3) % 7]}问题{i}"
        if i % 10 == 3:
            title += f"，来电139{i:08d}"  # personal data in the title that officers see listed
        content = f"市民反映{words[(i * 5) % 8]}，{words[(i + 2) % 6]}，联系138{i:08d}"
        # Newest first; 100 in the last week, 20 older than that.
        published = now - timedelta(hours=i + (200 if i >= 100 else 0))
        items.append(
            Item(
                id=item_id("demo-12345", f"r{i}"),
                source="demo-12345",
                channel="hotline",
                external_id=f"r{i}",
                title=title,
                content=content,
                published_at=published,
                fetched_at=published,
            )
        )
    return items


def test_trying_a_rule_on_recent_items_reads_only_candidates_with_the_full_scans_answer(
    client,  # noqa: F811
    accounts: Accounts,  # noqa: F811
    frozen,  # noqa: F811
    monkeypatch,
) -> None:
    store = client.app.state.ctx.store
    store.init()
    items = _recent_items(frozen.now())
    store.upsert(items)
    accounts.add("officer1", "officer")
    accounts.add("root1", "admin")
    cases = [
        ("排污", 1000, "officer1"),
        ("排污 AND NOT 噪音", 1000, "officer1"),
        ("(化工厂 OR 水) AND 夜间", 1000, "officer1"),
        ("title:施工 OR content:异味", 40, "officer1"),
        ("异味 NEAR/3 投诉", 1000, "officer1"),
        ("NOT 排污", 1000, "officer1"),
        ("NOT 排污", 40, "officer1"),
        ("排污 OR NOT 噪音", 1000, "officer1"),
        ("NOT (排污 AND 噪音) AND NOT 化工厂", 1000, "root1"),
        ("00000012", 1000, "officer1"),
        ("00000012", 1000, "root1"),
        ("13800000012", 1000, "root1"),
        ("NOT 00000012", 1000, "officer1"),
    ]
    # The answer lists at most trial.SHOWN matches; with 5 the rest of a NOT rule's window is counted
    # from the suspects the listing did not reach instead of being walked. With more suspects than
    # trial.SAMPLE (1 here) a rule of unscoped terms is decided from the ids the search finds for each term
    # where the search finds them exactly (SQLite), other rules are estimated from a sample (and say so).
    headers = {user: accounts.headers(user) for user in ("officer1", "root1")}
    listed_phones: set[bool] = set()
    for shown, sample in ((200, 1000), (5, 1000), (5, 1)):
        monkeypatch.setattr(trial, "SHOWN", shown)
        monkeypatch.setattr(trial, "SAMPLE", sample)
        for expr, limit, user in cases:
            answer = client.post(
                "/api/v1/rules/test-recent",
                json={"expr": expr, "days": 7, "limit": limit},
                headers=headers[user],
            ).json()
            matcher = Matcher.build([CompiledRule("t", "", "normal", parse(expr))])
            window = items[: min(limit, 100)]
            masked = user != "root1"
            # Counted on the masked text for every role, as live matching runs; admins see titles as published.
            expected = [
                (i.id, mask_text(i.title) if masked else i.title)
                for i in window
                if matcher.match(mask_text(i.title), mask_text(i.content))
            ]
            assert answer["scanned"] == len(window), expr
            # Officers see the masked titles (from the store's masked copy), admins the titles as published.
            assert [(h["id"], h["title"]) for h in answer["items"]] == expected[:shown], expr
            by_search = store.backend == "sqlite" and not any(w in expr for w in ("title:", "NEAR"))
            if sample == 1000 or by_search:
                assert (answer["matched"], answer["matched_estimated"]) == (len(expected), False), expr
            phones = [h["title"] for h in answer["items"] if "，来电139" in h["title"]]
            assert all(("139****" in title) == masked for title in phones), expr
            listed_phones |= {masked} if phones else set()
            # Only items holding a term that can decide were evaluated (NOT 排污: those holding 排污), except
            # on Elasticsearch for digits inside a longer number (its search finds whole numbers only).
            if not (store.backend == "elasticsearch" and "00000012" in expr):
                assert answer["candidates"] < len(window), expr
    assert listed_phones == {True, False}, "titles with a phone number listed, masked for officers only"


def test_a_search_of_quotes_or_punctuation_alone_is_refused_not_answered_with_everything(
    client,  # noqa: F811
    accounts: Accounts,  # noqa: F811
) -> None:
    store = client.app.state.ctx.store
    store.init()
    other = [
        i.model_copy(update={"id": f"{i.id}-o", "external_id": f"o{i.external_id}", "content": "路灯不亮"})
        for i in _items(2)
    ]
    store.upsert(_items(30) + other)
    accounts.add("officer1", "officer")
    headers = accounts.headers("officer1")
    for q in ['"', '""', '" "', '"""', "，。！", '"！" ，', "..."]:
        answer = client.get("/api/v1/items", params={"q": q}, headers=headers)
        assert answer.status_code == 422, (q, answer.text)
        message = answer.json()["detail"]["message"]
        assert message.startswith("检索词（q）"), message
        assert "没有要检索的文字" in message, message
    # Words inside quotes, closed or not, are still searched as their literal text.
    for q in ['"夜间排污', '"夜间排污"', '夜间排污"']:
        answer = client.get("/api/v1/items", params={"q": q, "size": 50}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["total"] == 30, q  # not the two others


def test_a_trial_whose_suspects_exceed_the_sample_estimates_its_count_and_says_so(
    client,  # noqa: F811
    accounts: Accounts,  # noqa: F811
    frozen,  # noqa: F811
    monkeypatch,
) -> None:
    """A rule the search cannot decide (a title-scoped term) whose terms are in more items than the trial
    evaluates: the items listed are still the first matches, the rest is extrapolated from a sample, and
    the answer says the count is estimated (a console notice in Chinese)."""
    store = client.app.state.ctx.store
    store.init()
    items = _recent_items(frozen.now())
    store.upsert(items)
    accounts.add("officer1", "officer")
    expr = "NOT title:排污"  # every item holds 排污 in its title or its content: all 100 are suspects
    matcher = Matcher.build([CompiledRule("t", "", "normal", parse(expr))])
    window = items[:100]
    expected = [i.id for i in window if matcher.match(mask_text(i.title), mask_text(i.content))]
    assert 40 < len(expected) < 100
    monkeypatch.setattr(trial, "SHOWN", 3)
    monkeypatch.setattr(trial, "STEP", 5)
    monkeypatch.setattr(trial, "WALK_TEXTS", 10)
    monkeypatch.setattr(trial, "SAMPLE", 20)
    body = {"expr": expr, "days": 7, "limit": 1000}
    answer = client.post("/api/v1/rules/test-recent", json=body, headers=accounts.headers("officer1")).json()
    assert [h["id"] for h in answer["items"]] == expected[:3]
    assert answer["matched_estimated"] is True
    assert "估算" in answer["notice"]
    assert answer["scanned"] == 100
    # The first 5 walked, 20 of the other 95 evaluated: a sample, not a scan.
    assert answer["candidates"] <= 25
    assert abs(answer["matched"] - len(expected)) <= 25
    # With room for every suspect the count is exact again, and says so.
    monkeypatch.setattr(trial, "SAMPLE", 1000)
    exact = client.post("/api/v1/rules/test-recent", json=body, headers=accounts.headers("officer1")).json()
    assert (exact["matched"], exact["matched_estimated"], exact["notice"]) == (len(expected), False, None)


def test_a_trial_whose_suspects_decide_alike_is_estimated_from_a_quarter_of_the_sample(
    client,  # noqa: F811
    accounts: Accounts,  # noqa: F811
    frozen,  # noqa: F811
    monkeypatch,
) -> None:
    """When (nearly) every suspect decides alike, a quarter of the sample already estimates the count as closely
    as the whole sample could an even split: the rest of the sample is not read, and the notice names the
    number the estimate rests on."""
    assert [trial.precise_enough(held, read) for held, read in ((0, 250), (250, 250), (500, 1000))] == [True] * 3
    assert [trial.precise_enough(held, read) for held, read in ((125, 250), (40, 250))] == [False] * 2
    store = client.app.state.ctx.store
    store.init()
    store.upsert(_recent_items(frozen.now()))
    accounts.add("officer1", "officer")
    monkeypatch.setattr(trial, "SHOWN", 3)
    monkeypatch.setattr(trial, "STEP", 5)
    monkeypatch.setattr(trial, "SAMPLE", 92)
    # Every title holds 问题: all 100 items of the week are suspects (title-scoped: decided by their text) and match.
    body = {"expr": "title:问题", "days": 7, "limit": 1000}
    answer = client.post("/api/v1/rules/test-recent", json=body, headers=accounts.headers("officer1")).json()
    assert (answer["matched"], answer["matched_estimated"], answer["scanned"]) == (100, True, 100)
    assert len(answer["items"]) == 3
    # The first part walked (5) and a quarter of the 92 spread over the other 97 (23): not 5 + 92.
    assert answer["candidates"] <= 28
    assert "按其中 23 条" in answer["notice"]


def test_a_not_rule_trial_reads_the_store_in_few_requests(
    client,  # noqa: F811
    accounts: Accounts,  # noqa: F811
    frozen,  # noqa: F811
    monkeypatch,
) -> None:
    """Each read is a round trip to Elasticsearch, which on a loaded machine costs more than the work: the
    window's size and where it starts come from one search, and the items listed are read with the suspects
    beside them (not once for the suspects and again for the list)."""
    store = client.app.state.ctx.store
    store.init()
    items = _recent_items(frozen.now())
    store.upsert(items)
    accounts.add("officer1", "officer")
    calls: dict[str, int] = {}
    for name in ("search", "iter_ids", "iter_texts", "texts_of"):
        read = getattr(store, name)

        def counted(*args, _read=read, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            calls[_name] = calls.get(_name, 0) + 1
            return _read(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)
    body = {"expr": "NOT 排污", "days": 7, "limit": 40}
    answer = client.post("/api/v1/rules/test-recent", json=body, headers=accounts.headers("officer1")).json()
    matcher = Matcher.build([CompiledRule("t", "", "normal", parse("NOT 排污"))])
    expected = [i.id for i in items[:40] if matcher.match(mask_text(i.title), mask_text(i.content))]
    assert [h["id"] for h in answer["items"]] == expected
    assert (answer["matched"], answer["matched_estimated"]) == (len(expected), False)
    # The window (one search), the holders of 排污 and the window's ids (two id walks), one read of texts.
    assert calls == {"search": 1, "iter_ids": 2, "texts_of": 1}
