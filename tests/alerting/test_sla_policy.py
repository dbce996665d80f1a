"""SLA policy loading and the deadlines it gives: natural time, working days, recomputation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from alerting.calendar import WorkCalendar
from alerting.sla import (
    Duration,
    SlaConfig,
    SlaPolicy,
    deadline,
    load_sla,
    parse_duration,
    warn_time,
)
from service.clock import SHANGHAI
from service.config_files import ConfigError

REPO = Path(__file__).resolve().parents[2]


def sh(*args: int) -> datetime:
    """A wall-clock time in Asia/Shanghai."""
    return datetime(*args, tzinfo=SHANGHAI)


def end_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=SHANGHAI)


@pytest.fixture
def policy() -> SlaPolicy:
    return SlaPolicy(SlaConfig(), WorkCalendar())


def test_missing_sla_yaml_gives_the_interface_defaults(tmp_path: Path) -> None:
    config = load_sla(tmp_path)
    assert config.warn_at == 0.75
    assert config.duration("critical", "acknowledge") == Duration(30, "m")
    assert config.duration("major", "handle") == Duration(1, "wd")
    assert config.duration("normal", "respond") == Duration(5, "wd")
    assert config.duration("minor", "acknowledge") == Duration(1, "wd")


def test_shipped_sla_yaml_matches_the_defaults() -> None:
    assert load_sla(REPO / "config") == SlaConfig()


def test_a_file_may_set_one_severity_and_keep_the_others(tmp_path: Path) -> None:
    (tmp_path / "sla.yaml").write_text(
        "warn_at: 0.5\npolicies:\n  critical: {acknowledge: 15m, handle: 6h, respond: 1wd}\n",
        encoding="utf-8",
    )
    config = load_sla(tmp_path)
    assert config.warn_at == 0.5
    assert config.duration("critical", "acknowledge") == Duration(15, "m")
    assert config.duration("critical", "respond") == Duration(1, "wd")
    assert config.duration("major", "acknowledge") == Duration(2, "h")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2x", "'2x' is not a duration (use 30m, 12h or 2wd)"),
        ("1.5h", "'1.5h' is not a duration (use 30m, 12h or 2wd)"),
        ("2 wd", "'2 wd' is not a duration (use 30m, 12h or 2wd)"),
        ("-1h", "'-1h' is not a duration (use 30m, 12h or 2wd)"),
        ("1d", "'1d' is ambiguous: write 24h for natural time or 1wd for working days"),
        ("0h", "'0h' is zero"),
        ("999wd", "'999wd' is too long (at most 250wd)"),
        ("2", "2 is not a duration (use 30m, 12h or 2wd)"),
    ],
)
def test_bad_duration_is_reported_with_file_key_and_reason(tmp_path: Path, value: str, reason: str) -> None:
    (tmp_path / "sla.yaml").write_text(
        f"policies:\n  major: {{acknowledge: 2h, handle: {value}, respond: 2wd}}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_sla(tmp_path)
    assert str(caught.value).startswith(f"sla.yaml: policies.major.handle: {reason}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "policies:\n  major: {acknowledge: 2h, handle: 1wd}\n",
            "sla.yaml: policies.major.respond: required",
        ),
        (
            "policies:\n  urgent: {acknowledge: 2h, handle: 1wd, respond: 2wd}\n",
            "sla.yaml: policies.urgent: unknown key",
        ),
        ("warn_at: 1.5\n", "sla.yaml: warn_at: Input should be less than 1"),
    ],
)
def test_other_sla_yaml_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "sla.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="^" + message.replace(".", r"\.")):
        load_sla(tmp_path)


def test_durations_parse_and_print_back() -> None:
    assert parse_duration("30m") == Duration(30, "m")
    assert parse_duration(" 12h ") == Duration(12, "h")
    assert str(parse_duration("10wd")) == "10wd"
    assert SlaConfig().model_dump()["policies"]["minor"] == {
        "acknowledge": "1wd",
        "handle": "5wd",
        "respond": "10wd",
    }


def test_natural_hours_are_exact_and_ignore_the_night_and_weekend(policy: SlaPolicy) -> None:
    friday_night = sh(2026, 6, 5, 23, 30)
    due = policy.deadlines_for("critical", friday_night)
    assert due == {
        "acknowledge": sh(2026, 6, 6, 0, 0),
        "handle": sh(2026, 6, 6, 11, 30),
        "respond": sh(2026, 6, 6, 23, 30),
    }
    assert all(value.tzinfo is UTC for value in due.values())


def test_working_days_start_the_day_after_an_event_late_on_friday(policy: SlaPolicy) -> None:
    due = policy.deadlines_for("major", sh(2026, 6, 5, 23, 30))
    assert due["acknowledge"] == sh(2026, 6, 6, 1, 30)
    assert due["handle"] == end_of(date(2026, 6, 8))  # Monday 23:59:59 Shanghai
    assert due["handle"] == datetime(2026, 6, 8, 15, 59, 59, tzinfo=UTC)
    assert due["respond"] == end_of(date(2026, 6, 9))


def test_working_days_count_from_the_shanghai_day_not_the_utc_day(policy: SlaPolicy) -> None:
    monday_half_past_midnight = datetime(2026, 6, 7, 16, 30, tzinfo=UTC)  # Sunday in UTC
    assert policy.deadline("major", "handle", monday_half_past_midnight) == end_of(date(2026, 6, 9))


def test_event_on_a_holiday(policy: SlaPolicy) -> None:
    national_day = sh(2026, 10, 3, 10, 0)
    major = policy.deadlines_for("major", national_day)
    assert major == {
        "acknowledge": sh(2026, 10, 3, 12, 0),  # natural hours do not wait for the holiday to end
        "handle": end_of(date(2026, 10, 8)),
        "respond": end_of(date(2026, 10, 9)),
    }
    minor = policy.deadlines_for("minor", national_day)
    assert minor["acknowledge"] == end_of(date(2026, 10, 8))
    assert minor["handle"] == end_of(date(2026, 10, 13))  # Oct 8, 9, 10 (swapped Saturday), 12, 13
    assert minor["respond"] == end_of(date(2026, 10, 20))


def test_deadlines_across_the_year_end_into_a_fallback_year() -> None:
    start = sh(2026, 12, 29, 10, 0)
    plain = SlaPolicy(SlaConfig(), WorkCalendar())
    # Dec 30, Dec 31, Jan 1 (a Friday: no data for 2027, so a working day), Jan 4, Jan 5.
    assert plain.deadline("minor", "handle", start) == end_of(date(2027, 1, 5))
    assert plain.calendar.fallback_years() == [2027]
    fixed = SlaPolicy(SlaConfig(), WorkCalendar(holidays=[date(2027, 1, 1)]))
    assert fixed.deadline("minor", "handle", start) == end_of(date(2027, 1, 6))


def test_deadline_reads_a_naive_time_as_shanghai() -> None:
    naive = datetime(2026, 6, 5, 23, 30)
    assert deadline(naive, Duration(1, "wd"), WorkCalendar()) == end_of(date(2026, 6, 8))
    assert deadline(naive, Duration(45, "m"), WorkCalendar()) == sh(2026, 6, 6, 0, 15)


def test_warn_time_of_a_natural_stage_is_the_fraction_of_wall_time() -> None:
    assert warn_time(sh(2026, 6, 5, 10, 0), sh(2026, 6, 5, 14, 0), 0.75) == sh(2026, 6, 5, 13, 0)
    assert warn_time(sh(2026, 6, 5, 10, 0), sh(2026, 6, 5, 9, 0), 0.75) == sh(2026, 6, 5, 9, 0)


def test_warn_time_of_a_working_day_stage_counts_only_working_days(policy: SlaPolicy) -> None:
    start = sh(2026, 6, 5, 23, 30)  # Friday night; 1wd handle is due Monday 23:59:59
    due = policy.deadline("major", "handle", start)
    warn = policy.warn_time_for("major", "handle", start, due)
    assert abs(warn - sh(2026, 6, 8, 18, 0)) < timedelta(seconds=1)  # not during the weekend
    holiday_start = sh(2026, 9, 30, 15, 0)  # 2wd respond: Oct 8 and Oct 9
    due = policy.deadline("major", "respond", holiday_start)
    assert due == end_of(date(2026, 10, 9))
    warn = policy.warn_time_for("major", "respond", holiday_start, due)
    assert abs(warn - sh(2026, 10, 9, 12, 0)) < timedelta(seconds=1)


def test_warn_times_for_a_new_ticket(policy: SlaPolicy) -> None:
    warns = policy.warn_times_for("critical", sh(2026, 6, 8, 9, 0))
    assert warns == {
        "acknowledge": sh(2026, 6, 8, 9, 22, 30),
        "handle": sh(2026, 6, 8, 18, 0),
        "respond": sh(2026, 6, 9, 3, 0),
    }


def test_severity_change_recomputes_open_stages_from_discovery(policy: SlaPolicy) -> None:
    discovered = sh(2026, 6, 8, 9, 0)  # Monday
    before = policy.deadlines_for("normal", discovered)
    after = policy.after_severity_change(
        severity="critical", discovered_at=discovered, current=before, settled={"acknowledge"}
    )
    assert after == {
        "acknowledge": sh(2026, 6, 8, 13, 0),  # met under the old rule: kept
        "handle": sh(2026, 6, 8, 21, 0),
        "respond": sh(2026, 6, 9, 9, 0),
    }
    downgraded = policy.after_severity_change(severity="minor", discovered_at=discovered, current=before)
    assert downgraded["acknowledge"] == end_of(date(2026, 6, 9))


def test_reassignment_restarts_acknowledge_and_keeps_the_rest_from_discovery(policy: SlaPolicy) -> None:
    discovered = sh(2026, 6, 8, 9, 0)
    late = policy.after_reassignment(
        severity="critical", discovered_at=discovered, reassigned_at=sh(2026, 6, 8, 20, 45)
    )
    assert late == {
        "acknowledge": sh(2026, 6, 8, 21, 15),
        "handle": sh(2026, 6, 8, 21, 15),  # 21:00 from discovery, but never before acknowledge
        "respond": sh(2026, 6, 9, 9, 0),
    }
    early = policy.after_reassignment(severity="major", discovered_at=discovered, reassigned_at=sh(2026, 6, 8, 10, 0))
    assert early == {
        "acknowledge": sh(2026, 6, 8, 12, 0),
        "handle": end_of(date(2026, 6, 9)),
        "respond": end_of(date(2026, 6, 10)),
    }


def test_reopen_restarts_handle_and_respond(policy: SlaPolicy) -> None:
    current = policy.deadlines_for("major", sh(2026, 6, 8, 9, 0))
    after = policy.after_reopen(severity="major", reopened_at=sh(2026, 6, 12, 16, 0), current=current)
    assert after == {
        "acknowledge": current["acknowledge"],
        "handle": end_of(date(2026, 6, 15)),
        "respond": end_of(date(2026, 6, 16)),
    }


def test_unknown_severity_is_a_clear_error(policy: SlaPolicy) -> None:
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        policy.deadlines_for("urgent", sh(2026, 6, 8, 9, 0))  # type: ignore[arg-type]


def test_time_left_of_a_working_day_stage_is_said_in_working_days_across_the_spring_festival(
    policy: SlaPolicy,
) -> None:
    """A major ticket found on Friday 2026-02-13, the eve of the Spring Festival: 办理 (1wd) is due on Saturday
    the 14th, a 调休 working day; 回应 (2wd) on Tuesday the 24th, after nine days off. What is left counts those
    working days, not calendar days; 签收 (2h, natural time) keeps hours and minutes."""
    found = sh(2026, 2, 13, 10)
    dues = policy.deadlines_for("major", found)
    assert dues["handle"] == end_of(date(2026, 2, 14))
    assert dues["respond"] == end_of(date(2026, 2, 24))

    def said(stage: str, at: datetime) -> tuple[int | None, str]:
        left = policy.remaining("major", stage, dues[stage], at)
        assert left.seconds == (dues[stage] - at).total_seconds()
        return left.workdays, left.text

    friday = sh(2026, 2, 13, 11)
    assert said("acknowledge", friday) == (None, "剩 1小时0分钟")
    assert said("acknowledge", sh(2026, 2, 14, 13, 30)) == (None, "超期 1天1小时")
    assert said("handle", friday) == (1, "剩 1 个工作日")  # the 调休 Saturday
    assert said("respond", friday) == (2, "剩 2 个工作日")  # 14th and 24th, not 11 calendar days
    saturday = sh(2026, 2, 14, 9)
    assert said("handle", saturday) == (0, "今日 23:59 到期")
    assert said("respond", saturday) == (1, "剩 1 个工作日")
    # Deep in the holiday no working day has passed since the Saturday deadline, none is left before the 24th.
    holiday = sh(2026, 2, 20, 12)
    assert said("handle", holiday) == (0, "已超期 不足 1 个工作日")
    assert said("respond", holiday) == (1, "剩 1 个工作日")
    after = sh(2026, 2, 25, 9)
    assert said("handle", after) == (-2, "已超期 2 个工作日")  # the 24th and the 25th
    assert said("respond", after) == (-1, "已超期 1 个工作日")
    assert said("respond", sh(2026, 2, 28, 9)) == (-4, "已超期 4 个工作日")  # Saturday the 28th is worked


def test_time_left_of_a_natural_stage_is_unchanged(policy: SlaPolicy) -> None:
    """Natural-time stages read as before: days and hours, hours and minutes, or minutes; 超期 when past."""
    found = sh(2026, 3, 2, 10)
    due = policy.deadline("critical", "respond", found)  # 24h
    assert policy.remaining("critical", "respond", due, found).text == "剩 1天0小时"
    assert policy.remaining("critical", "respond", due, sh(2026, 3, 3, 9, 15)).text == "剩 45分钟"
    assert policy.remaining("critical", "respond", due, sh(2026, 3, 3, 12, 30)).text == "超期 2小时30分钟"
    assert policy.remaining("critical", "respond", due, found).workdays is None
