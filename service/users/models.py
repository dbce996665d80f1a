"""The users table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.db_columns import UtcDateTime
from service.secrets_at_rest import EncryptedString
from service.vocabulary import Role


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(64), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Encrypted at rest with a key outside the database (service.secrets_at_rest).
    totp_secret: Mapped[str | None] = mapped_column(EncryptedString, nullable=True)
    # The last accepted TOTP time step: a code is good once, not for its whole 30-second window.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Set by an administrator's password reset: the user must choose a new password before anything else.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
