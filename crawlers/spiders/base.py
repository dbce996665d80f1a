"""The base of the generic spiders: one source per spider, error bookkeeping, decoding, page limits."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any, ClassVar
from urllib.parse import urlencode, urljoin, urlsplit

import scrapy
from parsel import Selector
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from crawlers import templates
from crawlers.browser import render_meta
from crawlers.encoding import choose_encoding
from crawlers.extract import extract_text_value, json_path, looks_like_challenge
from crawlers.fields import (
    Context,
    Document,
    entry_values,
    extract_fields,
    is_empty,
    link_captures,
    read_document,
    selector_report,
)
from crawlers.items import RawItem
from crawlers.page_specs import FIELD_NAMES, as_rule
from crawlers.plugins import SourcePlugin, plugin_class
from crawlers.sources import CrawlDefaults, Source
from crawlers.spiders.failures import NETWORK_ERRORS, NotSent, failure_reason
from crawlers.spiders.paging import ListPager
from crawlers.text import html_to_text

MAX_ERROR_SAMPLES = 20
logger = logging.getLogger(__name__)


def guarded(callback: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """A callback whose exceptions become a recorded error for the page; the crawl goes on."""

    @functools.wraps(callback)
    def wrapper(self: SourceSpider, response: Response, **kwargs: Any) -> Iterator[Any]:
        try:
            for out in callback(self, response, **kwargs):
                yield self.prepare(out) if isinstance(out, scrapy.Request) else out
        except Exception as exc:  # a hostile page must not stop the crawl
            self.record_error(response.url, f"解析失败: {type(exc).__name__}: {exc}")

    return wrapper


class SourceSpider(scrapy.Spider):
    """Fetches one configured source and yields RawItems; subclasses know html, json or rss."""

    source: ClassVar[Source]
    crawl: ClassVar[CrawlDefaults]
    # Check mode (``yuqing sources check``): one list page and one detail page, nothing stored.
    check_mode: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trusted_hosts = self.source.trusted_hosts
        self.trusted_origins = self.source.trusted_origins
        self.errors = 0
        self.error_samples: list[dict[str, str]] = []
        self.pages = 0
        self.entries = 0  # list entries (or records) found
        self.items_yielded = 0
        self.missing_title = 0
        # List nodes (HTML entries, JSON records) the list selector matched, usable or not.
        self.nodes = 0
        # Items whose configured required field came back empty, by field.
        self.empty_fields: dict[str, int] = {}
        self.challenge = False
        self.seen_pages: set[str] = set()
        self.seen_entries: set[str] = set()
        # Per list page: entries seen the first time, and nodes that gave nothing usable.
        self.fresh = 0
        self.unusable = 0
        self.details_requested = 0
        # Check mode: per selector, the nodes it matched and its first value (yuqing sources check).
        self.selectors: list[dict[str, Any]] = []
        self._reported: set[str] = set()
        spec = self.source.list_
        self.pager = ListPager(spec, self.source.encoding, self.on_error) if spec is not None else None
        self.plugin: SourcePlugin | None = None
        self.plugin_error: str | None = None
        if self.source.plugin:
            try:
                self.plugin = plugin_class(self.source.plugin)(self.source, dict(self.source.plugin_options))
            except Exception as exc:  # a broken plug-in is this source's failure, not the crawl's
                self.plugin_error = f"插件 {self.source.plugin} 无法加载: {exc}"

    def prepare(self, request: scrapy.Request) -> scrapy.Request:
        """A request as it is sent: rendered in Chromium (render: browser), signed by the plug-in."""
        if self.source.render == "browser" and "playwright" not in request.meta:
            spec = self.source.list_
            is_list = "page" in request.meta
            wait = (spec.items if spec is not None else None) if is_list else self.source.render_wait
            if wait and (wait.startswith(("xpath:", "label:")) or "::" in wait):
                wait = None  # not a CSS selector Chromium understands
            request.meta.update(render_meta(wait, self.crawl.render_timeout))
        return self.plugin.sign(request) if self.plugin is not None else request

    def starts(self, callback: Callable[..., Any]) -> Iterator[scrapy.Request]:
        """The first requests of the crawl (the plug-in's, or the configured list pages), prepared."""
        if self.plugin_error:
            self.record_error(self.source.start_urls[0], self.plugin_error)
            return
        custom = self.plugin.start_requests(self) if self.plugin is not None else None
        for request in custom if custom is not None else self.first_list_requests(callback):
            yield self.prepare(request)

    def first_list_requests(self, callback: Callable[..., Any]) -> Iterator[scrapy.Request]:
        """The requests of the start URLs, each the first page of its list (after the session page)."""
        if self.source.session_url:
            # The session page sets the cookie (JSESSIONID) the list answers only with.
            yield scrapy.Request(
                self.source.session_url,
                callback=self._after_session,
                errback=self.on_error,
                cookies=dict(self.source.cookies.items()) or None,
                dont_filter=True,
                cb_kwargs={"callback": callback},
            )
            return
        yield from self._list_starts(callback)

    def _after_session(self, response: Response, callback: Callable[..., Any]) -> Iterator[scrapy.Request]:
        for request in self._list_starts(callback):
            yield self.prepare(request)

    def _list_starts(self, callback: Callable[..., Any]) -> Iterator[scrapy.Request]:
        assert self.pager is not None
        for url in self.source.start_urls:
            key, request = self.pager.first(url, callback)
            self.seen_pages.add(key)
            if self.source.cookies:
                request = request.replace(cookies=dict(self.source.cookies))
            yield request

    def next_list_request(
        self,
        page: Response,
        callback: Callable[..., Any],
        next_link: str | None = None,
        cursor: str | None = None,
    ) -> scrapy.Request | None:
        """The request of the list page after ``page``; None past max_pages or when it was seen (a loop)."""
        if self.pager is None or page.meta["page"] >= self.max_pages:
            return None
        following = self.pager.after(page, callback, next_link=next_link, cursor=cursor)
        if following is None or following[0] in self.seen_pages:
            return None
        self.seen_pages.add(following[0])
        return following[1]

    @property
    def max_pages(self) -> int:
        return 1 if self.check_mode else self.source.max_pages

    def record_error(self, url: str, reason: str) -> None:
        """Count an error of this source and keep a sample with its URL and reason."""
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append({"url": url, "reason": reason})
        logger.warning("来源 %s 出错：%s：%s", self.source.id, url, reason)

    def on_error(self, failure: Failure) -> None:
        """Errback of every request: HTTP errors, timeouts, refused hosts (see crawlers.spiders.failures)."""
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        exc = failure.value
        if isinstance(exc, NotSent):
            return
        reason = failure_reason(exc, self.crawl)
        if reason == NETWORK_ERRORS.get(type(exc).__name__):
            # Officers read the reason on the sources page; the class name and Twisted's text go to the log.
            self.logger.info("网络错误：%s：%s：%s", url, type(exc).__name__, exc)
        self.record_error(url, reason)

    def request(self, url: str, callback: Callable[..., Any], **meta: Any) -> scrapy.Request:
        """A request to ``url`` with this spider's errback."""
        return scrapy.Request(url, callback=callback, errback=self.on_error, meta=meta)

    def decoded(self, response: Response) -> TextResponse:
        """The response read with the right charset (sources.yaml ``encoding`` wins; see choose_encoding)."""
        encoding = choose_encoding(
            response.body,
            (response.headers.get("Content-Type") or b"").decode("latin-1"),
            self.source.encoding,
        )
        cls = response.__class__ if isinstance(response, TextResponse) else scrapy.http.HtmlResponse
        return cls(
            url=response.url,
            status=response.status,
            headers=response.headers,
            body=response.body,
            encoding=encoding,
            request=response.request,
        )

    def note_challenge(self, response: TextResponse) -> bool:
        """Record a WAF/captcha interstitial answered with 200; True when the page is one."""
        if looks_like_challenge(response.text):
            self.challenge = True
            self.record_error(response.url, "验证页面（WAF/验证码拦截），不是内容")
            return True
        return False

    def report(self, where: str, target: Any, rules: dict[str, Any]) -> None:
        """Check mode: record what each selector of ``rules`` matched in ``target`` (once per place)."""
        if not self.check_mode or where in self._reported:
            return
        self._reported.add(where)
        for key, rule in rules.items():
            self.selectors.append(selector_report(where, target, key, _rule(rule)))

    def report_list(self, doc: Document, nodes: list[Any]) -> None:
        """Check mode: the list page's own selectors, then those of its first entry."""
        spec = self.source.list_
        if not self.check_mode or spec is None:
            return
        page_rules: dict[str, Any] = {"list.items": spec.items}
        if spec.next:
            page_rules["list.next"] = spec.next
        self.report("列表页", doc, page_rules)
        if nodes:
            entry_rules: dict[str, Any] = {}
            if spec.url:
                entry_rules["list.url"] = spec.url
            entry_rules |= {f"list.vars.{k}": v for k, v in spec.vars.items()}
            entry_rules |= {f"list.fields.{k}": v for k, v in spec.fields.items()}
            if self.source.type == "json" and self.source.detail is None:
                entry_rules |= {f"fields.{k}": v for k, v in self.source.fields.rules().items()}
            self.report("第一条列表条目", nodes[0], entry_rules)

    # -- list entries and detail requests -------------------------------------------------------------------
    def read(self, response: Response, response_type: str, default: str) -> Document:
        """A response read as the source says (see fields.read_document), decoded with the right charset."""
        page = self.decoded(response)
        content_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
        text = page.text
        if self.plugin is not None:
            decoded = self.plugin.decode(response, text)
            if isinstance(decoded, str):
                text = decoded
            elif decoded is not None:
                return Document(text, data=decoded)
        return read_document(text, content_type, response_type, default)

    def entry(self, node: Any, list_url: str, fetch_links: bool) -> Iterator[Any]:
        """One list entry (HTML node or JSON record): its detail request, or an item built from it.

        Increments ``entries`` for an entry seen the first time; yields nothing for a repeated or an
        unusable one (``unusable`` counts those).
        """
        spec = self.source.list_
        assert spec is not None
        is_node = isinstance(node, Selector)
        context = Context({}, () if is_node else (node,))
        link = ""
        if spec.url:
            value = extract_text_value(node, spec.url) if is_node else json_path(node, spec.url)
            link = value.strip() if isinstance(value, str) else "" if value is None else str(value)
            context.values["url"] = link
            if link:
                captures = link_captures(spec.url_pattern, link)
                if captures is None:
                    link = ""  # a link of another kind (a category, a "more" link): not a letter
                else:
                    context.values.update(captures)
        vars_rules = {name: _rule(v) for name, v in spec.vars.items()}
        context.values.update(entry_values(node, vars_rules, context))
        list_fields = extract_fields(node, spec.field_rules(), context)
        for name, value in list_fields.items():
            context.values.setdefault(name, html_to_text(value) if isinstance(value, str) else value)
        detail = self.source.detail
        if detail is not None:
            try:
                key, request = self._detail_request(context, list_url, list_fields)
            except templates.TemplateError as exc:
                self.unusable += 1
                self.record_error(list_url, f"详情请求无法构造：{exc}（请检查 detail 的模板）")
                return
            if key in self.seen_entries:
                return
            self.seen_entries.add(key)
            self.entries += 1
            self.fresh += 1
            if not (self.check_mode and self.details_requested >= 1):
                self.details_requested += 1
                yield request
            return
        url = self._link_url(link, spec.url_pattern, list_url)
        if fetch_links and url:
            if url in self.seen_entries:
                return
            self.seen_entries.add(url)
            self.entries += 1
            self.fresh += 1
            if not (self.check_mode and self.details_requested >= 1):
                self.details_requested += 1
                yield self.request(
                    url, self.parse_detail, list_fields=list_fields, list_url=list_url, context=context, item_url=url
                )
            return
        record_fields = {} if is_node else extract_fields(node, self.source.fields.rules(), context)
        fields = {**list_fields, **_nonempty(record_fields)}
        key = _entry_key(fields) or (url or "")
        if not key:
            self.unusable += 1
            return
        if key in self.seen_entries:
            return
        self.seen_entries.add(key)
        self.entries += 1
        self.fresh += 1
        item = self.make_item(url or None, fields, list_url)
        if item is not None:
            yield item

    def _link_url(self, link: str, pattern: str | None, base: str) -> str:
        """The absolute http(s) URL of a list link ('' for javascript: links without a pattern)."""
        if not link:
            return ""
        if pattern is not None:
            groups = link_captures(pattern, link) or {}
            link = groups.get("link") or groups.get("1") or groups.get("0", "")
        if not link or link.lower().startswith("javascript:"):
            return ""
        url = urljoin(base, link.strip())
        return url if url.startswith(("http://", "https://")) else ""

    def _detail_request(
        self, context: Context, list_url: str, list_fields: dict[str, Any]
    ) -> tuple[str, scrapy.Request]:
        detail = self.source.detail
        assert detail is not None
        url = urljoin(list_url, templates.render(detail.url, context).strip())
        if not url.startswith(("http://", "https://")):
            raise templates.TemplateError(f"不是 http(s) 地址: {url!r}")
        headers = dict(detail.headers)
        body = b""
        if detail.json_body is not None:
            data = templates.build_json(detail.json_body, context)
            body = json.dumps(data, ensure_ascii=False).encode("utf-8")
            headers.setdefault("Content-Type", "application/json;charset=UTF-8")
        elif detail.form is not None:
            form = templates.build_form(detail.form, context)
            encoding = self.source.encoding or "utf-8"
            body = urlencode({k: v.encode(encoding, errors="replace") for k, v in form.items()}).encode("ascii")
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        method = detail.method.upper()
        item_url = urljoin(list_url, templates.render(detail.link, context)) if detail.link else url
        # Many POSTs go to one URL: the body tells the records apart.
        key = f"{method} {url} {body.decode('utf-8', errors='replace')}"
        meta = {"list_fields": list_fields, "list_url": list_url, "context": context, "item_url": item_url}
        if method == "POST" and not detail.link:
            meta["default_id"] = f"{method} {urlsplit(url).path} {body.decode('utf-8', errors='replace')}"[:500]
        request = scrapy.Request(
            url,
            method=method,
            body=body or None,
            headers=headers or None,
            callback=self.parse_detail,
            errback=self.on_error,
            meta=meta,
        )
        return key, request

    def parse_detail(self, response: Response) -> Iterator[Any]:
        """One detail response: the configured fields, the list entry's fields filling gaps."""
        try:
            yield from self._parse_detail(response)
        except Exception as exc:  # a hostile page must not stop the crawl
            self.record_error(response.url, f"解析失败: {type(exc).__name__}: {exc}")

    def _parse_detail(self, response: Response) -> Iterator[Any]:
        detail = self.source.detail
        response_type = detail.response if detail is not None else "auto"
        try:
            doc = self.read(response, response_type, "html")
        except ValueError as exc:
            text = self.decoded(response).text
            if looks_like_challenge(text):
                self.challenge = True
                self.record_error(response.url, "验证页面（WAF/验证码拦截），不是内容")
            else:
                self.record_error(response.url, f"详情无法解析：{exc}")
            return
        context: Context = response.meta.get("context") or Context()
        rules = self.source.fields.rules()
        self.report("详情页", doc, {f"fields.{k}": v for k, v in rules.items()})
        found = extract_fields(doc, rules, context.child(doc.data))
        empty = is_empty(found.get("title")) and is_empty(found.get("content"))
        if empty and looks_like_challenge(doc.text):
            self.challenge = True
            self.record_error(response.url, "验证页面（WAF/验证码拦截），不是内容")
            return
        fields = {**response.meta["list_fields"], **_nonempty(found)}
        item = self.make_item(
            response.meta.get("item_url") or response.url,
            fields,
            response.meta["list_url"],
            default_id=response.meta.get("default_id"),
        )
        if item is not None:
            yield item

    def make_item(
        self, url: str | None, fields: dict[str, Any], list_url: str, default_id: str | None = None
    ) -> RawItem | None:
        """A RawItem of the merged fields; None (an error recorded) when it has neither title nor content."""
        values = {name: fields.get(name, "") for name in FIELD_NAMES}
        external_id = html_to_text(values.pop("external_id")) if isinstance(values["external_id"], str) else ""
        if not external_id and values.get("external_id") not in (None, ""):
            external_id = str(values["external_id"])
        if is_empty(values["title"]) and is_empty(values["content"]):
            self.record_error(url or list_url, "标题和正文都为空（请检查 fields 选择器）")
            return None
        if not external_id:
            external_id = default_id or ("" if url else "entry:" + _entry_key(fields))
        if is_empty(values["title"]):
            self.missing_title += 1
        if "content" in self.configured_fields and is_empty(values["content"]):
            self.empty_fields["content"] = self.empty_fields.get("content", 0) + 1
        for name in ("published_at", "replied_at"):
            if values[name] == "":
                values[name] = None
        self.items_yielded += 1
        return RawItem(
            source=self.source.id,
            channel=self.source.channel,
            url=url,
            external_id=external_id or None,
            list_url=list_url,
            **values,
        )

    @functools.cached_property
    def configured_fields(self) -> set[str]:
        spec = self.source.list_
        return set(self.source.fields.rules()) | (set(spec.fields) if spec is not None else set())

    def summary(self) -> dict[str, Any]:
        """What this crawl saw, for counts and source health."""
        return {
            "pages": self.pages,
            "entries": self.entries,
            "nodes": self.nodes,
            "empty_fields": self.empty_fields,
            **({"selectors": self.selectors} if self.check_mode else {}),
            "items": self.items_yielded,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "challenge": self.challenge,
            "missing_title": self.missing_title,
        }


def _rule(value: Any) -> Any:
    return as_rule(value)


def _nonempty(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if not is_empty(v)}


def _entry_key(fields: dict[str, Any]) -> str:
    """A key for an entry without a link: its id, else a hash of its title, date and content.

    The reply, status and handling unit are left out on purpose: a letter answered later is the same
    letter, and must come back as an update of its item, not as a new one.
    """
    ext = fields.get("external_id")
    ext_text = html_to_text(ext) if isinstance(ext, str) else ("" if ext is None else str(ext))
    if ext_text:
        return ext_text
    parts = []
    for name in ("title", "published_at", "content"):
        value = fields.get(name)
        parts.append(html_to_text(value) if isinstance(value, str) else "" if value is None else str(value))
    text = "\x1f".join(parts)
    if not text.strip("\x1f"):
        return ""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]  # noqa: S324 - a key, not a secret
