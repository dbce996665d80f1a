"""The audit chain's HMAC key: kept outside the database, so whoever can write the database cannot re-chain it.

``YUQING_AUDIT_KEY`` (at least 32 characters) wins; otherwise ``<data dir>/secrets/audit.key`` is read, and
created (random, owner-only) on first start. Keep a copy off the machine: without it the log cannot be verified.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from service.settings import Settings

ENV = "YUQING_AUDIT_KEY"
MIN_KEY_CHARS = 32


class AuditKeyError(ValueError):
    """The configured audit key is unusable."""


def key_path(settings: Settings) -> Path:
    return settings.data_path("secrets", "audit.key")


def load_audit_key(settings: Settings) -> bytes:
    """The key from the environment or the key file, created when neither exists."""
    from_env = os.environ.get(ENV)
    if from_env:
        if len(from_env) < MIN_KEY_CHARS:
            raise AuditKeyError(f"{ENV} must be at least {MIN_KEY_CHARS} characters")
        return from_env.encode("utf-8")
    path = key_path(settings)
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode("ascii")
    temp = path.with_name(f".audit.key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    try:
        # A hard link appears whole or not at all: two processes starting together keep one key.
        os.link(temp, path)
    except FileExistsError:
        key = path.read_bytes().strip()
    finally:
        temp.unlink()
    return key
