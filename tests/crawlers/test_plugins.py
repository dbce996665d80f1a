"""Sites that need code: a plug-in class named in sources.yaml signs requests or decodes answers, and the
items still go through the same pipeline, health and store."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from crawlers.plugins.signed import md5_signature
from crawlers.runner import crawl_sources
from crawlers.sources import Source
from service.settings import Settings
from service.store import make_store
from service.store.base import ItemQuery
from tests.crawlers.conftest import FAST_CRAWL, make_settings
from tests.crawlers.site import Page, Request, Site

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
TOKEN = "tok-3f9a"

SOURCES = """
sources:
  - id: signed-board
    name: 签名接口留言板
    channel: mailbox
    type: json
    start_urls: ["{base}/v2/threads/list"]
    interval: 1h
    plugin: crawlers.plugins.signed:Md5Signature
    plugin_options: {{token_env: YQ_TEST_BOARD_TOKEN, header: signature}}
    list:
      items: data
      form: {{body: json, page_field: page, data: {{fid: 1}}}}
      fields: {{external_id: tid, title: title}}
    detail:
      url: "/v2/threads/content"
      json: {{tid: "{{tid}}"}}
    fields: {{content: data.content, reply: data.reply}}
  - id: wrapped
    name: base64 包装的接口
    channel: mailbox
    type: json
    start_urls: ["{base}/wrapped/api"]
    interval: 1h
    plugin: tests.crawlers.plugin_examples:Base64Json
    list: {{items: rows}}
    fields: {{external_id: id, title: title, content: text}}
  - id: no-token
    name: 缺少令牌
    channel: mailbox
    type: json
    start_urls: ["{base}/v2/threads/list"]
    interval: 1h
    plugin: crawlers.plugins.signed:Md5Signature
    plugin_options: {{token_env: YQ_TEST_UNSET_TOKEN}}
    list: {{items: data}}
    fields: {{title: title}}
"""


class SignedApi:
    """Refuses (401) any request whose signature header is not md5(path + body + token)."""

    def __init__(self) -> None:
        self.refused = 0
        self.accepted: list[str] = []

    def _ok(self, req: Request) -> bool:
        good = req.headers.get("signature") == md5_signature(req.path, req.body, TOKEN)
        if good:
            self.accepted.append(req.path)
        else:
            self.refused += 1
        return good

    def list(self, req: Request) -> Page:
        if not self._ok(req):
            return Page(401, b'{"msg": "sign error"}', "application/json")
        page = json.loads(req.body)["page"]
        rows = [{"tid": 10 + i, "title": f"签名来信{i}"} for i in range(3)] if page == 1 else []
        return Page(200, json.dumps({"data": rows}).encode(), "application/json")

    def content(self, req: Request) -> Page:
        if not self._ok(req):
            return Page(401, b'{"msg": "sign error"}', "application/json")
        tid = json.loads(req.body)["tid"]
        data = {"content": f"第{tid}号来信正文", "reply": f"第{tid}号答复" if tid == 10 else None}
        return Page(200, json.dumps({"data": data}, ensure_ascii=False).encode(), "application/json")


def wrapped(req: Request) -> Page:
    rows = [{"id": "w1", "title": "包装来信", "text": "正文"}]
    return Page(200, base64.b64encode(json.dumps({"rows": rows}).encode()), "text/plain")


@pytest.fixture(scope="module")
def crawled(site: Site, tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: Any) -> Any:
    api = SignedApi()
    site.handle("/v2/threads/list", api.list)
    site.handle("/v2/threads/content", api.content)
    site.handle("/wrapped/api", wrapped)
    settings = make_settings(tmp_path_factory.mktemp("plugins"), FAST_CRAWL + SOURCES.format(base=site.base))
    return settings, crawl_sources(settings, now=NOW), api


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("YQ_TEST_BOARD_TOKEN", TOKEN)
        yield mp


def _items(settings: Settings, source: str) -> dict[str, Any]:
    store = make_store(settings)
    try:
        return {i.external_id: i for i in store.search(ItemQuery(source=source)).results}
    finally:
        store.close()


def test_signed_api_crawled_with_md5_signature(crawled: Any) -> None:
    settings, counts, api = crawled
    assert counts["signed-board"]["errors"] == 0, counts["signed-board"]["error_samples"]
    assert counts["signed-board"]["new"] == 3
    assert api.accepted.count("/v2/threads/content") == 3
    items = _items(settings, "signed-board")
    assert items["10"].content == "第10号来信正文"
    assert items["10"].reply == "第10号答复"
    assert items["11"].reply is None


def test_a_plugin_decodes_answers(crawled: Any) -> None:
    settings, counts, _ = crawled
    assert counts["wrapped"]["new"] == 1
    assert _items(settings, "wrapped")["w1"].title == "包装来信"


def test_a_plugin_that_cannot_start_is_a_source_failure(crawled: Any) -> None:
    _, counts, _ = crawled
    assert not counts["no-token"]["healthy"]
    assert "token" in counts["no-token"]["failure"]


def test_plugins_only_from_the_config_file() -> None:
    base = {
        "id": "x",
        "name": "x",
        "channel": "mailbox",
        "type": "rss",
        "start_urls": ["http://a.example/"],
        "interval": "1h",
        "plugin": "crawlers.plugins.signed:Md5Signature",
    }
    assert Source.model_validate(base).plugin
    with pytest.raises(ValueError, match=r"only in sources\.yaml"):
        Source.model_validate(base | {"origin": "api"})
    with pytest.raises(ValueError, match="not a SourcePlugin"):
        Source.model_validate(base | {"plugin": "json:JSONDecoder"})
    with pytest.raises(ValueError, match="cannot import"):
        Source.model_validate(base | {"plugin": "no_such_module:X"})
