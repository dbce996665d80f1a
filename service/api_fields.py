"""Types shared by API schemas."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import HTTPException, Path
from pydantic import AfterValidator, PlainSerializer

from service.clock import SHANGHAI, ensure_aware, to_local
from service.field_labels import field_label

# Stored in UTC, shown in Asia/Shanghai: the API answers "2026-11-20T10:00:00+08:00".
LocalDateTime = Annotated[
    datetime, PlainSerializer(lambda v: to_local(v).isoformat(), return_type=str, when_used="json")
]

# Ids of ledger rows (tickets, alerts) are 32-bit on PostgreSQL: a larger number in a path or filter is
# answered 422 instead of reaching the database as an overflow (a 500).
ROW_ID_MAX = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=ROW_ID_MAX, description="ID")]


def _supported_year(value: datetime) -> datetime:
    if not 1970 <= value.year <= 2999:
        raise ValueError("must lie between the years 1970 and 2999")
    return value


# A time given by the caller: years near datetime.min/max overflow once turned into UTC or Asia/Shanghai.
InputDateTime = Annotated[datetime, AfterValidator(_supported_year)]


def date_or_time(name: str, value: str | None) -> date | datetime | None:
    """A ``from``/``to`` query value: a date (a whole Asia/Shanghai day) or an ISO 8601 time; 422 otherwise."""
    if not value:
        return None
    try:
        bound = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(
            422, {"message": f"{field_label(name)}：{value!r} 不是日期或 ISO 8601 时间", "field": name}
        ) from None
    # Years near date.min/date.max overflow once turned into UTC day edges.
    if not 1970 <= bound.year <= 2999:
        raise HTTPException(
            422, {"message": f"{field_label(name)}：{value!r} 超出支持的日期范围（1970–2999 年）", "field": name}
        )
    return bound


def _instant(bound: date | datetime, end: bool) -> datetime:
    if isinstance(bound, datetime):
        return ensure_aware(bound)
    return datetime.combine(bound + timedelta(days=1) if end else bound, time(0), tzinfo=SHANGHAI)


def check_range(date_from: str | None, date_to: str | None) -> None:
    """422 for a ``from`` that is not before ``to`` (dates are whole Asia/Shanghai days, ``to`` included):
    such a range holds nothing, and an empty list would read as “nothing happened”."""
    start, end = date_or_time("from", date_from), date_or_time("to", date_to)
    if start is None or end is None or _instant(start, end=False) < _instant(end, end=True):
        return
    raise HTTPException(422, {"message": reversed_range(date_from, date_to), "field": "from"})


def reversed_range(date_from: object, date_to: object) -> str:
    """The one wording of a range whose start is after its end (every list, the audit log and the export)."""
    return f"{field_label('from')}{date_from} 晚于{field_label('to')}{date_to}，请对调两个日期"
