"""How a source's pages are read (the ``list``, ``detail``, ``form`` and ``fields`` keys of a source in
sources.yaml): selectors and paths, field rules, detail requests, form posts and paging placeholders.

:mod:`crawlers.sources` holds the source itself, the crawl defaults and the loading of sources.yaml.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crawlers import templates

FIELD_NAMES = (
    "external_id",
    "order_no",
    "title",
    "content",
    "published_at",
    "department",
    "status",
    "reply",
    "replied_at",
)


class Strict(BaseModel):
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


class FieldRule(Strict):
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
        return check_regex(value)

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


class DetailSpec(Strict):
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


class FormSpec(Strict):
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
            raise missing("event_target")
        return self

    def templates(self) -> list[Any]:
        """Every template this form fills per page."""
        return [*self.data.values(), *([self.event_argument] if self.aspnet else [])]


class ListSpec(Strict):
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
        return check_regex(value)

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
            raise missing("page_size")
        if self.cursor and not self.cursor_param:
            raise missing("cursor_param")
        form = self.form
        if form is not None and not form.aspnet and not self._form_pages_differ(form):
            raise missing("form", "page_field")  # every page would post the same form
        return self


class FieldsSpec(Strict):
    """Selectors of one record's fields (html: on the detail page; json: in one record)."""

    external_id: FieldValue | None = None
    # The number people quote for the record (12345 工单号, 信件编号), shown beside the original link.
    order_no: FieldValue | None = None
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


class MissingField(ValueError):
    """Raised by model validators so the error names the missing key like Pydantic's own."""

    def __init__(self, *path: str) -> None:
        self.path = path
        super().__init__(f"{'.'.join(path)}: required")


def missing(*path: str) -> MissingField:
    return MissingField(*path)


def check_regex(value: str | None) -> str | None:
    """A configured regular expression that compiles; the error names the pattern."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regex {value!r}: {exc}") from exc
    return value
