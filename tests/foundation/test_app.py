"""The API app on the embedded default: health, item search, and a store that is down."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from service import clock
from service.app import create_app
from service.settings import load_settings
from service.store import make_store
from service.store.base import Item, item_id


def _item(n: int, title: str, content: str, published: datetime) -> Item:
    return Item(
        id=item_id("demo-12345", str(n)),
        source="demo-12345",
        channel="hotline",
        external_id=str(n),
        title=title,
        content=content,
        published_at=published,
        fetched_at=published,
    )


def _officer(client: TestClient) -> dict[str, str]:
    """Headers of a freshly created officer: item search needs a signed-in reader."""
    from tests.auth.fixtures import Accounts

    accounts = Accounts(client)
    accounts.add("officer", "officer")
    return accounts.headers("officer")


def test_healthz_reports_store_and_database(config_dir: Path, data_dir: Path) -> None:
    settings = load_settings(config_dir)
    with TestClient(create_app(settings)) as client:
        body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["store"]["status"] == "ok"
    assert body["store"]["backend"] == "sqlite"
    assert body["database"]["status"] == "ok"
    assert (data_dir / "items.sqlite3").exists()
    assert (data_dir / "yuqing.db").exists()


def test_healthz_warns_of_a_coming_year_without_holidays_and_stays_ok(config_dir: Path, data_dir: Path) -> None:
    settings = load_settings(config_dir)
    # Late in a year no chinesecalendar release knows, nor the next one.
    clock.set_clock(clock.FrozenClock(datetime(2040, 11, 30, 2, 0, tzinfo=UTC)))
    try:
        with TestClient(create_app(settings)) as client:
            missing = client.get("/healthz")
            (config_dir / "holidays.yaml").write_text(
                "holidays:\n  - 2040-10-01\n  - 2041-01-01\nworkdays:\n  - 2041-02-02\n", encoding="utf-8"
            )
            configured = client.get("/healthz")
    finally:
        clock.set_clock(clock.Clock())
    assert missing.status_code == 200
    assert missing.json()["status"] == "ok"
    assert missing.json()["warnings"] == [
        "2040 年法定节假日安排未配置，工作日按周一至周五计算；请在 holidays.yaml 中补充",
        "2041 年法定节假日安排未配置，工作日按周一至周五计算；请在 holidays.yaml 中补充",
    ]
    assert configured.status_code == 200
    assert configured.json()["warnings"] == []


def test_items_search_filters_and_pages(config_dir: Path, data_dir: Path) -> None:
    settings = load_settings(config_dir)
    store = make_store(settings)
    store.upsert(
        [
            _item(1, "化工厂排污", "河边化工厂夜里排放异味气体", datetime(2026, 11, 20, 2, tzinfo=UTC)),
            _item(2, "道路积水", "暴雨后道路积水严重，化工路口", datetime(2026, 11, 21, 2, tzinfo=UTC)),
            _item(3, "噪音扰民", "工地夜间施工噪音", datetime(2026, 11, 22, 2, tzinfo=UTC)),
        ]
    )
    with TestClient(create_app(settings)) as client:
        auth = _officer(client)
        hit = client.get("/api/v1/items", params={"q": "化工厂"}, headers=auth).json()
        assert [r["external_id"] for r in hit["results"]] == ["1"]
        both = client.get("/api/v1/items", params={"q": "化工"}, headers=auth).json()
        assert both["total"] == 2
        day = client.get("/api/v1/items", params={"from": "2026-11-21", "to": "2026-11-21"}, headers=auth).json()
        assert [r["external_id"] for r in day["results"]] == ["2"]
        paged = client.get("/api/v1/items", params={"size": 2, "page": 2}, headers=auth).json()
        assert paged["total"] == 3
        assert [r["external_id"] for r in paged["results"]] == ["1"]
        assert paged["results"][0]["published_at"] == "2026-11-20T10:00:00+08:00"
        assert client.get("/api/v1/items", params={"from": "yesterday"}, headers=auth).status_code == 422


def test_elasticsearch_down_keeps_serving_and_health_says_so(config_dir: Path, data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("YUQING_STORE__BACKEND", "elasticsearch")
    # Port 9 (discard) is closed on loopback: connection refused at once.
    monkeypatch.setenv("YUQING_STORE__ELASTICSEARCH__HOSTS", '["http://127.0.0.1:9"]')
    settings = load_settings(config_dir)
    with TestClient(create_app(settings)) as client:
        response = client.get("/healthz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "degraded"
        assert body["reasons"] == ["条目存储不可用"]
        assert body["store"]["status"] == "down"
        assert body["database"]["status"] == "ok"
        down = client.get("/api/v1/items", headers=_officer(client))
        assert down.status_code == 503
        assert down.json()["detail"]["message"] == "条目存储（检索库）暂不可用，请稍后再试"  # not the client's English
