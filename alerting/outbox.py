"""The transactional outbox: notifications are rows written with the change that caused them, and a
delivery job sends them with exponential backoff.

Guarantees: a message is queued only if the causing transaction commits (``enqueue`` writes in the
caller's session); ``dedupe_key`` is unique per channel, so asking twice queues once; a worker claims a
row with a conditional UPDATE before sending, so two workers never send the same row at the same time;
the row is marked sent right after success. A worker that dies between the send and the mark leaves a
claim that expires after ``claim_seconds``, and only then is the message sent again: at most one
duplicate, never a loss.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, get_args

from loguru import logger
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from alerting.channels import DeliveryError, Message, build_notifier
from alerting.channels.base import ChannelConfigError
from alerting.models import OutboxMessage
from service import clock, context
from service.db import Database, rows_affected
from service.db_columns import insert_ignore, insert_ignore_many
from service.settings import NotificationKind, NotificationSettings

KINDS: tuple[str, ...] = get_args(NotificationKind)


def _current_notifications() -> NotificationSettings:

    try:
        return context.current().settings.notifications
    except RuntimeError:
        return NotificationSettings()


def _matches(allowed: Sequence[str], value: str | None) -> bool:
    if allowed == "*" or not allowed or "*" in allowed:
        return True
    return value is not None and value in allowed


def channels_for(
    notifications: NotificationSettings, kind: str, department: str | None, severity: str | None
) -> list[str]:
    """The channels the routes give a message of ``kind`` for ``department`` and ``severity``, in order."""
    found: list[str] = []
    for route in notifications.routes:
        if (
            _matches(route.kinds, kind)
            and _matches(route.departments, department)
            and _matches(route.severities, severity)
        ):
            found.extend(c for c in route.channels if c not in found)
    return found


def enqueue(
    session: Session,
    kind: str,
    department: str | None,
    severity: str | None,
    subject: str,
    body: str,
    dedupe_key: str,
    *,
    notifications: NotificationSettings | None = None,
    attachment: str | None = None,
) -> list[int]:
    """Queue a message on every routed channel in the caller's transaction; the new outbox ids.

    Asking again with the same ``dedupe_key`` queues nothing. No matching route queues nothing.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r} (one of {', '.join(KINDS)})")
    if not dedupe_key:
        raise ValueError("a notification needs a dedupe_key")
    notifications = notifications or _current_notifications()
    now = clock.now()
    ids: list[int] = []
    for channel in channels_for(notifications, kind, department, severity):
        new_id = insert_ignore(
            session,
            OutboxMessage.__table__,
            {
                "kind": kind,
                "channel": channel,
                "department": department,
                "severity": severity,
                "subject": subject,
                "body": body,
                "dedupe_key": f"{dedupe_key}|{channel}",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
                "attachment": attachment,
            },
            ["dedupe_key"],
        )
        if new_id is not None:
            ids.append(new_id)
    if not ids:
        logger.debug("通知 {} 未进入任何渠道（没有路由，或已在队列中）", dedupe_key)
    return ids


@dataclass(frozen=True)
class QueuedMessage:
    """One message to queue (the arguments of :func:`enqueue`), for :func:`enqueue_many`."""

    kind: str
    department: str | None
    severity: str | None
    subject: str
    body: str
    dedupe_key: str


def enqueue_many(
    session: Session, notices: list[QueuedMessage], *, notifications: NotificationSettings | None = None
) -> list[int]:
    """:func:`enqueue` for many messages in one INSERT (a matching batch's alert pushes); the new ids."""
    notifications = notifications or _current_notifications()
    now = clock.now()
    rows = []
    for notice in notices:
        if notice.kind not in KINDS:
            raise ValueError(f"unknown notification kind {notice.kind!r} (one of {', '.join(KINDS)})")
        if not notice.dedupe_key:
            raise ValueError("a notification needs a dedupe_key")
        for channel in channels_for(notifications, notice.kind, notice.department, notice.severity):
            rows.append(
                {
                    "kind": notice.kind,
                    "channel": channel,
                    "department": notice.department,
                    "severity": notice.severity,
                    "subject": notice.subject,
                    "body": notice.body,
                    "dedupe_key": f"{notice.dedupe_key}|{channel}",
                    "attempts": 0,
                    "created_at": now,
                    "next_attempt_at": now,
                    "attachment": None,
                }
            )
    return [row[0] for row in insert_ignore_many(session, OutboxMessage.__table__, rows, ["dedupe_key"])]


