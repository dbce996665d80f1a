"""What the ledger reads from the configuration: the SLA policy, ledger and notification settings, departments.

Each file is parsed once per change per process (``config_files.cached``): every ticket action and
matching batch asks, and parsing a departments.yaml of 10k rules cost seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from alerting.calendar import HOLIDAYS_FILE, WorkCalendar, load_calendar, unconfigured_notice
from alerting.sla import SLA_FILE, SlaConfig, SlaPolicy, load_sla
from service import clock, context
from service.config_files import ConfigError, cached, read_yaml
from service.rules.config import DEPARTMENTS_FILE, KEEP_DIR, current_departments
from service.settings import LedgerSettings, NotificationSettings, Settings


@dataclass
class LedgerConfig:
    """What the ledger needs from the configuration: SLA policy, ledger and notification settings."""

    policy: SlaPolicy
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    departments: frozenset[str] | None = None  # None: departments.yaml absent, any id is accepted


def policy_for(config_dir: Path) -> SlaPolicy:
    """The SLA policy of ``config_dir`` (sla.yaml + holidays.yaml), reloaded only when either file changes."""
    key = Path(config_dir).resolve()
    return cached(
        "sla-policy",
        [key / SLA_FILE, key / HOLIDAYS_FILE],
        lambda: SlaPolicy(load_sla(key), load_calendar(key)),
    )


def holiday_notices(config_dir: Path) -> list[str]:
    """One line per year (this one, the coming one) whose holidays are not configured, for admins to act on."""
    calendar = policy_for(config_dir).calendar
    today = clock.to_local(clock.now()).date()
    return [unconfigured_notice(year) for year in calendar.unconfigured_years(today)]


def _read_department_ids(config_dir: Path, keep_dir: Path) -> frozenset[str] | None:
    path = Path(config_dir) / DEPARTMENTS_FILE
    if not path.exists():
        return None
    try:
        # The validated file is shared with the rule book: one parse per change per process.
        return frozenset(d.id for d in current_departments(Path(config_dir), keep_dir).departments)
    except ConfigError:
        pass  # a file that does not validate still names its departments for reassignment
    data = read_yaml(path)
    if not data or not isinstance(data.get("departments"), list):
        return None
    return frozenset(str(d["id"]) for d in data["departments"] if isinstance(d, dict) and d.get("id"))


def _department_ids(config_dir: Path, keep_dir: Path) -> frozenset[str] | None:
    return cached(
        "department-ids", [Path(config_dir) / DEPARTMENTS_FILE], lambda: _read_department_ids(config_dir, keep_dir)
    )


def ledger_config(settings: Settings | None = None) -> LedgerConfig:
    """The ledger configuration of ``settings``, of the running application, or the defaults."""
    if settings is None:
        try:
            settings = context.current().settings
        except RuntimeError:
            return LedgerConfig(policy=SlaPolicy(SlaConfig(), WorkCalendar()))
    return LedgerConfig(
        policy=policy_for(settings.config_dir),
        ledger=settings.ledger,
        notifications=settings.notifications,
        departments=_department_ids(settings.config_dir, settings.data_path(KEEP_DIR)),
    )
