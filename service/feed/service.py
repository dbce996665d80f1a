"""Alert records: created from hits, listed for the feed, triaged by officers, pushed by policy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from service import clock
from service.clock import ensure_aware, to_local
from service.db import count_by_day
from service.db_columns import insert_ignore_many
from service.feed.models import Alert
from service.principal import Principal
from service.rules.models import RuleRecord
from service.settings import PushPolicy
from service.store.base import Item
from service.vocabulary import ALERT_STATES, SEVERITY_RANK, URGENT_SEVERITIES, Severity


@dataclass
class DepartmentHit:
    """All rules of one department that hit one item."""

    department: str
    rule_ids: list[str]
    severity: Severity
    snippets: list[dict[str, Any]] = field(default_factory=list)


class AlertNotFound(Exception):
    pass


def highest(severities: Sequence[Severity]) -> Severity:
    return max(severities, key=lambda s: SEVERITY_RANK.get(s, 0))


def in_quiet_hours(policy: PushPolicy, at: datetime) -> bool:
    """Whether ``at`` falls in the policy's quiet hours (Asia/Shanghai; ranges may cross midnight)."""
    if not policy.quiet_hours:
        return False
    start, end = (time.fromisoformat(p.strip()) for p in policy.quiet_hours.split("-"))
    local = to_local(at).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end


def muted_rules(session: Session, at: datetime) -> set[str]:
    rows = session.execute(select(RuleRecord.id, RuleRecord.muted_until).where(RuleRecord.muted_until.is_not(None)))
    return {rule_id for rule_id, until in rows if until is not None and clock.ensure_aware(until) > at}


def push_state(hit: DepartmentHit, policy: PushPolicy, muted: set[str], at: datetime) -> str:
    """What happens to a new alert's push: muted, quiet, digest (waits) or immediate."""
    if hit.rule_ids and all(r in muted for r in hit.rule_ids):
        return "muted"
    if in_quiet_hours(policy, at) and hit.severity not in URGENT_SEVERITIES:
        return "quiet"
    return "digest" if policy.mode == "digest" else "immediate"


def create_alert(
    session: Session, item: Item, hit: DepartmentHit, *, at: datetime, push: str, ticket_id: int | None = None
) -> Alert | None:
    """Insert the alert for (item, department); None when it already exists (matching is idempotent)."""
    exists = session.execute(
        select(Alert.id).where(Alert.item_id == item.id, Alert.department == hit.department)
    ).scalar_one_or_none()
    if exists is not None:
        return None
    alert = Alert(
        item_id=item.id,
        department=hit.department,
        rule_ids=sorted(hit.rule_ids),
        severity=hit.severity,
        created_at=at,
        title=item.title,
        snippets=hit.snippets,
        source=item.source,
        channel=item.channel,
        url=item.url,
        published_at=item.published_at,
        ticket_id=ticket_id,
        state="new",
        push=push,
    )
    session.add(alert)
    session.flush()
    return alert


def alert_row(
    item: Item, hit: DepartmentHit, *, at: datetime, push: str, ticket_id: int | None = None
) -> dict[str, Any]:
    """The alerts-table row for (item, department), for :func:`create_alerts`."""
    return {
        "item_id": item.id,
        "department": hit.department,
        "rule_ids": sorted(hit.rule_ids),
        "severity": hit.severity,
        "created_at": at,
        "title": item.title,
        "snippets": hit.snippets,
        "source": item.source,
        "channel": item.channel,
        "url": item.url,
        "published_at": item.published_at,
        "ticket_id": ticket_id,
        "state": "new",
        "push": push,
    }


def create_alerts(session: Session, rows: list[dict[str, Any]]) -> list[Alert]:
    """Insert many alerts in one statement; the new ones (an existing (item, department) is skipped).

    The returned objects are detached snapshots of the inserted rows, in insertion order.
    """
    unique = list({(r["item_id"], r["department"]): r for r in rows}.values())
    inserted = insert_ignore_many(
        session, Alert.__table__, unique, ["item_id", "department"], returning=("id", "item_id", "department")
    )
    by_key = {(r["item_id"], r["department"]): r for r in unique}
    out = [Alert(id=row.id, **by_key[(row.item_id, row.department)]) for row in inserted]
    out.sort(key=lambda a: a.id)
    return out


def mark_pushed(session: Session, alert_ids: Sequence[int | str], at: datetime) -> None:
    """Record that the pushes of these alerts were queued (in the batch's transaction)."""
    ids = [int(i) for i in alert_ids]
    for start in range(0, len(ids), 500):
        session.execute(update(Alert).where(Alert.id.in_(ids[start : start + 500])).values(push="pushed", pushed_at=at))


@dataclass
class AlertFilter:
    after: int | None = None
    channel: str | None = None
    severity: str | None = None
    department: str | None = None
    source: str | None = None
    state: str | None = None
    page: int = 1
    size: int = 50


