"""Server-Sent Events for a signed-in user: one loop for every live stream (alerts, ticket changes).

The loop polls a ``fetch(last_id)`` function for rows newer than the last one sent, keeps the session
alive while the stream is open, ends it within seconds of a logout, and sends a comment line on idle
streams so proxies do not close them. Each stream decides what its caller may see inside ``fetch``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from service.api_fields import ROW_ID_MAX
from service.auth.service import is_live, touch

# An open stream is a user at work: it refreshes the session's idle clock this often.
SESSION_TOUCH_SECONDS = 60.0
# How often an open stream checks its session is still live (logout must end it within 5 seconds).
SESSION_CHECK_SECONDS = 2.0
# A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_SECONDS = 15.0

# One event: its id (the client resumes after it: a row id, or "A:R" for a stream of two kinds of rows;
# None for a side event that is not a resume point), its SSE event name, its JSON payload.
Event = tuple[int | str | None, str, dict[str, Any]]
# What one poll found: the events to send, and the id the next poll starts after (rows the caller may
# not see are skipped past, not sent).
Found = tuple[list[Event], int]


def resume_point(request: Request, after: int | None) -> int | None:
    """Where a stream starts: the Last-Event-ID a reconnecting browser sends, else ``after``."""
    last_header = request.headers.get("last-event-id")
    # A resuming client sends the last id it saw; anything that is not a plausible id is ignored.
    if last_header is not None and last_header.isdigit() and len(last_header) <= 10:
        return min(int(last_header), ROW_ID_MAX)
    return after


def resume_pair(request: Request, after: int | None) -> tuple[int | None, int | None]:
    """Where a stream of two kinds of rows starts: Last-Event-ID ``"A:R"`` (both), ``"A"`` (the first kind
    only, from before the second kind had ids), else ``(after, None)``."""
    last_header = request.headers.get("last-event-id") or ""
    first, sep, second = last_header.partition(":")
    if sep and first.isdigit() and second.isdigit() and len(first) <= 10 and len(second) <= 10:
        return min(int(first), ROW_ID_MAX), min(int(second), ROW_ID_MAX)
    return resume_point(request, after), None


def frame(event_id: int | str | None, name: str, payload: dict[str, Any]) -> str:
    """One SSE message."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


def session_stream(
    request: Request, ctx: Any, last: int, fetch: Callable[[int], Found], poll: float
) -> StreamingResponse:
    """An SSE response sending what ``fetch`` finds after ``last``, for as long as the session lives."""
    session_id = getattr(request.state, "session_id", None)

    async def events() -> AsyncIterator[str]:
        nonlocal last
        yield "retry: 3000\n\n"
        idle = 0.0
        touched = checked = time.monotonic()
        while not await request.is_disconnected() and not _server_exiting(request):
            if session_id is not None and time.monotonic() - touched >= SESSION_TOUCH_SECONDS:
                # Keep the session alive, and end the stream once the session is over (logout,
                # revocation, absolute timeout) so the client must sign in again.
                if not await asyncio.to_thread(_touch, ctx, session_id):
                    return
                touched = checked = time.monotonic()
            elif session_id is not None and time.monotonic() - checked >= SESSION_CHECK_SECONDS:
                # A logout or revocation ends the stream within seconds, not at the next touch.
                if not await asyncio.to_thread(_live, ctx, session_id):
                    return
                checked = time.monotonic()
            rows, scanned = await asyncio.to_thread(fetch, last)
            for event_id, name, payload in rows:
                yield frame(event_id, name, payload)
            moved = scanned > last
            last = max(last, scanned)
            if rows or moved:
                idle = 0.0
                continue
            await asyncio.sleep(poll)
            idle += poll
            if idle >= KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                idle = 0.0

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _server_exiting(request: Request) -> bool:
    """Whether the server is stopping: the browser then reconnects to whichever process serves next."""
    exiting = getattr(request.app.state, "exiting", None)
    return bool(exiting is not None and exiting())


def _touch(ctx: Any, session_id: int) -> bool:
    with ctx.db.session() as session:
        return touch(session, session_id, policy=ctx.settings.security)


def _live(ctx: Any, session_id: int) -> bool:
    with ctx.db.session() as session:
        return is_live(session, session_id, policy=ctx.settings.security)
