"""sources.yaml: the crawl targets, validated into Pydantic models (users add sources here, not in code)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from service.config_files import ConfigError, load_model

SOURCES_FILE = "sources.yaml"

_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_interval(value: str) -> timedelta:
    """``15m`` / ``1h`` / ``30s`` / ``1d`` as a timedelta; ValueError otherwise."""
    match = _INTERVAL.match(str(value))
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"invalid interval {value!r}: use a positive number with s, m, h or d (e.g. 15m)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


FIELD_NAMES = (
    "external_id",
    "title",
    "content",
    "published_at",
    "department",
    "status",
    "reply",
    "replied_at",
)


class _Strict(BaseModel):
    # A misspelt key would otherwise silently disable a selector.
    model_config = ConfigDict(extra="forbid")


class ListSpec(_Strict):
    """How to find entries on a list page (html: CSS/XPath selectors; json: dotted paths)."""

    items: str
    url: str | None = None
    next: str | None = None
    # Query parameter holding the page number (json APIs; html lists paged by ?page=N too).
    page_param: str | None = None
    # URL template with ``{page}`` for lists paged in the path (``index_{page}.html``); relative
    # templates resolve against the first start URL.
    page_url: str | None = None
    # The number of the second page for page_param/page_url paging (the start URL is the first page).
    page_start: int = Field(default=2, ge=0)
    # json: dotted path to the total number of pages, when the API says it.
    total_pages: str | None = None
    # Selectors on the list entry itself, used when an entry has no detail page (letters marked
    # 不公开) and as a fallback for fields the detail page lacks.
    fields: dict[str, str] = Field(default_factory=dict)

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(FIELD_NAMES))
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}: use one of {', '.join(FIELD_NAMES)}")
        return value

    @field_validator("page_url")
    @classmethod
    def _has_placeholder(cls, value: str | None) -> str | None:
        if value is not None and "{page}" not in value:
            raise ValueError("page_url must contain {page}")
        return value


class FieldsSpec(_Strict):
    """Selectors of one record's fields (html: on the detail page; json: in one record)."""

    external_id: str | None = None
    title: str | None = None
    content: str | None = None
    published_at: str | None = None
    department: str | None = None
    status: str | None = None
    reply: str | None = None
    replied_at: str | None = None

    def selectors(self) -> dict[str, str]:
        """The configured fields only, by name."""
        return {name: sel for name in FIELD_NAMES if (sel := getattr(self, name))}


class Source(_Strict):
    """One configured site: a 12345 hotline list, a mayor's mailbox API or a media feed."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    name: str = Field(min_length=1)
    channel: Literal["hotline", "mailbox", "media"]
    type: Literal["html", "json", "rss"]
    start_urls: list[str] = Field(min_length=1)
    encoding: str | None = None
    interval: str
    max_pages: int = Field(default=5, ge=1, le=1000)
    # "list" is the YAML key; the attribute is list_ so it does not shadow the builtin in annotations.
    list_: ListSpec | None = Field(default=None, alias="list")
    fields: FieldsSpec = Field(default_factory=FieldsSpec)
    obey_robots: bool = True
    enabled: bool = True
    user_agent: str | None = None

    @field_validator("start_urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"not an http(s) URL: {url!r}")
        return urls

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        parse_interval(value)
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import codecs

        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _needs_selectors(self) -> Source:
        if self.type in ("html", "json"):
            if self.list_ is None:
                raise _missing("list")
            if not self.fields.title and "title" not in self.list_.fields:
                raise _missing("fields", "title")
        return self

    @property
    def period(self) -> timedelta:
        return parse_interval(self.interval)

    @property
    def trusted_hosts(self) -> set[str]:
        """Hosts the administrator vouched for by naming them in start_urls."""
        return {(urlsplit(u).hostname or "").lower() for u in self.start_urls}


class _MissingField(ValueError):
    """Raised by model validators so the error names the missing key like Pydantic's own."""

    def __init__(self, *path: str) -> None:
        self.path = path
        super().__init__(f"{'.'.join(path)}: required")


def _missing(*path: str) -> _MissingField:
    return _MissingField(*path)


class CrawlDefaults(_Strict):
    """Politeness and robustness knobs shared by all sources (``crawl:`` in sources.yaml)."""

    autothrottle: bool = True
    download_delay: float = Field(default=1.0, ge=0)
    concurrency_per_domain: int = Field(default=2, ge=1, le=32)
    timeout: float = Field(default=20.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    max_download_mb: float = Field(default=10.0, gt=0)
    user_agent: str = "Mozilla/5.0 (compatible; yuqing/0.1; +https://github.com/yuqing)"
    batch_size: int = Field(default=100, ge=1, le=5000)
    simhash_distance: int = Field(default=3, ge=0, le=3)


class SourcesFile(_Strict):
    """The whole sources.yaml."""

    crawl: CrawlDefaults = Field(default_factory=CrawlDefaults)
    sources: list[Source] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> SourcesFile:
        seen: set[str] = set()
        for src in self.sources:
            if src.id in seen:
                raise ValueError(f"duplicate source id {src.id!r}")
            seen.add(src.id)
        return self

    def get(self, source_id: str) -> Source:
        """The source with this id; KeyError naming it otherwise."""
        for src in self.sources:
            if src.id == source_id:
                return src
        raise KeyError(source_id)


def load_sources(config_dir: str | Path) -> SourcesFile:
    """Read and validate ``sources.yaml`` from the config dir; ConfigError naming file, key and reason."""
    path = Path(config_dir) / SOURCES_FILE
    try:
        return load_model(path, SourcesFile)
    except ConfigError as exc:
        raise _relocate(exc) from exc


def _relocate(exc: ConfigError) -> ConfigError:
    """Move the key named by a model validator's message into the error's key path."""
    head, sep, rest = exc.reason.partition(": ")
    if sep and rest == "required" and re.fullmatch(r"[a-z_]+(\.[a-z_]+)*", head):
        return ConfigError(exc.file, f"{exc.path}.{head}" if exc.path else head, "required")
    return exc
