"""GET /api/v1/items: search stored items.

Items carry the department *named by the source*, not a yuqing department id, so a department user
cannot be limited to "their" items here: department users (and auditors) are refused (403) and reach
their items through their tickets. Personal data in title, content and reply is masked for every
role but admin, and so is the text they search: for them ``q`` runs on the masked copy of title and
content. Admins search the original; every admin search with ``q`` is audited.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from loguru import logger

from service.api_fields import check_range, date_or_time
from service.audit.service import record
from service.auth.deps import client_address, rate_limit, require_roles
from service.clock import ensure_aware
from service.deps import SessionDep, SettingsDep, StoreDep
from service.field_labels import field_label
from service.items.schemas import ItemList, ItemRead
from service.masking import mask_for
from service.principal import Principal
from service.store.base import BadCursor, ItemQuery, PageTooDeep, StoreUnavailable
from service.vocabulary import Channel

router = APIRouter(prefix="/api/v1/items", tags=["items"])
Reader = Annotated[Principal, Depends(require_roles("admin", "officer", "leader"))]
MASKED_FIELDS = ("title", "content", "reply")


def _bound(name: str, value: str | None, zone_name: str, end: bool) -> datetime | None:
    """A date (a whole Asia/Shanghai day; ``to`` inclusive) or an ISO 8601 instant, as a UTC instant."""
    bound = date_or_time(name, value)
    if bound is None:
        return None
    zone = ZoneInfo(zone_name)
    if isinstance(bound, datetime):
        return ensure_aware(bound, zone)
    day = bound + timedelta(days=1) if end else bound
    return ensure_aware(datetime.combine(day, time.min), zone)


@router.get("", response_model=ItemList, dependencies=[Depends(rate_limit("search"))])
def search_items(
    request: Request,
    principal: Reader,
    store: StoreDep,
    settings: SettingsDep,
    session: SessionDep,
    q: str | None = Query(None, max_length=200, description="空格分隔的词，每个词按短语精确匹配"),
    channel: Channel | None = None,
    source: str | None = None,
    department: str | None = None,
    date_from: str | None = Query(None, alias="from"),
    date_to: str | None = Query(None, alias="to"),
    page: int = Query(1, ge=1, le=10_000),
    size: int = Query(20, ge=1, le=200),
    after: str | None = Query(
        None, max_length=500, description="上一页返回的 next 游标（按游标翻页，任意深度都与第一页一样快；忽略 page）"
    ),
) -> ItemList:
    check_range(date_from, date_to)
    query = ItemQuery(
        q=q,
        channel=channel,
        source=source,
        department=department,
        date_from=_bound("from", date_from, settings.timezone, end=False),
        date_to=_bound("to", date_to, settings.timezone, end=True),
        page=page,
        size=size,
        after=after,
        # Search sees what the user sees: a search on the original text would tell the hidden digits of a
        # masked number one guess at a time.
        masked=not principal.sees_personal_data,
    )
    if (problem := query.unsearchable()) is not None:
        raise HTTPException(
            422, {"message": f"{field_label('q')}{problem}；请输入要查找的字词，例如 化工厂", "field": "q"}
        )
    if principal.sees_personal_data and q:
        record(
            session,
            event="item.search",
            principal_or_username=principal,
            result="success",
            address=client_address(request),
            detail={"q": q, "channel": channel, "source": source, "department": department},
        )
    try:
        found = store.search(query)
    except StoreUnavailable as exc:
        logger.warning("条目存储不可用：{}", exc)
        raise HTTPException(503, {"message": exc.message}) from exc
    except (PageTooDeep, BadCursor) as exc:
        raise HTTPException(400, str(exc)) from exc
    results = [mask_for(principal, ItemRead.from_item(i), MASKED_FIELDS) for i in found.results]
    return ItemList(
        results=results,
        total=found.total,
        next=found.next,
        total_capped=found.total_capped,
        total_estimated=found.total_estimated,
    )
