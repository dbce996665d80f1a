"""Generic JSON spider: a paged API (page number in a query parameter), JSONP tolerated."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy.http import Response

from crawlers.encoding import decode_body
from crawlers.extract import ExtractionError, json_fragment, json_path, load_json, looks_like_challenge
from crawlers.items import RawItem
from crawlers.spiders.base import SourceSpider, guarded
from crawlers.spiders.paging import reached_total, total_from_js
from crawlers.text import html_to_text

# Fields that carry markup in the APIs we know (letters and replies are often stored as HTML).
_MARKUP_FIELDS = {"content", "reply"}


class JsonSourceSpider(SourceSpider):
    """Mayor's-mailbox style APIs: ``list.items`` is the path to the records, ``fields`` are paths in one.

    Caveats: paging stops at ``max_pages``, at ``list.total_pages`` (or ``total_pages_js``) when given,
    at an empty page, at a page whose records were all seen before (an API that ignores the page
    parameter) and, for cursor paging, at a missing, empty or repeated cursor.
    """

    name = "json"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen_cursors: set[str] = set()

    async def start(self) -> AsyncIterator[Any]:
        for request in self.first_list_requests(self.parse_page):
            yield request

    @guarded
    def parse_page(self, response: Response) -> Iterator[Any]:
        """One page of the API: its records, then the next page."""
        self.pages += 1
        content_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
        text = decode_body(response.body, content_type, self.source.encoding)
        spec = self.source.list_
        assert spec is not None
        try:
            data = load_json(text)
        except ExtractionError as exc:
            if looks_like_challenge(text):
                self.challenge = True
                self.record_error(response.url, "验证页面（WAF/验证码拦截），不是内容")
            else:
                self.record_error(response.url, str(exc))
            return
        records = json_path(data, spec.items)
        if not isinstance(records, list):
            self.record_error(response.url, f"list.items 路径 {spec.items!r} 不是列表")
            return
        fresh = 0
        for record in records:
            if not isinstance(record, dict):
                self.record_error(response.url, "记录不是 JSON 对象")
                continue
            item = self._item(record, response.url)
            if item is None:
                continue
            key = item.external_id or item.url or ""
            if key in self.seen_entries:
                continue
            self.seen_entries.add(key)
            self.entries += 1
            fresh += 1
            self.items_yielded += 1
            yield item
            if self.check_mode:
                break
        number = response.meta["page"]
        if fresh == 0:
            return
        if spec.total_pages and reached_total(number, json_path(data, spec.total_pages)):
            return
        if spec.total_pages_js and reached_total(number, total_from_js(text, spec.total_pages_js)):
            return
        cursor = self._cursor(data, spec.cursor) if spec.cursor else None
        if spec.cursor and cursor is None:
            return
        following = self.next_list_request(response, self.parse_page, cursor=cursor)
        if following is not None:
            yield following

    def _cursor(self, data: Any, path: str) -> str | None:
        """The next page's cursor; None when the API gives none, an empty one or one already followed."""
        value = json_path(data, path)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        cursor = str(value).strip()
        if not cursor or cursor in self.seen_cursors:
            return None
        self.seen_cursors.add(cursor)
        return cursor

    def _item(self, record: dict[str, Any], api_url: str) -> RawItem | None:
        spec = self.source.list_
        assert spec is not None
        raw: dict[str, Any] = {}
        for name, path in self.source.fields.selectors().items():
            value = json_path(record, path)
            if name in ("published_at", "replied_at"):
                raw[name] = value if isinstance(value, int | float | str) else None
            else:
                raw[name] = json_fragment(value, markup=name in _MARKUP_FIELDS)
        link = json_path(record, spec.url) if spec.url else None
        url = _join(api_url, link) if isinstance(link, str) and link.strip() else None
        external_id = html_to_text(raw.pop("external_id", "")) or None
        if not html_to_text(raw.get("title")) and not html_to_text(raw.get("content")):
            self.record_error(api_url, "记录的标题和正文都为空（请检查 fields 路径）")
            return None
        if not external_id and not url:
            digest = hashlib.sha1(json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8"))  # noqa: S324
            external_id = "record:" + digest.hexdigest()[:16]
        if not html_to_text(raw.get("title")):
            self.missing_title += 1
        return RawItem(
            source=self.source.id,
            channel=self.source.channel,
            url=url,
            external_id=external_id,
            list_url=api_url,
            **raw,
        )


def _join(base: str, link: str) -> str | None:
    from urllib.parse import urljoin

    url = urljoin(base, link.strip())
    return url if url.startswith(("http://", "https://")) else None
