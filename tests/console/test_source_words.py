"""The sources page's words for sources.yaml values."""

from __future__ import annotations

import pytest

from service.console.catalog import interval_text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("15m", "每 15 分钟"),
        ("1h", "每小时"),
        ("60m", "每小时"),
        ("30s", "每 30 秒"),
        ("2d", "每 2 天"),
        ("90m", "每 90 分钟"),
    ],
)
def test_crawl_periods_read_as_chinese(raw: str, shown: str) -> None:
    assert interval_text(raw) == shown
