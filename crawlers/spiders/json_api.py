"""Generic JSON spider: a paged API (page number, offset, form or cursor), JSONP and JS literals tolerated."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy.http import Response

from crawlers.extract import ExtractionError, json_path, looks_like_challenge
from crawlers.fields import iter_nodes
from crawlers.spiders.base import SourceSpider, guarded
from crawlers.spiders.paging import reached_total, total_from_js


class JsonSourceSpider(SourceSpider):
    """Mayor's-mailbox style APIs: ``list.items`` is the path to the records, ``fields`` are paths in one.

    With ``detail`` each record's detail (an HTML page, or a JSON/POST call built from the record) is
    fetched and ``fields`` apply to it, ``list.fields`` to the record. Caveats: paging stops at
    ``max_pages``, at ``list.total_pages`` (or ``total_pages_js``) when given, at an empty page, at a
    page whose records were all seen before (an API that ignores the page parameter) and, for cursor
    paging, at a missing, empty or repeated cursor.
    """

    name = "json"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen_cursors: set[str] = set()

    async def start(self) -> AsyncIterator[Any]:
        for request in self.starts(self.parse_page):
            yield request

    @guarded
    def parse_page(self, response: Response) -> Iterator[Any]:
        """One page of the API: its records (or their detail requests), then the next page."""
        self.pages += 1
        spec = self.source.list_
        assert spec is not None
        try:
            doc = self.read(response, spec.response, "json")
            records = list(iter_nodes(doc, spec.items))
        except ExtractionError as exc:
            text = self.decoded(response).text
            if looks_like_challenge(text):
                self.challenge = True
                self.record_error(response.url, "验证页面（WAF/验证码拦截），不是内容")
            else:
                self.record_error(response.url, str(exc))
            return
        self.nodes += len(records)
        self.report_list(doc, records)
        self.fresh = self.unusable = 0
        for record in records:
            if doc.is_data and not isinstance(record, dict):
                self.unusable += 1
                self.record_error(response.url, "记录不是 JSON 对象")
                continue
            yield from self.entry(record, response.url, fetch_links=not doc.is_data)
            if self.check_mode and self.fresh:
                break
        if records and self.unusable == len(records):
            self.record_error(response.url, f"list.items 匹配到 {len(records)} 条记录，但没有提取到任何字段")
        number = response.meta["page"]
        if self.fresh == 0:
            return
        if spec.total_pages and doc.is_data and reached_total(number, json_path(doc.data, spec.total_pages)):
            return
        if spec.total_pages_js and reached_total(number, total_from_js(doc.text, spec.total_pages_js)):
            return
        cursor = self._cursor(doc.data, spec.cursor) if spec.cursor else None
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
