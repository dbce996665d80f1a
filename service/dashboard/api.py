"""Dashboard figures beyond the ledger's statistics: hot terms of a period and the daily trend."""

from __future__ import annotations

import contextlib
import threading
from datetime import date, datetime, time, timedelta
from pathlib import Path

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from service import clock
from service.api_fields import check_range, date_or_time
from service.auth.deps import CurrentUser, department_filter
from service.clock import SHANGHAI, ensure_aware
from service.dashboard.terms import SAMPLE_CAP, STOPWORDS_FILE, HotTerms, Text, read_stopwords, sample_text
from service.deps import CtxDep, SessionDep
from service.feed import service as feed
from service.items.places import gazetteer
from service.ledger import service as ledger
from service.ledger import statistics
from service.store.base import ItemQuery, StoreUnavailable

router = APIRouter(prefix="/api/v1/stats", tags=["dashboard"])

_segmenters: dict[str, HotTerms] = {}
_segmenters_lock = threading.Lock()


def _segmenter(config_dir: Path) -> HotTerms:
    """One counter (and its cache) per config dir: local stop words come from there."""
    key = str(config_dir)
    with _segmenters_lock:
        found = _segmenters.get(key)
        if found is None:
            found = _segmenters[key] = HotTerms(gazetteer().cut, read_stopwords(config_dir / STOPWORDS_FILE))
        return found


class TermRow(BaseModel):
    term: str
    count: int = Field(description="含该词的条目（或工单）数")


class TermPage(BaseModel):
    results: list[TermRow]
    total: int
    sample: int = Field(description="参与统计的文本数（每次最多 sample_cap 条，取时段内最新的）")
    sample_cap: int
    basis: str = Field(description="items：时段内发布的条目；tickets：本部门时段内发现的工单标题")


def _bounds(date_from: str | None, date_to: str | None, default_days: int) -> tuple[datetime, datetime]:
    check_range(date_from, date_to)
    today = clock.now().astimezone(SHANGHAI).date()
    start = date_or_time("from", date_from) or today - timedelta(days=default_days - 1)
    end = date_or_time("to", date_to) or today
    lo = ensure_aware(start) if isinstance(start, datetime) else datetime.combine(start, time(0), tzinfo=SHANGHAI)
    if isinstance(end, datetime):
        hi = ensure_aware(end)
    else:
        hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=SHANGHAI)  # the whole last day
    return lo, hi


@router.get("/terms", response_model=TermPage)
def hot_terms(
    principal: CurrentUser,
    session: SessionDep,
    ctx: CtxDep,
    date_from: str | None = Query(None, alias="from", description="起 (日期或 ISO 8601)，默认 7 天前"),
    date_to: str | None = Query(None, alias="to", description="止 (日期含当天)，默认今天"),
    size: int = Query(30, ge=1, le=100),
) -> TermPage:
    """热词: terms found in the most texts of the period (jieba, stop words removed), from a capped sample.

    Officers, leaders and admins: the newest items published in the period. Department users (who do
    not read the item store): the titles of their own department's tickets discovered in the period.
    """
    own = department_filter(principal)  # auditors: 403
    lo, hi = _bounds(date_from, date_to, 7)
    if own is None:
        try:
            items = ctx.store.search(ItemQuery(date_from=lo, date_to=hi, size=SAMPLE_CAP)).results
        except StoreUnavailable as exc:
            raise HTTPException(503, {"message": "条目存储暂不可用，热词稍后再试"}) from exc
        texts = [Text(f"{i.id}:{i.fingerprint}", sample_text(i.title, i.content)) for i in items]
        basis = "items"
    else:
        tickets, _ = ledger.list_tickets(session, principal, date_from=lo, date_to=hi, page=1, size=SAMPLE_CAP)
        texts = [Text(f"ticket:{t.id}:{t.title}", t.title) for t in tickets]
        basis = "tickets"
    top = _segmenter(Path(ctx.settings.config_dir)).top(texts, size)
    return TermPage(
        results=[TermRow(term=term, count=count) for term, count in top],
        total=len(top),
        sample=len(texts),
        sample_cap=SAMPLE_CAP,
        basis=basis,
    )


class TrendDay(BaseModel):
    day: date
    items: int | None = Field(description="当天新入库的条目数（部门用户不显示：条目不分部门）")
    alerts: int
    tickets: int


class TrendPage(BaseModel):
    results: list[TrendDay]
    total: int


@router.get("/trend", response_model=TrendPage)
def trend(
    principal: CurrentUser,
    session: SessionDep,
    ctx: CtxDep,
    days: int = Query(30, ge=1, le=90, description="最近多少天（含今天）"),
) -> TrendPage:
    """每日趋势: new items, alerts and tickets per Asia/Shanghai day over the last ``days`` days."""
    own = department_filter(principal)
    today = clock.now().astimezone(SHANGHAI).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time(0), tzinfo=SHANGHAI)
    items: list[int | None] = [None] * days
    if own is None:
        with contextlib.suppress(StoreUnavailable):  # without the store the chart still shows the rest
            items = list(ctx.store.day_counts(start, days))
    alerts = feed.daily_counts(session, principal, start, days)
    tickets = statistics.daily_counts(session, principal, first, days)
    rows = [
        TrendDay(day=first + timedelta(days=i), items=items[i], alerts=alerts[i], tickets=tickets[i])
        for i in range(days)
    ]
    return TrendPage(results=rows, total=len(rows))
