"""X-Forwarded-For is believed only from the proxies listed in settings (default: from nobody).

Found in use: uvicorn trusted proxy headers from 127.0.0.1, so 75 guesses with a forged X-Forwarded-For
from loopback each looked like a new address and the per-address sign-in limit never applied.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import select

from service.audit.models import AuditRecord
from service.db import Database
from tests.servers.product import running_product


def _guess(product, client: httpx.Client, n: int, forwarded: str) -> int:
    response = client.post(
        f"{product.base}/api/v1/auth/token",
        data={"username": "zhang", "password": f"Wrong!guess{n}"},
        headers={"X-Forwarded-For": forwarded},
    )
    return response.status_code


def _login_addresses(database_url: str) -> list[str | None]:
    db = Database(database_url)
    with db.session() as s:
        rows = s.execute(select(AuditRecord.address).where(AuditRecord.event_type == "login")).scalars().all()
    db.dispose()
    return list(rows)


def test_a_forged_forwarded_for_from_loopback_is_ignored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    # Two guesses a minute per address and user (one more every 30 s); each guess claims another address.
    env = {"YUQING_SECURITY__LOGIN_RATE_PER_MINUTE": "2"}
    with (
        running_product(tmp_path, url, users={"zhang": ("officer", None)}, env=env) as product,
        httpx.Client(timeout=60) as c,
    ):
        statuses = [_guess(product, c, n, f"198.51.100.{n}") for n in range(6)]
    assert statuses[:2] == [401, 401]
    assert statuses.count(429) >= 3, f"the forged addresses bought more guesses: {statuses}"
    assert set(_login_addresses(url)) == {"127.0.0.1"}


def test_a_listed_proxy_is_believed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = {"YUQING_SERVER__TRUSTED_PROXIES": '["127.0.0.1"]'}
    with (
        running_product(tmp_path, url, users={"zhang": ("officer", None)}, env=env) as product,
        httpx.Client(timeout=60) as c,
    ):
        assert _guess(product, c, 1, "203.0.113.7") == 401
    assert _login_addresses(url) == ["203.0.113.7"]
