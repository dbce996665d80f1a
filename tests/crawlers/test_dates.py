"""Dates as government sites print them parse to the right UTC instant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crawlers.dates import parse_date

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023年7月21日", datetime(2023, 7, 20, 16, 0, tzinfo=UTC)),
        ("2023年07月21日 10时05分", datetime(2023, 7, 21, 2, 5, tzinfo=UTC)),
        ("2023-7-1", datetime(2023, 6, 30, 16, 0, tzinfo=UTC)),
        ("2023-07-21 10:00", datetime(2023, 7, 21, 2, 0, tzinfo=UTC)),
        ("2023/07/21 10:00:30", datetime(2023, 7, 21, 2, 0, 30, tzinfo=UTC)),
        ("2023.07.21", datetime(2023, 7, 20, 16, 0, tzinfo=UTC)),
        ("2023-07-21T10:00:00+08:00", datetime(2023, 7, 21, 2, 0, tzinfo=UTC)),
        ("2023-07-21T02:00:00Z", datetime(2023, 7, 21, 2, 0, tzinfo=UTC)),
        ("2023-07-21 10:00:00.0", datetime(2023, 7, 21, 2, 0, tzinfo=UTC)),
        ("回复时间：2023-07-22 10:00", datetime(2023, 7, 22, 2, 0, tzinfo=UTC)),
        ("[发布日期] 2023年7月21日 阅读次数：35", datetime(2023, 7, 20, 16, 0, tzinfo=UTC)),
        ("２０２３－０７－２１", datetime(2023, 7, 20, 16, 0, tzinfo=UTC)),  # full-width digits
        ("20230721", datetime(2023, 7, 20, 16, 0, tzinfo=UTC)),
        ("1689904800", datetime(2023, 7, 21, 2, 0, tzinfo=UTC)),
        ("1689904800000", datetime(2023, 7, 21, 2, 0, tzinfo=UTC)),
        ("Fri, 21 Jul 2023 10:00:00 +0800", datetime(2023, 7, 21, 2, 0, tzinfo=UTC)),
        ("3小时前", datetime(2026, 11, 22, 23, 0, tzinfo=UTC)),
        ("15分钟前", datetime(2026, 11, 23, 1, 45, tzinfo=UTC)),
        ("2天前", datetime(2026, 11, 21, 2, 0, tzinfo=UTC)),
        ("刚刚", NOW),
        ("昨天 15:20", datetime(2026, 11, 22, 7, 20, tzinfo=UTC)),
        ("前天 08:00", datetime(2026, 11, 21, 0, 0, tzinfo=UTC)),
        ("今天 09:30", datetime(2026, 11, 23, 1, 30, tzinfo=UTC)),
        ("11月20日", datetime(2026, 11, 19, 16, 0, tzinfo=UTC)),
        ("12-25", datetime(2025, 12, 24, 16, 0, tzinfo=UTC)),  # no year, would be future: last year
        ("08:15", datetime(2026, 11, 23, 0, 15, tzinfo=UTC)),
    ],
)
def test_formats(text: str, expected: datetime) -> None:
    assert parse_date(text, now=NOW) == expected


def test_epoch_numbers_from_json() -> None:
    assert parse_date(1689904800, now=NOW) == datetime(2023, 7, 21, 2, 0, tzinfo=UTC)
    assert parse_date(1689904800123, now=NOW) == datetime(2023, 7, 21, 2, 0, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "暂无", "待回复", "2023-02-30", "电话0571-88881234", None, True])
def test_no_date_is_none_not_an_error(text: object) -> None:
    assert parse_date(text, now=NOW) is None  # type: ignore[arg-type]


def test_results_are_timezone_aware_utc() -> None:
    value = parse_date("2023-07-21 10:00", now=NOW)
    assert value is not None
    assert value.utcoffset() is not None
    assert value.tzinfo == UTC


def test_hostile_whitespace_does_not_stall_the_parser() -> None:
    assert parse_date("2023-07-21" + " " * 200_000 + "x", now=NOW) == datetime(2023, 7, 20, 16, 0, tzinfo=UTC)
    assert parse_date(" " * 200_000 + "3小时", now=NOW) is None
