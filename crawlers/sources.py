"""sources.yaml: the crawl targets, validated into Pydantic models (users add sources here, not in code)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from service.config_files import ConfigError, load_model
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


# Placeholders of page_url and form.data values, filled per list page (see crawlers.spiders.paging).
PAGE_PLACEHOLDERS = ("page", "page0", "offset", "end")


def placeholders_in(template: str) -> list[str]:
    """The ``{name}`` placeholders of a template, found with plain string operations."""
    names = []
    start = 0
    while (left := template.find("{", start)) >= 0:
        right = template.find("}", left + 1)
        if right < 0:
            break
        names.append(template[left + 1 : right])
        start = right + 1
    return names


def _check_placeholders(template: str) -> None:
    for name in placeholders_in(template):
        if name not in PAGE_PLACEHOLDERS:
            known = ", ".join("{" + n + "}" for n in PAGE_PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}} in {template!r}: use {known}")


class FormSpec(_Strict):
    """List pages fetched by submitting a form: a plain POST form or an ASP.NET WebForms postback."""

    method: Literal["post", "get"] = "post"
    # Form field holding the page number ({page} numbering: page_start is the second page's number).
    page_field: str | None = None
    # Further fields sent with every page; values may use the page placeholders ({offset}, ...).
    data: dict[str, str] = Field(default_factory=dict)
    # json: send the fields as a JSON object instead of a urlencoded form.
    body: Literal["form", "json"] = "form"
    # ASP.NET WebForms: post back the list page's own form (__VIEWSTATE, __EVENTVALIDATION, ...).
    aspnet: bool = False
    event_target: str | None = None
    # AspNetPager posts the page number ("{page}"); a GridView pager posts "Page${page}"; a 下一页
    # LinkButton (event_target: its name) posts "".
    event_argument: str = "{page}"
    # CSS selector of the form to post back (aspnet); default: the page's first form.
    selector: str | None = None

    @field_validator("event_argument")
    @classmethod
    def _known_argument_placeholders(cls, value: str) -> str:
        _check_placeholders(value)
        return value

    @field_validator("data")
    @classmethod
    def _known_data_placeholders(cls, value: dict[str, str]) -> dict[str, str]:
        for template in value.values():
            _check_placeholders(template)
        return value

    @model_validator(mode="after")
    def _postback_target(self) -> FormSpec:
        if self.aspnet and not self.event_target:
            raise _missing("event_target")
        return self

    def templates(self) -> list[str]:
        """Every template this form fills per page."""
        return [*self.data.values(), *([self.event_argument] if self.aspnet else [])]


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
    # Name of a JavaScript variable or function whose first number is the page count, read from the
    # list page's text without running it: "createPageHTML" for TRS's createPageHTML(12, 0, ...),
    # "totalPage" for ``var totalPage = 12;``.
    total_pages_js: str | None = None
    # Records per page, for the {offset}/{end} placeholders of record-range paging.
    page_size: int | None = Field(default=None, ge=1, le=100000)
    # The first record's offset: 0 for ``start=0``, 1 for JCMS's ``startrecord=1``.
    offset_start: int = Field(default=0, ge=0)
    # json: dotted path to the next page's cursor, sent as query (or form) parameter cursor_param.
    cursor: str | None = None
    cursor_param: str | None = None
    # List pages reached by submitting a form (POST, ASP.NET postbacks).
    form: FormSpec | None = None
    # Selectors on the list entry itself, used when an entry has no detail page (letters marked
    # 不公开) and as a fallback for fields the detail page lacks.
    fields: dict[str, str] = Field(default_factory=dict)

    def _form_pages_differ(self, form: FormSpec) -> bool:
        varying = form.page_field or self.page_url or self.cursor
        return bool(varying) or any(placeholders_in(v) for v in form.data.values())

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
        if value is None:
            return None
        _check_placeholders(value)
        if not placeholders_in(value):
            raise ValueError("page_url must contain {page} (or {page0}, {offset}, {end})")
        return value

    @field_validator("total_pages_js")
    @classmethod
    def _js_name(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("_", "a").replace("$", "a").replace(".", "a").isalnum():
            raise ValueError(f"not a JavaScript name: {value!r}")
        return value

    @model_validator(mode="after")
    def _paging_complete(self) -> ListSpec:
        templates = [self.page_url or "", *(self.form.templates() if self.form else [])]
        uses_offset = any(n in ("offset", "end") for t in templates for n in placeholders_in(t))
        if uses_offset and self.page_size is None:
            raise _missing("page_size")
        if self.cursor and not self.cursor_param:
            raise _missing("cursor_param")
        form = self.form
        if form is not None and not form.aspnet and not self._form_pages_differ(form):
            raise _missing("form", "page_field")  # every page would post the same form
        return self


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
            if self.type == "html" and self.list_.cursor:
                raise ValueError("list.cursor: only for json sources")
            if self.type == "json" and self.list_.form and self.list_.form.aspnet:
                raise ValueError("list.form.aspnet: only for html sources")
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
    # No longer used (repost detection is MinHash LSH in service/items/duplicates.py); accepted so that
    # existing sources.yaml files keep loading.
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


LOADER_KEYS = ("origin", "trust_private")


def load_sources(config_dir: str | Path) -> SourcesFile:
    """Read and validate ``sources.yaml`` from the config dir; ConfigError naming file, key and reason."""
    path = Path(config_dir) / SOURCES_FILE
    try:
        loaded = load_model(path, SourcesFile)
    except ConfigError as exc:
        raise _relocate(exc) from exc
    for index, src in enumerate(loaded.sources):
        if src.origin != "config" or src.trust_private:
            raise ConfigError(SOURCES_FILE, f"sources[{index}]", "origin and trust_private are not settings")
    return loaded


def load_all_sources(settings: Settings) -> SourcesFile:
    """sources.yaml plus the sources added through the API (``<data dir>/sources.api.yaml``)."""
    from service.sources.api_sources import api_sources_path, read_api_sources

    config = load_sources(settings.config_dir)
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
    taken = {s.id for s in config.sources}
    return config.model_copy(update={"sources": [*config.sources, *(s for s in extra if s.id not in taken)]})


def _relocate(exc: ConfigError) -> ConfigError:
    """Move the key named by a model validator's message into the error's key path."""
    head, sep, rest = exc.reason.partition(": ")
    if sep and rest and re.fullmatch(r"[a-z_]+(\.[a-z_]+)*", head):
        return ConfigError(exc.file, f"{exc.path}.{head}" if exc.path else head, rest)
    return exc
