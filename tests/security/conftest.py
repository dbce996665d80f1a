"""Security tests run the real app with two departments, one account per role and real tickets."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.feed.models import Alert
from service.ledger.models import Ticket
from service.matching.engine import MatchingEngine
from service.settings import Settings
from tests.auth.fixtures import PASSWORD, Accounts
from tests.db_fixtures import migrated_sqlite
from tests.matching.builders import item

DEPARTMENTS = """
departments:
  - id: env
    name: 市生态环境局
    rules:
      - id: env-pollution
        expr: '(排污 OR 异味) AND 化工厂'
        severity: major
  - id: water
    name: 市水务局
    rules:
      - id: water-flood
        regions: [河西区]
        events: [积水, 内涝]
        severity: normal
"""

# username -> (role, department); every role of the interface, the department user bound to env.
ROLES = {
    "admin1": ("admin", None),
    "officer1": ("officer", None),
    "env1": ("department", "env"),
    "leader1": ("leader", None),
    "auditor1": ("auditor", None),
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: who may do what does not depend on the database (PostgreSQL runs in the ledger tests).

    A copy of a ledger migrated once per test process (tests/db_fixtures.py)."""
    return migrated_sqlite(tmp_path / "ledger.db")


@pytest.fixture
def app_settings(app_settings: Settings) -> Settings:
    (Path(app_settings.config_dir) / "departments.yaml").write_text(DEPARTMENTS, encoding="utf-8")
    # The matrix and the fuzzer sign in and search far more often than a person would.
    app_settings.security.login_rate_per_minute = 10_000
    app_settings.security.search_rate_per_minute = 10_000
    return app_settings


_numbers = itertools.count(1000)


@dataclass
class World:
    """The app with one signed-in account per role and tickets/alerts of env and water."""

    client: TestClient
    accounts: Accounts
    tokens: dict[str, str] = field(default_factory=dict)
    env_ticket: int = 0
    water_ticket: int = 0
    env_alert: int = 0
    water_alert: int = 0

    def headers(self, username: str | None) -> dict[str, str]:
        """Bearer headers of ``username`` (signed in once); none for the anonymous caller."""
        if username is None:
            return {}
        if username not in self.tokens:
            self.tokens[username] = self.fresh_token(username)
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def fresh_token(self, username: str) -> str:
        """A new session of ``username`` (admins get a new TOTP step: a code is accepted only once)."""
        if username in self.accounts.secrets and self.accounts.frozen is not None:
            from datetime import timedelta

            self.accounts.frozen.advance(timedelta(seconds=31))
        return self.accounts.token(username)

    def new_ticket(self, department: str, title: str = "", content: str = "") -> int:
        """A ticket raised by the matching engine from a freshly stored item of ``department``'s kind."""
        ctx = self.client.app.state.ctx
        n = next(_numbers)
        if department == "env":
            title, content = title or f"化工厂排污{n}", content or f"化工厂夜间排污第{n}次"
        else:
            title, content = title or f"河西区积水{n}", content or f"河西区道路积水第{n}处"
        stored = item(n, title, content)
        ctx.store.upsert([stored])
        MatchingEngine(ctx).run()
        with ctx.db.session() as session:
            alert = session.execute(
                select(Alert).where(Alert.item_id == stored.id, Alert.department == department)
            ).scalar_one()
            return alert.ticket_id

    def alert_of(self, ticket_id: int) -> int:
        with self.client.app.state.ctx.db.session() as session:
            return session.execute(select(Alert.id).where(Alert.ticket_id == ticket_id)).scalars().first()

    def ticket_department(self, ticket_id: int) -> str:
        with self.client.app.state.ctx.db.session() as session:
            return session.get(Ticket, ticket_id).department


@pytest.fixture
def world(client: TestClient, accounts: Accounts) -> World:
    for username, (role, department) in ROLES.items():
        accounts.add(username, role, department, password=PASSWORD)
    built = World(client, accounts)
    built.env_ticket = built.new_ticket("env")
    built.water_ticket = built.new_ticket("water")
    built.env_alert = built.alert_of(built.env_ticket)
    built.water_alert = built.alert_of(built.water_ticket)
    assert built.ticket_department(built.env_ticket) == "env"
    assert built.ticket_department(built.water_ticket) == "water"
    return built
