"""Times that make sense: one place for the rules every view of a ticket's times follows.

- A public reply the crawler found on a ticket nobody acknowledged records 回应 only: no 签收 is
  invented. Once a ticket is past 待签收 without a 签收 time, the acknowledge stage is *waived*: it is
  neither met nor overdue, raises no SLA notice and is left out of the acknowledge on-time rate.
- A reply dated before the ticket's discovery keeps its true time and the ticket says so
  (``replied_before_discovery``, 已在发现前回应). It counts as responded on time, with 0 hours from
  discovery to response in the averages.
- No duration is ever negative: every "from A to B" is clamped at zero.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# Statuses in which an acknowledge stage without a time was skipped rather than missed.
_NOT_WAIVED = ("new", "returned")
REPLIED_BEFORE_DISCOVERY_LABEL = "已在发现前回应"


def stage_waived(status: str, stage: str, met: datetime | None) -> bool:
    """True when ``stage`` was skipped (an unacknowledged ticket answered in public)."""
    return stage == "acknowledge" and met is None and status not in _NOT_WAIVED


def stage_late(status: str, stage: str, met: datetime | None, due: datetime, now: datetime) -> bool:
    """Met after its deadline, or unmet (and not waived) past it."""
    if met is not None:
        return met > due
    if stage_waived(status, stage, met):
        return False
    return now > due


def elapsed(start: datetime, end: datetime) -> timedelta:
    """``end - start``, never negative."""
    return max(end - start, timedelta(0))


def replied_before_discovery(discovered_at: datetime, responded_at: datetime | None) -> bool:
    """Whether the response predates the discovery (a reply already public when the item was found)."""
    return responded_at is not None and responded_at < discovered_at
