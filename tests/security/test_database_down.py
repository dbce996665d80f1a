"""The ledger database briefly unreachable: requests answer 503 with a Chinese message, then 200 again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service import clock
from service.app import DATABASE_DOWN, create_app
from service.settings import Settings, load_settings
from tests.auth.fixtures import Accounts
from tests.servers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres


@pytest.fixture
def proxied_database(postgres_url: str) -> Iterator[tuple[str, TcpProxy]]:
    """A fresh database on the test cluster, reached through a proxy the test can switch off."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    server = make_url(postgres_url)
    proxy = TcpProxy(server.host or "127.0.0.1", server.port or 5432)
    proxy.start()
    try:
        url = server.set(database=name, host="127.0.0.1", port=proxy.port)
        yield url.render_as_string(hide_password=False), proxy
    finally:
        proxy.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proxied_database: tuple[str, TcpProxy], cheap_argon2: None
) -> Settings:
    (tmp_path / "config").mkdir()
    monkeypatch.setenv("YUQING_DATA_DIR", str(tmp_path / "data"))
    loaded = load_settings(tmp_path / "config")
    loaded.database.url = proxied_database[0]
    return loaded


def test_database_outage_answers_503_then_recovers(
    settings: Settings, proxied_database: tuple[str, TcpProxy], frozen: clock.FrozenClock
) -> None:
    _, proxy = proxied_database
    # Server errors become answers, as a real server would send them, instead of exceptions in the test.
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        accounts = Accounts(client, frozen)
        accounts.add("officer1", "officer")
        headers = accounts.headers("officer1")
        assert client.get("/api/v1/tickets", headers=headers).status_code == 200

        proxy.stop()
        down = [
            client.get("/api/v1/tickets", headers=headers),
            client.get("/api/v1/rules", headers=headers),
            client.post("/api/v1/auth/token", data={"username": "officer1", "password": "whatever"}),
        ]
        for response in down:
            assert response.status_code == 503, response.text
            assert response.json() == {"detail": DATABASE_DOWN}
            assert response.headers["retry-after"] == "5"
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["database"]["status"] == "down"

        proxy.start()
        back = client.get("/api/v1/tickets", headers=headers)
        assert back.status_code == 200, back.text
        assert client.get("/healthz").json()["database"]["status"] == "ok"
