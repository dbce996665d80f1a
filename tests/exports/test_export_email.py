"""The weekly ledger reaches an e-mail channel as an attachment, through a real (local) SMTP server."""

from __future__ import annotations

import email
import socket
from email import policy
from pathlib import Path

import openpyxl
import pytest
from aiosmtpd.controller import Controller

from alerting.outbox import deliver_due
from service import clock
from service.exports import scheduled
from service.settings import NotificationRoute, NotificationSettings
from tests.exports.builders import T0, make_ticket
from tests.exports.test_export_scheduled import ctx, local, settings  # noqa: F401 - fixtures


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp() -> tuple[Inbox, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_weekly_ledger_is_mailed_as_an_attachment(ctx, smtp, tmp_path: Path) -> None:  # noqa: F811
    inbox, port = smtp
    ctx.settings.notifications = NotificationSettings(
        channels={
            "office-mail": {
                "type": "email",
                "host": "127.0.0.1",
                "port": port,
                "sender": "yuqing@example.gov.cn",
                "to": ["office@example.gov.cn"],
            }
        },
        routes=[NotificationRoute(kinds=["report"], channels=["office-mail"])],
    )
    with ctx.db.session() as s:
        make_ticket(s, 1, T0)
    fire = scheduled.weekly_trigger(ctx.settings).get_next_fire_time(None, local(2026, 3, 6, 9, 0))
    clock.set_clock(clock.FrozenClock(fire))
    scheduled.weekly_ledger_job()

    report = deliver_due(ctx.db, ctx.settings.notifications)
    assert len(report.sent) == 1, report
    assert len(inbox.messages) == 1
    mail = inbox.messages[0]
    assert "回应台账" in mail["subject"]
    attachments = list(mail.iter_attachments())
    assert len(attachments) == 1
    name = attachments[0].get_filename()
    assert name.endswith(".xlsx")
    saved = tmp_path / "received.xlsx"
    saved.write_bytes(attachments[0].get_content())
    workbook = openpyxl.load_workbook(saved)
    assert workbook.sheetnames[:2] == ["汇总", "台账"]