def _visible(stmt: Select, principal: Principal) -> Select:
    if principal.sees_everything:
        return stmt
    if principal.role == "department" and principal.department:
        return stmt.where(Alert.department == principal.department)
    return stmt.where(Alert.id < 0)  # auditors and unbound accounts see no alerts


def daily_counts(session: Session, principal: Principal, start: datetime, days: int) -> list[int]:
    """Alerts the caller may see created in each of ``days`` days from ``start`` (the trend chart)."""
    if not principal.sees_everything and not (principal.role == "department" and principal.department):
        return [0] * days
    where = [] if principal.sees_everything else [Alert.department == principal.department]
    return count_by_day(session, Alert.created_at, start, days, *where)


def list_alerts(session: Session, principal: Principal, flt: AlertFilter) -> tuple[list[Alert], int]:
    """Alerts the caller may see, oldest first after ``after`` (a feed), else newest first (a page)."""
    stmt = _visible(select(Alert), principal)
    if flt.after is not None:
        stmt = stmt.where(Alert.id > flt.after)
    for column, value in (
        (Alert.channel, flt.channel),
        (Alert.severity, flt.severity),
        (Alert.department, flt.department),
        (Alert.source, flt.source),
        (Alert.state, flt.state),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    order = Alert.id.asc() if flt.after is not None else Alert.id.desc()
    rows = session.execute(stmt.order_by(order).offset((flt.page - 1) * flt.size).limit(flt.size)).scalars().all()
    return list(rows), total


def get_alert(session: Session, principal: Principal, alert_id: int) -> Alert:
    alert = session.execute(_visible(select(Alert).where(Alert.id == alert_id), principal)).scalar_one_or_none()
    if alert is None:
        raise AlertNotFound(alert_id)
    return alert


def set_state(session: Session, principal: Principal, alert_id: int, state: str) -> Alert:
    """Acknowledge an alert or mark it as noise (kept and counted, never pushed)."""
    if state not in ALERT_STATES:
        raise ValueError(f"unknown alert state {state!r}")
    alert = get_alert(session, principal, alert_id)
    alert.state = state
    alert.state_by = principal.username
    alert.state_at = clock.now()
    if state == "noise" and alert.push == "digest":
        alert.push = "noise"
    return alert


def mute_rule(session: Session, rule_id: str, until: datetime | None, by: str) -> RuleRecord:
    """Mute a rule's pushes until ``until`` (None unmutes). Its alerts still appear in the feed."""
    rule = session.get(RuleRecord, rule_id)
    if rule is None:
        raise KeyError(rule_id)
    rule.muted_until = until
    rule.muted_by = by if until else None
    return rule


def noise_counts(session: Session, since: datetime) -> dict[str, int]:
    """Alerts marked as noise per department since ``since`` (rule quality feedback)."""
    rows = session.execute(
        select(Alert.department, func.count())
        .where(Alert.state == "noise", Alert.created_at >= since)
        .group_by(Alert.department)
    )
    return dict(rows.all())


def due_digests(session: Session, policies: dict[str, PushPolicy], at: datetime) -> dict[str, list[Alert]]:
    """Per department in digest mode: its waiting alerts, once the oldest has waited its period."""
    waiting = session.execute(select(Alert).where(Alert.push == "digest").order_by(Alert.id)).scalars().all()
    by_dept: dict[str, list[Alert]] = {}
    for alert in waiting:
        by_dept.setdefault(alert.department, []).append(alert)
    due: dict[str, list[Alert]] = {}
    for department, alerts in by_dept.items():
        policy = policies.get(department)
        minutes = policy.digest_minutes if policy else 15
        if clock.ensure_aware(alerts[0].created_at) + timedelta(minutes=minutes) <= at:
            due[department] = alerts
    return due


class FeedAlerts:
    """The alert feed's side of :class:`service.ledger.alerts.TicketAlerts` (passed to the ledger by its callers)."""

    def subject_terms(self, session: Session, ticket_ids: Sequence[int]) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {t: set() for t in ticket_ids}
        rows = session.execute(select(Alert.ticket_id, Alert.snippets).where(Alert.ticket_id.in_(list(ticket_ids))))
        for ticket_id, snippets in rows.all():
            for snippet in snippets or []:
                for highlight in snippet.get("highlights", []):
                    term = highlight.get("term")
                    if term:
                        out[ticket_id].add(term)
        return out

    def move_item_alerts(self, session: Session, item_id: str, department: str, ticket_id: int) -> list[dict[str, Any]]:
        alerts = session.scalars(select(Alert).where(Alert.item_id == item_id, Alert.department == department)).all()
        pushed = []
        for alert in alerts:
            alert.ticket_id = ticket_id
            if alert.pushed_at is not None:
                pushed.append({"alert": alert.id, "pushed_at": ensure_aware(alert.pushed_at).isoformat()})
        return pushed


FEED_ALERTS = FeedAlerts()
