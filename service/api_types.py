"""Types shared by API schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import PlainSerializer

from service.clock import to_local

# Stored in UTC, shown in Asia/Shanghai: the API answers "2026-11-20T10:00:00+08:00".
LocalDateTime = Annotated[
    datetime, PlainSerializer(lambda v: to_local(v).isoformat(), return_type=str, when_used="json")
]
