"""The one Settings object: config/settings.yaml, overridden by ``YUQING_<SECTION>__<KEY>`` variables."""

from __future__ import annotations

import ipaddress
import os
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from service.channel_options import check_channel_config
from service.config_files import config_error, read_yaml, validation_to_config_error

ENV_PREFIX = "YUQING_"
SETTINGS_FILE = "settings.yaml"


class Section(BaseModel):
    # A typo in a key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class ElasticsearchSettings(Section):
    hosts: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:9200"], min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    index_prefix: str = Field(default="yuqing", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    request_timeout: float = Field(default=10.0, gt=0)
    number_of_shards: int = Field(default=1, ge=1)
    number_of_replicas: int = Field(default=0, ge=0)
    # "standard" splits CJK into characters (phrase queries then match words exactly); "ik_max_word"
    # needs the IK plugin, which the docker-compose image installs.
    analyzer: str = "standard"
    bulk_chunk_size: int = Field(default=500, ge=1)
    bulk_max_retries: int = Field(default=5, ge=0)
    bulk_initial_backoff: float = Field(default=0.5, ge=0)


class StoreSettings(Section):
    backend: Literal["sqlite", "elasticsearch"] = "sqlite"
    sqlite_path: Path | None = None
    elasticsearch: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)


class DatabaseSettings(Section):
    url: str | None = None
    echo: bool = False
    # SQLite: how long a writer waits for another writer before giving up (no request waits on itself).
    busy_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Connections kept open, and how many more may open under load (one per concurrent request or job).
    pool_size: int = Field(default=10, ge=1)
    max_overflow: int = Field(default=60, ge=0)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme = value.split(":", 1)[0].split("+", 1)[0].lower()
        if "://" not in value or scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:/// or postgresql://")
        if scheme == "postgres":
            value = "postgresql" + value[len("postgres") :]
        if value.startswith("postgresql://"):
            # psycopg 3 is the driver we ship; SQLAlchemy would otherwise look for psycopg2.
            value = "postgresql+psycopg://" + value[len("postgresql://") :]
        return value


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = None
    # Reverse proxies (addresses or networks) whose X-Forwarded-For/-Proto are believed. Empty: none, so a
    # forged header cannot pose as another address (sign-in rate limits and the audit log key on it).
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)") from exc
        return [entry.strip() for entry in value]


class SchedulerSettings(Section):
    # A late run (process paused, machine asleep) still runs within this many seconds; APScheduler's
    # default of 1 s silently drops it.
    misfire_grace_time: int = Field(default=300, ge=1)
    coalesce: bool = True
    lock_ttl_seconds: int = Field(default=60, ge=5)
    heartbeat_seconds: int = Field(default=15, ge=1)
    match_interval_seconds: int = Field(default=60, ge=1)
    sla_interval_seconds: int = Field(default=60, ge=1)
    # CPU priority (nice, 0-19) of the crawl subprocesses: a crawl is background work, so the people at their
    # desks get the CPU first when both want it. 0 runs crawls at the server's own priority.
    crawl_niceness: int = Field(default=10, ge=0, le=19)
    # When the service stops, a running crawl is asked to stop (no new pages; the pages under way finish and
    # its last batch is written) and killed if still running after this many seconds: a supervisor's stop
    # (docker: 10 s) must end us, not its SIGKILL. Items a killed crawl had not written, the next crawl finds.
    crawl_stop_seconds: float = Field(default=8, ge=0)
    # How often the watchdog checks the scheduler thread and the jobs' freshness.
    watchdog_seconds: float = Field(default=15, gt=0)
    # A job whose last success is older than this many intervals is stalled: /healthz says degraded
    # and officers are told (monitoring notice).
    stale_factor: float = Field(default=3, ge=1)
    # ... and than this many seconds: a job of a few seconds is not stalled by one busy moment.
    stale_min_seconds: float = Field(default=60, ge=0)


