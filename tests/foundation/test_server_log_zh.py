"""uvicorn's own log lines read in Chinese, with their facts (pid, address, request, reason) kept.

A real uvicorn server on loopback, logging through ``service.logs`` as ``yuqing run`` does: start, requests,
an exception in the app, a malformed request, a second server on the busy port, and the stop.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from loguru import logger

from service.logs import ROUTED, setup_logging

HAN = re.compile(r"[\u4e00-\u9fff]")
# Three English words in a row: "Started server process", "Application startup complete".
ENGLISH_SENTENCE = re.compile(r"[A-Za-z]{2,}(?: [A-Za-z]{2,}){2,}")


@pytest.fixture
def records() -> Iterator[list[dict[str, Any]]]:
    """Every loguru record at DEBUG and up, with the product's logging set up; the old set-up restored after."""
    logs = [logging.getLogger(), *(logging.getLogger(n) for n in ROUTED)]
    saved = [(log, list(log.handlers), log.propagate) for log in logs]
    found: list[dict[str, Any]] = []
    setup_logging("DEBUG")
    logger.add(lambda message: found.append(message.record), level="DEBUG")
    yield found
    logger.remove()
    logger.add(sys.stderr, level="INFO")
    for log, handlers, propagate in saved:
        log.handlers = handlers
        log.propagate = propagate


async def app(scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            done = message["type"].replace("lifespan.", "") + ".complete"
            await send({"type": f"lifespan.{done}"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["path"] == "/boom":
        raise ValueError("模板缺少字段 title")
    status = int(dict(scope["headers"]).get(b"x-status", b"200"))
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _serve(port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return server, thread


def test_uvicorn_lines_are_chinese_with_their_details(records: list[dict[str, Any]]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server, thread = _serve(port)
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/api/v1/items?q=张三&page=2", timeout=60).status_code == 200
    for routine in ("/healthz", "/static/js/common.js", "/api/v1/alerts/stream?after=9"):
        assert httpx.get(f"{base}{routine}", timeout=60).status_code == 200
    assert httpx.get(f"{base}/healthz", params={"a": 1}, headers={"x-status": "404"}, timeout=60).status_code == 404
    assert httpx.get(f"{base}/boom", timeout=60).status_code == 500
    with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
        raw.sendall(b"NOT HTTP\x00\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 400")
    # A second server on the busy port: uvicorn logs the bind error and exits (SystemExit ends its thread).
    _, second_thread = _serve(port)
    second_thread.join(timeout=120)
    assert not second_thread.is_alive()
    logging.getLogger("uvicorn.error").warning("Some future uvicorn notice: %s", 42)
    server.should_exit = True
    thread.join(timeout=120)
    assert not thread.is_alive()

    uvicorn_records = [r for r in records if r["name"].startswith("uvicorn")]
    lines = [f"{r['level'].name} {r['message']}" for r in uvicorn_records]
    text = "\n".join(lines)
    pid = os.getpid()
    for expected in (
        f"INFO 服务进程已启动（进程号 {pid}）",
        "INFO 等待应用启动",
        "INFO 应用启动完成",
        f"INFO 服务已启动，监听 http://127.0.0.1:{port}（按 Ctrl+C 停止）",
        # Method, path, status and client stay greppable; the search term (a name) is starred.
        "INFO 请求 GET /api/v1/items?q=*&page=* 状态 200 客户端 127.0.0.1:",
        # The console's banner asks /healthz every 30 s: kept in the file (DEBUG), not on the console.
        "DEBUG 请求 GET /healthz 状态 200 客户端 127.0.0.1:",
        "DEBUG 请求 GET /static/js/common.js 状态 200 客户端 127.0.0.1:",
        "DEBUG 请求 GET /api/v1/alerts/stream?after=* 状态 200 客户端 127.0.0.1:",
        # A failing health check is worth seeing on the console.
        "INFO 请求 GET /healthz?a=* 状态 404 客户端 127.0.0.1:",
        "WARNING 请求 GET /boom 状态 500 客户端 127.0.0.1:",
        "ERROR 处理请求时应用出错",
        "WARNING 收到无效的 HTTP 请求，已回复 400",
        f"ERROR 无法监听 127.0.0.1:{port}：地址已被占用",
        "INFO 正在停止服务",
        "INFO 应用已停止",
        f"INFO 服务进程已结束（进程号 {pid}）",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"
    assert "张三" not in text
    # The app's exception keeps its traceback and its text.
    assert "ValueError: 模板缺少字段 title" in text
    # A line uvicorn may add one day passes through unchanged rather than being lost.
    assert any(r["level"].name == "WARNING" and r["message"] == "Some future uvicorn notice: 42" for r in records)
    known = [r["message"].splitlines()[0] for r in uvicorn_records]
    assert [m for m in known if not HAN.search(m) or ENGLISH_SENTENCE.search(m)] == []
