"""A local test site for the spiders: pages are registered per path and can change between crawls."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Page:
    status: int
    body: bytes
    content_type: str
    location: str | None = None


class Site:
    """A threaded HTTP server on 127.0.0.1 answering registered pages; everything else is a 404."""

    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def html(self, path: str, text: str, encoding: str = "utf-8", content_type: str | None = None) -> None:
        """Serve ``text`` encoded as ``encoding`` with the given Content-Type (default: honest utf-8)."""
        ctype = content_type if content_type is not None else "text/html; charset=utf-8"
        self.set(path, Page(200, text.encode(encoding), ctype))

    def raw(self, path: str, body: bytes, content_type: str, status: int = 200) -> None:
        self.set(path, Page(status, body, content_type))

    def redirect(self, path: str, location: str) -> None:
        self.set(path, Page(302, b"", "text/html", location))

    def set(self, path: str, page: Page) -> None:
        with self._lock:
            self.pages[path] = page

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                key = self.path if self.path in site.pages else parts.path
                with site._lock:
                    page = site.pages.get(key)
                    site.hits[key] = site.hits.get(key, 0) + 1
                if page is None:
                    page = Page(404, "页面不存在".encode(), "text/html; charset=utf-8")
                self.send_response(page.status)
                self.send_header("Content-Type", page.content_type)
                if page.location:
                    self.send_header("Location", page.location)
                self.send_header("Content-Length", str(len(page.body)))
                self.end_headers()
                self.wfile.write(page.body)

        return Handler
