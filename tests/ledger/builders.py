"""Builders for ledger tests: principals, the default configuration, tickets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alerting.calendar import WorkCalendar
from alerting.sla import SlaConfig, SlaPolicy
from service.ledger.config import LedgerConfig
from service.ledger.service import ItemRef, open_or_attach
from service.principal import Principal
from service.settings import LedgerSettings, NotificationSettings

# Monday 2026-03-02 10:00 Asia/Shanghai: an ordinary working week (no holiday near it).
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)

ENV_USER = Principal(user_id=1, username="env-user", role="department", department="env")
WATER_USER = Principal(user_id=2, username="water-user", role="department", department="water")
OFFICER = Principal(user_id=3, username="officer", role="officer")
ADMIN = Principal(user_id=4, username="admin", role="admin")
LEADER = Principal(user_id=5, username="leader", role="leader")
AUDITOR = Principal(user_id=6, username="auditor", role="auditor")


def make_config(notifications: NotificationSettings | None = None, **ledger: Any) -> LedgerConfig:
    """The interface's default SLA policy on a Monday–Friday calendar plus the given settings."""
    return LedgerConfig(
        policy=SlaPolicy(SlaConfig(), WorkCalendar()),
        ledger=LedgerSettings(**ledger),
        notifications=notifications or NotificationSettings(),
        departments=frozenset({"env", "water", "traffic"}),
    )


def new_ticket(session, config: LedgerConfig, n: int = 1, **fields: Any):
    """Ticket number ``n`` (event ev-n) for env, normal severity, discovered now, with one hotline item."""
    data: dict[str, Any] = {
        "title": f"化工厂异味投诉{n}",
        "severity": "normal",
        "department": "env",
        "event_id": f"ev-{n}",
        "items": [
            ItemRef(
                item_id=f"item-{n}",
                source="demo-12345",
                channel="hotline",
                title=f"工单{n}",
                url=f"http://127.0.0.1:8801/detail_{n}.html",
                published_at=T0.replace(hour=0),
            )
        ],
        "policy": config.policy,
    }
    data.update(fields)
    ticket, created = open_or_attach(session, **data)
    assert created
    return ticket


class WebhookReceiver:
    """A local HTTP server recording every POST (stdlib http.server in a thread); start and stop at will."""

    def __init__(self) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._server = None
        self._thread = None

    def start(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def webhook_notifications(url: str, secret: str = "s3cret", **extra: Any) -> NotificationSettings:
    """Notification settings sending every kind for every department to one webhook."""
    return NotificationSettings(
        channels={"hook": {"type": "webhook", "url": url, "secret": secret, "timeout": 2}},
        routes=[{"channels": ["hook"]}],
        **extra,
    )


def run_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    """Run the real console script in a child process, as a user would."""
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )
