"""The working-day calendar: official Chinese holidays (chinesecalendar) plus ``holidays.yaml`` overrides.

A year the package has no data for falls back to Monday–Friday plus the overrides, logs one warning
per year and never raises: an SLA check must not crash on 1 January because a package is out of date.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import chinese_calendar
from loguru import logger
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from service.clock import to_local
from service.config_files import load_model

HOLIDAYS_FILE = "holidays.yaml"

# Far beyond any SLA period; it only stops a runaway loop on absurd input.
MAX_WORKDAYS = 3660


def _strict_date(value: Any) -> date:
    # YAML already turns an unquoted 2027-01-01 into a date; a quoted one arrives as a string.
    # Integers are refused on purpose: pydantic would read them as Unix timestamps.
    if isinstance(value, datetime):
        raise ValueError(f"{value.isoformat()} has a time of day: write the date only (YYYY-MM-DD)")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a date (use YYYY-MM-DD)") from None
    raise ValueError(f"{value!r} is not a date (use YYYY-MM-DD)")


Day = Annotated[date, BeforeValidator(_strict_date)]


class HolidayOverrides(BaseModel):
    """The content of ``holidays.yaml``: extra non-working days and extra working days (调休)."""

    model_config = ConfigDict(extra="forbid")

    holidays: list[Day] = Field(default_factory=list)
    workdays: list[Day] = Field(default_factory=list)

    @model_validator(mode="after")
    def _disjoint(self) -> HolidayOverrides:
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise ValueError(f"{both[0].isoformat()} is listed both in holidays and in workdays")
        return self


def load_holidays(config_dir: Path) -> HolidayOverrides:
    """Read ``holidays.yaml`` from ``config_dir``; a missing file means no overrides."""
    return load_model(Path(config_dir) / HOLIDAYS_FILE, HolidayOverrides)


def load_calendar(config_dir: Path) -> WorkCalendar:
    """The calendar of the product: package data plus the overrides in ``config_dir``."""
    return WorkCalendar.from_overrides(load_holidays(config_dir))


def _package_version() -> str:
    try:
        return version("chinesecalendar")
    except PackageNotFoundError:  # pragma: no cover - vendored copies have no metadata
        return "?"


def _as_day(value: date) -> date:
    # An aware datetime's own .date() would be the UTC day; the working day is the Shanghai one.
    if isinstance(value, datetime):
        return to_local(value).date()
    return value


def unconfigured_notice(year: int) -> str:
    """What admins read (console, /healthz) while ``year`` has neither package data nor holidays.yaml dates."""
    return f"{year} 年法定节假日安排未配置，工作日按周一至周五计算；请在 {HOLIDAYS_FILE} 中补充"


# Years without official data already reported in this process.
_WARNED_YEARS: set[int] = set()


class WorkCalendar:
    """Answers whether a day is a working day and counts working days, in Asia/Shanghai days."""

    def __init__(self, holidays: Iterable[date] = (), workdays: Iterable[date] = ()) -> None:
        self._holidays = frozenset(holidays)
        self._workdays = frozenset(workdays)
        both = self._holidays & self._workdays
        if both:
            raise ValueError(f"{min(both).isoformat()} is both a holiday and a working day")
        # Years holidays.yaml speaks of: the operator filled them in, so they count as configured.
        self._override_years = frozenset(d.year for d in self._holidays | self._workdays)
        self._lock = threading.Lock()
        self._has_data: dict[int, bool] = {}
        # The package scans its whole table on every call; the monitor asks about the same days a lot.
        self._days: dict[date, bool] = {}
        # Per year: the working days from 1 January up to each day of it (for counting spans at once).
        self._running: dict[int, list[int]] = {}

    @classmethod
    def from_overrides(cls, overrides: HolidayOverrides) -> WorkCalendar:
        """A calendar with the overrides of a loaded ``holidays.yaml``."""
        return cls(holidays=overrides.holidays, workdays=overrides.workdays)

    def has_official_data(self, year: int) -> bool:
        """True when chinesecalendar knows the holidays of ``year``; the first miss in a process logs a warning."""
        with self._lock:
            known = self._has_data.get(year)
            if known is not None:
                return known
            try:
                chinese_calendar.is_workday(date(year, 6, 1))
            except NotImplementedError:
                known = False
            else:
                known = True
            self._has_data[year] = known
        if not known and year not in _WARNED_YEARS and year not in self._override_years:
            # Calendars are built per configuration load and per request: the operator needs the warning once.
            _WARNED_YEARS.add(year)
            logger.warning(
                "chinesecalendar {} 没有 {} 年的法定节假日数据：该年按周一至周五为工作日计算，"
                "并叠加 holidays.yaml 中的设置。请升级 chinesecalendar，或在 holidays.yaml 中补充该年的"
                "节假日（holidays）和调休上班日（workdays）。",
                _package_version(),
                year,
            )
        return known

    def fallback_years(self) -> list[int]:
        """The years looked at so far that have no official data (computed as Monday–Friday)."""
        with self._lock:
            return sorted(year for year, known in self._has_data.items() if not known)

    def configured(self, year: int) -> bool:
        """Whether the holidays of ``year`` are known: chinesecalendar's data, or its dates in holidays.yaml."""
        return year in self._override_years or self.has_official_data(year)

    def unconfigured_years(self, today: date) -> list[int]:
        """This year and the coming one when their holidays are not configured (counted as Monday–Friday)."""
        return [year for year in (today.year, today.year + 1) if not self.configured(year)]

    def is_workday(self, day: date) -> bool:
        """True when ``day`` (a date, or a datetime read in Asia/Shanghai) is a working day."""
        day = _as_day(day)
        known = self._days.get(day)
        if known is None:
            known = self._days[day] = self._compute(day)
        return known

    def _compute(self, day: date) -> bool:
        if day in self._workdays:
            return True
        if day in self._holidays:
            return False
        if self.has_official_data(day.year):
            return bool(chinese_calendar.is_workday(day))
        return day.weekday() < 5

    def is_holiday(self, day: date) -> bool:
        """True when ``day`` is not a working day (weekend or holiday)."""
        return not self.is_workday(day)

    def add_workdays(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start``; ``start`` itself never counts (n=0 gives ``start``)."""
        if n < 0:
            raise ValueError(f"the number of working days must not be negative, got {n}")
        if n > MAX_WORKDAYS:
            raise ValueError(f"{n} working days is too long (at most {MAX_WORKDAYS})")
        day = _as_day(start)
        left = n
        while left:
            day += timedelta(days=1)
            if self.is_workday(day):
                left -= 1
        return day

    def next_workday(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        return self.add_workdays(day, 1)

    def workdays_between(self, start: date, end: date) -> int:
        """How many working days lie after ``start`` up to and including ``end`` (0 when end <= start)."""
        first, last = _as_day(start), _as_day(end)
        if last <= first:
            return 0
        # From running counts per year, not day by day: a ticket list says how late every overdue ticket is, and
        # a page of tickets months overdue cost a second counted one day at a time.
        count = self._through(last) - self._through(first)
        for year in range(first.year, last.year):
            count += self._year(year)[-1]
        return count

    def _through(self, day: date) -> int:
        """Working days from 1 January of ``day``'s year up to and including ``day``."""
        return self._year(day.year)[day.timetuple().tm_yday - 1]

    def _year(self, year: int) -> list[int]:
        running = self._running.get(year)
        if running is None:
            first, total, running = date(year, 1, 1), 0, []
            for offset in range(date(year, 12, 31).timetuple().tm_yday):
                total += self.is_workday(first + timedelta(days=offset))
                running.append(total)
            self._running[year] = running
        return running
