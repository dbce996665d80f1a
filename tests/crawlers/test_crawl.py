"""End-to-end crawls: the real crawl subprocess against a local site of messy pages, into a SqliteStore."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crawlers.health import get_health
from crawlers.runner import check_source, crawl_sources
from service.config_files import ConfigError
from service.settings import ElasticsearchSettings, Settings
from service.store import make_store
from service.store.base import Item, ItemQuery
from tests.crawlers.conftest import FAST_CRAWL, make_settings
from tests.crawlers.site import Site

pytestmark = pytest.mark.long_running(90)  # seconds in CI: starts first (tests/conftest.py)

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai

GBK_DETAIL = """<html><head><meta charset="gbk"><title>{title}</title></head><body>
<div class="article"><h1 class="title">{title}</h1>
<table class="info"><tr><td>信件编号：</td><td>{ext}</td><td>来信时间：</td><td>{date}</td></tr>
<tr><td>办理单位：</td><td>市生态环境局</td><td>状态：</td><td>已回复</td></tr></table>
<div class="content"><p>{body}</p><script>alert("x")</script><!-- 统计代码 --><p>请相关部门尽快处理。</p></div>
<div class="reply"><p>{reply}</p><p>回复时间：2023-07-22 10:00</p></div>
</div></body></html>"""


def _list_page(entries: list[str], next_href: str | None) -> str:
    nav = f'<a class="next" href="{next_href}">下一页</a>' if next_href else ""
    return (
        '<html><head><meta charset="gbk"></head><body><ul class="letters">'
        + "".join(entries)
        + f"</ul><div>{nav}</div></body></html>"
    )


def _entry(href: str, title: str) -> str:
    return f'<li><a href="{href}">{title}</a><span class="date">2023-07-21</span></li>'


def build_site(site: Site, other: Site) -> None:
    """Register every page the crawl tests visit (``other``: another origin the trusted site points to)."""
    wrong = "text/html; charset=utf-8"  # GBK pages whose header claims UTF-8
    site.html(
        "/gov/list_1.html",
        _list_page(
            [
                _entry("a1.html", "化工厂异味扰民"),
                _entry("a2.html", "夜间施工噪音"),
                _entry("a3.html", "已删除的信件"),
                '<li><span class="t">关于拆迁补偿的来信（不公开）</span><span class="date">2023年7月19日</span>'
                '<span class="no">XF-0099</span></li>',
            ],
            "list_2.html",
        ),
        "gbk",
        wrong,
    )
    site.html(
        "/gov/list_2.html",
        _list_page(
            [
                _entry("a4.html", "标记残缺的页面"),
                _entry("a5.html", "服务器出错"),
                _entry("a6.html", "字段缺失"),
                _entry(f"http://localhost:{site.port}/gov/a1.html", "指向其他内网主机"),
            ],
            "list_3.html",
        ),
        "gbk",
        wrong,
    )
    # Page 3 links back to page 1: a pagination loop the spider must leave.
    site.html(
        "/gov/list_3.html",
        _list_page(
            [
                _entry("a8.html", "拖欠工资"),
                _entry("go/a9", "跳转到内网"),
                _entry("private/a10.html", "不许抓取"),
                # Origin B: the same host, another port (issue 11: it was fetched and stored).
                _entry(f"{other.base}/gov/b1.html", "另一端口的页面"),
                _entry("go/b2", "跳转到另一端口"),
            ],
            "list_1.html",
        ),
        "gbk",
        wrong,
    )
    details = {
        "a1": (
            "化工厂异味扰民",
            "XF-0001",
            "2023年7月21日",
            "河西街道化工厂夜间排放刺鼻异味，联系电话13812345678。",
            "已责令企业整改。",
        ),
        "a2": ("夜间施工噪音", "XF-0002", "2023-7-1", "工地凌晨两点仍在施工。", "已要求停止夜间施工。"),
        "a8": ("拖欠工资", "XF-0008", "2023-07-20 09:30", "公司拖欠农民工工资三个月。", "已立案调查。"),
    }
    for name, (title, ext, date, body, reply) in details.items():
        page = GBK_DETAIL.format(title=title, ext=ext, date=date, body=body, reply=reply)
        site.html(f"/gov/{name}.html", page, "gbk", wrong)
    site.raw("/robots.txt", b"User-agent: *\nDisallow: /gov/private/\n", "text/plain")
    site.html("/gov/private/a10.html", GBK_DETAIL.format(title="t", ext="XF-0010", date="", body="b", reply=""), "gbk")
    site.raw("/gov/a5.html", b"Internal Server Error", "text/plain", status=500)
    # Unclosed tags everywhere, still readable.
    site.html(
        "/gov/a4.html",
        '<html><body><h1 class="title">道路积水<div class="content"><p>学府路积水半米<p>车辆熄火'
        "<table><tr><td>信件编号：<td>XF-0004</table>",
        "gbk",
        wrong,
    )
    site.html("/gov/a6.html", "<html><body><div>这里什么都没有</div></body></html>", "gbk", wrong)
    site.redirect("/gov/go/a9", f"http://localhost:{site.port}/gov/a8.html")
    site.redirect("/gov/go/b2", f"{other.base}/gov/b2.html")
    for name in ("b1", "b2"):
        page = GBK_DETAIL.format(title="另一端口的信件", ext=f"XF-B{name}", date="2023-07-21", body="内网", reply="")
        other.html(f"/gov/{name}.html", page, "gbk")
    other.raw("/robots.txt", b"User-agent: *\nAllow: /\n", "text/plain")

    # GBK without any charset declaration; paged in the path: index.html, index_1.html, ...
    for n, name in enumerate(["index.html", "index_1.html", "index_2.html", "index_3.html"]):
        entries = "".join(f'<div class="row"><a href="d{n}{k}.html">第{n}页第{k}条</a></div>' for k in range(2))
        site.html(f"/plain/{name}", f"<html><body>{entries}</body></html>", "gbk", "text/html")
        for k in range(2):
            site.html(
                f"/plain/d{n}{k}.html",
                f'<html><body><h2>道路积水第{n}{k}号</h2><p class="c">暴雨后小区门口积水。</p>'
                f'<span class="t">2023-7-{n + 1} 08:0{k}</span></body></html>',
                "gbk",
                "text/html",
            )

    # JSONP API paged by ?page=N, epoch seconds and "YYYY-MM-DD HH:MM" dates.
    for page in (1, 2):
        records = [
            {
                "id": f"L{page}{k}",
                "title": f"市长信箱来信{page}-{k}",
                "content": f"<p>反映问题 {page}-{k}</p>",
                "createTime": 1689904800 + k,  # 2023-07-21 02:00:00 UTC
                "dept": "市住建局",
                "reply": {"text": "已转办", "time": "2023-07-22 10:00"},
            }
            for k in range(3)
        ]
        if page == 2:
            records.append({"id": "L29", "title": "（不公开）", "content": None, "createTime": 1689904800})
        body = json.dumps({"code": 0, "data": {"pages": 2, "list": records}}, ensure_ascii=False)
        site.raw(f"/api/letters?callback=cb&page={page}", f"cb({body});".encode(), "application/javascript")
    # The API would answer page 3 too, but total pages says 2.
    site.raw("/api/letters?callback=cb&page=3", b'cb({"data": {"pages": 2, "list": []}})', "text/javascript")

    site.raw(
        "/feed.xml",
        """<?xml version="1.0" encoding="utf-8"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>新闻</title>
