"""Every pagination family of Chinese government sites, crawled for real from a local site.

Record ranges (``start=0&end=4``), offset APIs, POST forms (GBK fields), JSON bodies, cursors, the TRS
``createPageHTML`` pager and an ASP.NET WebForms GridView whose server refuses any postback that does
not return the __VIEWSTATE / __EVENTVALIDATION it issued on the previous page.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest

from crawlers.runner import crawl_sources
from crawlers.spiders.paging import total_from_js
from service.settings import Settings
from service.store import make_store
from service.store.base import ItemQuery
from tests.crawlers.conftest import FAST_CRAWL, make_settings
from tests.crawlers.site import Page, Request, Site

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
HTML = "text/html; charset=utf-8"


def _html(body: str, status: int = 200) -> Page:
    return Page(status, f"<html><body>{body}</body></html>".encode(), HTML)


def _json(data: Any, status: int = 200) -> Page:
    return Page(status, json.dumps(data, ensure_ascii=False).encode(), "application/json;charset=UTF-8")


def _rows(ids: range | list[int], prefix: str) -> str:
    return "".join(
        f'<li><span class="t">{prefix}来信{i}</span><span class="d">2023-07-{i % 28 + 1:02d}</span>'
        f'<i class="no">{prefix}-{i}</i></li>'
        for i in ids
    )


# -- record ranges: list.jsp?start=0&end=4, then start=5&end=9 ... -----------------------------------------
RANGE_RECORDS = 12


def record_range_list(req: Request) -> Page:
    start, end = int(req.query["start"]), int(req.query["end"])
    if end != start + 4:
        return _html("参数错误", 400)
    ids = range(start, min(end + 1, RANGE_RECORDS))
    return _html(f'<ul class="list">{_rows(ids, "区间")}</ul>' if ids else "<p>没有更多数据</p>")


def offset_api(req: Request) -> Page:
    offset, limit = int(req.query["offset"]), int(req.query["limit"])
    ids = range(offset, min(offset + limit, 10))
    rows = [{"id": f"O{i}", "title": f"偏移来信{i}", "time": "2023-07-21"} for i in ids]
    return _json({"code": 200, "rows": rows, "total": 10})


# -- a POST form with GBK fields: list.do, pageNo=1, 2, 3 ----------------------------------------------------
class GbkForm:
    """list.do answers POSTs only, and only with the right category and keyword (sent in GBK)."""

    def __init__(self) -> None:
        self.pages: list[str] = []

    def __call__(self, req: Request) -> Page:
        if req.method != "POST":
            return _html("405 Method Not Allowed", 405)
        form = dict(parse_qsl(req.body.decode("ascii"), encoding="gbk"))
        if form.get("type") != "12345" or form.get("keyword") != "投诉":
            return _html("缺少参数", 400)
        page = form.get("pageNo", "")
        self.pages.append(page)
        ids = {"1": range(0, 3), "2": range(3, 6)}.get(page, range(0))
        body = f'<ul class="list">{_rows(ids, "表单")}</ul>' if ids else "<p>暂无数据</p>"
        return Page(200, f"<html><body>{body}</body></html>".encode("gbk"), "text/html; charset=GBK")


class JsonBodyApi:
    """A Vue front end's API: POST {"pageNum": 1, "pageSize": 3}; numbers must be numbers."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, req: Request) -> Page:
        body = json.loads(req.body or b"{}")
        self.bodies.append(body)
        page = body.get("pageNum")
        if req.method != "POST" or not isinstance(page, int) or body.get("channel") != "mailbox":
            return _json({"code": 400, "msg": "参数错误"}, 400)
        rows = [{"id": f"J{i}", "title": f"接口来信{i}"} for i in range((page - 1) * 3, min(page * 3, 5))]
        return _json({"code": 200, "data": {"pages": 2, "list": rows}})


def cursor_api(chain: dict[str, str], prefix: str, param: str) -> Any:
    """Pages keyed by the cursor they are asked with ('' = no cursor); each names the next one."""

    def answer(req: Request) -> Page:
        cursor = req.query.get(param, "")
        if cursor not in chain:
            return _json({"code": 400}, 400)
        rows = [{"id": f"{prefix}{cursor}{k}", "title": f"游标来信{cursor}{k}"} for k in range(2)]
        return _json({"data": {"items": rows, "nextCursor": chain[cursor]}})

    return answer


