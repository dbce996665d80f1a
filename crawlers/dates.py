"""Dates as Chinese government sites write them, parsed to timezone-aware UTC datetimes."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from service import clock
from service.clock import SHANGHAI

_TIME = r"(?:\s*(?:T|\s)?\s*(\d{1,2})\s*[:时]\s*(\d{1,2})(?:\s*[:分]\s*(\d{1,2})(?:\.\d+)?)?\s*秒?)?"
_TZ = r"\s*(Z|[+-]\d{2}:?\d{2})?"
_FULL = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?" + _TIME + _TZ)
_COMPACT = re.compile(r"(?<!\d)(20\d{2}|19\d{2})(\d{2})(\d{2})(?!\d)" + _TIME)
_MONTH_DAY = re.compile(r"(?<!\d)(\d{1,2})\s*[-/月]\s*(\d{1,2})\s*日?" + _TIME)
_EPOCH = re.compile(r"^\s*(\d{10}|\d{13})(?:\.\d+)?\s*$")
_AGO = re.compile(r"(\d+)\s*(秒|分钟|分|小时|个小时|天|日|周|星期)\s*前")
_DAY_WORD = re.compile(r"(今天|今日|昨天|昨日|前天)" + _TIME)
_CLOCK_ONLY = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")
_AGO_UNITS = {
    "秒": "seconds",
    "分钟": "minutes",
    "分": "minutes",
    "小时": "hours",
    "个小时": "hours",
    "天": "days",
    "日": "days",
    "周": "weeks",
    "星期": "weeks",
}
MAX_DATE_TEXT = 400
_DAYS_BACK = {"今天": 0, "今日": 0, "昨天": 1, "昨日": 1, "前天": 2}


def parse_date(
    value: str | float | datetime | None, now: datetime | None = None, zone: ZoneInfo = SHANGHAI
) -> datetime | None:
    """Parse what a site shows as a date (labels and noise allowed); None when there is no date.

    Naive values are read in ``zone`` (Asia/Shanghai); relative ones (3小时前, 昨天 15:20) count back
    from ``now`` (default: the application clock). The result is UTC.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return clock.ensure_aware(value, zone)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    # Collapsed whitespace keeps the patterns linear on hostile input (long runs of spaces); a date
    # field longer than this is not a date field.
    text = " ".join(unicodedata.normalize("NFKC", str(value)).split())[:MAX_DATE_TEXT]
    if not text:
        return None
    now = now or clock.now()
    try:
        return _parse_text(text, now, zone)
    except (ValueError, OverflowError):
        # Impossible dates such as 2023-02-30 are noise, not a crash.
        return None


def _from_epoch(seconds: float) -> datetime | None:
    if seconds > 1e11:  # milliseconds
        seconds /= 1000
    if seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _parse_text(text: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    if m := _EPOCH.match(text):
        return _from_epoch(float(m.group(1)))
    if "刚刚" in text:
        return now
    if m := _AGO.search(text):
        return now - timedelta(**{_AGO_UNITS[m.group(2)]: int(m.group(1))})
    local_now = now.astimezone(zone)
    if m := _DAY_WORD.search(text):
        day = local_now.date() - timedelta(days=_DAYS_BACK[m.group(1)])
        return _build(day.year, day.month, day.day, m.group(2), m.group(3), m.group(4), None, zone)
    if m := _FULL.search(text):
        year, month, day_of_month = (int(g) for g in m.groups()[:3])
        return _build(year, month, day_of_month, m.group(4), m.group(5), m.group(6), m.group(7), zone)
    if m := _COMPACT.search(text):
        return _build(int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4), m.group(5), m.group(6), None, zone)
    if m := _MONTH_DAY.search(text):
        month, day_of_month = int(m.group(1)), int(m.group(2))
        result = _build(local_now.year, month, day_of_month, m.group(3), m.group(4), m.group(5), None, zone)
        # A month and day without a year is the most recent such day, never one in the future.
        if result is not None and result > now + timedelta(days=1):
            result = _build(local_now.year - 1, month, day_of_month, m.group(3), m.group(4), m.group(5), None, zone)
        return result
    if m := _CLOCK_ONLY.match(text):
        day = local_now.date()
        return _build(day.year, day.month, day.day, m.group(1), m.group(2), m.group(3), None, zone)
    try:
        parsed = parsedate_to_datetime(text)  # RFC 822 dates of RSS feeds
    except (TypeError, ValueError, IndexError):
        return None
    return clock.ensure_aware(parsed, zone)


def _build(
    year: int,
    month: int,
    day: int,
    hour: str | None,
    minute: str | None,
    second: str | None,
    tz: str | None,
    zone: ZoneInfo,
) -> datetime | None:
    if not 1900 <= year <= 2200:
        return None
    local = datetime(year, month, day, int(hour or 0), int(minute or 0), int(second or 0))
    if tz:
        offset = 0 if tz == "Z" else _offset_minutes(tz)
        return (local - timedelta(minutes=offset)).replace(tzinfo=UTC)
    return local.replace(tzinfo=zone).astimezone(UTC)


def _offset_minutes(tz: str) -> int:
    sign = -1 if tz[0] == "-" else 1
    digits = tz[1:].replace(":", "")
    return sign * (int(digits[:2]) * 60 + int(digits[2:]))