<item><title>化工园区整治 &amp; 检查</title><link>/news/1.html</link><guid>n1</guid>
<description><![CDATA[<p>记者获悉，<b>三家企业</b>被责令整改。</p><script>x()</script>]]></description>
<pubDate>Fri, 21 Jul 2023 10:00:00 +0800</pubDate></item>
<item><title>泄露测试&xxe;</title><link>/news/2.html</link><guid>n2</guid><description>正文</description>
<pubDate>Fri, 21 Jul 2023 11:00:00 +0800</pubDate></item>
</channel></rss>""".encode(),
        "application/rss+xml",
    )
    site.raw(
        "/atom.xml",
        """<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>动态</title>
<entry><title>供暖检查</title><link rel="alternate" href="http://127.0.0.1/a/1"/><id>tag:a,1</id>
<updated>2023-07-21T10:00:00+08:00</updated><summary>开展供暖质量检查。</summary></entry></feed>""".encode(),
        "application/atom+xml",
    )
    site.html("/waf/list.html", "<html><body><h3>安全验证</h3><p>请输入验证码后继续访问</p></body></html>")
    site.html(
        "/rel/list.html",
        '<ul><li><span class="t">小区停水</span><span class="d">3小时前</span><i>R1</i></li>'
        '<li><span class="t">路灯不亮</span><span class="d">昨天 15:20</span><i>R2</i></li></ul>',
    )


def sources_yaml(base: str) -> str:
    return (
        FAST_CRAWL
        + f"""