# -- the TRS CMS pager: index.html, index_1.html, index_2.html and createPageHTML(3, 0, ...) ----------------
def trs_page(number: int) -> str:
    rows = _rows(range(number * 2, number * 2 + 2), "静态")
    script = (
        '<script src="/js/page.js"></script>'
        if number
        else "<script>function createPageHTML(_nPageCount, _nCurrIndex, _sPageName, _sPageExt) {}</script>"
    )
    return (
        f'<html><body><ul class="list">{rows}</ul>{script}<div class="page"><script language="JavaScript">'
        f'createPageHTML(3, {number}, "index", "html");</script></div></body></html>'
    )


# -- ASP.NET WebForms: a GridView paged by __doPostBack('GridView1','Page$N') --------------------------------
class AspNetGrid:
    """A WebForms page that issues a fresh __VIEWSTATE per answer and accepts only a postback returning it."""

    GENERATOR = "C2EE9ABB"
    PER_PAGE = 3
    RECORDS = 7

    def __init__(self) -> None:
        self.issued: dict[str, tuple[int, str]] = {}  # viewstate -> (page it was issued on, event validation)
        self.accepted: list[tuple[int, int]] = []  # (page of the viewstate posted, page asked for)
        self.refused = 0
        self._lock = threading.Lock()

    def __call__(self, req: Request) -> Page:
        if req.method == "GET":
            return self._render(1)
        form = req.form
        with self._lock:
            issued = self.issued.get(form.get("__VIEWSTATE", ""))
        argument = form.get("__EVENTARGUMENT", "")
        valid = (
            issued is not None
            and form.get("__EVENTVALIDATION") == issued[1]
            and form.get("__VIEWSTATEGENERATOR") == self.GENERATOR
            and form.get("__EVENTTARGET") == "GridView1"
            and argument.startswith("Page$")
            and argument[5:].isdigit()
            and "btnSearch" not in form  # a clicked search button is a search, not a page change
        )
        if not valid:
            with self._lock:
                self.refused += 1
            return _html("<h2>Validation of viewstate MAC failed.</h2>", 500)
        assert issued is not None
        page = int(argument[5:])
        with self._lock:
            self.accepted.append((issued[0], page))
        return self._render(min(page, self.pages))  # like a GridView, past the end shows the last page

    @property
    def pages(self) -> int:
        return -(-self.RECORDS // self.PER_PAGE)

    def _render(self, page: int) -> Page:
        # Real view state is base64 with '+', '/' and '=': it must survive the form encoding.
        state = "/wEPDwUK" + base64.b64encode(secrets.token_bytes(24) + b"\xfb\xff").decode()
        validation = "/wEdAA" + base64.b64encode(secrets.token_bytes(18)).decode()
        with self._lock:
            self.issued[state] = (page, validation)
        first = (page - 1) * self.PER_PAGE
        rows = "".join(
            f'<tr><td><a href="Detail.aspx?id={i}">网上信访第{i}号</a></td><td>2023-7-{i + 1}</td></tr>'
            for i in range(first, min(first + self.PER_PAGE, self.RECORDS))
        )
        pager = "".join(
            f"<td><span>{n}</span></td>"
            if n == page
            else f"<td><a href=\"javascript:__doPostBack('GridView1','Page${n}')\">{n}</a></td>"
            for n in range(1, self.pages + 1)
        )
        body = f"""<!DOCTYPE html><html><head><title>网上信访</title></head><body>
<form method="post" action="./List.aspx" id="form1">
<div class="aspNetHidden">
<input type="hidden" name="__EVENTTARGET" id="__EVENTTARGET" value="" />
<input type="hidden" name="__EVENTARGUMENT" id="__EVENTARGUMENT" value="" />
<input type="hidden" name="__VIEWSTATE" id="__VIEWSTATE" value="{state}" />
</div>
<script type="text/javascript">
var theForm = document.forms['form1'];
function __doPostBack(eventTarget, eventArgument) {{
  theForm.__EVENTTARGET.value = eventTarget; theForm.__EVENTARGUMENT.value = eventArgument; theForm.submit();
}}
</script>
<div class="aspNetHidden">
<input type="hidden" name="__VIEWSTATEGENERATOR" id="__VIEWSTATEGENERATOR" value="{self.GENERATOR}" />
<input type="hidden" name="__EVENTVALIDATION" id="__EVENTVALIDATION" value="{validation}" />
</div>
关键字：<input name="txtKeyword" type="text" id="txtKeyword" /><input type="submit" name="btnSearch" value="查询" />
<table id="GridView1"><tr><th>标题</th><th>日期</th></tr>{rows}
<tr class="pager"><td colspan="2"><table><tr>{pager}</tr></table></td></tr></table>
</form></body></html>"""
        return Page(200, body.encode(), HTML)


def aspnet_detail(req: Request) -> Page:
    i = int(req.query.get("id", "-1"))
    if not 0 <= i < AspNetGrid.RECORDS:
        return _html("参数错误", 404)
    return _html(f'<h1>网上信访第{i}号</h1><div id="content">反映第{i}号问题。</div><span id="no">WS-{i}</span>')


SOURCES = """
sources:
  - id: range-html
    name: 记录区间翻页
    channel: mailbox
    type: html
    start_urls: ["{base}/rng/list.jsp?start=0&end=4"]
    interval: 1h
    max_pages: 10
    list:
      items: "ul.list > li"
      page_url: "list.jsp?start={{offset}}&end={{end}}"
      page_size: 5
      fields: {{title: "span.t", published_at: "span.d", external_id: "i.no"}}
  - id: offset-json
    name: 偏移量接口
    channel: mailbox
    type: json
    start_urls: ["{base}/rng/api?offset=0&limit=4"]
    interval: 1h
    max_pages: 10
    list: {{items: rows, page_url: "api?offset={{offset}}&limit=4", page_size: 4}}
    fields: {{external_id: id, title: title, published_at: time}}
  - id: gbk-form
    name: 表单翻页（GBK）
    channel: hotline
    type: html
    encoding: gbk
    start_urls: ["{base}/form/list.do"]
    interval: 1h
    max_pages: 5
    list:
      items: "ul.list > li"
      form: {{page_field: pageNo, data: {{type: "12345", keyword: 投诉}}}}
      fields: {{title: "span.t", external_id: "i.no"}}
  - id: json-body
    name: JSON 请求体翻页
    channel: mailbox
    type: json
    start_urls: ["{base}/vue/api/list"]
    interval: 1h
    max_pages: 5
    list:
      items: data.list
      total_pages: data.pages
      form: {{page_field: pageNum, body: json, data: {{pageSize: "3", channel: mailbox}}}}
    fields: {{external_id: id, title: title}}
  - id: cursor-end
    name: 游标翻页（到空游标为止）
    channel: media
    type: json
    start_urls: ["{base}/cursor/api?size=2"]
    interval: 1h
    max_pages: 10
    list: {{items: data.items, cursor: data.nextCursor, cursor_param: cursor}}
    fields: {{external_id: id, title: title}}
  - id: cursor-loop
    name: 游标翻页（游标重复）
    channel: media
    type: json
    start_urls: ["{base}/cursor/loop"]
    interval: 1h
    max_pages: 10
    list: {{items: data.items, cursor: data.nextCursor, cursor_param: after}}
    fields: {{external_id: id, title: title}}
  - id: trs
    name: TRS 静态分页
    channel: hotline
    type: html
    start_urls: ["{base}/trs/index.html"]
    interval: 1h
    max_pages: 10
    list:
      items: "ul.list > li"
      page_url: "index_{{page0}}.html"
      total_pages_js: createPageHTML
      fields: {{title: "span.t", external_id: "i.no"}}
  - id: aspnet
    name: ASP.NET 回发翻页
    channel: mailbox
    type: html
    start_urls: ["{base}/aspnet/List.aspx"]
    interval: 1h
    max_pages: 10
    list:
      items: "xpath://table[@id='GridView1']/tr[td/a[contains(@href, 'Detail.aspx')]]"
      url: "a::attr(href)"
      form: {{aspnet: true, event_target: GridView1, event_argument: "Page${{page}}"}}
    fields: {{title: h1, content: "#content", external_id: "#no"}}
"""


@pytest.fixture(scope="module")
def paged(site: Site, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, Any], dict[str, Any]]:
    servers: dict[str, Any] = {"form": GbkForm(), "json": JsonBodyApi(), "aspnet": AspNetGrid()}
    site.handle("/rng/list.jsp", record_range_list)
    site.handle("/rng/api", offset_api)
    site.handle("/form/list.do", servers["form"])
    site.handle("/vue/api/list", servers["json"])
    site.handle("/cursor/api", cursor_api({"": "c2", "c2": "c3", "c3": ""}, "C", "cursor"))
    site.handle("/cursor/loop", cursor_api({"": "x1", "x1": "x1"}, "X", "after"))
    for n, name in enumerate(["index.html", "index_1.html", "index_2.html", "index_3.html"]):
        site.html(f"/trs/{name}", trs_page(n))
    site.handle("/aspnet/List.aspx", servers["aspnet"])
    site.handle("/aspnet/Detail.aspx", aspnet_detail)
    settings = make_settings(tmp_path_factory.mktemp("paged"), FAST_CRAWL + SOURCES.format(base=site.base))
    return settings, crawl_sources(settings, now=NOW, timeout=120), servers


