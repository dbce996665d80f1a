"""TOTP secrets encrypted at rest (Fernet from the ``cryptography`` package) with a key outside the database.

``YUQING_SECRETS_KEY`` (a Fernet key) wins; otherwise ``<data dir>/secrets/totp.key`` is read, and created
(owner-only) on first start. The column type encrypts on write and decrypts on read, so the code sees the
secret and a copy of the database alone does not. A value written before encryption (no Fernet token) is
still read, and encrypted at the next start (``encrypt_plaintext_secrets``, run by service.upgrade).
"""

from __future__ import annotations

import os
import secrets as _secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from service.settings import Settings

ENV = "YUQING_SECRETS_KEY"
# Every Fernet token starts with version byte 0x80 and a timestamp; a prefix, not a secret.
_TOKEN_PREFIX = "gAAAAA"  # noqa: S105
_fernet: list[Fernet] = []


class SecretsKeyError(RuntimeError):
    """No usable key for secrets at rest."""


def load_secrets_key(settings: Settings) -> bytes:
    """The key from the environment or the key file, created when neither exists."""
    from_env = os.environ.get(ENV)
    if from_env:
        return from_env.encode("ascii")
    path: Path = settings.data_path("secrets", "totp.key")
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".totp.key.{os.getpid()}.{_secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(Fernet.generate_key())
    try:
        os.link(temp, path)  # appears whole or not at all
    finally:
        temp.unlink()
    return path.read_bytes().strip()


def use_secrets_key(key: bytes) -> None:
    """Make ``key`` the process's key for secrets at rest (set when the application context is built)."""
    try:
        _fernet[:] = [Fernet(key)]
    except ValueError as exc:
        raise SecretsKeyError(f"{ENV} / totp.key is not a valid Fernet key: {exc}") from exc


def is_encrypted(stored: str) -> bool:
    """Whether a raw column value is a Fernet token (a value written before encryption is not)."""
    return stored.startswith(_TOKEN_PREFIX)


def _cipher() -> Fernet:
    if not _fernet:
        raise SecretsKeyError("no key for secrets at rest: build the AppContext (service.context) first")
    return _fernet[0]


class EncryptedString(TypeDecorator[str]):
    """A string stored as a Fernet token."""

    impl = String(512)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return _cipher().encrypt(value.encode("utf-8")).decode("ascii")

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or not value.startswith(_TOKEN_PREFIX):
            return value
        try:
            return _cipher().decrypt(value.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise SecretsKeyError("a stored secret does not decrypt with this key (wrong YUQING_SECRETS_KEY?)") from exc
