"""TOTP secrets are encrypted at rest with a key outside the database (issue 11: they were plain text)."""

from __future__ import annotations

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.auth.fixtures import Accounts


def test_the_database_holds_no_totp_secret_in_the_clear(client: TestClient, accounts: Accounts) -> None:
    accounts.add("root", "admin")
    secret = accounts.secrets["root"]
    assert pyotp.TOTP(secret).now(), "the service still reads the secret"
    with client.app.state.ctx.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT totp_secret FROM users WHERE username = 'root'")).scalar_one()
    assert stored
    assert secret not in stored
    assert stored.startswith("gAAAAA"), "a Fernet token"
    key_file = client.app.state.ctx.settings.data_path("secrets", "totp.key")
    assert key_file.exists()
    assert key_file.stat().st_mode & 0o077 == 0
    # The admin still signs in with a code from that secret.
    assert accounts.headers("root")
