"""Config features of sources.yaml that a crawl must honour: silent-empty sources fail, one invalid source is
skipped while the others run, literal braces and typed values in bodies, templates, field rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crawlers import templates
from crawlers.fields import capture, finish
from crawlers.health import get_health
from crawlers.page_specs import FieldRule
from crawlers.runner import crawl_sources
from crawlers.sources import load_sources
from service.config_files import ConfigError
from service.settings import Settings
from service.store import make_store
from service.store.base import ItemQuery
from tests.crawlers.conftest import FAST_CRAWL, make_settings
from tests.crawlers.site import Page, Request, Site
from tests.foundation.conftest import run_cli

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
HTML = "text/html; charset=utf-8"

JCMS_XML = (
    '<?xml version="1.0" encoding="UTF-8"?><datastore><recordset>'
    '<record><![CDATA[<li><a href="/art/1.html">供暖不热</a><span>2024-05-01</span></li>]]></record>'
    '<record><![CDATA[<li><a href="/art/2.html">路灯不亮</a><span>2024-05-02</span></li>]]></record>'
    "</recordset><totalrecord>2</totalrecord></datastore>"
)

SOURCES = """
sources:
  - id: jcms-as-xml
    name: 把 CDATA 当 XML 读
    channel: mailbox
    type: html
    start_urls: ["{base}/jcms/dataproxy.jsp"]
    interval: 1h
    list: {{response: xml, items: record, url: "a::attr(href)"}}
    fields: {{title: h1, content: div.c}}
  - id: wrong-content
    name: 正文选择器写错
    channel: mailbox
    type: html
    start_urls: ["{base}/jcms/dataproxy.jsp"]
    interval: 1h
    list: {{items: li, url: "a::attr(href)"}}
    fields: {{title: h1, content: div.no-such-class}}
  - id: broken
    name: 缺少 list.items
    channel: mailbox
    type: html
    start_urls: ["{base}/jcms/dataproxy.jsp"]
    interval: 1h
    list: {{url: "a::attr(href)"}}
    fields: {{title: h1}}
  - id: braces
    name: 表单值是 JSON 字符串
    channel: mailbox
    type: json
    start_urls: ["{base}/braces/api"]
    interval: 1h
    max_pages: 3
    list:
      items: rows
      form:
        data: {{param: '{{{{"page":{{page}},"size":2}}}}', filter: {{dept: 7, open: true}}}}
    fields: {{external_id: id, title: title}}
