"""The one clock: every time the product records comes from here, never from the database's now()."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    """Wall-clock time in UTC; tests and ``--at`` use a FrozenClock instead."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock(Clock):
    """A clock that stands still until moved; safe to move from another thread."""

    def __init__(self, at: datetime) -> None:
        self._lock = threading.Lock()
        self._at = ensure_aware(at)

    def now(self) -> datetime:
        with self._lock:
            return self._at

    def set(self, at: datetime) -> None:
        with self._lock:
            self._at = ensure_aware(at)

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._at += delta


_clock: Clock = Clock()


def get_clock() -> Clock:
    return _clock


def set_clock(clock: Clock) -> None:
    """Replace the process clock (tests, ``sla check --at``)."""
    global _clock
    _clock = clock


def now() -> datetime:
    """Now, timezone-aware UTC."""
    return _clock.now()


def ensure_aware(value: datetime, zone: ZoneInfo = SHANGHAI) -> datetime:
    """Naive datetimes are read as local (Asia/Shanghai) time; the result is UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def to_local(value: datetime, zone: ZoneInfo = SHANGHAI) -> datetime:
    return ensure_aware(value).astimezone(zone)
