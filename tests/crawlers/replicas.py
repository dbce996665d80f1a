"""Local replicas of the government message site families of config/templates/.

Each replica answers the way its platform does in the wild (URL shapes, methods, field names, encodings,
checks on headers and cookies) and keeps its letters in a list, so a test can answer a letter between
two crawls and see the reply arrive as an update.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from tests.crawlers.site import Page, Request, Site

HTML = "text/html; charset=utf-8"
GBK_HTML = "text/html; charset=GBK"


@dataclass
class Letter:
    id: str
    title: str
    content: str
    date: str  # 2024-05-01
    unit: str = ""
    reply: str | None = None
    reply_date: str = ""
    status: int = 1

    @property
    def epoch(self) -> int:
        return int(datetime.fromisoformat(self.date + "T09:30:00+08:00").timestamp())


def letters(prefix: str, count: int, answered: int) -> list[Letter]:
    """``count`` letters, the first ``answered`` of them with a reply."""
    out = []
    for i in range(count):
        letter = Letter(
            id=f"{prefix}{i + 1}",
            title=f"{prefix}来信{i + 1}：关于小区（二期）供暖不热的问题",
            content=f"第{i + 1}封信：我们小区，冬季室温只有１２度，请尽快解决！",
            date=f"2024-05-{i + 1:02d}",
        )
        if i < answered:
            answer(letter, i)
        out.append(letter)
    return out


def answer(letter: Letter, i: int = 0) -> None:
    letter.unit = "某市住房和城乡建设局"
    letter.reply = f"您好：已责成供热公司（第{i + 1}组）上门检修，室温已达标。"
    letter.reply_date = f"2024-06-{i + 1:02d}"
    letter.status = 3


def _json(data: Any, status: int = 200) -> Page:
    return Page(status, json.dumps(data, ensure_ascii=False).encode(), "application/json;charset=UTF-8")


def _page(body: str, encoding: str = "utf-8", ctype: str = HTML, status: int = 200) -> Page:
    return Page(status, body.encode(encoding), ctype)


class TrsWcm:
    """TRS WCM static column: index.html, index_1.html ... and createPageHTML(pages, current, ...)."""

    PER_PAGE = 2

    def __init__(self, site: Site, base: str = "/zwdt") -> None:
        self.items = letters("T", 5, 0)
        self.base = base
        site.handle(f"{base}/index.html", lambda req: self.list(0))
        for n in range(1, 4):
            site.handle(f"{base}/index_{n}.html", lambda req, n=n: self.list(n))
        for i, item in enumerate(self.items):
            site.handle(f"{base}/202405/t2024050{i + 1}_{i + 100}.html", lambda req, item=item: self.detail(item))

    @property
    def pages(self) -> int:
        return (len(self.items) + self.PER_PAGE - 1) // self.PER_PAGE

    def list(self, n: int) -> Page:
        if n >= self.pages:
            return _page("<h1>404 页面不存在</h1>", status=404)
        rows = "".join(
            f'<li><a href="./202405/t2024050{self.items.index(it) + 1}_{self.items.index(it) + 100}.html" '
            f'target="_blank">{html.escape(it.title)}</a><span>{it.date}</span></li>'
            for it in self.items[n * self.PER_PAGE : (n + 1) * self.PER_PAGE]
        )
        return _page(
            f'<html><body><div class="nav">首页 &gt; 政务动态</div><ul class="list">{rows}</ul>'
            f'<div class="page"><script>createPageHTML({self.pages}, {n}, "index", "html");</script></div>'
            "</body></html>"
        )

    def detail(self, item: Letter) -> Page:
        return _page(
            f'<html><body><div class="article"><h1>{html.escape(item.title)}</h1>'
            f'<div class="info">发布时间：{item.date} 10:00　来源：市政府办公室</div>'
            f'<div class="TRS_Editor"><p>{html.escape(item.content)}</p><p>（完）</p></div></div>'
            "<!-- 统计 --><script>var _hmt=1;</script></body></html>"
        )


class JcmsDataproxy:
    """大汉 JCMS: POST dataproxy.jsp?startrecord=&endrecord=&perpage= with the column's form -> XML with CDATA."""

    FORM: ClassVar[dict[str, str]] = {
        "col": "1",
        "appid": "1",
        "webid": "3",
        "columnid": "123",
        "unitid": "456",
        "permissiontype": "0",
    }

    def __init__(self, site: Site) -> None:
        self.items = letters("J", 5, 2)
        site.handle("/module/web/jpage/dataproxy.jsp", self.list)
        for item in self.items:
            site.handle(f"/art/2024/5/1/art_123_{item.id}.html", lambda req, item=item: self.detail(item))

    def list(self, req: Request) -> Page:
        form = dict(parse_qsl(req.body.decode("ascii"), encoding="utf-8"))
        if req.method != "POST" or any(form.get(k) != v for k, v in self.FORM.items()):
            return _page("<datastore><totalrecord>0</totalrecord></datastore>", ctype="text/xml;charset=UTF-8")
        start, end = int(req.query["startrecord"]), int(req.query["endrecord"])
        records = "".join(
            f'<record><![CDATA[<li><a href="/art/2024/5/1/art_123_{it.id}.html" title="{html.escape(it.title)}" '
            f'target="_blank">{html.escape(it.title)}</a><span class="bt-data-time">{it.date}</span></li>]]></record>'
            for it in self.items[start - 1 : end]
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><datastore><nextgroup><![CDATA[<a href="#">下一组</a>]]></nextgroup>'
            f"<recordset>{records}</recordset><totalrecord>{len(self.items)}</totalrecord>"
            "<totalpage>2</totalpage></datastore>"
        )
        return _page(body, ctype="text/xml;charset=UTF-8")

    def detail(self, item: Letter) -> Page:
        reply = (
            f"<tr><td>办理单位：</td><td>{item.unit}</td></tr><tr><td>回复内容：</td><td>{html.escape(item.reply)}</td></tr>"
            f"<tr><td>回复时间：</td><td>{item.reply_date}</td></tr>"
            if item.reply
            else "<tr><td>回复内容：</td><td>暂无回复</td></tr>"
        )
        body = (
            '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head><body>'
            f'<table class="xj"><tr><td>信件标题：</td><td>{html.escape(item.title)}</td></tr>'
            f"<tr><td>来信时间：</td><td>{item.date}</td></tr>"
            f"<tr><td>信件内容：</td><td>{html.escape(item.content)}</td></tr>{reply}</table></body></html>"
        )
        return _page(body, "gbk", GBK_HTML)


