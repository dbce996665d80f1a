"""Working-day arithmetic on the official calendar, holidays.yaml overrides and years without data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from loguru import logger

from alerting.calendar import HolidayOverrides, WorkCalendar, load_calendar, load_holidays
from service.config_files import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    """Warnings logged through loguru while the test runs."""
    seen: list[str] = []
    sink = logger.add(lambda message: seen.append(message.record["message"]), level="WARNING")
    yield seen
    logger.remove(sink)


def test_2026_mid_autumn_and_national_day_are_not_working_days() -> None:
    cal = WorkCalendar()
    assert cal.has_official_data(2026)
    assert not cal.is_workday(date(2026, 9, 25))  # Mid-autumn, a Friday
    assert all(not cal.is_workday(date(2026, 10, d)) for d in range(1, 8))
    assert cal.is_holiday(date(2026, 10, 5))  # a Monday off


def test_2026_swapped_weekend_days_are_working_days() -> None:
    cal = WorkCalendar()
    assert cal.is_workday(date(2026, 9, 20))  # Sunday worked for the holidays
    assert cal.is_workday(date(2026, 10, 10))  # Saturday worked for the holidays
    assert not cal.is_workday(date(2026, 10, 11))  # an ordinary Sunday


def test_adding_working_days_skips_the_holidays_and_counts_the_swapped_days() -> None:
    cal = WorkCalendar()
    assert cal.add_workdays(date(2026, 9, 18), 1) == date(2026, 9, 20)  # Friday -> swapped Sunday
    assert cal.add_workdays(date(2026, 9, 24), 1) == date(2026, 9, 28)  # over Mid-autumn
    assert cal.add_workdays(date(2026, 9, 30), 1) == date(2026, 10, 8)  # over National Day
    assert cal.add_workdays(date(2026, 9, 30), 3) == date(2026, 10, 10)  # the swapped Saturday counts
    assert cal.add_workdays(date(2026, 9, 30), 4) == date(2026, 10, 12)
    assert cal.next_workday(date(2026, 10, 3)) == date(2026, 10, 8)
    assert cal.add_workdays(date(2026, 9, 30), 0) == date(2026, 9, 30)
    # Sep 28, 29, 30, Oct 8, 9, 10, 12.
    assert cal.workdays_between(date(2026, 9, 24), date(2026, 10, 12)) == 7
    assert cal.workdays_between(date(2026, 10, 12), date(2026, 9, 24)) == 0


def test_ordinary_weekend_is_skipped() -> None:
    cal = WorkCalendar()
    assert cal.add_workdays(date(2026, 6, 5), 1) == date(2026, 6, 8)  # Friday -> Monday
    assert cal.add_workdays(date(2026, 6, 6), 1) == date(2026, 6, 8)  # Saturday -> Monday
    assert cal.add_workdays(date(2026, 6, 5), 6) == date(2026, 6, 15)


def test_a_datetime_is_read_as_its_shanghai_day() -> None:
    cal = WorkCalendar()
    sunday_utc_monday_shanghai = datetime(2026, 6, 7, 16, 30, tzinfo=UTC)
    assert cal.is_workday(sunday_utc_monday_shanghai)
    assert cal.add_workdays(sunday_utc_monday_shanghai, 1) == date(2026, 6, 9)


def test_negative_working_days_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        WorkCalendar().add_workdays(date(2026, 6, 5), -1)


def test_year_without_data_falls_back_to_monday_to_friday_with_one_warning(
    warnings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("alerting.calendar._WARNED_YEARS", set())  # as in a fresh process
    cal = WorkCalendar()
    assert cal.fallback_years() == []
    # 2026-12-31 is Thursday (official data); 2027-01-01 is a Friday the package knows nothing about.
    assert cal.add_workdays(date(2026, 12, 30), 2) == date(2027, 1, 1)
    assert cal.add_workdays(date(2026, 12, 31), 2) == date(2027, 1, 4)  # weekend skipped
    assert not cal.is_workday(date(2027, 1, 2))
    assert cal.workdays_between(date(2027, 1, 1), date(2027, 12, 31)) == 260
    assert cal.fallback_years() == [2027]
    assert not cal.has_official_data(2027)
    # Calendars are built per configuration load: another one in the same process does not warn again.
    assert not WorkCalendar().has_official_data(2027)
    about_2027 = [w for w in warnings if "2027" in w]
    assert len(about_2027) == 1
    assert "周一至周五" in about_2027[0]


def test_overrides_fix_a_year_without_data() -> None:
    cal = WorkCalendar(holidays=[date(2027, 1, 1)], workdays=[date(2027, 2, 20)])
    assert cal.add_workdays(date(2026, 12, 30), 2) == date(2027, 1, 4)
    assert cal.is_workday(date(2027, 2, 20))  # a Saturday
    assert cal.fallback_years() == [2027]


def test_overrides_win_over_the_package_both_ways() -> None:
    cal = WorkCalendar(holidays=[date(2026, 6, 8)], workdays=[date(2026, 6, 6), date(2026, 10, 2)])
    assert cal.add_workdays(date(2026, 6, 5), 1) == date(2026, 6, 6)  # the extra working Saturday
    assert cal.add_workdays(date(2026, 6, 6), 1) == date(2026, 6, 9)  # the extra holiday Monday
    assert cal.is_workday(date(2026, 10, 2))  # an official holiday made a working day
    assert cal.add_workdays(date(2026, 9, 30), 1) == date(2026, 10, 2)


def test_holidays_yaml_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "holidays.yaml").write_text(
        'holidays: [2027-01-01, "2027-02-08"]\nworkdays:\n  - 2027-02-20\n', encoding="utf-8"
    )
    overrides = load_holidays(tmp_path)
    assert overrides == HolidayOverrides(holidays=[date(2027, 1, 1), date(2027, 2, 8)], workdays=[date(2027, 2, 20)])
    cal = load_calendar(tmp_path)
    assert not cal.is_workday(date(2027, 2, 8))
    assert cal.is_workday(date(2027, 2, 20))


def test_missing_holidays_yaml_means_no_overrides(tmp_path: Path) -> None:
    assert load_holidays(tmp_path) == HolidayOverrides()


def test_shipped_holidays_yaml_is_valid() -> None:
    assert load_holidays(REPO / "config") == HolidayOverrides()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'holidays: ["2027-01-01", "2027-02-30"]\n',
            "holidays.yaml: holidays[1]: '2027-02-30' is not a date (use YYYY-MM-DD)",
        ),
        ("workdays: [20270220]\n", "holidays.yaml: workdays[0]: 20270220 is not a date (use YYYY-MM-DD)"),
        ("workdays: [2027-02-20 08:00:00]\n", "holidays.yaml: workdays[0]: 2027-02-20T08:00:00 has a time"),
        ("holiday: [2027-01-01]\n", "holidays.yaml: holiday: unknown key"),
        (
            "holidays: [2027-01-01]\nworkdays: [2027-01-01]\n",
            "holidays.yaml: 2027-01-01 is listed both in holidays and in workdays",
        ),
    ],
)
def test_invalid_holidays_yaml_names_file_key_and_reason(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "holidays.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_holidays(tmp_path)
    assert str(caught.value).startswith(message)


def test_a_coming_year_counts_as_configured_once_holidays_yaml_has_its_dates(
    warnings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("alerting.calendar._WARNED_YEARS", set())
    # Years no chinesecalendar release will know for a long while.
    assert WorkCalendar().unconfigured_years(date(2040, 11, 30)) == [2040, 2041]
    monkeypatch.setattr("alerting.calendar._WARNED_YEARS", set())
    warnings.clear()
    filled = WorkCalendar(holidays=[date(2041, 1, 1)], workdays=[date(2040, 9, 29)])
    assert filled.unconfigured_years(date(2040, 11, 30)) == []
    assert filled.unconfigured_years(date(2041, 11, 30)) == [2042]
    # The log warns only of the years holidays.yaml does not fill in.
    filled.add_workdays(date(2040, 12, 28), 10)
    assert not [w for w in warnings if "2040" in w or "2041" in w]
    assert [w for w in warnings if "2042" in w]


def test_spans_over_years_count_as_the_days_one_by_one() -> None:
    """Counted from running counts per year (a ticket list asks how late each overdue ticket is): the same
    answer as looking at every day, across holidays, 调休 days, leap years and a holidays.yaml override."""
    cal = WorkCalendar(holidays=[date(2025, 3, 3)], workdays=[date(2026, 3, 7)])
    days = [date(2023, 12, 30) + timedelta(days=n * 37) for n in range(32)]
    for start in days:
        for end in days:
            one_by_one = sum(cal.is_workday(start + timedelta(days=n)) for n in range(1, (end - start).days + 1))
            assert cal.workdays_between(start, end) == one_by_one, (start, end)
    assert cal.workdays_between(date(2024, 2, 28), date(2024, 3, 1)) == 2  # 29 February counted
