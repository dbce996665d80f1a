"""The matching run: every stored item matched exactly once against all rules, hits turned into
alerts and tickets.

Exactly once: an item is marked matched in the store only after its alerts and tickets are committed;
a crash in between re-matches it, and the unique (item, department) alert and (event, department)
ticket keys make that second pass a no-op. One lock per process serialises the ingest trigger and the
sweep job; across processes only the scheduler (lease holder) runs matching.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from loguru import logger
from sqlalchemy.orm import Session

from alerting.outbox import QueuedMessage, enqueue_many
from service import clock
from service.context import AppContext
from service.feed.models import Alert
from service.feed.service import (
    FEED_ALERTS,
    DepartmentHit,
    alert_row,
    create_alerts,
    highest,
    mark_pushed,
    muted_rules,
    push_state,
)
from service.feed.snippets import snippets
from service.items.duplicates import EventLink, linked_events
from service.ledger.batch import Opening, open_or_attach_many
from service.ledger.config import ledger_config
from service.ledger.related import PlacesCache, SameEvent, record_at_match
from service.ledger.service import ItemRef
from service.masking import mask_text
from service.rules.hits import Hit
from service.rules.matcher import Matcher
from service.rules.rulebook import RuleBook
from service.store.base import Item

# At most this many items wait with committed alerts for their 可能是同一事件 (a burst's alerts first).
SUGGEST_AFTER_ITEMS = 1000


@dataclass
class _Written:
    """A batch whose alerts and tickets are committed; its suggestions and matched mark still to come."""

    batch: list[Item]
    planned: list[tuple[Item, DepartmentHit]]
    openings: list[Opening]
    tickets: dict[tuple[str, str], tuple[int, bool]]


@dataclass
class MatchReport:
    items: int = 0
    hits: int = 0
    alerts: int = 0
    tickets_created: int = 0
    tickets_attached: int = 0
    alert_ids: list[int] = field(default_factory=list)

    def add(self, other: MatchReport) -> None:
        self.items += other.items
        self.hits += other.hits
        self.alerts += other.alerts
        self.tickets_created += other.tickets_created
        self.tickets_attached += other.tickets_attached
        self.alert_ids += other.alert_ids


def department_hits(matcher: Matcher, item: Item) -> list[DepartmentHit]:
    """Group one item's rule hits by department: one alert per (item, department).

    Rules run on the masked text, what every role but admin sees: an alert is visible to officers and the
    department, so a rule whose terms are digits would otherwise confirm the hidden digits of a phone or ID
    number of a new item (hit or no hit). The masker keeps lengths, so highlight offsets fit the original.
    """
    grouped: dict[str, list[Hit]] = {}
    for hit in matcher.match(mask_text(item.title), mask_text(item.content)):
        grouped.setdefault(hit.department, []).append(hit)
    out = []
    for department, hits in grouped.items():
        highlights = [h for hit in hits for h in hit.highlights]
        out.append(
            DepartmentHit(
                department=department,
                rule_ids=sorted({h.rule_id for h in hits}),
                severity=highest([h.severity for h in hits]),
                snippets=snippets(item.title, item.content, highlights),
            )
        )
    return out


def alert_message(alert: Alert, ticket_id: int | None) -> tuple[str, str]:
    """Subject and body of a pushed alert; personal data masked (pushes leave the system)."""
    subject = f"【舆情预警·{alert.severity}】{mask_text(alert.title)}"
    lines = [
        f"责任单位：{alert.department}",
        f"来源：{alert.source}（{alert.channel}）",
        f"命中规则：{', '.join(alert.rule_ids)}",
    ]
    for snippet in alert.snippets[:3]:
        lines.append(f"摘要：{mask_text(snippet.get('text', ''))}")
    if alert.url:
        lines.append(f"原文：{alert.url}")
    if ticket_id:
        lines.append(f"工单：#{ticket_id}")
    return subject, "\n".join(lines)


class MatchingEngine:
    """Holds the compiled rules of this process and runs matching batches."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.rulebook = RuleBook(ctx)
        self._lock = threading.Lock()

    def run(self, batch_size: int = 200, at: datetime | None = None) -> MatchReport:
        """Match everything not yet matched; safe to call from several threads.

        The alerts of every batch of a burst are committed (and so on the SSE stream) first; 可能是同一事件 is
        decided afterwards, for up to ``SUGGEST_AFTER_ITEMS`` items at a time. Deciding it between batches
        put its cost (place segmentation, store reads: about half of a burst's time) before the last
        batch's alerts. Items are marked matched only once their suggestions are stored, as before.
        """
        report = MatchReport()
        with self._lock:
            self.rulebook.refresh()
            written: list[_Written] = []
            for batch in self.ctx.store.iter_unmatched(batch_size):
                done, batch_report = self._match_batch(batch, at)
                report.add(batch_report)
                written.append(done)
                if sum(len(w.batch) for w in written) >= SUGGEST_AFTER_ITEMS:
                    self._settle(written)
                    written = []
            self._settle(written)
        if report.items:
            logger.info(
                "已匹配 {} 条条目：{} 条预警，新建 {} 件工单", report.items, report.alerts, report.tickets_created
            )
        return report

    def _match_batch(self, batch: list[Item], at: datetime | None) -> tuple[_Written, MatchReport]:
        """Match a batch and write all its tickets, alerts, timeline and outbox rows in one transaction.

        Bulk statements per table (not per hit): a burst of a thousand items costs a handful of round
        trips, and the write lock is held for milliseconds, not minutes.
        """
        report = MatchReport(items=len(batch))
        # One matcher for the whole batch: a rule change mid-batch never splits it.
        matcher = self.rulebook.current()
        now = at or clock.now()
        planned = [(item, hit) for item in batch for hit in department_hits(matcher, item)]
        report.hits = len(planned)
        openings: list[Opening] = []
        tickets: dict[tuple[str, str], tuple[int, bool]] = {}
        if planned:
            with self.ctx.db.session() as session:
                openings, tickets = self._write_hits(session, planned, now, report)
        return _Written(batch, planned, openings, tickets), report

    def _settle(self, written: list[_Written]) -> None:
        """可能是同一事件 for batches whose alerts are committed, then their items marked matched.

        In a transaction of its own per batch: deciding it reads the store and segments places (jieba), and
        on SQLite that work inside the matching transaction held the one write lock long enough to make
        logins wait past the busy timeout. Reads here take no write lock; only the final insert does, for
        milliseconds. A crash before the mark re-runs the batches (alerts and tickets are no-ops then,
        suggestions an idempotent insert).
        """
        places: PlacesCache = {}  # the open tickets are candidates of every batch: their places segmented once
        for done in written:
            if done.planned:
                with self.ctx.db.session() as session:
                    self._suggest(session, done.planned, done.openings, done.tickets, places)
            self.ctx.store.mark_matched([i.id for i in done.batch])

    def _write_hits(
        self, session: Session, planned: list[tuple[Item, DepartmentHit]], now: datetime, report: MatchReport
    ) -> tuple[list[Opening], dict[tuple[str, str], tuple[int, bool]]]:
        settings = self.ctx.settings
        config = ledger_config(settings)
        openings = [
            Opening(
                title=item.title,
                severity=hit.severity,
                department=hit.department,
                item=ItemRef.from_item(item),
                discovered_at=item.stored_at or now,
                published_at=item.published_at,
                event_id=item.event_id,
            )
            for item, hit in planned
        ]
        tickets = open_or_attach_many(session, openings, policy=config.policy)
        report.tickets_created = sum(1 for _, created in tickets.values() if created)
        report.tickets_attached = len(openings) - report.tickets_created
        muted = muted_rules(session, now)
        rows = []
        for (item, hit), opening in zip(planned, openings, strict=True):
            push = push_state(hit, settings.alerts.policy_for(hit.department), muted, now)
            rows.append(alert_row(item, hit, at=now, push=push, ticket_id=tickets[opening.key][0]))
        created = create_alerts(session, rows)
        pushes = []
        for alert in created:
            report.alerts += 1
            report.alert_ids.append(alert.id)
            if alert.push == "immediate":
                subject, body = alert_message(alert, alert.ticket_id)
                pushes.append(
                    QueuedMessage("alert", alert.department, alert.severity, subject, body, f"alert:{alert.id}")
                )
        if pushes:
            enqueue_many(session, pushes, notifications=settings.notifications)
            mark_pushed(session, [p.dedupe_key.removeprefix("alert:") for p in pushes], now)
        return openings, tickets

    def _suggest(
        self,
        session: Session,
        planned: list[tuple[Item, DepartmentHit]],
        openings: list[Opening],
        tickets: dict[tuple[str, str], tuple[int, bool]],
        places: PlacesCache | None = None,
    ) -> None:
        """可能是同一事件, decided now and stored: new tickets against open ones of their department, and tickets
        of two events a repost of both links (never merged without an officer)."""
        items = {item.id: item for item, _ in planned}
        links = linked_events(self.ctx.store, list(items.values()))
        by_item: dict[str, list[EventLink]] = {}
        for link in links:
            by_item.setdefault(link.item_id, []).append(link)
        same_event = [
            SameEvent(tickets[opening.key][0], hit.department, link.event_id, item.title, link.reason)
            for (item, hit), opening in zip(planned, openings, strict=True)
            for link in by_item.get(item.id, ())
        ]
        created = sorted({tid for tid, was_created in tickets.values() if was_created})
        record_at_match(session, self.ctx.store, created, items, same_event, alerts=FEED_ALERTS, places=places)


_engines: dict[int, MatchingEngine] = {}
_engines_lock = threading.Lock()


def engine_for(ctx: AppContext) -> MatchingEngine:
    """The process's engine for this context (rules compiled once, swapped on change)."""
    with _engines_lock:
        engine = _engines.get(id(ctx))
        if engine is None or engine.ctx is not ctx:
            engine = _engines[id(ctx)] = MatchingEngine(ctx)
        return engine