def _ids(settings: Settings, source: str) -> list[str]:
    store = make_store(settings)
    try:
        return sorted(i.external_id or "" for i in store.search(ItemQuery(source=source, size=100)).results)
    finally:
        store.close()


def test_record_range_pages_by_offset_and_end(paged: tuple[Settings, dict[str, Any], Any], site: Site) -> None:
    settings, counts, _ = paged
    assert _ids(settings, "range-html") == sorted(f"区间-{i}" for i in range(12))
    assert counts["range-html"]["errors"] == 0
    assert counts["range-html"]["pages"] == 4  # 0-4, 5-9, 10-14 (two records), 15-19 (empty: the end)


def test_offset_api_pages_until_an_empty_page(paged: tuple[Settings, dict[str, Any], Any], site: Site) -> None:
    settings, _, _ = paged
    assert _ids(settings, "offset-json") == sorted(f"O{i}" for i in range(10))
    assert site.hits["/rng/api"] == 4  # offsets 0, 4, 8 and the empty 12


def test_post_form_sends_page_numbers_and_gbk_fields(paged: tuple[Settings, dict[str, Any], Any]) -> None:
    settings, counts, servers = paged
    assert _ids(settings, "gbk-form") == sorted(f"表单-{i}" for i in range(6))
    assert servers["form"].pages == ["1", "2", "3"]
    assert counts["gbk-form"]["errors"] == 0


