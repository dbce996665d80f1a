"""Repost detection remembers the texts it normalised last, so a crawl's own earlier items, met again as the
candidates of later ones, are not normalised again (a fifth of a first crawl's CPU when they were)."""

from __future__ import annotations

import gc
import random
import tracemalloc
from collections.abc import Iterator

import pytest

from service.items import duplicates

# Common characters of complaints: a text of them has as many distinct shingles as a real one.
POOL = "小区居民反映楼道路灯排水管道漏水噪音扰民垃圾清运物业公司停车位电梯维修供暖不热施工夜间工地渣土车油烟餐馆"


def _texts(count: int) -> list[tuple[str, str]]:
    rng = random.Random(7)
    return [
        (f"关于{rng.choice(POOL)}{rng.choice(POOL)}的投诉 {n}", "".join(rng.choices(POOL, k=1200)) + f"编号{n}")
        for n in range(count)
    ]


@pytest.fixture
def recent() -> Iterator[duplicates._Recent]:
    duplicates._recent.entries.clear()
    duplicates._recent.size = 0
    yield duplicates._recent
    duplicates._recent.entries.clear()
    duplicates._recent.size = 0


def test_a_first_crawl_of_2000_items_meets_its_first_items_without_normalising_them_again(
    recent: duplicates._Recent, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = _texts(2000)
    gc.collect()
    tracemalloc.start()
    try:
        kept = [duplicates.comparable(title, content) for title, content in texts]
        del kept
        gc.collect()
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    made: list[str] = []
    real = duplicates._comparable
    monkeypatch.setattr(duplicates, "_comparable", lambda t, c: made.append(t) or real(t, c))
    for title, content in texts[:200]:
        duplicates.comparable(title, content)
    assert made == []
    # What remembering them costs: within the budget, about 20 KB an item of 1,200 distinct characters.
    assert recent.size <= recent.budget
    assert held < 60_000_000, f"{held / 1e6:.0f} MB for 2,000 remembered items"
