"""List pagination shared by the spiders: page placeholders, forms and ASP.NET postbacks, JS page counts.

A list page is known by its position ``number`` in the crawl: 1 is the start URL, 2 the page after it.
Every template (``list.page_url``, ``list.form.data`` values, ``list.form.event_argument``) is filled
from that position alone, so a crawl never needs anything but the previous page to go on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import scrapy
from scrapy.http import FormRequest, JsonRequest, Response, TextResponse

from crawlers import templates
from crawlers.page_specs import FormSpec, ListSpec

# A page count longer than this is not a page count (and must not make us scan a huge page for digits).
_MAX_DIGITS = 7
_IDENTIFIER_CHARS = frozenset("_$.")


def page_values(spec: ListSpec, number: int) -> dict[str, str]:
    """The placeholder values of list page ``number`` (1 = the start URL).

    ``{page}``: the page number, ``page_start`` on the second page (so ``page_start - 1`` on the first);
    ``{page0}``: the page's position counted from 0 (``index_{page0}.html`` gives index_1.html for the
    second page); ``{offset}``: the first record of the page, ``offset_start + (number - 1) * page_size``;
    ``{end}``: the page's last record, ``offset + page_size - 1``.
    """
    size = spec.page_size or 0
    offset = spec.offset_start + (number - 1) * size
    return {
        "page": str(spec.page_start + number - 2),
        "page0": str(number - 1),
        "offset": str(offset),
        "end": str(offset + size - 1),
    }


def fill(template: str, values: dict[str, str]) -> str:
    """``template`` with its ``{name}`` placeholders replaced (``{{``/``}}`` are literal braces; nothing evaluated)."""
    return templates.render(template, values.get)


def _typed(values: dict[str, str]) -> Callable[[str], Any]:
    # Page numbers and offsets go into a JSON body as numbers, as the APIs' own pages send them.
    return lambda name: int(values[name]) if name in values and values[name].lstrip("-").isdigit() else values.get(name)


def set_query_param(url: str, name: str, value: str) -> str:
    """``url`` with query parameter ``name`` set to ``value`` (other parameters kept in order)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query)))


def total_from_js(text: str, name: str) -> int | None:
    """The first number given to ``name`` in a page's script: ``name(12, ...)``, ``name = 12``, ``name: "12"``.

    Found with plain string search and a digit scan: the page's JavaScript is never run, and the
    configured name never becomes a regex. Occurrences not followed by a number (the function's own
    definition, ``name == x``) are skipped. None when no occurrence gives a number.
    """
    if not name:
        return None
    start = 0
    while (at := text.find(name, start)) >= 0:
        start = at + len(name)
        before = text[at - 1] if at > 0 else " "
        if before.isalnum() or before in _IDENTIFIER_CHARS:
            continue  # the tail of a longer name (myTotalPage)
        i = _skip_space(text, start)
        if i >= len(text) or text[i] not in "(=:":
            continue
        i = _skip_space(text, i + 1)
        if i < len(text) and text[i] in "'\"":
            i += 1
        end = i
        while end < len(text) and end - i <= _MAX_DIGITS and "0" <= text[end] <= "9":
            end += 1
        if i < end <= i + _MAX_DIGITS:
            return int(text[i:end])
    return None


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def reached_total(number: int, total: Any) -> bool:
    """True when page ``number`` is the last of ``total`` pages (a number, or a string of digits)."""
    if isinstance(total, bool) or total is None:
        return False
    if isinstance(total, float) and total.is_integer():
        total = int(total)
    if isinstance(total, str) and total.strip().isdigit():
        total = int(total)
    return isinstance(total, int) and number >= total