def test_json_body_carries_numbers_and_total_pages_stops(paged: tuple[Settings, dict[str, Any], Any]) -> None:
    settings, _, servers = paged
    assert _ids(settings, "json-body") == [f"J{i}" for i in range(5)]
    assert [b["pageNum"] for b in servers["json"].bodies] == [1, 2]


def test_cursor_paging_stops_at_empty_and_repeated_cursors(
    paged: tuple[Settings, dict[str, Any], Any], site: Site
) -> None:
    settings, counts, _ = paged
    assert _ids(settings, "cursor-end") == sorted(f"C{c}{k}" for c in ("", "c2", "c3") for k in range(2))
    assert site.hits["/cursor/api"] == 3
    assert _ids(settings, "cursor-loop") == ["X0", "X1", "Xx10", "Xx11"]
    assert site.hits["/cursor/loop"] == 2  # the repeated cursor x1 is not asked for again
    assert counts["cursor-loop"]["errors"] == 0


def test_trs_page_count_read_from_inline_script(paged: tuple[Settings, dict[str, Any], Any], site: Site) -> None:
    settings, _, _ = paged
    assert _ids(settings, "trs") == sorted(f"静态-{i}" for i in range(6))
    assert site.hits["/trs/index_2.html"] == 1
    assert "/trs/index_3.html" not in site.hits  # createPageHTML(3, ...) says three pages


def test_aspnet_postbacks_return_each_pages_viewstate(paged: tuple[Settings, dict[str, Any], Any]) -> None:
    settings, counts, servers = paged
    grid: AspNetGrid = servers["aspnet"]
    assert _ids(settings, "aspnet") == [f"WS-{i}" for i in range(7)]
    assert grid.refused == 0
    # Page 2 was asked with page 1's view state, page 3 with page 2's; "page 4" showed page 3 again,
    # which ended the paging.
    assert grid.accepted == [(1, 2), (2, 3), (3, 4)]
    assert counts["aspnet"]["errors"] == 0
    assert counts["aspnet"]["pages"] == 4


def test_aspnet_site_refuses_a_postback_without_its_viewstate(site: Site, paged: Any) -> None:
    grid: AspNetGrid = paged[2]["aspnet"]
    before = grid.refused
    body = b"__EVENTTARGET=GridView1&__EVENTARGUMENT=Page%242&__VIEWSTATEGENERATOR=C2EE9ABB&__VIEWSTATE=%2FwEPDwUK"
    request = urllib.request.Request(f"{site.base}/aspnet/List.aspx", data=body, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 500
    assert grid.refused == before + 1


@pytest.mark.parametrize(
    ("script", "name", "total"),
    [
        ('createPageHTML(12, 0, "index", "html");', "createPageHTML", 12),
        ("function createPageHTML(_nPageCount, _n) {}\ncreatePageHTML( 7 ,1,'index')", "createPageHTML", 7),
        ("var totalPage = 12;", "totalPage", 12),
        ('var countPage = "5"//共多少页', "countPage", 5),
        ("pager({totalPage: 9, current: 1})", "totalPage", 9),
        ("var myTotalPage = 4; if (totalPage == 1) {}", "totalPage", None),
        ("var totalPages = 4;", "totalPage", None),
        ("createPageHTML(99999999999, 0)", "createPageHTML", None),
        ("", "totalPage", None),
    ],
)
def test_page_count_from_script_without_running_it(script: str, name: str, total: int | None) -> None:
    assert total_from_js(script, name) == total
