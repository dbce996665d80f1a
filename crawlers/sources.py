"""sources.yaml: the crawl targets, validated into Pydantic models (users add sources here, not in code)."""

from __future__ import annotations

import codecs
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from crawlers import templates
from crawlers.api_sources import api_sources_path, read_api_sources
from crawlers.middlewares import dns_server
from crawlers.plugins import plugin_class
from service.config_files import ConfigError, read_yaml, validation_to_config_error
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


def placeholders_in(template: Any) -> list[str]:
    """The ``{name}`` placeholders of a template or request body (``{{``/``}}`` are literal braces)."""
    return templates.body_names(template)


def _check_placeholders(template: Any) -> None:
    for name in placeholders_in(template):
        if name not in PAGE_PLACEHOLDERS:
            known = ", ".join("{" + n + "}" for n in PAGE_PLACEHOLDERS)
            raise ValueError(
                f"unknown placeholder {{{name}}} in {template!r}: use {known} (write {{{{ and }}}} for literal braces)"
            )


# How a response is read: auto (by Content-Type), html, xml, cdata (an XML body whose records hold HTML
# inside <![CDATA[...]]>, as 大汉 JCMS dataproxy answers: unwrapped and read as HTML), json (JSONP and
# non-strict JSON tolerated), js (a JavaScript object literal: var data = {...}, single quotes, ...).
ResponseType = Literal["auto", "html", "xml", "cdata", "json", "js"]


class FieldRule(_Strict):
    """A field written as a mapping: where to find it and how to clean it up.

    ``select`` is a selector (html) or path (json) like the short form; ``template`` builds the value
    from the list entry's values instead (``"{deptId}-{id}"``). Then ``regex`` keeps its named group
    ``value`` (else group 1, else the whole match), ``map`` replaces whole values (``"3": 已办结``) and
    ``date_format`` gives explicit strptime patterns for dates (``"%Y年%m月%d日 %H时%M分"``).
    """

    select: str | None = None
    template: str | None = None
    regex: str | None = None
    map: dict[str, str] = Field(default_factory=dict)
    date_format: list[str] = Field(default_factory=list)

    @field_validator("map", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        # YAML reads `3: 已办结` with an int key; the site's value is compared as text.
        if isinstance(value, dict):
            return {str(k): "" if v is None else str(v) for k, v in value.items()}
        return value

    @field_validator("date_format", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return _check_regex(value)

    @field_validator("template")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            templates.parse(value)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> FieldRule:
        if (self.select is None) == (self.template is None):
            raise ValueError("write exactly one of select or template")
        return self


FieldValue = str | FieldRule


def as_rule(value: FieldValue) -> FieldRule:
    """The short form (a selector string) as a FieldRule."""
    return value if isinstance(value, FieldRule) else FieldRule(select=value)


def _check_field_names(value: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(value) - set(FIELD_NAMES))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}: use one of {', '.join(FIELD_NAMES)}")
    return value


class DetailSpec(_Strict):
    """The request of one record's detail, built from the list entry (JSON record or HTML entry).

    Templates name the entry's values: a JSON record's keys and dotted paths (``{id}``, ``{info.tid}``),
    the groups of ``list.url_pattern`` (``{1}``, ``{tid}``), ``{url}`` (the raw value of ``list.url``),
    ``list.vars`` and ``list.fields`` by name.
    """

    url: str
    method: Literal["get", "post"] = "get"
    # A urlencoded form body (values: templates; a mapping value is sent as JSON text).
    form: dict[str, Any] | None = None
    # A JSON body: nested mappings and lists, YAML types kept, "{id}" keeps the record's own type.
    json_body: Any = Field(default=None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)
    response: ResponseType = "auto"
    # The link stored with the item when the detail URL is not one a person can open (a POST API).
    link: str | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _templates_parse(self) -> DetailSpec:
        templates.parse(self.url)
        if self.link:
            templates.parse(self.link)
        templates.body_names(self.form or {})
        templates.body_names(self.json_body)
        if self.form is not None and self.json_body is not None:
            raise ValueError("write form or json, not both")
        if (self.form is not None or self.json_body is not None) and self.method == "get":
            self.method = "post"
        return self


class FormSpec(_Strict):
    """List pages fetched by submitting a form: a plain POST form or an ASP.NET WebForms postback."""

    method: Literal["post", "get"] = "post"
    # Form field holding the page number ({page} numbering: page_start is the second page's number).
    page_field: str | None = None
    # Further fields sent with every page; values may use the page placeholders ({offset}, ...).
    # Values keep their YAML type in a JSON body (numbers, true/false, null, nested mappings); in a
    # urlencoded form a mapping or list value is sent as JSON text (param={"page":1}).
    data: dict[str, Any] = Field(default_factory=dict)
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
    def _known_data_placeholders(cls, value: dict[str, Any]) -> dict[str, Any]:
        for template in value.values():
            _check_placeholders(template)
        return value

    @model_validator(mode="after")
    def _postback_target(self) -> FormSpec:
        if self.aspnet and not self.event_target:
            raise _missing("event_target")
        return self

    def templates(self) -> list[Any]:
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
    fields: dict[str, FieldValue] = Field(default_factory=dict)
    # A regex applied to the value of ``url`` (an onclick="show('123','0')" or javascript: link); its
    # groups fill detail templates ({1}, {name}); without ``detail`` group "link" (else 1) is the link.
    url_pattern: str | None = None
    # Extra values of the entry for templates, by name (selectors on the entry / paths in the record).
    vars: dict[str, FieldValue] = Field(default_factory=dict)
    # How the list page is read (see ResponseType); "cdata" for JCMS dataproxy XML.
    response: ResponseType = "auto"

    def _form_pages_differ(self, form: FormSpec) -> bool:
        varying = form.page_field or self.page_url or self.cursor
        return bool(varying) or any(placeholders_in(v) for v in form.data.values())

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, FieldValue]) -> dict[str, FieldValue]:
        return _check_field_names(value)

    @field_validator("url_pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        return _check_regex(value)

    def field_rules(self) -> dict[str, FieldRule]:
        """The entry's fields as rules, by name."""
        return {name: as_rule(value) for name, value in self.fields.items()}

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

    external_id: FieldValue | None = None
    title: FieldValue | None = None
    content: FieldValue | None = None
    published_at: FieldValue | None = None
    department: FieldValue | None = None
    status: FieldValue | None = None
    reply: FieldValue | None = None
    replied_at: FieldValue | None = None

    def rules(self) -> dict[str, FieldRule]:
        """The configured fields only, by name, as rules."""
        return {name: as_rule(sel) for name in FIELD_NAMES if (sel := getattr(self, name))}


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
                raise _missing("list")
            if not self.fields.title and "title" not in self.list_.fields:
                raise _missing("fields", "title")
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


class SourcesFile(_Strict):
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
                error = ConfigError(SOURCES_FILE, f"{where}.{inner.path}" if inner.path else where, inner.reason)
        if error is not None:
            if strict:
                raise error
            invalid.append(InvalidSource(source_id=sid, error=error))
    result = loaded.model_copy(update={"sources": valid})
    result._invalid = invalid
    return result


def load_all_sources(settings: Settings) -> SourcesFile:
    """sources.yaml plus the sources added through the API (``<data dir>/sources.api.yaml``)."""
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
        return ConfigError(exc.file, f"{exc.path}.{head}" if exc.path else head, rest)
    return exc


def _check_regex(value: str | None) -> str | None:
    """A configured regular expression that compiles; the error names the pattern."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regex {value!r}: {exc}") from exc
    return value
