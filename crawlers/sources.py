"""sources.yaml: the crawl targets, validated into Pydantic models (users add sources here, not in code).

How each page of a source is read (list, detail, form, fields) is :mod:`crawlers.page_specs`.
"""

from __future__ import annotations

import codecs
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from crawlers.api_sources import api_sources_path, read_api_sources
from crawlers.middlewares import dns_server
from crawlers.page_specs import (
    DetailSpec,
    FieldsSpec,
    ListSpec,
    Strict,
    missing,
)
from crawlers.plugins import plugin_class
from service.config_files import ConfigError, cached, read_yaml, validation_to_config_error
from service.settings import Settings
from service.vocabulary import Channel

SOURCES_FILE = "sources.yaml"

_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_interval(value: str) -> timedelta:
    """``15m`` / ``1h`` / ``30s`` / ``1d`` as a timedelta; ValueError otherwise."""
    match = _INTERVAL.match(str(value))
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"invalid interval {value!r}: use a positive number with s, m, h or d (e.g. 15m)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class Source(Strict):
    """One configured site: a 12345 hotline list, a mayor's mailbox API or a media feed."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    name: str = Field(min_length=1)
    channel: Channel
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
    # Sent with every request of this source (Referer, Origin, X-Requested-With ...).
    headers: dict[str, str] = Field(default_factory=dict)
    # Cookies sent from the first request on; cookies the site sets are kept for the whole crawl.
    cookies: dict[str, str] = Field(default_factory=dict)
    # A page fetched before the list, for the session cookie some sites set there (JSESSIONID).
    session_url: str | None = None
    # The request of each record's detail (json lists, POST details, links built from JavaScript).
    detail: DetailSpec | None = None
    # A Python class for a site that needs code (signatures, encrypted answers): package.module:Class,
    # a crawlers.plugins.SourcePlugin subclass, constructed with plugin_options. sources.yaml only.
    plugin: str | None = None
    plugin_options: dict[str, Any] = Field(default_factory=dict)
    # browser: pages are rendered by headless Chromium (scrapy-playwright) before the selectors run, for
    # single-page apps whose letters only appear after their JavaScript ran. Slower: only where needed.
    render: Literal["http", "browser"] = "http"
    # CSS selector a rendered detail page must show before it is read (list pages wait for list.items).
    render_wait: str | None = None
    # Set by the loader, never read from a file: where the source came from and whether an API source's
    # hosts may be internal (security.allow_private_source_hosts).
    origin: Literal["config", "api"] = "config"
    trust_private: bool = False

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
        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _needs_selectors(self) -> Source:
        if self.type in ("html", "json"):
            if self.list_ is None:
                raise missing("list")
            if not self.fields.title and "title" not in self.list_.fields:
                raise missing("fields", "title")
            if self.type == "html" and self.list_.cursor:
                raise ValueError("list.cursor: only for json sources")
            if self.type == "json" and self.list_.form and self.list_.form.aspnet:
                raise ValueError("list.form.aspnet: only for html sources")
        if self.session_url is not None:
            self._http_urls([self.session_url])
        if self.plugin is not None:
            if self.origin == "api":
                # Code runs in the crawl process: only the administrator's own file may name it.
                raise ValueError("plugin: only in sources.yaml, not for sources added through the API")
            plugin_class(self.plugin)
        return self

    @property
    def period(self) -> timedelta:
        return parse_interval(self.interval)

    @property
    def trusted_hosts(self) -> set[str]:
        """Hosts the administrator vouched for by naming them in start_urls (sources.yaml only).

        A source added through the API is vouched for by nobody: its own hosts get the same internal-address
        check as any link, unless ``security.allow_private_source_hosts`` allowed them when it was loaded.
        """
        if self.origin == "api" and not self.trust_private:
            return set()
        return {(urlsplit(u).hostname or "").lower() for u in self.start_urls}

    @property
    def trusted_origins(self) -> set[tuple[str, str, int]]:
        """Origins (scheme, host, port) of ``start_urls`` the administrator vouched for; see ``trusted_hosts``.

        Trust goes by origin, not host name: another port of a trusted intranet host is another service.
        """
        if self.origin == "api" and not self.trust_private:
            return set()
        out = set()
        for url in self.start_urls:
            parts = urlsplit(url)
            out.add(
                (parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80))
            )
        return out


class CrawlDefaults(Strict):
    """Politeness and robustness knobs shared by all sources (``crawl:`` in sources.yaml)."""

    autothrottle: bool = True
    download_delay: float = Field(default=1.0, ge=0)
    concurrency_per_domain: int = Field(default=2, ge=1, le=32)
    timeout: float = Field(default=20.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    max_download_mb: float = Field(default=10.0, gt=0)
    user_agent: str = "Mozilla/5.0 (compatible; yuqing/0.1; +https://github.com/yuqing)"
    # Items written to the store at once (one candidate lookup and one write per batch). Into Elasticsearch a
    # batch grows up to five times this while the batch before is still in the air (crawlers/store_writes.py).
    batch_size: int = Field(default=100, ge=1, le=5000)
    # Seconds an item waits at most for its batch to fill: a crawl with a politeness delay per page fills a batch
    # of 100 in minutes, and its first items would wait that long to be stored and matched.
    batch_seconds: float = Field(default=5.0, gt=0, le=3600)
    # No longer used (repost detection is MinHash LSH in service/items/duplicates.py); accepted so that
    # existing sources.yaml files keep loading.
    simhash_distance: int = Field(default=3, ge=0, le=3)
    # The Chromium used by sources with render: browser (Debian's package; no browser is downloaded).
    chromium: str = "/usr/bin/chromium"
    # Seconds a rendered page may take to show render_wait / list.items.
    render_timeout: float = Field(default=20.0, gt=0)
    # Resolvers for the crawl's name lookups ("10.0.0.53" or "10.0.0.53:5353"); empty: the system's.
    dns_servers: list[str] = Field(default_factory=list)

    @field_validator("dns_servers")
    @classmethod
    def _dns_servers(cls, value: list[str]) -> list[str]:
        for server in value:
            try:
                dns_server(server)
            except ValueError as exc:
                raise ValueError(f"DNS 服务器应写成 IP 或 IP:端口，收到 {server!r}") from exc
        return value


class SourcesFile(Strict):
    """The whole sources.yaml (its valid sources; the invalid ones are listed in ``invalid``)."""

    crawl: CrawlDefaults = Field(default_factory=CrawlDefaults)
    sources: list[Source] = Field(default_factory=list)
    # Sources of the file that did not validate, each with file, key path and reason; skipped.
    _invalid: list[InvalidSource] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> SourcesFile:
        seen: set[str] = set()
        for src in self.sources:
            if src.id in seen:
                raise ValueError(f"duplicate source id {src.id!r}")
            seen.add(src.id)
        return self

    @property
    def invalid(self) -> list[InvalidSource]:
        return self._invalid

    def get(self, source_id: str) -> Source:
        """The source with this id; KeyError naming it otherwise."""
        for src in self.sources:
            if src.id == source_id:
                return src
        raise KeyError(source_id)

    def invalid_source(self, source_id: str) -> InvalidSource | None:
        """The report of an invalid source of this id (None when it is valid or unknown)."""
        return next((bad for bad in self._invalid if bad.source_id == source_id), None)


class InvalidSource(BaseModel):
    """A source entry that did not validate: it is skipped, the others run."""

    source_id: str | None
    error: ConfigError

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def label(self) -> str:
        return self.source_id or self.error.path


LOADER_KEYS = ("origin", "trust_private")


def load_sources(config_dir: str | Path, strict: bool = False) -> SourcesFile:
    """Read and validate ``sources.yaml`` from the config dir.

    A broken file (YAML syntax, the ``crawl:`` section, ``sources`` not a list) raises ConfigError naming
    file, key and reason. A broken source entry is kept in ``invalid`` with the same report and skipped,
    so one mistyped source does not halt the others; ``strict`` raises it instead.
    """
    path = Path(config_dir) / SOURCES_FILE
    data = read_yaml(path) or {}
    entries = data.get("sources") or []
    if not isinstance(entries, list):
        raise ConfigError(SOURCES_FILE, "sources", "must be a list of sources")
    try:
        loaded = SourcesFile.model_validate({**data, "sources": []})
    except ValidationError as exc:
        raise _relocate(validation_to_config_error(SOURCES_FILE, exc)) from exc
    valid: list[Source] = []
    invalid: list[InvalidSource] = []
    for index, entry in enumerate(entries):
        where = f"sources[{index}]"
        sid = entry.get("id") if isinstance(entry, dict) and isinstance(entry.get("id"), str) else None
        error: ConfigError | None = None
        if not isinstance(entry, dict):
            error = ConfigError(SOURCES_FILE, where, "a source must be a mapping")
        elif any(key in entry for key in LOADER_KEYS):
            error = ConfigError(SOURCES_FILE, where, "origin and trust_private are not settings")
        elif sid is not None and any(s.id == sid for s in valid):
            error = ConfigError(SOURCES_FILE, f"{where}.id", f"duplicate source id {sid!r}")
        else:
            try:
                valid.append(Source.model_validate(entry))
            except ValidationError as exc:
                inner = _relocate(validation_to_config_error(SOURCES_FILE, exc))
                at = f"{where}.{inner.path}" if inner.path else where
                error = ConfigError(SOURCES_FILE, at, inner.reason, inner.explanation)
        if error is not None:
            if strict:
                raise error
            invalid.append(InvalidSource(source_id=sid, error=error))
    result = loaded.model_copy(update={"sources": valid})
    result._invalid = invalid
    return result


def load_all_sources(settings: Settings) -> SourcesFile:
    """sources.yaml plus the sources added through the API (``<data dir>/sources.api.yaml``).

    Parsed once and kept until either file changes: every crawl job asks (the worker twice, its crawl once),
    and with 200 sources a parse costs 0.1 s CPU, as much as the crawl of a small source. Callers only read
    the result.
    """
    trust = settings.security.allow_private_source_hosts
    paths = (Path(settings.config_dir) / SOURCES_FILE, api_sources_path(settings))
    return cached(f"sources:{trust}", paths, lambda: _load_all_sources(settings))


def _load_all_sources(settings: Settings) -> SourcesFile:
    config = load_sources(settings.config_dir)
    invalid = config.invalid
    path = api_sources_path(settings)
    try:
        raw = read_api_sources(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(path.name, "", f"cannot read API sources: {exc}") from exc
    trust = settings.security.allow_private_source_hosts
    extra = []
    for index, definition in enumerate(raw):
        clean = {k: v for k, v in definition.items() if k not in LOADER_KEYS}
        try:
            extra.append(Source.model_validate(clean | {"origin": "api", "trust_private": trust}))
        except ValueError as exc:
            raise ConfigError(path.name, f"sources[{index}]", str(exc).splitlines()[0]) from exc
    taken = {s.id for s in config.sources} | {bad.source_id for bad in invalid if bad.source_id}
    merged = config.model_copy(update={"sources": [*config.sources, *(s for s in extra if s.id not in taken)]})
    merged._invalid = invalid
    return merged


def _relocate(exc: ConfigError) -> ConfigError:
    """Move the key named by a model validator's message into the error's key path."""
    head, sep, rest = exc.reason.partition(": ")
    if sep and rest and re.fullmatch(r"[a-z_]+(\.[a-z_]+)*", head):
        return ConfigError(exc.file, f"{exc.path}.{head}" if exc.path else head, rest, exc.explanation)
    return exc
