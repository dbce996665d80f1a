"""Mask, then cut: alert snippets, the SSE feed and pushed messages never hold part of a number in the clear.

Found by an attacker with an officer account: snippets were 80-character windows cut from the raw text and
masked afterwards, so a cut number (``本人电话1390000``) no longer looked like one, while the ticket showed
``139****1111``: together they gave the whole number.
"""

from __future__ import annotations

import re

from service.feed.snippets import snippets
from service.masking import mask_text
from service.matching.engine import MatchingEngine, alert_message
from service.rules.hits import Highlight
from tests.matching.builders import item

PHONE = "13900001111"
# The hit (化工厂排污) sits 30 characters before the phone, so an 80-character window ends inside it.
CONTENT = "化工厂排污" + "，" * 26 + f"本人电话{PHONE}，" + "请尽快处理。" * 20


def _digits_visible(text: str) -> set[str]:
    return set(re.findall(r"\d{4,}", text))


def test_a_snippet_is_cut_from_the_masked_text() -> None:
    highlight = Highlight("content", 0, 5, "化工厂排污")
    (snippet,) = snippets("", CONTENT, [highlight])
    assert snippet["text"] in mask_text(CONTENT), "a snippet is a piece of the masked text"
    assert "1390000" not in snippet["text"]
    assert "0000" not in snippet["text"]


def test_a_highlight_on_masked_digits_is_dropped() -> None:
    # A rule term written as digits would confirm the hidden ones through its highlight.
    start = CONTENT.index(PHONE)
    hits = [Highlight("content", 0, 5, "化工厂排污"), Highlight("content", start, start + 7, "1390000")]
    (snippet,) = snippets("", CONTENT, hits)
    assert [h["term"] for h in snippet["highlights"]] == ["化工厂排污"]


def test_feed_stream_and_push_show_no_part_of_a_masked_number(client, accounts) -> None:
    ctx = client.app.state.ctx
    ctx.store.upsert([item(1, "化工厂排污扰民", CONTENT)])
    MatchingEngine(ctx).run()
    accounts.add("officer1", "officer")
    accounts.add("env-clerk", "department", department="env")
    for user in ("officer1", "env-clerk"):
        feed = client.get("/api/v1/alerts", params={"after": 0}, headers=accounts.headers(user)).json()
        (alert,) = feed["results"]
        shown = "".join(s["text"] for s in alert["snippets"])
        assert "139" in shown, "the snippet reaches the number: the test cuts where it should"
        assert "1390000" not in shown
        assert all(s["text"] in mask_text(CONTENT) for s in alert["snippets"] if s["field"] == "content")
    from service.feed.models import Alert

    with ctx.db.session() as session:
        stored = session.get(Alert, 1)
        _, body = alert_message(stored, 1)
    assert "1390000" not in body


def test_an_alert_on_an_item_whose_id_looks_like_a_number_keeps_that_id(client, accounts) -> None:
    """Found by a burst benchmark: one alert in ~800 carried a masked ``item_id`` (``0836****7668bd…``) on
    the feed and the SSE stream, so it named an item that exists nowhere (not in its own ticket either)."""
    ctx = client.app.state.ctx
    odd = "083678717668bd31ec20fb65"
    ctx.store.upsert([item(1, "化工厂排污扰民", CONTENT, id=odd)])
    MatchingEngine(ctx).run()
    accounts.add("officer1", "officer")
    officer = accounts.headers("officer1")
    (alert,) = client.get("/api/v1/alerts", params={"after": 0}, headers=officer).json()["results"]
    assert alert["item_id"] == odd
    assert PHONE not in str(alert), "the alert's text is still masked"
    ticket = client.get(f"/api/v1/tickets/{alert['ticket_id']}", headers=officer).json()
    assert [i["item_id"] for i in ticket["items"]] == [alert["item_id"]]


def test_snippets_stored_before_the_fix_are_masked_by_the_migration() -> None:
    import importlib.util
    from pathlib import Path

    import service

    path = Path(service.__file__).parent / "migrations" / "versions" / "i11_0003_mask_stored_snippets.py"
    spec = importlib.util.spec_from_file_location("i11_0003", path)
    assert spec is not None
    assert spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    # The demo alert of the report: a window cut inside the number, highlighted digits.
    old = {
        "field": "content",
        "text": "拖欠农民工工资三个月，本人电话1390000",
        "prefix": True,
        "suffix": True,
        "highlights": [{"start": 0, "end": 2, "term": "拖欠"}, {"start": 15, "end": 22, "term": "1390000"}],
    }
    new = migration._mask_snippet(old)
    assert "1390000" not in new["text"]
    assert not re.search(r"\d", new["text"].split("电话")[1])
    assert [h["term"] for h in new["highlights"]] == ["拖欠"]


def test_a_live_rule_of_digits_cannot_confirm_hidden_digits_of_a_new_item(client, accounts) -> None:
    """Live matching runs on the masked text: a hit (or no hit) on a new item never answers a guess.

    Before: an officer's rule ``"00001111" AND 排污`` hit the item above (its phone is shown as
    ``139****1111``), so the alert's existence confirmed the hidden digits; one rule per guess recovered them.
    """
    ctx = client.app.state.ctx
    accounts.add("officer1", "officer")
    officer = accounts.headers("officer1")
    guesses = {
        "guess-hidden": f'"{PHONE[3:]}" AND 排污',  # the four hidden digits and the visible tail
        "guess-middle": '"0000" AND 排污',  # only hidden digits
        "visible-tail": '"1111" AND 排污',  # what everybody sees: may hit
    }
    for rule_id, expr in guesses.items():
        created = client.post("/api/v1/rules", json={"id": rule_id, "department": "env", "expr": expr}, headers=officer)
        assert created.status_code == 201, created.text
    ctx.store.upsert([item(1, "化工厂排污扰民", CONTENT)])
    MatchingEngine(ctx).run()
    feed = client.get("/api/v1/alerts", params={"after": 0}, headers=officer).json()
    hit_rules = {rule for alert in feed["results"] for rule in alert["rule_ids"]}
    assert "guess-hidden" not in hit_rules
    assert "guess-middle" not in hit_rules
    assert "visible-tail" in hit_rules, "rules still match what the masked text shows"
    assert "env-pollution" in hit_rules
