"""The product itself as a real process (`yuqing run` / `yuqing serve`), the way an operator starts it.

Users are created straight in the database beforehand (the CLI would ask for each password on stdin);
everything else goes through the running server on loopback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyotp

from service.db import Database
from service.settings import load_settings
from service.users.service import create_user
from tests.servers.process import free_port

PASSWORD = "Kx9!mPq2#vLt"
# Users are made under this process's environment and secrets key (both process-wide): two products started
# from two threads (the soak test runs its SQLite and PostgreSQL days side by side) take turns.
_SETUP_LOCK = threading.Lock()


@dataclass
class Product:
    """A running yuqing process and what a test needs to talk to it."""

    base: str
    proc: subprocess.Popen
    config_dir: Path
    data_dir: Path
    database_url: str
    stderr_path: Path
    totp_secrets: dict[str, str] = field(default_factory=dict)

    @property
    def log_path(self) -> Path:
        """The product's JSON-lines log."""
        return self.data_dir / "logs" / "yuqing.jsonl"

    def log_text(self) -> str:
        """Everything the process has logged so far (JSON log and console)."""
        parts = [self.stderr_path.read_text(encoding="utf-8", errors="replace")]
        if self.log_path.exists():
            parts.append(self.log_path.read_text(encoding="utf-8", errors="replace"))
        return "\n".join(parts)

    def token(self, username: str, *, client: httpx.Client | None = None, password: str = PASSWORD) -> str:
        """Sign ``username`` in through the API; the bearer token."""
        data = {"username": username, "password": password}
        if username in self.totp_secrets:
            data["totp"] = pyotp.TOTP(self.totp_secrets[username]).now()
        response = (client or httpx).post(f"{self.base}/api/v1/auth/token", data=data, timeout=60)  # type: ignore[attr-defined]
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}


def add_users(database_url: str, config_dir: Path, users: dict[str, tuple[str, str | None]]) -> dict[str, str]:
    """Create ``{username: (role, department)}`` in a migrated database; TOTP secrets of the admins."""
    settings = load_settings(config_dir)
    # The product encrypts TOTP secrets with the key in its data dir: use the same one here.
    from service.secrets_at_rest import load_secrets_key, use_secrets_key

    use_secrets_key(load_secrets_key(settings))
    db = Database(database_url)
    secrets: dict[str, str] = {}
    try:
        db.migrate()
        with db.session() as session:
            for username, (role, department) in users.items():
                user, _uri = create_user(
                    session,
                    username=username,
                    password=PASSWORD,
                    role=role,
                    department=department,
                    policy=settings.security,
                )
                if user.totp_secret:
                    secrets[username] = user.totp_secret
    finally:
        db.dispose()
    return secrets


def _wait_answering(url: str, proc: subprocess.Popen, stderr_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"yuqing exited with {proc.returncode}: {stderr_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            # Any answer will do: /healthz may report a degraded state while jobs have not run yet.
            httpx.get(url, timeout=10)
            return
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout}s: {stderr_path.read_text()[-3000:]}")


@contextlib.contextmanager
def running_product(
    tmp_path: Path,
    database_url: str,
    *,
    command: str = "serve",
    users: dict[str, tuple[str, str | None]] | None = None,
    env: dict[str, str] | None = None,
    config_dir: Path | None = None,
    start_timeout: float = 120,
) -> Iterator[Product]:
    """Start `yuqing COMMAND` on a free loopback port with its own data dir; stop it (SIGTERM) afterwards."""
    config_dir = config_dir or tmp_path / "config"
    config_dir.mkdir(exist_ok=True)
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    full_env = {
        **os.environ,
        "YUQING_DATA_DIR": str(data_dir),
        "YUQING_DATABASE__URL": database_url,
        **(env or {}),
    }
    # The users are made with this process's view of the settings, so the data dir must match.
    with _SETUP_LOCK:
        previous = os.environ.get("YUQING_DATA_DIR")
        os.environ["YUQING_DATA_DIR"] = str(data_dir)
        try:
            secrets = add_users(database_url, config_dir, users or {})
        finally:
            if previous is None:
                os.environ.pop("YUQING_DATA_DIR", None)
            else:
                os.environ["YUQING_DATA_DIR"] = previous
    port = free_port()
    stderr_path = tmp_path / f"yuqing-{command}.stderr"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "--config", str(config_dir), command, "--port", str(port)],
            stdout=stderr,  # files, not pipes: a full pipe would stall the server
            stderr=stderr,
            env=full_env,
        )
    product = Product(
        base=f"http://127.0.0.1:{port}",
        proc=proc,
        config_dir=config_dir,
        data_dir=data_dir,
        database_url=database_url,
        stderr_path=stderr_path,
        totp_secrets=secrets,
    )
    try:
        _wait_answering(f"{product.base}/healthz", proc, stderr_path, start_timeout)
        yield product
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