@dataclass
class DeliveryReport:
    """What one delivery run did, by outbox id."""

    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    given_up: list[int] = field(default_factory=list)


def _due(now: datetime):
    return and_(
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.failed_at.is_(None),
        OutboxMessage.next_attempt_at <= now,
        or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
    )


def backoff(notifications: NotificationSettings, attempts: int) -> timedelta:
    """Wait before attempt ``attempts + 1``: base × 2^(attempts − 1), capped."""
    seconds = notifications.backoff_seconds * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, notifications.backoff_max_seconds))


def deliver_due(db: Database, notifications: NotificationSettings, *, limit: int = 100) -> DeliveryReport:
    """Send the messages that are due now; each row is claimed first and marked sent after success."""
    report = DeliveryReport()
    now = clock.now()
    with db.session() as session:
        ids = list(
            session.scalars(
                select(OutboxMessage.id).where(_due(now)).order_by(OutboxMessage.next_attempt_at).limit(limit)
            )
        )
    for message_id in ids:
        _deliver_one(db, notifications, message_id, report)
    if ids:
        logger.info(
            "发件箱：已发送 {} 条，待重试 {} 条，已放弃 {} 条",
            len(report.sent),
            len(report.retrying),
            len(report.given_up),
        )
    return report


def deliver_ids(db: Database, notifications: NotificationSettings, ids: list[int]) -> DeliveryReport:
    """Send these messages now if they are due (same claim rules as the delivery job)."""
    report = DeliveryReport()
    for message_id in ids:
        _deliver_one(db, notifications, message_id, report)
    return report


def _deliver_one(db: Database, notifications: NotificationSettings, message_id: int, report: DeliveryReport) -> None:
    token = uuid.uuid4().hex
    now = clock.now()
    with db.session() as session:
        claimed = rows_affected(
            session,
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, _due(now))
            .values(claim_token=token, claimed_until=now + timedelta(seconds=notifications.claim_seconds))
            .execution_options(synchronize_session=False),
        )
        if claimed != 1:
            return  # another worker took it, or it is no longer due
        row = session.get(OutboxMessage, message_id)
        assert row is not None
        message = Message(
            id=row.id,
            kind=row.kind,
            subject=row.subject,
            body=row.body,
            department=row.department,
            severity=row.severity,
            dedupe_key=row.dedupe_key,
            attachment=row.attachment,
        )
        channel, attempts = row.channel, row.attempts
    error: str | None = None
    try:
        options = notifications.channels.get(channel)
        if options is None:
            raise ChannelConfigError(f"channel {channel!r} is no longer configured")
        build_notifier(channel, options).send(message)
    except (DeliveryError, ChannelConfigError) as exc:
        error = str(exc)
    except Exception as exc:  # a channel bug must not stop the other messages
        error = f"{type(exc).__name__}: {exc}"
        logger.exception("发件箱：渠道 {} 出错", channel)
    done = clock.now()
    mine = and_(OutboxMessage.id == message_id, OutboxMessage.claim_token == token)
    values: dict[str, Any]
    with db.session() as session:
        if error is None:
            values = {
                "sent_at": done,
                "next_attempt_at": None,
                "attempts": attempts + 1,
                "claimed_until": None,
                "claim_token": None,
                "last_error": None,
            }
            report.sent.append(message_id)
        elif attempts + 1 >= notifications.max_attempts:
            values = {
                "failed_at": done,
                "next_attempt_at": None,
                "attempts": attempts + 1,
                "claimed_until": None,
                "claim_token": None,
                "last_error": error[:2000],
            }
            report.given_up.append(message_id)
            logger.error("发件箱：消息 {}（渠道 {}）尝试 {} 次后放弃：{}", message_id, channel, attempts + 1, error)
        else:
            values = {
                "next_attempt_at": done + backoff(notifications, attempts + 1),
                "attempts": attempts + 1,
                "claimed_until": None,
                "claim_token": None,
                "last_error": error[:2000],
            }
            report.retrying.append(message_id)
            logger.warning(
                "发件箱：消息 {}（渠道 {}）发送失败（第 {} 次）：{}", message_id, channel, attempts + 1, error
            )
        session.execute(update(OutboxMessage).where(mine).values(**values).execution_options(synchronize_session=False))


def deliver_job() -> None:
    """Scheduled job: deliver due messages of the running application."""

    ctx = context.current()
    deliver_due(ctx.db, ctx.settings.notifications)
