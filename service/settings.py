"""The one Settings object: config/settings.yaml, overridden by ``YUQING_<SECTION>__<KEY>`` variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from service.config_files import ConfigError, format_loc, read_yaml, validation_to_config_error

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


class SchedulerSettings(Section):
    # A late run (process paused, machine asleep) still runs within this many seconds; APScheduler's
    # default of 1 s silently drops it.
    misfire_grace_time: int = Field(default=300, ge=1)
    coalesce: bool = True
    lock_ttl_seconds: int = Field(default=60, ge=5)
    heartbeat_seconds: int = Field(default=15, ge=1)
    match_interval_seconds: int = Field(default=60, ge=1)
    sla_interval_seconds: int = Field(default=60, ge=1)


class LoggingSettings(Section):
    level: str = "INFO"
    file_level: str = "DEBUG"
    rotation: str = "50 MB"
    retention: str = "30 days"


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
    data.update(overrides)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        env = _env_name(tuple(err.get("loc", ())))
        if env in os.environ:
            raise ConfigError(env, format_loc(tuple(err["loc"])), str(err.get("msg", "invalid"))) from exc
        raise validation_to_config_error(SETTINGS_FILE, exc) from exc
    settings.config_dir = cfg_dir
    return settings
