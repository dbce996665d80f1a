"""Builders for export tests: ledger rows, and real tickets in a ledger database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from service.exports.ledger_rows import LedgerRow
from service.ledger.models import Ticket
from service.ledger.service import ItemRef, open_or_attach
from tests.ledger.builders import make_config

# Monday 2026-03-02 10:00 Asia/Shanghai (ISO week 2026-W10).
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
PHONE = "13812345678"
ID_NUMBER = "110101199003071234"


def make_row(seq: int = 1, **fields: Any) -> LedgerRow:
    """A ledger row for env, discovered at T0, nothing done yet, nothing overdue."""
    data: dict[str, Any] = {
        "seq": seq,
        "ticket_id": 100 + seq,
        "title": f"青川县化工厂夜间排污异味扰民{seq}",
        "channel": "hotline",
        "source": "示例市12345热线",
        "published_at": T0 - timedelta(hours=2),
        "discovered_at": T0,
        "department": "env",
        "department_name": "市生态环境局",
        "severity": "normal",
        "acknowledged_at": None,
        "result": None,
        "handled_at": None,
        "responded_at": None,
        "response_url": None,
        "status": "new",
        "acknowledge_overdue": False,
        "handle_overdue": False,
        "respond_overdue": False,
        "escalated": False,
        "note": "",
    }
    data.update(fields)
    return LedgerRow(**data)


def make_ticket(session: Session, n: int, discovered_at: datetime, department: str = "env", **done: Any) -> Ticket:
    """Ticket ``n`` (normal severity, one hotline item of demo-12345); ``done`` sets columns such as ack_met_at."""
    ticket, created = open_or_attach(
        session,
        title=f"化工厂异味投诉{n}",
        severity="normal",
        department=department,
        discovered_at=discovered_at,
        event_id=f"ev-{n}",
        items=[
            ItemRef(
                item_id=f"item-{n}",
                source="demo-12345",
                channel="hotline",
                title=f"工单{n}",
                published_at=discovered_at - timedelta(hours=1),
            )
        ],
        policy=make_config().policy,
    )
    assert created
    for key, value in done.items():
        setattr(ticket, key, value)
    session.flush()
    return ticket