class BoardJsonHtml:
    """A 留言板 API: POST JSON list (Referer/Origin checked, typed body, JSON-string param), HTML detail."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.items = letters("B", 3, 1)
        self.bodies: list[dict[str, Any]] = []
        site.handle("/v1/threads/list/df", self.list)
        site.handle("/threads/content", self.detail)

    def _refused(self, req: Request) -> bool:
        return (
            not req.headers.get("referer", "").startswith(self.site.base) or req.headers.get("origin") != self.site.base
        )

    def list(self, req: Request) -> Page:
        if req.method != "POST" or self._refused(req):
            return _json({"result": "fail", "message": "非法请求"}, 403)
        body = json.loads(req.body or b"{}")
        self.bodies.append(body)
        ok = (
            isinstance(body.get("fid"), int)
            and isinstance(body.get("rows"), int)
            and isinstance(body.get("page"), int)
            and isinstance(body.get("param"), str)
            and json.loads(body["param"]) == {"type": 1, "showUnAnswered": True}
        )
        if not ok:
            return _json({"result": "fail", "message": "参数错误"}, 400)
        rows = [
            {"tid": int(it.id[1:]) + 1000, "threadsTitle": it.title, "threadsCheckTime": it.epoch,
             "stateInfo": "已回复" if it.reply else "办理中"}
            for it in (self.items if body["page"] == 1 else [])
        ]  # fmt: skip
        return _json({"result": "success", "responseData": rows})

    def detail(self, req: Request) -> Page:
        tid = int(req.query.get("tid", "0")) - 1000
        item = next((it for it in self.items if it.id == f"B{tid}"), None)
        if item is None or self._refused(req):
            return _page("<h1>访问被拒绝</h1>", status=403)
        reply = (
            f'<div class="replyInfo"><p class="unit">{item.unit}</p><p class="replyContent">{html.escape(item.reply)}'
            f'</p><span class="replyTime">{item.reply_date} 16:20</span></div>'
            if item.reply
            else '<div class="replyInfo"><p class="replyContent">暂无回复</p></div>'
        )
        return _page(
            f'<html><body><h1 class="title">{html.escape(item.title)}</h1><div class="content"><p>'
            f"{html.escape(item.content)}</p></div>{reply}</body></html>"
        )


class BoardJsonJs:
    """A 网上信访 API: GET JSON list paged by pageNo; POST tid=... to one URL -> a JS object literal."""

    PER_PAGE = 2

    def __init__(self, site: Site) -> None:
        self.items = letters("S", 3, 1)
        self.detail_posts: list[str] = []
        site.handle("/api/letters", self.list)
        site.handle("/api/letter/detail", self.detail)

    def list(self, req: Request) -> Page:
        page = int(req.query.get("pageNo", "1"))
        rows = [
            {"id": it.id, "title": it.title, "createTime": f"{it.date} 09:30:00"}
            for it in self.items[(page - 1) * self.PER_PAGE : page * self.PER_PAGE]
        ]
        pages = (len(self.items) + self.PER_PAGE - 1) // self.PER_PAGE
        return _json({"code": 0, "data": {"pages": pages, "list": rows}})

    def detail(self, req: Request) -> Page:
        if req.method != "POST":
            return _json({"code": 405}, 405)
        tid = req.form.get("tid", "")
        self.detail_posts.append(tid)
        item = next((it for it in self.items if it.id == tid), None)
        if item is None:
            return _json({"code": 404}, 404)
        reply = f"'{item.unit}({item.reply_date})：{item.reply}'" if item.reply else "null"
        # Not JSON: unquoted keys, single quotes, a trailing comma.
        body = (
            f"{{code: 0, data: {{id: '{item.id}', content: '{item.content}', state: {item.status}, reply: {reply},}}}}"
        )
        return Page(200, body.encode(), "text/html; charset=utf-8")


class AspNet12345:
    """ASP.NET WebForms 12345 list: session cookie from Default.aspx, GridView postback paging,
    window.open links in onclick, numeric state codes."""

    PER_PAGE = 2

    def __init__(self, site: Site) -> None:
        self.items = letters("A", 3, 1)
        self.states: dict[str, int] = {}
        self.counter = 0
        site.handle("/12345/Default.aspx", self.home)
        site.handle("/12345/List.aspx", self.list)
        site.handle("/12345/ShowDetail.aspx", self.detail)

    def home(self, req: Request) -> Page:
        page = _page("<html><body>12345 热线</body></html>")
        page.headers["Set-Cookie"] = "ASP.NET_SessionId=s3ss10n; path=/"
        return page

    def _has_session(self, req: Request) -> bool:
        return "ASP.NET_SessionId=s3ss10n" in req.headers.get("cookie", "")

    def list(self, req: Request) -> Page:
        if not self._has_session(req):
            return _page("<h1>会话已过期，请从首页进入</h1>", status=403)
        page = 1
        if req.method == "POST":
            state = req.form.get("__VIEWSTATE", "")
            if state not in self.states or req.form.get("__EVENTTARGET") != "GridView1":
                return _page("<h1>无效的视图状态</h1>", status=500)
            page = int(req.form.get("__EVENTARGUMENT", "Page$1").split("$")[1])
        self.counter += 1
        state = f"VS{self.counter}+/="
        self.states[state] = page
        first = (page - 1) * self.PER_PAGE
        rows = "".join(
            f'<tr class="row"><td><a href="#" onclick="window.open(\'ShowDetail.aspx?ID={it.id}\',\'_blank\')">'
            f'{html.escape(it.title)}</a></td><td class="state">{2 if it.reply else 0}</td></tr>'
            for it in self.items[first : first + self.PER_PAGE]
        )
        pages = (len(self.items) + self.PER_PAGE - 1) // self.PER_PAGE
        pager = "".join(
            f"<td><a href=\"javascript:__doPostBack('GridView1','Page${n}')\">{n}</a></td>" for n in range(1, pages + 1)
        )
        body = (
            '<html><body><form method="post" action="./List.aspx" id="form1">'
            '<input type="hidden" name="__EVENTTARGET" value="" />'
            '<input type="hidden" name="__EVENTARGUMENT" value="" />'
            f'<input type="hidden" name="__VIEWSTATE" value="{state}" />'
            f'<table id="GridView1"><tr><th>标题</th><th>状态</th></tr>{rows}<tr class="pager">{pager}</tr></table>'
            "</form></body></html>"
        )
        return _page(body)

    def detail(self, req: Request) -> Page:
        item = next((it for it in self.items if it.id == req.query.get("ID")), None)
        if item is None or not self._has_session(req):
            return _page("<h1>参数错误</h1>", status=404)
        reply = (
            f"<tr><td>承办单位</td><td>{item.unit}</td></tr><tr><td>办理结果</td><td>{html.escape(item.reply)}</td></tr>"
            f"<tr><td>办结时间</td><td>{item.reply_date}</td></tr>"
            if item.reply
            else "<tr><td>办理结果</td><td></td></tr>"
        )
        return _page(
            f'<html><body><table class="detail"><tr><td>工单编号</td><td>GD{item.id}</td></tr>'
            f"<tr><td>标题</td><td>{html.escape(item.title)}</td></tr>"
            f"<tr><td>受理时间</td><td>{item.date} 08:00</td></tr>"
            f"<tr><td>诉求内容</td><td>{html.escape(item.content)}</td></tr>{reply}</table></body></html>"
        )


class JspOffset:
    """A JSP mailbox: GBK list.jsp?start=&end=, onclick showDetail('id','type') -> POST detail.do."""

    def __init__(self, site: Site) -> None:
        self.items = letters("P", 7, 2)
        self.posts: list[dict[str, str]] = []
        site.handle("/letter/list.jsp", self.list)
        site.handle("/letter/detail.do", self.detail)

    def list(self, req: Request) -> Page:
        start, end = int(req.query["start"]), int(req.query["end"])
        rows = "".join(
            f'<tr class="item"><td><a href="javascript:void(0)" onclick="showDetail(\'{2024000 + int(it.id[1:])}\', '
            f'\'1\')">{html.escape(it.title)}</a></td><td class="date">{it.date}</td></tr>'
            for it in self.items[start : end + 1]
        )
        body = (
            '<html><head><meta charset="gbk"></head><body><table class="list"><tr><th>标题</th><th>日期</th></tr>'
            f"{rows}</table><script>function showDetail(id,t){{/* post */}}</script></body></html>"
        )
        return _page(body, "gbk", GBK_HTML)

    def detail(self, req: Request) -> Page:
        form = dict(parse_qsl(req.body.decode("ascii")))
        self.posts.append(form)
        number = int(form.get("id", "0")) - 2024000
        item = next((it for it in self.items if it.id == f"P{number}"), None)
        if req.method != "POST" or item is None or form.get("type") != "1":
            return _page("参数错误", "gbk", GBK_HTML, 400)
        reply = f"{item.unit}({item.reply_date})：{html.escape(item.reply)}" if item.reply else "尚未回复"
        body = (
            '<html><head><meta charset="gbk"></head><body><table class="view">'
            f'<tr><td class="title">{html.escape(item.title)}</td></tr>'
            f'<tr><td class="content">{html.escape(item.content)}</td></tr>'
            f'<tr><td class="reply">{reply}</td></tr></table></body></html>'
        )
        return _page(body, "gbk", GBK_HTML)


class JsLiteralMailbox:
    """letters.js: var pageData = {...}; records without any id; the reply appears later."""

    def __init__(self, site: Site) -> None:
        self.items = letters("M", 3, 0)
        site.handle("/mailbox/letters.js", self.list)

    def list(self, req: Request) -> Page:
        rows = ",".join(
            f"{{title: {json.dumps(it.title, ensure_ascii=False)}, body: {json.dumps(it.content, ensure_ascii=False)}, "
            f"time: '{it.date[:4]}年{it.date[5:7]}月{it.date[8:]}日', "
            f"reply: {json.dumps(it.reply, ensure_ascii=False) if it.reply else 'null'}, "
            f"replyTime: '{it.reply_date}', state: {1 if it.reply else 0}}}"
            for it in self.items
        )
        body = f"var pageData = {{total: {len(self.items)}, rows: [{rows}]}};"
        return Page(200, body.encode(), "application/javascript")


class GovRss:
    """An RSS 2.0 feed of a government site."""

    def __init__(self, site: Site) -> None:
        self.items = letters("R", 2, 0)
        site.handle("/rss/zxxx.xml", self.feed)
        self.site = site

    def feed(self, req: Request) -> Page:
        entries = "".join(
            f"<item><title>{html.escape(it.title)}</title><link>{self.site.base}/art/{it.id}.html</link>"
            f"<guid>{it.id}</guid><description><![CDATA[<p>{it.content}</p>]]></description>"
            f"<pubDate>{format_datetime(datetime.fromisoformat(it.date + 'T02:00:00').replace(tzinfo=UTC))}</pubDate>"
            "</item>"
            for it in self.items
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>最新信息</title>'
            f"{entries}</channel></rss>"
        )
        return Page(200, body.encode(), "application/rss+xml; charset=UTF-8")


def build_all(site: Site) -> dict[str, Any]:
    """Every replica on one site, by the template source id that crawls it."""
    return {
        "trs-news": TrsWcm(site),
        "jcms-letters": JcmsDataproxy(site),
        "board-html": BoardJsonHtml(site),
        "board-json": BoardJsonJs(site),
        "aspnet-12345": AspNet12345(site),
        "jsp-letters": JspOffset(site),
        "js-mailbox": JsLiteralMailbox(site),
        "gov-rss": GovRss(site),
    }