class ListPager:
    """Builds the request of each list page of one source, with a key that tells pages apart."""

    def __init__(self, spec: ListSpec, encoding: str | None, errback: Callable[..., Any]) -> None:
        self.spec = spec
        self.encoding = encoding or "utf-8"
        self.errback = errback

    def first(self, start_url: str, callback: Callable[..., Any]) -> tuple[str, scrapy.Request]:
        """The request of the start URL (posted when the list is a plain form)."""
        form = self.spec.form
        meta = {"page": 1, "start_url": start_url}
        if form is not None and not form.aspnet:
            return self._form(start_url, form, page_values(self.spec, 1), {}, meta, callback)
        return start_url, self._get(start_url, meta, callback)

    def after(
        self,
        previous: Response,
        callback: Callable[..., Any],
        next_link: str | None = None,
        cursor: str | None = None,
    ) -> tuple[str, scrapy.Request] | None:
        """The request of the page after ``previous``; None when the source's paging has no next page.

        ``next_link`` is the html "next" link found on ``previous``; ``cursor`` the json cursor read from it.
        """
        spec = self.spec
        number = previous.meta["page"] + 1
        start_url = previous.meta["start_url"]
        values = page_values(spec, number)
        meta = {"page": number, "start_url": start_url}
        form = spec.form
        if spec.cursor:
            if not cursor or spec.cursor_param is None:
                return None
            if form is not None:
                return self._form(start_url, form, values, {spec.cursor_param: cursor}, meta, callback)
            url = set_query_param(start_url, spec.cursor_param, cursor)
            return url, self._get(url, meta, callback)
        if form is not None and form.aspnet:
            return self._postback(previous, form, values, meta, callback)
        if spec.next:
            if not next_link:
                return None
            url = previous.urljoin(next_link)
            return url, self._get(url, meta, callback)
        if form is not None:
            url = urljoin(start_url, fill(spec.page_url, values)) if spec.page_url else start_url
            return self._form(url, form, values, {}, meta, callback)
        if spec.page_url:
            url = urljoin(start_url, fill(spec.page_url, values))
        elif spec.page_param:
            url = set_query_param(start_url, spec.page_param, values["page"])
        else:
            return None
        return url, self._get(url, meta, callback)

    def _get(self, url: str, meta: dict[str, Any], callback: Callable[..., Any]) -> scrapy.Request:
        return scrapy.Request(url, callback=callback, errback=self.errback, meta=meta)

    def _form(
        self,
        url: str,
        form: FormSpec,
        values: dict[str, str],
        extra: dict[str, str],
        meta: dict[str, Any],
        callback: Callable[..., Any],
    ) -> tuple[str, scrapy.Request]:
        if form.body == "json" and form.method == "post":
            typed: dict[str, Any] = templates.build_json(dict(form.data), _typed(values))
            if form.page_field:
                typed[form.page_field] = int(values["page"])
            typed.update(extra)
            key = f"{form.method} {url} {json.dumps(typed, sort_keys=True, ensure_ascii=False)}"
            request: scrapy.Request = JsonRequest(
                url, data=typed, method="POST", callback=callback, errback=self.errback, meta=meta
            )
        else:
            data = templates.build_form(dict(form.data), values.get)
            if form.page_field:
                data[form.page_field] = values["page"]
            data.update(extra)
            key = f"{form.method} {url} {json.dumps(data, sort_keys=True, ensure_ascii=False)}"
            request = FormRequest(
                url,
                method=form.method.upper(),
                formdata=data,
                encoding=self.encoding,
                callback=callback,
                errback=self.errback,
                meta=meta,
            )
        return key, request

    def _postback(
        self,
        previous: Response,
        form: FormSpec,
        values: dict[str, str],
        meta: dict[str, Any],
        callback: Callable[..., Any],
    ) -> tuple[str, scrapy.Request]:
        # The page's own form carries __VIEWSTATE, __EVENTVALIDATION and __VIEWSTATEGENERATOR of this
        # very response; the server refuses a postback that does not return them unchanged.
        assert form.event_target is not None
        if not isinstance(previous, TextResponse):
            raise TypeError("ASP.NET 回发需要 HTML 列表页")
        data = templates.build_form(dict(form.data), values.get)
        data["__EVENTTARGET"] = form.event_target
        data["__EVENTARGUMENT"] = fill(form.event_argument, values)
        request = FormRequest.from_response(
            previous,
            formcss=form.selector,
            formdata=data,
            dont_click=True,  # clicking the search button would post a search, not a page change
            callback=callback,
            errback=self.errback,
            meta=meta,
        )
        # Keyed by position: a "下一页" button posts the same target and argument on every page, so
        # loops are left by the spider's all-entries-seen rule instead.
        return f"postback {meta['page']}", request
