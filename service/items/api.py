"""GET /api/v1/items: search stored items."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal

from fastapi import APIRouter, HTTPException, Query

from service.clock import ensure_aware
from service.deps import SettingsDep, StoreDep
from service.items.schemas import ItemList, ItemRead
from service.store.base import ItemQuery, StoreUnavailable

router = APIRouter(prefix="/api/v1/items", tags=["items"])


def _bound(value: str | None, zone_name: str, end: bool) -> datetime | None:
    """A date (whole Asia/Shanghai day; ``to`` inclusive) or an ISO 8601 instant."""
    if not value:
        return None
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(zone_name)
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            if end:
                day += timedelta(days=1)
            return ensure_aware(datetime.combine(day, time.min), zone)
        return ensure_aware(datetime.fromisoformat(value), zone)
    except ValueError as exc:
        raise HTTPException(422, f"not a date or ISO 8601 time: {value!r}") from exc


@router.get("", response_model=ItemList)
def search_items(
    store: StoreDep,
    settings: SettingsDep,
    q: str | None = Query(None, max_length=200, description="空格分隔的词，每个词按短语精确匹配"),
    channel: Literal["hotline", "mailbox", "media"] | None = None,
    source: str | None = None,
    department: str | None = None,
    date_from: str | None = Query(None, alias="from"),
    date_to: str | None = Query(None, alias="to"),
    page: int = Query(1, ge=1, le=10_000),
    size: int = Query(20, ge=1, le=200),
) -> ItemList:
    query = ItemQuery(
        q=q,
        channel=channel,
        source=source,
        department=department,
        date_from=_bound(date_from, settings.timezone, end=False),
        date_to=_bound(date_to, settings.timezone, end=True),
        page=page,
        size=size,
    )
    try:
        found = store.search(query)
    except StoreUnavailable as exc:
        raise HTTPException(503, f"item store unavailable: {exc}") from exc
    return ItemList(results=[ItemRead.from_item(i) for i in found.results], total=found.total)