sources:
  - id: gbk-next
    name: 测试信访（GBK，下一页）
    channel: mailbox
    type: html
    start_urls: ["{base}/gov/list_1.html"]
    interval: 15m
    max_pages: 10
    list:
      items: "ul.letters > li"
      url: "a::attr(href)"
      next: "a.next::attr(href)"
      fields:
        title: "span.t"
        published_at: "span.date"
        external_id: "span.no"
    fields:
      external_id: "label:信件编号"
      title: "h1.title::text"
      content: "div.content"
      published_at: "label:来信时间"
      department: "label:办理单位"
      status: "label:状态"
      reply: "xpath://div[@class='reply']/p[1]"
      replied_at: "label:回复时间"
  - id: plain-gbk
    name: 无声明编码的列表
    channel: hotline
    type: html
    start_urls: ["{base}/plain/index.html"]
    interval: 1h
    max_pages: 3
    list:
      items: "div.row"
      url: "a::attr(href)"
      page_url: "index_{{page}}.html"
      page_start: 1
    fields:
      title: "h2"
      content: "p.c"
      published_at: "span.t"
  - id: api
    name: 市长信箱接口
    channel: mailbox
    type: json
    start_urls: ["{base}/api/letters?callback=cb&page=1"]
    interval: 30m
    max_pages: 5
    list:
      items: data.list
      page_param: page
      total_pages: data.pages
    fields:
      external_id: id
      title: title
      content: content
      published_at: createTime
      department: dept
      reply: reply.text
      replied_at: reply.time
  - id: feed
    name: 新闻 RSS
    channel: media
    type: rss
    start_urls: ["{base}/feed.xml", "{base}/atom.xml"]
    interval: 1h
  - id: waf
    name: 被拦截的站点
    channel: hotline
    type: html
    start_urls: ["{base}/waf/list.html"]
    interval: 1h
    list: {{items: "ul.orders > li", url: "a::attr(href)"}}
    fields: {{title: h1}}
  - id: relative
    name: 相对时间
    channel: hotline
    type: html
    start_urls: ["{base}/rel/list.html"]
    interval: 1h
    list:
      items: "li"
      fields: {{title: "span.t", published_at: "span.d", external_id: "i"}}
