"""Request-level protections: body size limit, foreign-Origin refusal, security headers, rate limiters."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from loguru import logger
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth.ratelimit import RateLimiter
from service.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSP = "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'"
# Swagger UI (service.api_docs): scripts and styles from this service only; it sets inline styles.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "worker-src 'self' blob:; object-src 'none'; frame-ancestors 'none'; base-uri 'self'"
)
DOCS_PATHS = ("/docs", "/redoc")
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


async def _send_json(send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


def _origin(url: str) -> str:
    """``scheme://host[:port]`` with the default port left out, lower-cased."""
    parts = urlsplit(url.strip().lower())
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return "invalid"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class SecurityMiddleware:
    """Headers on every answer; state-changing requests from a foreign Origin and oversized bodies refused."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, public_url: str | None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.public_origin = _origin(public_url) if public_url else None

    def _own_origin(self, scope: Scope) -> str:
        if self.public_origin:
            return self.public_origin
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        return _origin(f"{scope.get('scheme', 'http')}://{host}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else CSP
        extra = [(b"content-security-policy", csp.encode()), *HEADERS]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message = {
                    **message,
                    "headers": [*message.get("headers", []), *(h for h in extra if h[0] not in names)],
                }
            await send(message)

        headers = dict(scope.get("headers") or [])
        if scope["method"] not in SAFE_METHODS:
            origin = headers.get(b"origin")
            if origin is not None and _origin(origin.decode("latin-1")) != self._own_origin(scope):
                logger.warning("已拒绝 {} {}：来自外部来源 {!r}", scope["method"], path, origin[:200])
                await _send_json(send_with_headers, 403, "跨站请求被拒绝 (foreign Origin)")
                return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_large = int(length) > self.max_body_bytes
            except ValueError:
                await _send_json(send_with_headers, 400, "Content-Length 无效")
                return
            if too_large:
                await _send_json(send_with_headers, 413, f"请求体超过 {self.max_body_bytes} 字节")
                return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # Raised inside the body read, so FastAPI's exception handling answers 413.
                    raise HTTPException(413, f"请求体超过 {self.max_body_bytes} 字节")
            return message

        await self.app(scope, counted_receive, send_with_headers)


def install_security(app: FastAPI, settings: Settings) -> None:
    """Add the security middleware and the login/search rate limiters to ``app``."""
    policy = settings.security
    app.add_middleware(SecurityMiddleware, max_body_bytes=policy.max_body_bytes, public_url=settings.server.public_url)
    app.state.limiters = {
        "login": RateLimiter(policy.login_rate_per_minute),
        "search": RateLimiter(policy.search_rate_per_minute),
    }


def limiter(app: Any, name: str) -> RateLimiter | None:
    """The app's rate limiter called ``name`` (None when the app has no security installed)."""
    return getattr(app.state, "limiters", {}).get(name)
