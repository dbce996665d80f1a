"""A local test site for the spiders: pages are registered per path and can change between crawls."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Page:
    status: int
    body: bytes
    content_type: str
    location: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to wait before answering (a slow government server).
    delay: float = 0.0


@dataclass
class Request:
    """What a dynamic page sees of a request."""

    method: str
    path: str
    query: dict[str, str]
    # Form fields of a urlencoded POST body.
    form: dict[str, str]
    body: bytes
    headers: dict[str, str]


Handler = Callable[[Request], Page]


class Site:
    """A threaded HTTP server on 127.0.0.1 answering registered pages; everything else is a 404."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.pages: dict[str, Page] = {}
        self.handlers: dict[str, Handler] = {}
        self.hits: dict[str, int] = {}
        # Monotonic arrival times per path, for tests of waits between attempts.
        self.times: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://{host}:{self.port}"
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

    def handle(self, path: str, handler: Handler) -> None:
        """Answer GET and POST requests to ``path`` (any query) with ``handler``."""
        with self._lock:
            self.handlers[path] = handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                self._answer(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(length) if length else b"")

            def _answer(self, body: bytes) -> None:
                parts = urlsplit(self.path)
                key = self.path if self.path in site.pages else parts.path
                with site._lock:
                    page = site.pages.get(key)
                    handler = site.handlers.get(parts.path)
                    if handler is not None:
                        key = parts.path
                    site.hits[key] = site.hits.get(key, 0) + 1
                    site.times.setdefault(key, []).append(time.monotonic())
                if handler is not None:
                    ctype = self.headers.get("Content-Type") or ""
                    form = (
                        dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
                        if ctype.startswith("application/x-www-form-urlencoded")
                        else {}
                    )
                    request = Request(
                        self.command,
                        parts.path,
                        dict(parse_qsl(parts.query, keep_blank_values=True)),
                        form,
                        body,
                        {k.lower(): v for k, v in self.headers.items()},
                    )
                    page = handler(request)
                elif page is None:
                    page = Page(404, "页面不存在".encode(), "text/html; charset=utf-8")
                if page.delay:
                    time.sleep(page.delay)
                try:
                    self.send_response(page.status)
                    self.send_header("Content-Type", page.content_type)
                    if page.location:
                        self.send_header("Location", page.location)
                    for name, value in page.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(page.body)))
                    self.end_headers()
                    self.wfile.write(page.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the crawler gave up waiting (timeout, size limit): nothing to answer

        return Handler