"""


class BracesApi:
    """Answers only a form whose param is the JSON text {"page":N,"size":2} and filter a JSON object."""

    def __init__(self) -> None:
        self.params: list[str] = []

    def __call__(self, req: Request) -> Page:
        param = req.form.get("param", "")
        self.params.append(param)
        try:
            asked = json.loads(param)
            flt = json.loads(req.form.get("filter", ""))
        except ValueError:
            return Page(400, b'{"msg": "bad param"}', "application/json")
        if flt != {"dept": 7, "open": True}:
            return Page(400, b'{"msg": "bad filter"}', "application/json")
        page = asked["page"]
        rows = [{"id": f"b{page}-{i}", "title": f"第{page}页第{i}条"} for i in range(2)] if page <= 2 else []
        return Page(200, json.dumps({"rows": rows}).encode(), "application/json")


@pytest.fixture(scope="module")
def crawled(site: Site, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, Any], BracesApi]:
    site.raw("/jcms/dataproxy.jsp", JCMS_XML.encode(), "text/xml;charset=UTF-8")
    for n in (1, 2):
        site.html(f"/art/{n}.html", f"<html><body><h1>标题{n}</h1><div class='c'>正文{n}</div></body></html>")
    api = BracesApi()
    site.handle("/braces/api", api)
    settings = make_settings(tmp_path_factory.mktemp("rules"), FAST_CRAWL + SOURCES.format(base=site.base))
    return settings, crawl_sources(settings, now=NOW), api


def test_a_list_that_matched_but_gave_nothing_fails_on_its_first_crawl(crawled: Any) -> None:
    settings, counts, _ = crawled
    jcms = counts["jcms-as-xml"]
    assert jcms["new"] == 0
    assert not jcms["healthy"]
    assert "匹配到 2 个节点" in jcms["failure"]
    assert get_health(settings, "jcms-as-xml").consecutive_failures == 1


def test_a_required_field_empty_in_every_item_fails(crawled: Any) -> None:
    _, counts, _ = crawled
    wrong = counts["wrong-content"]
    assert wrong["new"] == 2
    assert not wrong["healthy"]
    assert "content" in wrong["failure"]


def test_one_invalid_source_is_reported_and_the_others_run(crawled: Any) -> None:
    _, counts, _ = crawled
    broken = counts["broken"]
    assert broken["invalid"] == {"file": "sources.yaml", "path": "sources[2].list.items", "reason": "required"}
    assert not broken["healthy"]
    assert "sources.yaml: sources[2].list.items: required" in broken["failure"]
    assert counts["braces"]["new"] == 4


def test_literal_braces_and_json_text_values_in_a_form(crawled: Any) -> None:
    settings, counts, api = crawled
    assert api.params[:2] == ['{"page":1,"size":2}', '{"page":2,"size":2}']
    assert counts["braces"]["errors"] == 0
    store = make_store(settings)
    try:
        titles = {i.title for i in store.search(ItemQuery(source="braces")).results}
    finally:
        store.close()
    assert titles == {"第1页第0条", "第1页第1条", "第2页第0条", "第2页第1条"}


def test_cli_crawl_names_the_invalid_source_and_exits_1(crawled: Any) -> None:
    settings, _, _ = crawled
    env = {"YUQING_DATA_DIR": str(settings.data_dir)}
    result = run_cli("--config", str(settings.config_dir), "crawl", env=env)
    assert result.returncode == 1
    assert "sources.yaml: sources[2].list.items: required" in result.stdout
    assert "braces: new=0" in result.stdout  # the valid sources ran
    named = run_cli("--config", str(settings.config_dir), "crawl", "broken", env=env)
    assert named.returncode == 2
    assert "sources[2].list.items: required" in named.stderr


def test_sources_check_shows_node_counts_and_first_values(site: Site, tmp_path: Path) -> None:
    text = FAST_CRAWL + SOURCES.format(base=site.base).replace("response: xml, items: record", "items: li")
    settings = make_settings(tmp_path, text)
    result = run_cli(
        "--config", str(settings.config_dir), "sources", "check", "jcms-as-xml", env={"YUQING_DATA_DIR": str(tmp_path)}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[列表页] list.items: 'li' -> 2 个节点；第一个值：供暖不热2024-05-01" in result.stdout
    assert "[第一条列表条目] list.url: 'a::attr(href)' -> 1 个节点；第一个值：/art/1.html" in result.stdout
    assert "[详情页] fields.content: 'div.c' -> 1 个节点；第一个值：正文1" in result.stdout


def test_strict_loading_raises_the_first_invalid_source(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text(SOURCES.format(base="http://a.example"), encoding="utf-8")
    assert [s.id for s in load_sources(tmp_path).sources] == ["jcms-as-xml", "wrong-content", "braces"]
    with pytest.raises(ConfigError, match=r"sources\[2\]\.list\.items: required"):
        load_sources(tmp_path, strict=True)


def test_templates_escape_type_and_refuse_stray_braces() -> None:
    values = {"id": 7, "name": "张三", "page": "2"}.get
    assert templates.render('{{"id":{id}}}', values) == '{"id":7}'
    assert templates.build_json({"id": "{id}", "page": "{page:int}", "q": "x{name}"}, values) == {
        "id": 7,
        "page": 2,
        "q": "x张三",
    }
    assert templates.build_form({"p": {"$json": {"id": "{id}"}}, "n": 3}, values) == {"p": '{"id":7}', "n": "3"}
    for bad in ('{"id":1}', "a}b", "{id:hex}", "{"):
        with pytest.raises(templates.TemplateError):
            templates.parse(bad)
    with pytest.raises(templates.TemplateError, match="no value"):
        templates.render("{missing}", values)


def test_field_rules_capture_map_and_date_patterns() -> None:
    reply = "某市交通局(2024-05-02)：已安排处理。"
    assert capture(r"^(?P<value>[^(]+)\(", reply) == "某市交通局"
    assert capture(r"\)：(.*)$", reply) == "已安排处理。"
    assert capture(r"不存在", reply) == ""
    assert finish("status", "3", FieldRule(select="s", map={"3": "已办结"})) == "已办结"
    assert finish("status", "&lt;b&gt;", FieldRule(select="s", map={"x": "y"})) == "&lt;b&gt;"
    when = finish("replied_at", "2024年5月2日 14时05分", FieldRule(select="d", date_format="%Y年%m月%d日 %H时%M分"))
    assert when == datetime(2024, 5, 2, 14, 5)
    assert finish("published_at", 1714530000, FieldRule(select="t", date_format="%Y")) == 1714530000
    with pytest.raises(ValueError, match="exactly one of select or template"):
        FieldRule()


COOKIE_SOURCES = """
sources:
  - id: cookie-site
    name: 需要 Cookie 与详情请求头的网站
    channel: hotline
    type: html
    start_urls: ["{base}/ck/list.html"]
    interval: 1h
    cookies: {{siteToken: abc123}}
    list:
      items: "li"
      url: "a::attr(onclick)"
      url_pattern: "open\\\\((\\\\d+)\\\\)"
      vars: {{cat: "span::attr(data-cat)"}}
      fields: {{external_id: {{template: "{{cat}}-{{1}}"}}}}
    detail:
      url: "/ck/detail?id={{1}}&cat={{cat}}"
      headers: {{X-Requested-With: XMLHttpRequest}}
    fields: {{title: h1, content: p}}
