"""The internal-address guard and the source health judgement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scrapy import Request

from crawlers.health import get_health, judge, load_health, record_crawl
from crawlers.middlewares import BlockedAddress, HostGuardMiddleware, is_internal
from service.settings import load_settings
from tests.db_fixtures import migrated_sqlite


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("192.168.0.10", True),
        ("172.16.5.5", True),
        ("169.254.169.254", True),
        ("::1", True),
        ("fe80::1", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", True),
        ("202.96.134.133", False),
        # Found in issue 11: shared address space (Alibaba Cloud metadata) and IPv6 wrappings of private space.
        ("100.100.100.200", True),
        ("100.64.0.1", True),
        ("2002:7f00:1::1", True),  # 6to4 of 127.0.0.1
        ("2002:a00:1::1", True),  # 6to4 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", True),  # NAT64 of 169.254.169.254
        ("64:ff9b:1::1", True),  # local-use NAT64
        ("2001::1", True),  # Teredo
        ("198.18.0.1", True),  # benchmarking
        ("224.0.0.1", True),
        ("2002:ca60:8685::1", False),  # 6to4 of a public address
        ("64:ff9b::ca60:8685", False),
        ("2400:3200::1", False),
    ],
)
def test_internal_addresses(address: str, internal: bool) -> None:
    assert is_internal(address) is internal


class _Spider:
    trusted_origins = frozenset({("http", "10.0.0.5", 80), ("http", "127.0.0.1", 8801)})


class _Crawler:
    spider = _Spider()


def test_guard_trusts_start_hosts_only() -> None:
    guard = HostGuardMiddleware(_Crawler())  # type: ignore[arg-type]
    guard.process_request(Request("http://10.0.0.5/list.html"))  # intranet 12345 named by the admin
    guard.process_request(Request("http://127.0.0.1:8801/a.html"))
    for url in (
        "http://10.0.0.6/x",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost/x",
        # Trust is by origin: another port or scheme of a trusted host is another service (issue 11).
        "http://127.0.0.1:8804/other",
        "https://10.0.0.5/list.html",
        "http://100.100.100.200/latest/meta-data",
    ):
        with pytest.raises(BlockedAddress, match="内网"):
            guard.process_request(Request(url))
    with pytest.raises(BlockedAddress, match="协议"):
        guard.process_request(Request("file:///etc/passwd"))


def _summary(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {"pages": 1, "entries": 5, "items": 5, "errors": 0, "error_samples": []}
    base.update(kw)
    return base


def test_health_judgement() -> None:
    from crawlers.health import SourceHealth

    fresh = SourceHealth(source="s")
    used = SourceHealth(source="s", items_per_crawl=[10, 12])
    assert judge(_summary(), fresh) is None
    assert "验证" in (judge(_summary(challenge=True, entries=0, items=0), used) or "")
    assert "此前" in (judge(_summary(entries=0, items=0), used) or "")
    assert judge(_summary(entries=0, items=0), fresh) is None  # a new, quiet source is not broken
    assert "标题" in (judge(_summary(missing_title=5), fresh) or "")
    failed = _summary(pages=0, entries=0, items=0, errors=1, error_samples=[{"url": "u", "reason": "HTTP 503"}])
    assert judge(failed, fresh) == "列表页未能获取：HTTP 503"


def test_health_tracks_failures_and_recovery(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, data_dir=str(tmp_path / "data"))
    migrated_sqlite(tmp_path / "data" / "yuqing.db")
    record_crawl(settings, "s", _summary())
    record_crawl(settings, "s", _summary(challenge=True, entries=0, items=0))
    bad = record_crawl(settings, "s", _summary(entries=0, items=0))
    assert bad.consecutive_failures == 2
    assert not bad.healthy
    assert bad.items_per_crawl == [5, 0, 0]
    good = record_crawl(settings, "s", _summary())
    assert good.healthy
    assert good.last_success_at is not None
    assert load_health(settings)["s"].consecutive_failures == 0
    assert get_health(settings, "other").last_crawl_at is None
    # An earlier version's broken health file is set aside, never a reason to lose the table's records.
    (tmp_path / "data" / "source_health.json").write_text("{broken", encoding="utf-8")
    assert load_health(settings)["s"].healthy


def test_an_earlier_versions_health_file_is_imported_once(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, data_dir=str(tmp_path / "data"))
    migrated_sqlite(tmp_path / "data" / "yuqing.db")
    old = {"s": {"source": "s", "consecutive_failures": 3, "last_failure": "列表为空", "items_per_crawl": [4, 0]}}
    (tmp_path / "data" / "source_health.json").write_text(json.dumps(old, ensure_ascii=False), encoding="utf-8")
    health = load_health(settings)["s"]
    assert (health.consecutive_failures, health.last_failure, health.items_per_crawl) == (3, "列表为空", [4, 0])
    assert not (tmp_path / "data" / "source_health.json").exists()
    # The next crawl continues the imported record.
    assert record_crawl(settings, "s", _summary()).items_per_crawl == [4, 0, 5]
