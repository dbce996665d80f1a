"""SLA policy (``sla.yaml``) and the deadlines it gives a ticket.

Rules of time:

- Natural durations (``30m``, ``12h``) are exact: the deadline is discovery plus the duration, nights,
  weekends and holidays included.
- Working-day durations (``2wd``) start the day after the event (its own day never counts, whatever the
  hour) and end at 23:59:59 Asia/Shanghai on the Nth working day of the calendar.
- Every stage (acknowledge, handle, respond) counts from the ticket's discovery time.

Recomputing (the ledger calls these; met stages and approved extensions are the ledger's facts):

- **Severity change** (:meth:`SlaPolicy.after_severity_change`): every stage not yet settled (met, or
  with an approved extension) is recomputed from the *discovery* time under the new severity; settled
  stages keep their deadline so that an on-time record never turns late afterwards. An upgrade can
  therefore make a stage overdue at once: the policy says how fast the public must get an answer, and a
  late upgrade shows up as overdue (and in the monitor) instead of being hidden.
- **Reassignment** (:meth:`SlaPolicy.after_reassignment`): the new department cannot acknowledge before it
  receives the ticket, so the acknowledge clock restarts at the reassignment time; handle and respond
  keep counting from discovery, because the public has been waiting since then whoever holds the ticket,
  but never fall before the new acknowledge deadline. Extensions granted to the previous department
  do not carry over.
- **Reopen** (:meth:`SlaPolicy.after_reopen`): the department keeps its acknowledgement; handle and respond
  restart from the reopen time.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator

from alerting.calendar import WorkCalendar
from service.clock import SHANGHAI, ensure_aware, to_local
from service.config_files import load_model
from service.vocabulary import SEVERITIES, STAGES, Severity, Stage

# Minutes (m), hours (h) or working days (wd).
Unit = Literal["m", "h", "wd"]

SLA_FILE = "sla.yaml"


# Longest accepted duration per unit: about a year, which no SLA needs; beyond it is a typo.
_LIMITS = {"m": 525_600, "h": 8_760, "wd": 250}
_UNITS: dict[str, Unit] = {"m": "m", "h": "h", "wd": "wd"}
_DURATION = re.compile(r"(\d+)(m|h|wd)")
_HINT = "(use 30m, 12h or 2wd)"
END_OF_DAY = time(23, 59, 59)


@dataclass(frozen=True)
class Duration:
    """A stage's time limit: ``amount`` minutes (m), hours (h) or working days (wd)."""

    amount: int
    unit: Unit

    @property
    def working_days(self) -> bool:
        """True for ``wd`` durations, which follow the calendar instead of the clock."""
        return self.unit == "wd"

    def as_timedelta(self) -> timedelta:
        """The exact length of a natural duration (m, h); working days have none."""
        if self.unit == "m":
            return timedelta(minutes=self.amount)
        if self.unit == "h":
            return timedelta(hours=self.amount)
        raise ValueError(f"{self} counts working days and has no fixed length")

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


def parse_duration(value: Any) -> Duration:
    """Parse ``30m``, ``12h`` or ``2wd``; anything else raises ValueError with a one-line reason."""
    if isinstance(value, Duration):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration {_HINT}")
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        if re.fullmatch(r"\s*\d+\s*d\s*", value):
            raise ValueError(f"{value!r} is ambiguous: write 24h for natural time or 1wd for working days")
        raise ValueError(f"{value!r} is not a duration {_HINT}")
    amount, unit = int(match.group(1)), match.group(2)
    if amount == 0:
        raise ValueError(f"{value!r} is zero: a stage needs some time {_HINT}")
    if amount > _LIMITS[unit]:
        raise ValueError(f"{value!r} is too long (at most {_LIMITS[unit]}{unit})")
    return Duration(amount, _UNITS[unit])


DurationField = Annotated[Duration, PlainValidator(parse_duration), PlainSerializer(str, return_type=str)]


class StagePolicy(BaseModel):
    """The three time limits of one severity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    acknowledge: DurationField
    handle: DurationField
    respond: DurationField

    def of(self, stage: Stage) -> Duration:
        """The duration of ``stage``."""
        return getattr(self, stage)


def _policy(acknowledge: str, handle: str, respond: str) -> StagePolicy:
    return StagePolicy.model_validate({"acknowledge": acknowledge, "handle": handle, "respond": respond})


class Policies(BaseModel):
    """Per-severity limits; a severity left out of the file keeps its default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    critical: StagePolicy = Field(default_factory=lambda: _policy("30m", "12h", "24h"))
    major: StagePolicy = Field(default_factory=lambda: _policy("2h", "1wd", "2wd"))
    normal: StagePolicy = Field(default_factory=lambda: _policy("4h", "3wd", "5wd"))
    minor: StagePolicy = Field(default_factory=lambda: _policy("1wd", "5wd", "10wd"))


