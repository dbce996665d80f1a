"""The bundled demo site crawls end to end with its own sources.yaml."""

from __future__ import annotations

from pathlib import Path

from crawlers.demo import demo_sources_yaml, serve_demo
from crawlers.runner import crawl_sources
from service.store import make_store
from service.store.base import ItemQuery
from tests.crawlers.conftest import make_settings


def test_demo_site_crawls_into_the_store(tmp_path: Path) -> None:
    server, base = serve_demo(0, live_interval=0)
    try:
        settings = make_settings(tmp_path, demo_sources_yaml(base))
        counts = crawl_sources(settings, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    assert {k: (v["new"], v["errors"], v["healthy"]) for k, v in counts.items()} == {
        "demo-12345": (24, 0, True),
        "demo-mailbox": (12, 0, True),
        "demo-news": (8, 0, True),
    }
    store = make_store(settings)
    try:
        hits = store.search(ItemQuery(q="化工厂 异味", size=50)).results
        order = next(i for i in hits if i.external_id == "GD202601000")
        assert order.title == "青川区河西街道化工厂夜间排放异味"  # GBK read through the <meta> charset
        assert order.order_no == "GD202601000"  # fields.order_no: the number people quote, from 工单编号
        assert "13812345678" in order.content
        assert order.department == "市生态环境局"
        assert order.reply is None  # "暂无答复" is no reply
        answered = store.search(ItemQuery(source="demo-12345", q="排污导致河水发黑", size=5)).results[0]
        assert answered.replied_at is not None
        assert answered.replied_at > answered.published_at
        news = store.search(ItemQuery(source="demo-news", q="化工园区", size=10)).results
        assert len(news) == 2
        assert len({n.event_id for n in news}) == 1
        letters = store.search(ItemQuery(source="demo-mailbox", size=50)).results
        assert sum(1 for letter in letters if letter.title == "（不公开）") == 2
        assert all(letter.order_no and letter.order_no.startswith("XJ") for letter in letters)  # JSON letterId
    finally:
        store.close()


def test_a_crawl_process_reads_the_config_dir_its_parent_chose_whatever_the_environment_says(
    tmp_path: Path, monkeypatch
) -> None:
    """Found using the demo: with YUQING_CONFIG_DIR set, `yuqing demo --demo-port N` crawled port 8801."""
    from crawlers.crawl_process import settings_from_payload
    from crawlers.runner import settings_payload
    from service.settings import load_settings

    chosen, elsewhere = tmp_path / "demo-config", tmp_path / "config"
    chosen.mkdir()
    elsewhere.mkdir()
    monkeypatch.setenv("YUQING_CONFIG_DIR", str(elsewhere))
    settings = load_settings(chosen)
    assert settings_from_payload(settings_payload(settings)).config_dir == chosen