"""


def test_configured_cookies_vars_and_detail_headers(site: Site, tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    def guarded(req: Request, body: str) -> Page:
        seen.append((req.headers.get("cookie", ""), req.headers.get("x-requested-with", "")))
        if "siteToken=abc123" not in req.headers.get("cookie", ""):
            return Page(403, "缺少令牌".encode(), HTML)
        return Page(200, body.encode(), HTML)

    site.handle(
        "/ck/list.html",
        lambda req: guarded(req, '<ul><li><a onclick="open(5)">五</a><span data-cat="zx"></span></li></ul>'),
    )

    def detail(req: Request) -> Page:
        if req.headers.get("x-requested-with") != "XMLHttpRequest" or req.query != {"id": "5", "cat": "zx"}:
            return Page(400, b"bad", HTML)
        return guarded(req, "<h1>第五号工单</h1><p>内容</p>")

    site.handle("/ck/detail", detail)
    settings = make_settings(tmp_path, FAST_CRAWL + COOKIE_SOURCES.format(base=site.base))
    counts = crawl_sources(settings, now=NOW)
    assert counts["cookie-site"]["new"] == 1, counts["cookie-site"]
    store = make_store(settings)
    try:
        (item,) = store.search(ItemQuery(source="cookie-site")).results
    finally:
        store.close()
    assert item.external_id == "zx-5"
    assert item.title == "第五号工单"
    assert seen[0] == ("siteToken=abc123", "")  # the detail header is not sent with the list


def test_the_console_lists_an_invalid_source_with_its_reason(tmp_path: Path) -> None:
    from service.console import catalog

    settings = make_settings(tmp_path, SOURCES.format(base="http://a.example"))
    listed = {s["id"] for s in catalog.sources(settings)}
    assert listed == {"jcms-as-xml", "wrong-content", "braces"}
    (bad,) = catalog.invalid_sources(settings)
    assert bad["id"] == "broken"
    assert bad["healthy"] is False
    assert bad["last_failure"] == "sources.yaml: sources[2].list.items: required（缺少必填项）"
