"""What the ledger asks of the alerts that opened its tickets: an interface the alert feed implements.

Alerts (service.feed) come before tickets in the flow (crawl -> store -> match -> ticket): the feed and
the matching stage import the ledger, and the ledger never imports them back. Where the ledger needs the
alerts (the subject terms of 可能是同一事件, and the alert of an item split into a new ticket), the caller
passes this interface in: the matching stage when it records suggestions, the composition root for the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy.orm import Session


class TicketAlerts(Protocol):
    """The alerts of tickets, as the ledger reads and re-links them."""

    def subject_terms(self, session: Session, ticket_ids: Sequence[int]) -> dict[int, set[str]]:
        """Ticket id -> the rule terms its alerts highlighted (every id given is a key)."""
        ...

    def move_item_alerts(self, session: Session, item_id: str, department: str, ticket_id: int) -> list[dict[str, Any]]:
        """The item's alerts of ``department`` now belong to ticket ``ticket_id``; those already pushed, as
        ``{"alert": id, "pushed_at": iso time}`` (what was already sent about the item)."""
        ...
