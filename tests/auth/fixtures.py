"""Fixtures for accounts and audit tests: the real app on a fresh database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from service import clock
from service.app import create_app
from service.settings import Settings, load_settings
from service.users import service as users_service
from service.users.service import create_user
from tests.item_stores import use_item_store

START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
PASSWORD = "Kx9!mPq2#vLt"


@pytest.fixture
def frozen() -> Iterator[clock.FrozenClock]:
    """The process clock, stopped at START for the test."""
    previous = clock.get_clock()
    frozen = clock.FrozenClock(START)
    clock.set_clock(frozen)
    yield frozen
    clock.set_clock(previous)


@pytest.fixture
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2id with test-sized cost: the product's default costs ~0.3 s per login on a busy CI box."""
    hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    monkeypatch.setattr(users_service, "_hasher", hasher)
    monkeypatch.setattr(users_service, "_DUMMY_HASH", hasher.hash("no-such-user"))


@pytest.fixture
def app_settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    item_store: str,
    cheap_argon2: None,
) -> Settings:
    """Default settings with the data dir under tmp, the ledger on ``database_url``, items in ``item_store``."""
    config = tmp_path / "config"
    config.mkdir()
    monkeypatch.setenv("YUQING_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings(config)
    settings.database.url = database_url
    return use_item_store(settings, item_store, request)


@pytest.fixture
def client(app_settings: Settings, frozen: clock.FrozenClock) -> Iterator[TestClient]:
    """The whole app (migrated on start-up) behind a TestClient."""
    with TestClient(create_app(app_settings)) as test_client:
        yield test_client


@dataclass
class Accounts:
    """Creates users straight in the database and signs them in through the API."""

    client: TestClient
    frozen: clock.FrozenClock | None = None
    secrets: dict[str, str] = field(default_factory=dict)

    def add(self, username: str, role: str, department: str | None = None, password: str = PASSWORD) -> None:
        ctx = self.client.app.state.ctx
        with ctx.db.session() as session:
            user, _uri = create_user(
                session,
                username=username,
                password=password,
                role=role,
                department=department,
                policy=ctx.settings.security,
            )
            if user.totp_secret:
                self.secrets[username] = user.totp_secret

    def totp(self, username: str) -> str:
        """The TOTP code of ``username`` at the frozen time."""
        return pyotp.TOTP(self.secrets[username]).at(clock.now())

    def token(self, username: str, password: str = PASSWORD) -> str:
        data = {"username": username, "password": password}
        if username in self.secrets:
            data["totp"] = self.totp(username)
        response = self.client.post("/api/v1/auth/token", data=data)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}


@pytest.fixture
def accounts(client: TestClient, frozen: clock.FrozenClock) -> Accounts:
    return Accounts(client, frozen)
