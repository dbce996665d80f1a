"""Generic HTML spider: list pages (paged by a next link or a page number) and their detail pages."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy.http import Response

from crawlers.extract import extract_fragment, extract_text_value, select
from crawlers.items import RawItem
from crawlers.sources import FIELD_NAMES
from crawlers.spiders.base import SourceSpider, guarded
from crawlers.spiders.paging import reached_total, total_from_js
from crawlers.text import html_to_text


class HtmlSourceSpider(SourceSpider):
    """12345 and mailbox sites rendered as HTML.

    Caveats: entries without a detail link (letters marked 不公开) become items built from the list
    entry's own ``list.fields``; a list page whose entries were all seen before ends the paging, which
    stops pagination loops.
    """

    name = "html"

    async def start(self) -> AsyncIterator[Any]:
        for request in self.first_list_requests(self.parse_list):
            yield request

    @guarded
    def parse_list(self, response: Response) -> Iterator[Any]:
        """One list page: detail requests, list-only items and the next page."""
        page = self.decoded(response)
        self.pages += 1
        spec = self.source.list_
        assert spec is not None
        entries = select(page.selector, spec.items)
        if not entries:
            if not self.note_challenge(page) and response.meta["page"] == 1:
                self.record_error(page.url, "列表页没有找到条目（请检查 list.items 选择器）")
            return
        fresh = 0
        details = 0
        for entry in entries:
            list_fields = {name: extract_fragment(entry, sel) for name, sel in spec.fields.items()}
            link = extract_text_value(entry, spec.url) if spec.url else ""
            url = page.urljoin(link) if link and not link.lower().startswith("javascript:") else ""
            key = url or _entry_key(list_fields)
            if not key or key in self.seen_entries:
                continue
            self.seen_entries.add(key)
            self.entries += 1
            fresh += 1
            if url:
                if self.check_mode and details >= 1:
                    continue
                details += 1
                yield self.request(url, self.parse_detail, list_fields=list_fields, list_url=page.url)
            else:
                item = self._item(None, list_fields, page.url)
                if item is not None:
                    yield item
        if fresh == 0:
            return  # every entry seen before: the "next" page looped back
        if spec.total_pages_js and reached_total(page.meta["page"], total_from_js(page.text, spec.total_pages_js)):
            return
        next_link = extract_text_value(page.selector, spec.next) if spec.next else None
        following = self.next_list_request(page, self.parse_list, next_link=next_link)
        if following is not None:
            yield following

    @guarded
    def parse_detail(self, response: Response) -> Iterator[Any]:
        """One detail page: the configured fields, the list entry's fields filling gaps."""
        page = self.decoded(response)
        found = {name: extract_fragment(page.selector, sel) for name, sel in self.source.fields.selectors().items()}
        empty = not html_to_text(found.get("title")) and not html_to_text(found.get("content"))
        if empty and self.note_challenge(page):
            return
        item = self._item(page.url, {**response.meta["list_fields"], **_nonempty(found)}, response.meta["list_url"])
        if item is not None:
            yield item

    def _item(self, url: str | None, fields: dict[str, str], list_url: str) -> RawItem | None:
        values = {name: fields.get(name, "") for name in FIELD_NAMES}
        external_id = html_to_text(values.pop("external_id")) or None
        if not html_to_text(values["title"]) and not html_to_text(values["content"]):
            self.record_error(url or list_url, "标题和正文都为空（请检查 fields 选择器）")
            return None
        if not url and not external_id:
            external_id = "entry:" + _entry_key(fields)
        if not html_to_text(values["title"]):
            self.missing_title += 1
        self.items_yielded += 1
        return RawItem(
            source=self.source.id,
            channel=self.source.channel,
            url=url,
            external_id=external_id,
            list_url=list_url,
            **values,
        )


def _nonempty(fields: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in fields.items() if v and v.strip()}


def _entry_key(fields: dict[str, str]) -> str:
    """A key for a list entry without a link: its id, else a hash of its title and dates."""
    ext = html_to_text(fields.get("external_id"))
    if ext:
        return ext
    text = "\x1f".join(html_to_text(fields.get(n)) for n in ("title", "published_at", "content"))
    if not text.strip("\x1f"):
        return ""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]  # noqa: S324 - a key, not a secret