class QueueSettings(Section):
    """Where crawl and match work runs: in the scheduler process, or on ``yuqing worker`` processes."""

    # none: the scheduler process crawls and matches itself (``yuqing run``, one box, nothing to install).
    # procrastinate: the scheduler only defers that work to a task queue in PostgreSQL (database.url), and
    # any number of ``yuqing worker`` processes, on any machines, take it.
    backend: Literal["none", "procrastinate"] = "none"
    # How often a worker tells the queue it lives; a worker silent for ``stalled_seconds`` is taken for
    # dead (killed, machine gone) and the scheduler puts its unfinished tasks back in the queue.
    heartbeat_seconds: float = Field(default=10, gt=0)
    stalled_seconds: float = Field(default=60, gt=0)
    # How often the scheduler looks for the tasks of dead workers.
    recover_interval_seconds: int = Field(default=30, ge=1)
    # A worker is woken at once by PostgreSQL LISTEN/NOTIFY; this poll is the fallback.
    poll_seconds: float = Field(default=5, gt=0)

    @model_validator(mode="after")
    def _heartbeat_inside_timeout(self) -> QueueSettings:
        if self.stalled_seconds <= 2 * self.heartbeat_seconds:
            raise ValueError("stalled_seconds must be more than twice heartbeat_seconds (a busy worker is not dead)")
        return self


class LedgerSettings(Section):
    # A department may send a ticket back (退件) only this long after it was assigned to it.
    return_window_hours: float = Field(default=24, gt=0)
    # How often the scheduler looks for public replies on linked hotline/mailbox items.
    reply_sweep_interval_seconds: int = Field(default=300, ge=1)


# Every kind of message the product sends; routes name them, the outbox refuses any other.
NotificationKind = Literal[
    "alert",
    "sla_warning",
    "sla_breach",
    "escalation",
    "recovery",
    "report",
    "source_health",
    "monitoring",
    "audit_anchor",
]


class NotificationRoute(Section):
    """Which messages go to which channels: ``*`` (or an empty list) matches everything."""

    departments: list[str] | Literal["*"] = "*"
    severities: list[str] | Literal["*"] = "*"
    kinds: list[NotificationKind] | Literal["*"] = "*"
    channels: list[str] = Field(min_length=1)


class NotificationSettings(Section):
    # name -> {type: dingtalk|wecom|feishu|email|webhook, ...options of that type}
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    routes: list[NotificationRoute] = Field(default_factory=list)
    delivery_interval_seconds: int = Field(default=30, ge=1)
    max_attempts: int = Field(default=8, ge=1)
    backoff_seconds: float = Field(default=30, gt=0)
    backoff_max_seconds: float = Field(default=3600, gt=0)
    # A claimed message not marked sent within this time is taken again (the worker died mid-send).
    claim_seconds: int = Field(default=120, ge=5)

    @model_validator(mode="after")
    def _channels_known(self) -> NotificationSettings:
        for name, options in self.channels.items():
            check_channel_config(name, options)
        for i, route in enumerate(self.routes):
            for channel in route.channels:
                if channel not in self.channels:
                    raise ValueError(f"routes[{i}].channels: unknown channel {channel!r}")
        return self


class PushPolicy(Section):
    """How a department's alerts are pushed: each one at once, or a digest every N minutes."""

    mode: Literal["immediate", "digest"] = "immediate"
    digest_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # "22:00-07:00" (Asia/Shanghai): inside it only major and critical alerts are pushed.
    quiet_hours: str | None = None

    @field_validator("quiet_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            start, end = (time.fromisoformat(p.strip()) for p in value.split("-"))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a range like 22:00-07:00") from exc
        if start == end:
            raise ValueError("quiet hours must not start and end at the same time")
        return value


class AlertSettings(Section):
    push: PushPolicy = Field(default_factory=PushPolicy)
    # Per department id, overriding ``push``.
    departments: dict[str, PushPolicy] = Field(default_factory=dict)
    # How often the matching worker looks for new items (the ingest trigger); the sweep job is a safety net.
    poll_seconds: float = Field(default=0.2, gt=0, le=60)
    # How often an SSE connection looks for new alerts (one cheap indexed query per connection).
    stream_poll_seconds: float = Field(default=0.2, ge=0.05, le=10)
    sweep_seconds: int = Field(default=60, ge=5)
    # How long `POST /api/v1/rules/test-recent` may scan before answering with what it scanned so far.
    recent_trial_max_seconds: float = Field(default=20.0, gt=0, le=600)

    def policy_for(self, department: str) -> PushPolicy:
        return self.departments.get(department, self.push)