class SlaConfig(BaseModel):
    """The content of ``sla.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Strictly inside (0, 1): a warning at 0 would fire on discovery, at 1 together with the breach.
    warn_at: float = Field(default=0.75, gt=0, lt=1)
    policies: Policies = Field(default_factory=Policies)

    def duration(self, severity: Severity, stage: Stage) -> Duration:
        """The time limit of ``stage`` for ``severity``."""
        if severity not in SEVERITIES:
            raise ValueError(f"unknown severity {severity!r} (one of {', '.join(SEVERITIES)})")
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r} (one of {', '.join(STAGES)})")
        return getattr(self.policies, severity).of(stage)


def load_sla(config_dir: Path) -> SlaConfig:
    """Read ``sla.yaml`` from ``config_dir``; a missing file gives the defaults of the interface."""
    return load_model(Path(config_dir) / SLA_FILE, SlaConfig)


def deadline(start: datetime, duration: Duration, calendar: WorkCalendar) -> datetime:
    """When a stage of ``duration`` counted from ``start`` is due, as an aware UTC datetime."""
    start = ensure_aware(start)
    if not duration.working_days:
        return start + duration.as_timedelta()
    day = calendar.add_workdays(to_local(start).date(), duration.amount)
    return datetime.combine(day, END_OF_DAY, tzinfo=SHANGHAI).astimezone(UTC)


@dataclass(frozen=True)
class Remaining:
    """The time a stage has left at an instant, in the unit its deadline counts in, as users read it.

    ``workdays`` is set for working-day stages only: whole working days after today up to the due day
    (0: due today, or before the next working day), negative when late (working days after the due day
    up to today; 0 with negative ``seconds``: late by less than a working day).
    """

    seconds: float
    workdays: int | None
    text: str


def natural_left_text(seconds: float) -> str:
    """The console's words for a natural-time stage, "剩 2天3小时" / "超期 45分钟" (as format.js formatLeft)."""
    rest = abs(round(seconds))
    days, rest = divmod(rest, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        text = f"{days}天{hours}小时"
    elif hours:
        text = f"{hours}小时{minutes}分钟"
    else:
        text = f"{minutes}分钟"
    return f"超期 {text}" if seconds < 0 else f"剩 {text}"


def remaining(due: datetime, now: datetime, duration: Duration, calendar: WorkCalendar) -> Remaining:
    """What is left of a stage of ``duration`` due at ``due``, at ``now``.

    Natural stages say hours and minutes. Working-day stages say working days, counted like their deadline
    (Asia/Shanghai days of the calendar, holidays and 调休 working days included): "剩 2 个工作日" are the
    working days after today up to the due day, "今日 23:59 到期" on the due day itself, "已超期 1 个工作日"
    once a working day after the due day has begun.
    """
    due, now = ensure_aware(due), ensure_aware(now)
    seconds = (due - now).total_seconds()
    if not duration.working_days:
        return Remaining(seconds, None, natural_left_text(seconds))
    today, due_day = to_local(now).date(), to_local(due).date()
    if seconds >= 0:
        days = calendar.workdays_between(today, due_day)
        if days:
            text = f"剩 {days} 个工作日"
        elif due_day == today:
            text = f"今日 {to_local(due):%H:%M} 到期"
        else:  # due on a later day off (an extension to a weekend): no whole working day is left
            text = "剩 不足 1 个工作日"
        return Remaining(seconds, days, text)
    late = calendar.workdays_between(due_day, today)
    return Remaining(seconds, -late, f"已超期 {late} 个工作日" if late else "已超期 不足 1 个工作日")


def warn_time(start: datetime, due: datetime, warn_at: float, *, calendar: WorkCalendar | None = None) -> datetime:
    """The instant when ``warn_at`` (0..1) of the time from ``start`` to ``due`` is used up.

    Without a calendar all wall time counts (natural stages). With one, only the time on working
    days after the start day counts, as for working-day stages: a 1wd stage warns at 18:00 on its
    working day (warn_at 0.75), not in the night before it. Returns aware UTC.
    """
    if not 0 <= warn_at <= 1:
        raise ValueError(f"warn_at must be between 0 and 1, got {warn_at}")
    start, due = ensure_aware(start), ensure_aware(due)
    if due <= start:
        return due
    if calendar is not None:
        spans = _working_spans(start, due, calendar)
        total = sum((end - begin for begin, end in spans), timedelta())
        if total > timedelta():
            left = total * warn_at
            for begin, end in spans:
                if left <= end - begin:
                    return begin + left
                left -= end - begin
            return due  # pragma: no cover - float rounding at warn_at == 1
    return start + (due - start) * warn_at


def _working_spans(start: datetime, due: datetime, calendar: WorkCalendar) -> list[tuple[datetime, datetime]]:
    # Whole working days strictly after the start's own day, the last one cut at the deadline.
    spans: list[tuple[datetime, datetime]] = []
    day = to_local(start).date() + timedelta(days=1)
    last = to_local(due).date()
    while day <= last:
        if calendar.is_workday(day):
            begin = datetime.combine(day, time(0), tzinfo=SHANGHAI).astimezone(UTC)
            end = min(begin + timedelta(days=1), due)
            spans.append((begin, end))
        day += timedelta(days=1)
    return spans


class SlaPolicy:
    """The SLA configuration applied on a working-day calendar: deadlines and warning times."""

    def __init__(self, config: SlaConfig, calendar: WorkCalendar) -> None:
        self.config = config
        self.calendar = calendar

    def deadline(self, severity: Severity, stage: Stage, start: datetime) -> datetime:
        """The deadline of one stage counted from ``start``."""
        return deadline(start, self.config.duration(severity, stage), self.calendar)

    def remaining(self, severity: Severity, stage: Stage, due: datetime, now: datetime) -> Remaining:
        """What is left of ``stage`` due at ``due``, at ``now``, in the unit the severity's stage counts in."""
        return remaining(due, now, self.config.duration(severity, stage), self.calendar)

    def deadlines_for(self, severity: Severity, discovered_at: datetime) -> dict[Stage, datetime]:
        """Deadlines of all stages of a ticket discovered at ``discovered_at``."""
        return {stage: self.deadline(severity, stage, discovered_at) for stage in STAGES}

    def warn_time_for(self, severity: Severity, stage: Stage, start: datetime, due: datetime) -> datetime:
        """When the monitor warns about ``stage``: ``warn_at`` of its time, counted as the stage counts."""
        working = self.config.duration(severity, stage).working_days
        return warn_time(start, due, self.config.warn_at, calendar=self.calendar if working else None)

    def warn_times_for(self, severity: Severity, discovered_at: datetime) -> dict[Stage, datetime]:
        """Warning instants of all stages of a freshly discovered ticket."""
        dues = self.deadlines_for(severity, discovered_at)
        return {stage: self.warn_time_for(severity, stage, discovered_at, dues[stage]) for stage in STAGES}

    def after_severity_change(
        self,
        *,
        severity: Severity,
        discovered_at: datetime,
        current: Mapping[Stage, datetime],
        settled: Collection[Stage] = (),
    ) -> dict[Stage, datetime]:
        """Deadlines under the new ``severity``: unsettled stages from discovery, settled ones kept."""
        fresh = self.deadlines_for(severity, discovered_at)
        return {stage: ensure_aware(current[stage]) if stage in settled else fresh[stage] for stage in STAGES}

    def after_reassignment(
        self, *, severity: Severity, discovered_at: datetime, reassigned_at: datetime
    ) -> dict[Stage, datetime]:
        """Deadlines in the new department: acknowledge from the reassignment, the rest from discovery."""
        acknowledge = self.deadline(severity, "acknowledge", reassigned_at)
        return {
            "acknowledge": acknowledge,
            "handle": max(self.deadline(severity, "handle", discovered_at), acknowledge),
            "respond": max(self.deadline(severity, "respond", discovered_at), acknowledge),
        }

    def after_reopen(
        self, *, severity: Severity, reopened_at: datetime, current: Mapping[Stage, datetime]
    ) -> dict[Stage, datetime]:
        """Deadlines of a reopened ticket: acknowledge kept, handle and respond from the reopen time."""
        return {
            "acknowledge": ensure_aware(current["acknowledge"]),
            "handle": self.deadline(severity, "handle", reopened_at),
            "respond": self.deadline(severity, "respond", reopened_at),
        }


def load_policy(config_dir: Path, calendar: WorkCalendar) -> SlaPolicy:
    """The SLA policy of ``config_dir`` on ``calendar``."""
    return SlaPolicy(load_sla(config_dir), calendar)
