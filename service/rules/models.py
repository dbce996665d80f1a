"""The rule table: keyword rules managed through the API or imported from departments.yaml.

Rules own their table (here), their language (service.rules.language), the rule book compiled from the
table (service.rules.rulebook) and the matcher (service.rules.matcher).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.db_columns import UtcDateTime
from service.vocabulary import Severity


class RuleRecord(Base):
    """A keyword rule as managed through the API or imported from departments.yaml."""

    __tablename__ = "rules"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department: Mapped[str] = mapped_column(String(64), index=True)
    # What people call the rule (化工厂排污异味); alerts and lists show it instead of the id.
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    expr: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The structured form {regions, subjects, events, exclude}, when the rule is written that way.
    structured: Mapped[dict[str, list[str]] | None] = mapped_column(JSON, nullable=True)
    severity: Mapped[Severity] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # "file": imported from departments.yaml (re-imported when the file's text of it changes); "api".
    origin: Mapped[str] = mapped_column(String(8), default="api")
    file_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    muted_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    muted_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
