"""The demo keeps publishing while it runs, and its press releases do not read like complaints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawlers.demo.data import media_records
from crawlers.demo.server import DemoSite
from service import clock
from service.rules.config import load_departments
from service.rules.matcher import Matcher

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"
START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    previous = clock.get_clock()
    frozen = clock.FrozenClock(START)
    clock.set_clock(frozen)
    yield frozen
    clock.set_clock(previous)


def test_a_new_work_order_every_minute_some_matching_some_not(frozen) -> None:
    site = DemoSite(clock.now(), live_interval=60)
    fixed = len(site.hotline)
    assert "GD2026L00001" not in site.hotline_list(1)
    frozen.advance(timedelta(seconds=59))
    assert len(site.hotline) == fixed
    frozen.advance(timedelta(seconds=1))
    assert len(site.hotline) == fixed + 1
    frozen.advance(timedelta(hours=3))  # it never stops
    live = [r for r in site.hotline if r.ident.startswith("GD2026L")]
    assert len(live) == 181
    assert site.hotline[0].ident == "GD2026L00181"  # newest first, on the first list page
    assert "GD2026L00181" in site.hotline_list(1)
    assert site.hotline_detail("GD2026L00002") is not None
    assert site.hotline[0].published(site.now) == START + timedelta(minutes=181)

    matcher = Matcher.build(load_departments(REPO_CONFIG).compiled_rules())
    first_eight = sorted(live, key=lambda r: r.ident)[:8]
    matched = [bool(matcher.match(r.title, r.content)) for r in first_eight]
    assert 2 <= sum(matched) <= 6, matched  # a mix: some alerts, some quiet items


def test_press_releases_open_no_tickets() -> None:
    matcher = Matcher.build(load_departments(REPO_CONFIG).compiled_rules())
    hits = {r.title: [h.rule_id for h in matcher.match(r.title, r.content)] for r in media_records()}
    assert not any(hits.values()), hits


def test_records_put_on_top_by_a_caller_stay_there_among_the_live_ones(frozen) -> None:
    from crawlers.demo.data import Record

    site = DemoSite(clock.now(), live_interval=60)
    site.hotline.insert(0, Record(ident="GD2026S00001", title="外加的工单", content="内容", hours_ago=0))
    frozen.advance(timedelta(minutes=2))
    idents = [r.ident for r in site.hotline[:3]]
    assert idents == ["GD2026L00002", "GD2026L00001", "GD2026S00001"]
    assert DemoSite(clock.now()).live_interval == 0  # fixed content unless serve_demo turns it on
