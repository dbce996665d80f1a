"""Bad input gets a clear 4xx, and no answer resets the connection.

- ``InputGuard`` refuses control characters (NUL and the other C0 characters but tab, line feed and
  carriage return) and unpaired surrogates in the path, in every query parameter and in every string
  of a JSON, form or multipart body (field values, file names, and the text of uploaded text files),
  with 422 and a Chinese reason naming the field. Such characters are never
  legitimate in this product's input, PostgreSQL refuses NUL in text, and a surrogate cannot be encoded.
- ``ErrorBoundary`` turns an unexpected exception into a complete 500 answer instead of letting it
  reach the server, which would close (reset) the keep-alive connection after Starlette's own 500.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import parse_qsl, unquote

from loguru import logger
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.field_labels import FIELD_LABELS, field_label

# C0 controls except \t \n \r, and lone surrogates (a valid pair is one character in Python).
_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_CHARACTER_NAMES = {"\x00": "NUL"}
BODY_TYPES = (b"application/json", b"application/x-www-form-urlencoded", b"multipart/form-data")
# Uploaded files of these types are text, so their content is checked too; other files (xlsx, images) may
# legitimately hold NUL bytes.
TEXT_UPLOADS = ("text/", "application/json", "application/yaml", "application/x-yaml")
MAX_JSON_DEPTH = 64


async def send_json(send: Send, status: int, detail: Any) -> None:
    """A complete JSON answer ``{"detail": ...}``."""
    body = json.dumps({"detail": detail}, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def bad_character(value: str) -> int | None:
    """0-based index of the first character not allowed in input, or None."""
    found = _BAD.search(value)
    return found.start() if found else None


def _reason(where: str, value: str, index: int) -> str:
    char = value[index]
    name = _CHARACTER_NAMES.get(char, f"U+{ord(char):04X}")
    gap = "" if where.endswith("）") else " "  # “检索词（q）含有…”, “请求路径 含有…”
    return f"{where}{gap}含有不允许的控制字符 {name}（位置 {index}，第 {index + 1} 个字符）"


def _body_field(path: str) -> str:
    """``规则表达式（expr）`` for a top-level field the label table knows, ``请求体字段 a.b`` otherwise."""
    if not path:
        return "请求体字段 (根)"
    return field_label(path) if path in FIELD_LABELS else f"请求体字段 {path}"


def _json_problem(data: Any) -> str | None:
    """The first string (key or value) of a parsed JSON body with a bad character, walked without recursion."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"请求体嵌套超过 {MAX_JSON_DEPTH} 层"
        if isinstance(node, str):
            if (index := bad_character(node)) is not None:
                return _reason(_body_field(path), node, index)
        elif isinstance(node, dict):
            for key, value in node.items():
                if (index := bad_character(key)) is not None:
                    return _reason("请求体的字段名", key, index)
                stack.append((value, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(node, list):
            stack.extend((value, f"{path}[{n}]", depth + 1) for n, value in enumerate(node))
    return None


def _query_problem(raw: bytes) -> str | None:
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace"):
        if (index := bad_character(name)) is not None:
            return _reason("查询参数名", name, index)
        if (index := bad_character(value)) is not None:
            return _reason(field_label(name) if name in FIELD_LABELS else f"查询参数 {name}", value, index)
    return None


class InputGuard:
    """422 with a Chinese reason for control characters anywhere in a request's text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        problem = None
        if (index := bad_character(unquote(path))) is not None:
            problem = _reason("请求路径", unquote(path), index)
        problem = problem or _query_problem(scope.get("query_string", b""))
        if problem is None:
            content_type = dict(scope.get("headers") or []).get(b"content-type", b"").split(b";")[0].strip().lower()
            if content_type in BODY_TYPES and scope.get("method") not in ("GET", "HEAD"):
                try:
                    body, receive = await _buffer(receive)
                except HTTPException as exc:  # the size cap of the security middleware, met while reading
                    await send_json(send, exc.status_code, exc.detail)
                    return
                if content_type == b"multipart/form-data":
                    problem = await _multipart_problem(scope, body)
                else:
                    problem = _body_problem(content_type, body)
        if problem is not None:
            logger.info("已拒绝 {} {}：{}", scope.get("method"), path[:200], problem)
            await send_json(send, 422, problem)
            return
        await self.app(scope, receive, send)


async def _buffer(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole body (the security middleware outside has capped its size) and replay it."""
    chunks: list[bytes] = []
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return b"".join(chunks), replay


def _body_problem(content_type: bytes, body: bytes) -> str | None:
    if not body:
        return None
    if content_type == b"application/json":
        try:
            data = json.loads(body)
        except RecursionError:
            return "请求体 JSON 嵌套过深"
        except ValueError:
            return None  # not JSON: FastAPI answers 422 with where it broke
        return _json_problem(data)
    return _query_problem(body)


async def _multipart_problem(scope: Scope, body: bytes) -> str | None:
    """The first field value, file name or text file with a bad character in a multipart body."""
    if not body:
        return None

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(Headers(scope=scope), stream()).parse()
    except MultiPartException:
        return None  # malformed: the endpoint (or FastAPI) answers with what is wrong
    try:
        for name, value in form.multi_items():
            if (index := bad_character(name)) is not None:
                return _reason("表单字段名", name, index)
            if isinstance(value, str):
                if (index := bad_character(value)) is not None:
                    return _reason(f"表单字段 {name}", value, index)
                continue
            filename = value.filename or ""
            if (index := bad_character(filename)) is not None:
                return _reason(f"上传文件 {name} 的文件名", filename, index)
            if (value.content_type or "").lower().startswith(TEXT_UPLOADS):
                text = (await value.read()).decode("utf-8", errors="replace")
                if (index := bad_character(text)) is not None:
                    return _reason(f"上传文件 {name}（{filename}）", text, index)
    finally:
        await form.close()
    return None


class ErrorBoundary:
    """An unexpected exception becomes a complete 500 answer; the connection stays usable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise  # half an answer is out: only closing the connection can end it
            logger.exception("处理 {} {} 时发生未处理的错误", scope.get("method"), scope.get("path"))
            await send_json(send, 500, "服务器内部错误，已记录日志")
