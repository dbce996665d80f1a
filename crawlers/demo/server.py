"""The bundled demo site on loopback: a GBK 12345 hotline, a mayor's-mailbox JSON API and a media RSS feed."""

from __future__ import annotations

import html
import json
import re
import threading
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from crawlers.demo.data import Record, hotline_records, live_record, mailbox_records, media_records
from service import clock
from service.clock import SHANGHAI

DEMO_PORT = 8801
# A new work order every minute for as long as the demo runs (0 turns it off).
LIVE_INTERVAL = 60.0
DEMO_SOURCES = Path(__file__).with_name("sources.yaml")
HOTLINE_PAGE_SIZE = 10
MAILBOX_PAGE_SIZE = 8
_CALLBACK = re.compile(r"^[A-Za-z_$][\w$]{0,63}$")


def _local(value: datetime) -> datetime:
    return value.astimezone(SHANGHAI)


class DemoSite:
    """The demo's content, rendered against the moment the server started."""

    def __init__(self, now: datetime, live_interval: float = 0) -> None:
        self.now = now
        self.live_interval = live_interval  # serve_demo turns it on; 0 keeps the content fixed
        self._hotline = hotline_records()
        self._live_published = 0
        self._lock = threading.Lock()
        self.mailbox = mailbox_records()
        self.media = media_records()

    @property
    def hotline(self) -> list[Record]:
        """The work orders as of now, newest first: one more every ``live_interval`` seconds since the start.

        The same list every time, so a caller may put its own records on top (the soak test does).
        """
        if self.live_interval > 0:
            elapsed = (clock.now() - self.now).total_seconds()
            due = max(0, int(elapsed // self.live_interval))
            with self._lock:
                while self._live_published < due:
                    self._live_published += 1
                    self._hotline.insert(0, live_record(self._live_published, self.live_interval))
        return self._hotline

    @property
    def live_published(self) -> int:
        """How many live work orders the site has published since it started."""
        _ = self.hotline  # publishes what is due
        return self._live_published

    # 12345: GBK pages, charset only in <meta>, tables, a 下一页 link.
    def hotline_pages(self) -> int:
        return (len(self.hotline) + HOTLINE_PAGE_SIZE - 1) // HOTLINE_PAGE_SIZE

    def hotline_list(self, page: int) -> str | None:
        if not 1 <= page <= self.hotline_pages():
            return None
        chunk = self.hotline[(page - 1) * HOTLINE_PAGE_SIZE : page * HOTLINE_PAGE_SIZE]
        rows = "\n".join(
            f'<li><a href="detail/{r.ident}.html" target="_blank">{html.escape(r.title)}</a>'
            f'<span class="date">{_local(r.published(self.now)):%Y-%m-%d}</span>'
            f'<span class="state">{html.escape(r.status)}</span></li>'
            for r in chunk
        )
        nav = f'<a class="next" href="list_{page + 1}.html">下一页</a>' if page < self.hotline_pages() else ""
        return _gbk_page(
            "12345市民服务热线 - 工单公开",
            f'<div class="nav">首页 &gt; 工单公开</div><ul class="orders">\n{rows}\n</ul>'
            f'<div class="pager">第{page}页/共{self.hotline_pages()}页 {nav}</div>',
        )

    def hotline_detail(self, ident: str) -> str | None:
        record = next((r for r in self.hotline if r.ident == ident), None)
        if record is None:
            return None
        replied = record.replied(self.now)
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in re.split(r"(?<=。)", record.content) if p)
        table = f"""<table class="gd" border="1">
<tr><td class="label">工单编号：</td><td>{record.ident}</td><td class="label">受理时间：</td>
<td>{_local(record.published(self.now)):%Y年%m月%d日 %H:%M}</td></tr>
<tr><td class="label">诉求标题：</td><td colspan="3" class="title">{html.escape(record.title)}</td></tr>
<tr><td class="label">诉求内容：</td><td colspan="3" class="content">{paragraphs}</td></tr>
<tr><td class="label">承办单位：</td><td>{html.escape(record.department)}</td>
<td class="label">办理状态：</td><td>{html.escape(record.status)}</td></tr>
<tr><td class="label">答复内容：</td><td colspan="3" class="reply">{html.escape(record.reply) or "暂无答复"}</td></tr>
<tr><td class="label">答复时间：</td><td colspan="3">{f"{_local(replied):%Y-%m-%d %H:%M}" if replied else ""}</td></tr>
</table>"""
        return _gbk_page(record.title, f"<!-- 工单详情 -->{table}<script>var pv = 1;</script>")

    # Mayor's mailbox: a paged JSON API (JSONP with ?callback=), epoch and Chinese dates.
    def mailbox_api(self, page: int, size: int) -> dict:
        size = max(1, min(size, 50))
        total_pages = (len(self.mailbox) + size - 1) // size
        chunk = self.mailbox[(page - 1) * size : page * size] if page >= 1 else []
        records = []
        for r in chunk:
            replied = r.replied(self.now)
            records.append(
                {
                    "letterId": r.ident,
                    "subject": r.title if r.public else "（不公开）",
                    "content": f"<p>{html.escape(r.content)}</p>" if r.public else "",
                    "createTime": int(r.published(self.now).timestamp()),
                    "handleDept": r.department,
                    "state": r.status,
                    "isPublic": 1 if r.public else 0,
                    "detailUrl": f"/mailbox/letter/{r.ident}.html" if r.public else None,
                    "reply": {
                        "content": r.reply,
                        "time": f"{_local(replied):%Y年%m月%d日}" if replied else None,
                    },
                }
            )
        return {"code": 200, "msg": "成功", "data": {"pageNo": page, "totalPage": total_pages, "records": records}}

    def mailbox_letter(self, ident: str) -> str | None:
        record = next((r for r in self.mailbox if r.ident == ident and r.public), None)
        if record is None:
            return None
        return _page(record.title, f"<h1>{html.escape(record.title)}</h1><p>{html.escape(record.content)}</p>")

    def rss(self, base_url: str) -> str:
        items = "\n".join(
            f"""<item><title>{html.escape(r.title)}</title>
<link>{base_url}/media/news/{r.ident}.html</link><guid isPermaLink="false">{r.ident}</guid>
<description>{html.escape(f"<p>{r.content}</p>")}</description>
<pubDate>{format_datetime(r.published(self.now))}</pubDate><author>青川日报</author></item>"""
            for r in self.media
        )
        return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>青川新闻网</title><link>{base_url}/media/</link>
<description>示例媒体订阅源</description>
{items}
</channel></rss>"""

    def news(self, ident: str) -> str | None:
        record = next((r for r in self.media if r.ident == ident), None)
        if record is None:
            return None
        return _page(record.title, f"<h1>{html.escape(record.title)}</h1><p>{html.escape(record.content)}</p>")


def _gbk_page(title: str, body: str) -> str:
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
        f"<title>{html.escape(title)}</title><style>.gd td{{padding:4px}}</style></head>"
        f"<body>{body}</body></html>"
    )


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body>{body}</body></html>"
    )


_INDEX = _page(
    "示例政务网站",
    '<h1>示例市政务服务网（演示）</h1><ul><li><a href="/12345/list_1.html">12345热线工单公开</a></li>'
    '<li><a href="/mailbox/api/letters?pageNo=1">市长信箱接口</a></li>'
    '<li><a href="/media/rss.xml">青川新闻网 RSS</a></li></ul>',
)


def _make_handler(site: DemoSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "DemoGov/1.0"

        def log_message(self, format: str, *args: object) -> None:
            return  # the demo is quiet; the crawler logs what it fetches

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            query = parse_qs(parts.query)
            address = self.server.server_address  # (host, port) for the TCP server of serve()
            host = self.headers.get("Host") or f"127.0.0.1:{address[1] if isinstance(address, tuple) else ''}"
            base_url = f"http://{host}"
            if path == "/robots.txt":
                self._send(200, b"User-agent: *\nDisallow: /admin/\n", "text/plain")
            elif path in ("/", "/index.html"):
                self._send(200, _INDEX.encode("utf-8"), "text/html; charset=utf-8")
            elif m := re.fullmatch(r"/12345/list_(\d+)\.html", path):
                self._gbk(site.hotline_list(int(m.group(1))))
            elif m := re.fullmatch(r"/12345/detail/(\w+)\.html", path):
                self._gbk(site.hotline_detail(m.group(1)))
            elif path == "/mailbox/api/letters":
                page = _int(query.get("pageNo", ["1"])[0], 1)
                size = _int(query.get("pageSize", [str(MAILBOX_PAGE_SIZE)])[0], MAILBOX_PAGE_SIZE)
                body = json.dumps(site.mailbox_api(page, size), ensure_ascii=False)
                callback = query.get("callback", [""])[0]
                if callback and _CALLBACK.match(callback):
                    self._send(200, f"{callback}({body});".encode(), "application/javascript; charset=utf-8")
                else:
                    self._send(200, body.encode("utf-8"), "application/json; charset=utf-8")
            elif m := re.fullmatch(r"/mailbox/letter/(\w+)\.html", path):
                self._utf8(site.mailbox_letter(m.group(1)))
            elif path == "/media/rss.xml":
                self._send(200, site.rss(base_url).encode("utf-8"), "application/rss+xml; charset=utf-8")
            elif m := re.fullmatch(r"/media/news/([\w-]+)\.html", path):
                self._utf8(site.news(m.group(1)))
            else:
                self._send(404, "页面不存在".encode(), "text/plain; charset=utf-8")

        def _gbk(self, page: str | None) -> None:
            if page is None:
                self._send(404, "页面不存在".encode("gbk"), "text/html")
            else:
                # Like many old sites: no charset in the header, only in <meta>.
                self._send(200, page.encode("gbk"), "text/html")

        def _utf8(self, page: str | None) -> None:
            if page is None:
                self._send(404, b"not found", "text/plain")
            else:
                self._send(200, page.encode("utf-8"), "text/html; charset=utf-8")

    return Handler


def _int(value: str, default: int) -> int:
    return int(value) if value.isdigit() else default


def serve_demo(
    port: int = DEMO_PORT, host: str = "127.0.0.1", live_interval: float = LIVE_INTERVAL
) -> tuple[ThreadingHTTPServer, str]:
    """Start the demo site in a daemon thread; returns the server (``.shutdown()`` stops it) and its URL."""
    site = DemoSite(clock.now(), live_interval)
    server = ThreadingHTTPServer((host, port), _make_handler(site))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="yuqing-demo-site", daemon=True)
    thread.start()
    return server, f"http://{host}:{server.server_address[1]}"


def demo_sources_yaml(base_url: str) -> str:
    """The demo's sources.yaml text, pointed at ``base_url`` (the demo may run on another port)."""
    text = DEMO_SOURCES.read_text(encoding="utf-8")
    return text.replace(f"http://127.0.0.1:{DEMO_PORT}", base_url.rstrip("/"))
