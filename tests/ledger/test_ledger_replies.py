"""Public replies found by the crawler meet the respond stage, whichever comes first: link or reply."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from service.app import DOMAIN_JOBS
from service.context import AppContext
from service.ledger.actions import act
from service.ledger.config import ledger_config
from service.ledger.replies import record_public_reply
from service.ledger.scheduled import sweep_public_replies
from service.ledger.service import ItemRef, get, open_or_attach, overdue
from service.settings import Settings
from service.store.base import Item
from tests.item_stores import on_paired_stores, use_item_store
from tests.ledger.builders import ENV_USER, T0, new_ticket

REPLY_URL = "http://127.0.0.1:8801/detail_1.html"


def hotline_item(n: int = 1, **fields) -> Item:
    data = {
        "id": f"item-{n}",
        "source": "demo-12345",
        "channel": "hotline",
        "external_id": f"WO-{n}",
        "url": f"http://127.0.0.1:8801/detail_{n}.html",
        "title": f"工单{n}",
        "content": "化工厂夜间排放异味",
        "published_at": T0 - timedelta(hours=2),
        "fetched_at": T0 + timedelta(days=1),
    }
    data.update(fields)
    return Item(**data)


def test_a_reply_meets_respond_at_the_reply_time_with_the_item_url(db, frozen, config) -> None:
    with db.session() as s:
        ticket = new_ticket(s, config)
        act(s, ticket.id, ENV_USER, "acknowledge", config=config)
    frozen.advance(timedelta(days=1))
    replied = T0 + timedelta(hours=20)
    with db.session() as s:
        assert record_public_reply(s, hotline_item(reply="已责令企业整改", replied_at=replied)) == [ticket.id]
    with db.session() as s:
        after = get(s, ticket.id)
        assert (after.status, after.responded, after.respond_met_at) == ("responded", True, replied)
        assert (after.response_url, after.response_source) == (REPLY_URL, "system:crawler")
        entry = after.timeline[-1]
        assert (entry.action, entry.actor, entry.response_url) == ("respond", "system:crawler", REPLY_URL)
        # The timeline and the ledger say where in words, not by the source's config id (demo-12345).
        assert entry.note == "在12345热线的公开页面发现答复"
        # Seen again on the next crawl: nothing more happens.
        assert record_public_reply(s, hotline_item(reply="已责令企业整改", replied_at=replied)) == []
        assert get(s, ticket.id).version == after.version


def test_a_reply_on_a_ticket_not_yet_acknowledged_invents_no_acknowledgement(db, frozen, config) -> None:
    with db.session() as s:
        ticket = new_ticket(s, config)
        frozen.advance(timedelta(hours=2))
        record_public_reply(s, hotline_item(reply="已处理", replied_at=T0 + timedelta(hours=1)))
        after = get(s, ticket.id)
        assert after.status == "responded"
        assert after.respond_met_at == T0 + timedelta(hours=1)
        assert after.ack_met_at is None
        assert [e.action for e in after.timeline] == ["create", "respond"]
        # The skipped 签收 is neither overdue nor counted late, even long after its deadline.
        assert overdue(after, T0 + timedelta(days=30))["acknowledge"] is False


def test_an_item_without_reply_changes_nothing(db, frozen, config) -> None:
    with db.session() as s:
        ticket = new_ticket(s, config)
        assert record_public_reply(s, hotline_item()) == []
        assert get(s, ticket.id).version == 1


@pytest.fixture
def app_ctx(request: pytest.FixtureRequest, tmp_path: Path, database_url: str, item_store: str, frozen):
    settings = Settings(config_dir=tmp_path / "config", data_dir=tmp_path / "data", database={"url": database_url})
    ctx = AppContext.create(use_item_store(settings, item_store, request))
    ctx.db.migrate()
    ctx.store.init()
    yield ctx
    ctx.close()


@on_paired_stores
def test_the_sweep_finds_replies_stored_before_the_item_was_linked(app_ctx) -> None:
    # The crawler stored the reply first; the matching engine linked the item afterwards.
    app_ctx.store.upsert([hotline_item(reply="已回复市民", replied_at=T0 + timedelta(hours=3))])
    app_ctx.store.upsert([hotline_item(2)])
    config = ledger_config(app_ctx.settings)
    with app_ctx.db.session() as s:
        replied = new_ticket(s, config, 1, policy=config.policy)
        waiting = new_ticket(s, config, 2, policy=config.policy)
    assert sweep_public_replies(app_ctx) == [replied.id]
    assert sweep_public_replies(app_ctx) == []
    with app_ctx.db.session() as s:
        assert get(s, replied.id).respond_met_at == T0 + timedelta(hours=3)
        assert get(s, waiting.id).responded is False


def test_a_media_items_text_is_no_public_reply(db, frozen, config) -> None:
    with db.session() as s:
        ticket, _ = open_or_attach(
            s,
            title="媒体报道",
            severity="minor",
            department="env",
            event_id="ev-media",
            items=[ItemRef(item_id="news-1", source="news", channel="media")],
            policy=config.policy,
        )
        item = hotline_item(id="news-1", source="news", channel="media", reply="网友评论", replied_at=T0)
        assert record_public_reply(s, item) == []
        assert get(s, ticket.id).responded is False


def test_the_ledger_jobs_are_registered_with_their_intervals() -> None:
    settings = Settings(scheduler={"sla_interval_seconds": 90})
    specs = {spec.id: spec for jobs in DOMAIN_JOBS for spec in jobs(settings)}
    assert specs["sla-check"].func == "service.ledger.monitoring:sla_job"
    assert specs["sla-check"].trigger.interval == timedelta(seconds=90)
    assert specs["outbox-delivery"].func == "alerting.outbox:deliver_job"
    assert "public-reply-sweep" in specs


def test_a_ticket_answered_in_public_before_acknowledgement_is_not_listed_overdue(db, frozen, config) -> None:
    """The skipped 签收 must not make the ticket overdue in the list filter (SQL) either."""
    from alerting.monitor import due_notices
    from service.ledger.service import list_tickets
    from tests.ledger.builders import OFFICER

    with db.session() as s:
        ticket = new_ticket(s, config)
        record_public_reply(s, hotline_item(reply="已处理", replied_at=T0 + timedelta(hours=1)))
        frozen.advance(timedelta(hours=2))
        act(s, ticket.id, ENV_USER, "handle", result="已现场核查", config=config)
    frozen.advance(timedelta(days=30))
    with db.session() as s:
        after = get(s, ticket.id)
        assert after.ack_met_at is None
        assert not any(overdue(after).values())
        found, total = list_tickets(s, OFFICER, overdue_only=True)
        assert total == 0, [t.id for t in found]
        assert due_notices(after, frozen.now(), config) == []
