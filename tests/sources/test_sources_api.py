"""Sources added through the API: admins only, public addresses only (SSRF guard), audited, crawled guarded."""

from __future__ import annotations

from pathlib import Path

import yaml
from sqlalchemy import select

from crawlers.api_sources import api_sources_path
from crawlers.runner import crawl_sources
from crawlers.sources import load_all_sources
from service.audit.models import AuditRecord

SOURCES_YAML = """
sources:
  - id: config-rss
    name: 配置文件中的新闻源
    channel: media
    type: rss
    start_urls: ["http://127.0.0.1:8801/media/rss.xml"]
    interval: 1h
"""


def _definition(source_id: str, url: str) -> dict:
    return {
        "id": source_id,
        "name": "接口添加的新闻源",
        "channel": "media",
        "type": "rss",
        "start_urls": [url],
        "interval": "30m",
    }


def _setup(client) -> None:
    settings = client.app.state.ctx.settings
    (Path(settings.config_dir) / "sources.yaml").write_text(SOURCES_YAML, encoding="utf-8")


def test_admin_adds_a_public_source_and_internal_ones_are_refused(client, accounts) -> None:
    _setup(client)
    accounts.add("root", "admin")
    accounts.add("officer1", "officer")
    admin = accounts.headers("root")
    for url in (
        "http://127.0.0.1:8801/rss.xml",
        "http://10.0.0.8/rss",
        "http://169.254.169.254/latest/meta-data",
        # Issue 11: accepted with 201 before (shared address space, 6to4 of loopback).
        "http://100.100.100.200/latest/meta-data",
        "http://[2002:7f00:1::1]/rss",
    ):
        refused = client.post("/api/v1/sources", json=_definition("bad-one", url), headers=admin)
        assert refused.status_code == 422, url
        assert "内网" in refused.json()["detail"]
    assert (
        client.post("/api/v1/sources", json=_definition("ftp-one", "ftp://example.org/x"), headers=admin).status_code
        == 422
    )
    created = client.post(
        "/api/v1/sources", json=_definition("public-news", "http://93.184.216.34/rss.xml"), headers=admin
    )
    assert created.status_code == 201, created.text
    assert created.json()["origin"] == "api"
    assert (
        client.post(
            "/api/v1/sources", json=_definition("public-news", "http://93.184.216.34/a"), headers=admin
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/api/v1/sources", json=_definition("config-rss", "http://93.184.216.34/a"), headers=admin
        ).status_code
        == 409
    )
    # Officers read the list (with health), but may not add.
    officer = accounts.headers("officer1")
    listed = client.get("/api/v1/sources", headers=officer).json()
    assert {(s["id"], s["origin"]) for s in listed["results"]} == {("config-rss", "config"), ("public-news", "api")}
    assert (
        client.post("/api/v1/sources", json=_definition("x-1", "http://93.184.216.34/b"), headers=officer).status_code
        == 403
    )
    with client.app.state.ctx.db.session() as session:
        denied = (
            session.execute(
                select(AuditRecord).where(AuditRecord.event_type == "source.create", AuditRecord.result == "denied")
            )
            .scalars()
            .all()
        )
        assert len(denied) == 5
    # Removing: API sources by API, config sources only by editing the file.
    assert client.delete("/api/v1/sources/config-rss", headers=admin).status_code == 409
    assert client.delete("/api/v1/sources/public-news", headers=admin).status_code == 204
    assert client.delete("/api/v1/sources/public-news", headers=admin).status_code == 404


def test_private_hosts_may_be_allowed_for_intranet_deployments(client, accounts) -> None:
    _setup(client)
    client.app.state.ctx.settings.security.allow_private_source_hosts = True
    accounts.add("root", "admin")
    created = client.post(
        "/api/v1/sources", json=_definition("intranet-12345", "http://10.1.2.3/list"), headers=accounts.headers("root")
    )
    assert created.status_code == 201
    sources = load_all_sources(client.app.state.ctx.settings)
    assert sources.get("intranet-12345").trusted_hosts == {"10.1.2.3"}


def test_an_api_source_pointing_inside_is_refused_at_crawl_time_too(client) -> None:
    """A name that resolved to a public address when added may point inside later (DNS rebinding)."""
    _setup(client)
    settings = client.app.state.ctx.settings
    path = api_sources_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump({"sources": [_definition("rebound", "http://127.0.0.1:9/rss.xml")]}, allow_unicode=True),
        encoding="utf-8",
    )
    assert load_all_sources(settings).get("rebound").trusted_hosts == set()
    result = crawl_sources(settings, ["rebound"])["rebound"]
    assert result["new"] == 0
    reasons = " ".join(s["reason"] for s in result.get("error_samples", []))
    assert "内网" in reasons


def test_the_add_check_resolves_through_the_crawls_dns_servers(client, accounts) -> None:
    """The check sees what the crawl will see: names resolved by sources.yaml crawl.dns_servers (intranet DNS)."""
    from tests.crawlers.dns_server import ScriptedDNS

    dns = ScriptedDNS()
    try:
        dns.script("oa.intranet.test", "10.0.0.9")
        dns.script("news.public.test", "93.184.216.34")
        settings = client.app.state.ctx.settings
        (Path(settings.config_dir) / "sources.yaml").write_text(
            f'crawl:\n  dns_servers: ["{dns.address}"]\n' + SOURCES_YAML, encoding="utf-8"
        )
        accounts.add("root", "admin")
        admin = accounts.headers("root")
        refused = client.post("/api/v1/sources", json=_definition("oa", "http://oa.intranet.test/rss"), headers=admin)
        assert refused.status_code == 422
        assert "内网" in refused.json()["detail"]
        assert "10.0.0.9" in refused.json()["detail"]
        created = client.post(
            "/api/v1/sources", json=_definition("news", "http://news.public.test/rss.xml"), headers=admin
        )
        assert created.status_code == 201, created.text
    finally:
        dns.close()


def test_a_broken_sources_yaml_is_explained_in_chinese_by_the_api(client, accounts) -> None:
    settings = client.app.state.ctx.settings
    (Path(settings.config_dir) / "sources.yaml").write_text("sources: 5\n", encoding="utf-8")
    accounts.add("officer2", "officer")
    answer = client.get("/api/v1/sources", headers=accounts.headers("officer2"))
    assert answer.status_code == 503
    assert answer.json()["detail"] == (
        "来源配置有误: sources.yaml: sources: must be a list of sources（应为来源列表，每个来源以“- id: ...”开始）"
    )