"""
    )


@pytest.fixture(scope="module")
def crawled(
    site: Site, other_origin: Site, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, dict[str, Any]]:
    build_site(site, other_origin)
    settings = make_settings(tmp_path_factory.mktemp("crawl"), sources_yaml(site.base))
    return settings, crawl_sources(settings, now=NOW, timeout=120)


def _items(settings: Settings, source: str) -> dict[str, Item]:
    store = make_store(settings)
    try:
        page = store.search(ItemQuery(source=source, size=500))
        return {i.external_id or i.url or i.id: i for i in page.results}
    finally:
        store.close()


def test_gbk_site_with_wrong_header_is_read_correctly(crawled: tuple[Settings, dict[str, Any]]) -> None:
    settings, _counts = crawled
    items = _items(settings, "gbk-next")
    a1 = items["XF-0001"]
    assert a1.title == "化工厂异味扰民"
    assert a1.content == "河西街道化工厂夜间排放刺鼻异味，联系电话13812345678。\n请相关部门尽快处理。"
    assert "alert" not in a1.content
    assert "统计代码" not in a1.content
    assert a1.department == "市生态环境局"
    assert a1.status == "已回复"
    assert a1.reply == "已责令企业整改。"
    assert a1.channel == "mailbox"
    assert a1.source == "gbk-next"
    assert a1.published_at == datetime(2023, 7, 20, 16, 0, tzinfo=UTC)
    assert a1.replied_at == datetime(2023, 7, 22, 2, 0, tzinfo=UTC)
    assert items["XF-0002"].published_at == datetime(2023, 6, 30, 16, 0, tzinfo=UTC)
    assert items["XF-0008"].published_at == datetime(2023, 7, 20, 1, 30, tzinfo=UTC)


def test_pagination_by_next_link_stops_at_loop_and_counts_broken_pages(
    crawled: tuple[Settings, dict[str, Any]], site: Site
) -> None:
    settings, counts = crawled
    c = counts["gbk-next"]
    items = _items(settings, "gbk-next")
    # a1, a2, a8, the broken-markup a4 and the letter without a detail page.
    assert sorted(items) == ["XF-0001", "XF-0002", "XF-0004", "XF-0008", "XF-0099"]
    assert c["new"] == 5
    assert c["updated"] == 0
    assert c["skipped"] == 0
    assert c["pages"] == 3
    assert site.hits["/gov/list_1.html"] == 1  # the loop back to page 1 was not followed
    reasons = {s["url"].rsplit("/", 1)[-1]: s["reason"] for s in c["error_samples"]}
    assert reasons["a3.html"] == "HTTP 404"
    assert reasons["a5.html"] == "HTTP 500"
    assert site.hits["/gov/a5.html"] == 2  # one retry for a 5xx, none for the 404
    assert site.hits["/gov/a3.html"] == 1
    assert "标题和正文都为空" in reasons["a6.html"]
    assert "robots.txt" in reasons["a10.html"]
    assert "/gov/private/a10.html" not in site.hits
    # 404, 500, an empty page, robots.txt, links and redirects to another loopback host and another port
    assert c["errors"] == 8


def test_links_and_redirects_to_other_internal_hosts_are_refused(
    crawled: tuple[Settings, dict[str, Any]], site: Site, other_origin: Site
) -> None:
    _, counts = crawled
    blocked = [s for s in counts["gbk-next"]["error_samples"] if "内网" in s["reason"]]
    assert {s["url"] for s in blocked} == {
        f"http://localhost:{site.port}/gov/a1.html",
        f"http://localhost:{site.port}/gov/a8.html",
        f"{other_origin.base}/gov/b1.html",
        f"{other_origin.base}/gov/b2.html",
    }


def test_another_origin_of_a_trusted_host_is_neither_fetched_nor_stored(
    crawled: tuple[Settings, dict[str, Any]], site: Site, other_origin: Site
) -> None:
    """Issue 11: a trusted 127.0.0.1:A source linked and redirected to 127.0.0.1:B, which was fetched and
    stored (trust went by host name). Two real servers, the real crawl process."""
    settings, counts = crawled
    assert site.hits.get("/gov/go/b2") == 1, "the redirect itself was followed up to origin B"
    assert other_origin.hits == {}, "not one request reached origin B, not even robots.txt"
    stored = _items(settings, "gbk-next").values()
    assert all(other_origin.base not in (i.url or "") for i in stored)
    assert not [i for i in stored if (i.external_id or "").startswith("XF-B")]
    reasons = {s["url"]: s["reason"] for s in counts["gbk-next"]["error_samples"]}
    assert reasons[f"{other_origin.base}/gov/b1.html"] == "拒绝访问内网地址: 127.0.0.1"
    assert reasons[f"{other_origin.base}/gov/b2.html"] == "拒绝访问内网地址: 127.0.0.1"


def test_letter_without_detail_page_is_built_from_the_list(crawled: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = crawled
    hidden = _items(settings, "gbk-next")["XF-0099"]
    assert hidden.title == "关于拆迁补偿的来信（不公开）"
    assert hidden.url is None
    assert hidden.published_at == datetime(2023, 7, 18, 16, 0, tzinfo=UTC)


def test_broken_markup_still_yields_text(crawled: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = crawled
    broken = _items(settings, "gbk-next")["XF-0004"]
    assert broken.title.startswith("道路积水")
    assert "学府路积水半米" in broken.content


def test_gbk_without_charset_and_page_number_pagination(crawled: tuple[Settings, dict[str, Any]]) -> None:
    settings, counts = crawled
    items = _items(settings, "plain-gbk")
    # max_pages 3: index.html, index_1.html, index_2.html; index_3.html is not fetched.
    assert counts["plain-gbk"]["new"] == 6
    titles = sorted(i.title for i in items.values())
    assert titles[0] == "道路积水第00号"
    assert "道路积水第30号" not in titles
    first = next(i for i in items.values() if i.title == "道路积水第21号")
    assert first.content == "暴雨后小区门口积水。"
    assert first.published_at == datetime(2023, 7, 3, 0, 1, tzinfo=UTC)


def test_json_api_pages_jsonp_and_epoch_dates(crawled: tuple[Settings, dict[str, Any]], site: Site) -> None:
    settings, counts = crawled
    items = _items(settings, "api")
    assert counts["api"]["new"] == 7
    assert "/api/letters?callback=cb&page=3" not in site.hits
    letter = items["L11"]
    assert letter.content == "反映问题 1-1"
    assert letter.published_at == datetime(2023, 7, 21, 2, 0, 1, tzinfo=UTC)
    assert letter.reply == "已转办"
    assert letter.replied_at == datetime(2023, 7, 22, 2, 0, tzinfo=UTC)
    assert items["L29"].title == "（不公开）"
    assert items["L29"].content == ""


def test_feeds_rss_and_atom_without_entity_expansion(crawled: tuple[Settings, dict[str, Any]]) -> None:
    settings, counts = crawled
    items = _items(settings, "feed")
    assert counts["feed"]["new"] == 3
    n1 = items["n1"]
    assert n1.title == "化工园区整治 & 检查"
    assert n1.content == "记者获悉，三家企业被责令整改。"
    assert n1.url == f"{settings_base(n1)}/news/1.html"
    assert n1.published_at == datetime(2023, 7, 21, 2, 0, tzinfo=UTC)
    assert "root:" not in items["n2"].title
    assert items["tag:a,1"].published_at == datetime(2023, 7, 21, 2, 0, tzinfo=UTC)


def settings_base(item: Item) -> str:
    assert item.url is not None
    return item.url.split("/news/")[0]


def test_challenge_page_is_a_source_failure_not_zero_new(crawled: tuple[Settings, dict[str, Any]]) -> None:
    settings, counts = crawled
    waf = counts["waf"]
    assert waf["new"] == 0
    assert waf["healthy"] is False
    assert "验证" in waf["failure"]
    assert waf["errors"] >= 1
    health = get_health(settings, "waf")
    assert health.consecutive_failures == 1
    assert health.last_success_at is None
    assert counts["gbk-next"]["healthy"] is True


def test_relative_dates_count_back_from_crawl_time(crawled: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = crawled
    items = _items(settings, "relative")
    assert items["R1"].published_at == datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
    assert items["R2"].published_at == datetime(2026, 11, 22, 7, 20, tzinfo=UTC)


def test_recrawl_stores_nothing_new_and_a_changed_reply_is_an_update(
    crawled: tuple[Settings, dict[str, Any]], site: Site
) -> None:
    settings, first = crawled
    again = crawl_sources(settings, ["gbk-next", "api", "relative"], now=NOW, timeout=120)
    for sid in ("gbk-next", "api", "relative"):
        assert again[sid]["new"] == 0
        assert again[sid]["updated"] == 0
        assert again[sid]["skipped"] == first[sid]["new"]
    page = GBK_DETAIL.format(
        title="化工厂异味扰民",
        ext="XF-0001",
        date="2023年7月21日",
        body="河西街道化工厂夜间排放刺鼻异味，联系电话13812345678。",
        reply="经查，企业已停产整改，异味问题已解决。",
    )
    site.html("/gov/a1.html", page, "gbk", "text/html; charset=utf-8")
    changed = crawl_sources(settings, ["gbk-next"], now=NOW, timeout=120)["gbk-next"]
    assert (changed["new"], changed["updated"], changed["skipped"]) == (0, 1, 4)
    items = _items(settings, "gbk-next")
    assert items["XF-0001"].reply == "经查，企业已停产整改，异味问题已解决。"
    store = make_store(settings)
    try:
        assert store.count(ItemQuery(source="gbk-next")) == 5
    finally:
        store.close()


def test_check_source_extracts_without_storing(site: Site, other_origin: Site, tmp_path: Path) -> None:
    build_site(site, other_origin)
    settings = make_settings(tmp_path, sources_yaml(site.base))
    result = check_source(settings, "gbk-next", now=NOW)
    titles = [i["title"] for i in result["items"]]
    assert "化工厂异味扰民" in titles
    assert len([i for i in result["items"] if i["url"]]) == 1  # one detail page only
    assert result["pages"] == 1
    assert not (tmp_path / "data" / "items.sqlite3").exists()


def test_unknown_source_is_refused_before_crawling(site: Site, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sources_yaml(site.base))
    with pytest.raises(ConfigError, match="未知的来源: nope"):
        crawl_sources(settings, ["nope"])


def test_no_sources_configured_means_no_crawl(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sources: []\n")
    assert crawl_sources(settings) == {}


def test_crawl_process_reports_bad_input_as_config_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sources_yaml("http://127.0.0.1:9"))
    (tmp_path / "config" / "sources.yaml").write_text("sources:\n  - {id: x}\n", encoding="utf-8")
    from crawlers.runner import _run

    with pytest.raises(ConfigError, match=r"^sources.yaml: sources\[0\].name: required（缺少必填项）$"):
        _run(settings, ["x"], False, 60, None)


# The first test to use Elasticsearch pays for its start (198 s at load 20 on 2 cores), then four crawls.
@pytest.mark.timeout(600)
def test_the_same_crawl_into_elasticsearch_stores_the_same_items(
    site: Site, other_origin: Site, tmp_path: Path, es_settings: ElasticsearchSettings
) -> None:
    build_site(site, other_origin)  # the pages as first served (another test changes a reply)
    on_sqlite = make_settings(tmp_path / "sqlite", sources_yaml(site.base))
    plain = make_settings(tmp_path / "es", sources_yaml(site.base))
    on_es = plain.model_copy(
        update={"store": plain.store.model_copy(update={"backend": "elasticsearch", "elasticsearch": es_settings})}
    )
    first = crawl_sources(on_es, ["gbk-next"], now=NOW, timeout=120)["gbk-next"]
    crawl_sources(on_sqlite, ["gbk-next"], now=NOW, timeout=120)
    assert (first["new"], first["errors"]) == (5, 8)

    def dumped(settings: Settings) -> dict[str, dict[str, Any]]:
        skip = {"stored_at", "updated_at", "matched_at"}
        return {key: item.model_dump(exclude=skip) for key, item in _items(settings, "gbk-next").items()}

    es_items = dumped(on_es)
    assert sorted(es_items) == ["XF-0001", "XF-0002", "XF-0004", "XF-0008", "XF-0099"]
    assert es_items == dumped(on_sqlite)
    again = crawl_sources(on_es, ["gbk-next"], now=NOW, timeout=120)["gbk-next"]
    assert (again["new"], again["updated"], again["skipped"]) == (0, 0, 5)
    store = make_store(on_es)
    try:
        assert store.backend == "elasticsearch"
        assert store.count(ItemQuery(source="gbk-next")) == 5
    finally:
        store.close()
