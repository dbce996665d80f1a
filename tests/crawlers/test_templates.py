"""Every template of config/templates/ crawls its local replica: every field the site shows comes through,
and a reply published later arrives as an update of the same item, never as a new one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from crawlers.runner import crawl_sources
from crawlers.sources import load_sources
from service.settings import Settings
from service.store import make_store
from service.store.base import Item, ItemQuery
from tests.crawlers.conftest import FAST_CRAWL, make_settings
from tests.crawlers.replicas import answer, build_all
from tests.crawlers.site import Site

TEMPLATES = Path(__file__).resolve().parents[2] / "config" / "templates"
EXAMPLE = "http://www.example.gov.cn"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def template_sources(base: str) -> list[dict[str, Any]]:
    """The sources of every template file, pointed at the local replica site."""
    out = []
    for path in sorted(TEMPLATES.glob("*.yaml")):
        text = path.read_text(encoding="utf-8").replace(EXAMPLE, base)
        out.extend(yaml.safe_load(text)["sources"])
    return out


@pytest.fixture(scope="module")
def crawled(site: Site, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, Any], dict[str, Any]]:
    replicas = build_all(site)
    sources = template_sources(site.base)
    text = FAST_CRAWL + yaml.safe_dump({"sources": sources}, allow_unicode=True, sort_keys=False)
    settings = make_settings(tmp_path_factory.mktemp("templates"), text)
    counts = crawl_sources(settings, now=NOW)
    return settings, replicas, counts


def _items(settings: Settings, source: str) -> list[Item]:
    store = make_store(settings)
    try:
        return store.search(ItemQuery(source=source, size=100)).results
    finally:
        store.close()


def _by_title(items: list[Item]) -> dict[str, Item]:
    return {i.title: i for i in items}


def _fold(text: str) -> str:
    # Stored as published: full-width punctuation and digits are not rewritten (no NFKC on stored text).
    return text


def test_every_template_is_a_valid_source(tmp_path: Path) -> None:
    for path in sorted(TEMPLATES.glob("*.yaml")):
        (tmp_path / "sources.yaml").write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        loaded = load_sources(tmp_path, strict=True)
        assert len(loaded.sources) == 1, path.name
    ids = [s["id"] for s in template_sources(EXAMPLE)]
    assert len(ids) == len(set(ids)) == len(list(TEMPLATES.glob("*.yaml")))


def test_each_template_crawls_every_letter_without_errors(crawled: tuple[Settings, dict, dict]) -> None:
    settings, replicas, counts = crawled
    for source_id, replica in replicas.items():
        c = counts[source_id]
        assert c["errors"] == 0, (source_id, c["error_samples"])
        assert c["healthy"], (source_id, c)
        assert c["new"] == len(replica.items), (source_id, c)
        assert len(_items(settings, source_id)) == len(replica.items)


def _assert_letter(item: Item, letter: Any, *, department: bool = True, reply: bool = True) -> None:
    assert item.title == _fold(letter.title)
    assert item.content.startswith(_fold(letter.content)), (item.content, letter.content)
    assert item.published_at is not None
    assert item.published_at.astimezone(UTC).date().isoformat() in (letter.date, _day_before(letter.date))
    if letter.reply and reply:
        assert item.reply == _fold(letter.reply)
        assert item.replied_at is not None
        assert item.replied_at.astimezone(UTC).date().isoformat() in (letter.reply_date, _day_before(letter.reply_date))
        if department:
            assert item.department == letter.unit
    elif reply:
        assert item.reply is None


def _day_before(day: str) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def test_jcms_records_inside_cdata_come_through(crawled: tuple[Settings, dict, dict]) -> None:
    settings, replicas, _ = crawled
    items = _by_title(_items(settings, "jcms-letters"))
    for letter in replicas["jcms-letters"].items:
        _assert_letter(items[_fold(letter.title)], letter)


def test_board_json_list_with_html_detail_sends_typed_body_and_headers(crawled: tuple[Settings, dict, dict]) -> None:
    settings, replicas, _ = crawled
    board = replicas["board-html"]
    assert board.bodies[0]["fid"] == 539
    assert board.bodies[0]["page"] == 1
    items = _by_title(_items(settings, "board-html"))
    for letter in board.items:
        item = items[_fold(letter.title)]
        _assert_letter(item, letter)
        assert item.external_id == str(int(letter.id[1:]) + 1000)
        assert item.status == ("已回复" if letter.reply else "办理中")


def test_board_json_post_detail_js_literal_regex_and_map(crawled: tuple[Settings, dict, dict]) -> None:
    settings, replicas, _ = crawled
    board = replicas["board-json"]
    # Three POSTs to one URL, told apart by their bodies.
    assert sorted(board.detail_posts) == sorted(it.id for it in board.items)
    items = _by_title(_items(settings, "board-json"))
    for letter in board.items:
        item = items[_fold(letter.title)]
        _assert_letter(item, letter)
        assert item.external_id == letter.id
        assert item.status == ("已办结" if letter.reply else "待受理")
        assert item.url.endswith(f"/letter.html?id={letter.id}")


def test_aspnet_session_cookie_postback_paging_and_window_open_links(crawled: tuple[Settings, dict, dict]) -> None:
    settings, replicas, _ = crawled
    items = _by_title(_items(settings, "aspnet-12345"))
    for letter in replicas["aspnet-12345"].items:
        item = items[_fold(letter.title)]
        _assert_letter(item, letter)
        assert item.external_id == f"GD{letter.id}"
        assert item.status == ("已办结" if letter.reply else "待办理")


def test_jsp_onclick_links_become_post_details(crawled: tuple[Settings, dict, dict]) -> None:
    settings, replicas, _ = crawled
    jsp = replicas["jsp-letters"]
    assert len(jsp.posts) == len(jsp.items)
    items = _by_title(_items(settings, "jsp-letters"))
    for letter in jsp.items:
        item = items[_fold(letter.title)]
        _assert_letter(item, letter)
        assert item.external_id == str(2024000 + int(letter.id[1:]))


def test_trs_rss_and_js_literal(crawled: tuple[Settings, dict, dict]) -> None:
    settings, replicas, _ = crawled
    for source_id in ("trs-news", "gov-rss", "js-mailbox"):
        items = _by_title(_items(settings, source_id))
        for letter in replicas[source_id].items:
            _assert_letter(items[_fold(letter.title)], letter, department=False)


def test_later_replies_are_updates_not_new_items(crawled: tuple[Settings, dict, dict]) -> None:
    settings, replicas, _ = crawled
    answered = ["jcms-letters", "board-html", "board-json", "aspnet-12345", "jsp-letters", "js-mailbox"]
    for source_id in answered:
        for i, letter in enumerate(replicas[source_id].items):
            if not letter.reply:
                answer(letter, i)
    counts = crawl_sources(settings, answered, now=NOW)
    for source_id in answered:
        replica = replicas[source_id]
        assert counts[source_id]["new"] == 0, (source_id, counts[source_id])
        assert counts[source_id]["errors"] == 0, (source_id, counts[source_id]["error_samples"])
        items = _by_title(_items(settings, source_id))
        assert len(items) == len(replica.items), source_id
        for letter in replica.items:
            _assert_letter(items[_fold(letter.title)], letter, department=source_id != "js-mailbox")
        assert counts[source_id]["updated"] >= 1, (source_id, counts[source_id])