class WeeklyExportSchedule(Section):
    """When the weekly ledger is written and sent (cron fields, in the settings' time zone)."""

    enabled: bool = True
    day_of_week: str = "mon"
    hour: int = Field(default=8, ge=0, le=23)
    minute: int = Field(default=30, ge=0, le=59)

    @field_validator("day_of_week")
    @classmethod
    def _cron_day(cls, value: str) -> str:
        try:
            CronTrigger(day_of_week=value)
        except ValueError as exc:
            raise ValueError(f"not a cron day of week {value!r} (e.g. mon, mon-fri, 0): {exc}") from exc
        return value


class DailyBriefSchedule(Section):
    """When the daily brief (日报) about yesterday is sent."""

    enabled: bool = True
    hour: int = Field(default=8, ge=0, le=23)
    minute: int = Field(default=0, ge=0, le=59)


class ExportSettings(Section):
    weekly_cron: WeeklyExportSchedule = Field(default_factory=WeeklyExportSchedule)
    daily_brief: DailyBriefSchedule = Field(default_factory=DailyBriefSchedule)
    # One extra sheet per department in the weekly workbook (the summary and ledger sheets are always there).
    per_department_sheets: bool = False


class LoggingSettings(Section):
    level: str = "INFO"
    file_level: str = "DEBUG"
    rotation: str = "50 MB"
    retention: str = "30 days"


class SecuritySettings(Section):
    lockout_attempts: int = Field(default=5, ge=1)
    lockout_minutes: int = Field(default=15, ge=1)
    idle_timeout_minutes: int = Field(default=30, ge=1)
    absolute_timeout_hours: int = Field(default=12, ge=1)
    # 等保 level 3 asks for at least six months of audit records.
    audit_retention_days: int = 365
    password_min_length: int = Field(default=10, ge=8)
    password_min_classes: int = Field(default=3, ge=1, le=4)
    # Sources added through the API/console may not point at loopback/private hosts unless allowed.
    allow_private_source_hosts: bool = False
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    login_rate_per_minute: int = Field(default=10, ge=1)
    search_rate_per_minute: int = Field(default=120, ge=1)
    # None: Secure cookies when the request (or server.public_url) is https.
    cookie_secure: bool | None = None

    @field_validator("audit_retention_days")
    @classmethod
    def _at_least_half_a_year(cls, value: int) -> int:
        if value < 180:
            raise ValueError("must be at least 180 days (等保三级要求审计记录至少保存六个月)")
        return value


class Settings(BaseSettings):
    """Everything configurable that is not a domain file (sources, departments, sla, holidays)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    config_dir: Path = Path("config")
    data_dir: Path = Path("data")
    timezone: str = "Asia/Shanghai"
    store: StoreSettings = Field(default_factory=StoreSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    exports: ExportSettings = Field(default_factory=ExportSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs; the environment must win over it.
        return (env_settings, init_settings)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _queue_on_postgresql(self) -> Settings:
        if self.queue.backend == "procrastinate" and not self.database_url.startswith("postgresql"):
            raise ValueError("queue.backend procrastinate needs database.url on PostgreSQL (the queue lives there)")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{(self.data_dir / 'yuqing.db').resolve()}"

    @property
    def sqlite_store_path(self) -> Path:
        return self.store.sqlite_path or self.data_dir / "items.sqlite3"

    def data_path(self, *parts: str) -> Path:
        """A path under the data dir (created on demand by whoever writes there)."""
        return self.data_dir.joinpath(*parts)


def resolve_config_dir(config_dir: str | Path | None = None) -> Path:
    """``--config`` beats ``YUQING_CONFIG_DIR`` beats ``./config``."""
    return Path(config_dir or os.environ.get(f"{ENV_PREFIX}CONFIG_DIR") or "config")


def _env_name(loc: tuple[Any, ...]) -> str:
    return ENV_PREFIX + "__".join(str(p) for p in loc if not isinstance(p, int)).upper()


def load_settings(config_dir: str | Path | None = None, **overrides: Any) -> Settings:
    """Read settings.yaml from the config dir, apply the environment; ConfigError when invalid."""
    cfg_dir = resolve_config_dir(config_dir)
    data = read_yaml(cfg_dir / SETTINGS_FILE) or {}
    # A section left with only comments in it (``database:``) means its defaults, not an error.
    data = {key: value for key, value in data.items() if value is not None}
    data.update(overrides)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        env = _env_name(tuple(err.get("loc", ())))
        if env in os.environ:
            raise config_error(env, err) from exc
        raise validation_to_config_error(SETTINGS_FILE, exc) from exc
    settings.config_dir = cfg_dir
    return settings
