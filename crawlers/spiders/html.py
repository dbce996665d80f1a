"""Generic HTML spider: list pages (paged by a next link or a page number) and their detail pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy.http import Response

from crawlers.extract import extract_text_value
from crawlers.fields import iter_nodes
from crawlers.spiders.base import SourceSpider, guarded
from crawlers.spiders.paging import reached_total, total_from_js


class HtmlSourceSpider(SourceSpider):
    """12345 and mailbox sites rendered as HTML.

    Caveats: entries without a detail link (letters marked 不公开) become items built from the list
    entry's own ``list.fields``; links written in JavaScript (``onclick="show('123')"``) need
    ``list.url_pattern`` and usually ``detail``; a list page whose entries were all seen before ends
    the paging, which stops pagination loops; a list whose nodes all gave nothing is recorded as an
    error, so the source is reported as failing instead of "0 new".
    """

    name = "html"

    async def start(self) -> AsyncIterator[Any]:
        for request in self.starts(self.parse_list):
            yield request

    @guarded
    def parse_list(self, response: Response) -> Iterator[Any]:
        """One list page: detail requests, list-only items and the next page."""
        spec = self.source.list_
        assert spec is not None
        doc = self.read(response, spec.response, "html")
        self.pages += 1
        nodes = list(iter_nodes(doc, spec.items))
        if not nodes:
            self.report_list(doc, nodes)
            if not self.note_challenge(self.decoded(response)) and response.meta["page"] == 1:
                self.record_error(response.url, "列表页没有找到条目（请检查 list.items 选择器）")
            return
        self.nodes += len(nodes)
        self.report_list(doc, nodes)
        self.fresh = self.unusable = 0
        for node in nodes:
            yield from self.entry(node, response.url, fetch_links=True)
        if self.unusable == len(nodes):
            self.record_error(
                response.url,
                f"list.items 匹配到 {len(nodes)} 个节点，但没有提取到链接或字段"
                "（请检查 list.url / list.fields；XML 中的 CDATA 记录请设置 list.response: cdata）",
            )
        if self.fresh == 0:
            return  # every entry seen before: the "next" page looped back
        if spec.total_pages_js and reached_total(response.meta["page"], total_from_js(doc.text, spec.total_pages_js)):
            return
        next_link = None
        if spec.next and doc.selector is not None:
            next_link = extract_text_value(doc.selector, spec.next) or None
        following = self.next_list_request(self.decoded(response), self.parse_list, next_link=next_link)
        if following is not None:
            yield following
