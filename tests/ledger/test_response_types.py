"""A response may be made by phone, in writing, in person or otherwise: only an online one needs a URL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.exports.ledger_rows import rows_from_tickets
from service.ledger.actions import act
from service.ledger.errors import InvalidInput
from tests.ledger.builders import ENV_USER, OFFICER, new_ticket

URL = "https://www.example.gov.cn/reply/1.html"


@pytest.mark.parametrize("kind", ["phone", "written", "in_person", "other"])
def test_offline_responses_need_a_note_not_a_url(db, frozen, config, kind: str) -> None:
    with db.session() as s:
        ticket = new_ticket(s, config)
        act(s, ticket.id, ENV_USER, "acknowledge", config=config)
        with pytest.raises(InvalidInput) as refused:
            act(s, ticket.id, ENV_USER, "respond", config=config, response_type=kind)
        assert refused.value.field == "note"
        ticket = act(
            s, ticket.id, ENV_USER, "respond", config=config, response_type=kind, note="已电话联系投诉人说明处理情况"
        )
        assert ticket.status == "responded"
        assert ticket.response_type == kind
        assert ticket.response_url is None
        assert ticket.timeline[-1].detail["response_type"] == kind


def test_an_online_response_still_needs_its_address(db, frozen, config) -> None:
    with db.session() as s:
        ticket = new_ticket(s, config)
        act(s, ticket.id, ENV_USER, "acknowledge", config=config)
        for kind in (None, "online"):
            with pytest.raises(InvalidInput) as refused:
                act(s, ticket.id, ENV_USER, "respond", config=config, response_type=kind)
            assert refused.value.field == "response_url"
            assert "网上公开" in str(refused.value)
        with pytest.raises(InvalidInput):
            act(s, ticket.id, ENV_USER, "respond", config=config, response_type="fax", note="x")
        ticket = act(s, ticket.id, ENV_USER, "respond", config=config, response_url=URL)
        assert ticket.response_type == "online"


def test_the_ledger_says_what_was_said_in_an_offline_response(db, frozen, config) -> None:
    # The ledger's 回应方式/链接 said only "电话": the 回应情况 the department had to write was not in the record.
    with db.session() as s:
        ticket = new_ticket(s, config)
        act(s, ticket.id, ENV_USER, "acknowledge", config=config)
        act(s, ticket.id, ENV_USER, "respond", config=config, response_type="phone", note="已电话告知投诉人处理结果")
        day = ticket.discovered_at.date()
        rows = list(rows_from_tickets(s, day - timedelta(days=1), day + timedelta(days=1), None, ticket.discovered_at))
        assert [r.response_text for r in rows if r.ticket_id == ticket.id] == ["电话：已电话告知投诉人处理结果"]
        reassigned = act(s, ticket.id, OFFICER, "reassign", config=config, department="water", note="不属本单位")
        assert reassigned.response_note is None  # the response is undone with the rest of the work
