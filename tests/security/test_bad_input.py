"""Bad input gets a clear 4xx with a Chinese reason, never a 500, and never resets the connection.

The app runs behind a real uvicorn server on loopback; every bad request is followed by a good one on
the same keep-alive connection, which a server that reset it would refuse.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import uvicorn
from fastapi.testclient import TestClient

from tests.auth.fixtures import PASSWORD, Accounts


@dataclass
class Live:
    host: str
    port: int
    token: str

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=120)

    def request(
        self, conn: http.client.HTTPConnection, method: str, path: str, body: Any = None
    ) -> tuple[int, Any, float]:
        """(status, JSON answer, seconds) on ``conn``; raises when the server dropped the connection."""
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        started = time.monotonic()
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        assert response.getheader("connection", "").lower() != "close"
        return response.status, json.loads(raw) if raw else None, time.monotonic() - started


@pytest.fixture
def live(client: TestClient, accounts: Accounts) -> Iterator[Live]:
    """The started test app (database migrated by the TestClient) also served by uvicorn on loopback."""
    accounts.add("officer1", "officer", password=PASSWORD)
    token = accounts.token("officer1")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(client.app, host="127.0.0.1", port=port, lifespan="off", log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield Live("127.0.0.1", port, token)
    server.should_exit = True
    thread.join(timeout=30)


def _still_alive(live: Live, conn: http.client.HTTPConnection) -> None:
    """A good request on the same socket: a reset connection would fail here, not reconnect."""
    sock = conn.sock
    status, body, _ = live.request(conn, "GET", "/healthz")
    assert status in (200, 503), body
    assert conn.sock is sock


BAD_TEXT = [
    ("GET", "/api/v1/items?q=" + quote("a\x00b"), None, "检索词（q）"),
    ("GET", "/api/v1/items?q=" + quote("化工\x1b[31m"), None, "检索词（q）"),
    ("GET", "/api/v1/tickets?status=new&department=" + quote("env\x00"), None, "部门（department）"),
    ("GET", "/api/v1/rules?department=" + quote("\x07"), None, "部门（department）"),
    ("GET", "/api/v1/rules/" + quote("r\x00"), None, "请求路径"),
    ("POST", "/api/v1/rules/test", {"expr": "排污\x00", "text": "排污"}, "规则表达式（expr）"),
    ("POST", "/api/v1/rules/test", {"expr": "排污", "text": "文本\x00排污"}, "测试文本（text）"),
    ("POST", "/api/v1/rules", {"id": "r1", "department": "env", "expr": "a\x00"}, "规则表达式（expr）"),
    ("POST", "/api/v1/rules/test", b'{"expr": "\\ud800", "text": ""}', "规则表达式（expr）"),
]


@pytest.mark.parametrize(("method", "path", "body", "where"), BAD_TEXT)
def test_control_characters_get_a_clear_422_on_a_connection_that_stays_open(
    live: Live, method: str, path: str, body: Any, where: str
) -> None:
    conn = live.connect()
    try:
        status, answer, _ = live.request(conn, method, path, body)
        assert status == 422, answer
        assert where in answer["detail"]
        assert "控制字符" in answer["detail"]
        _still_alive(live, conn)
    finally:
        conn.close()


MULTIPART = [
    # The sign-in forms read multipart bodies too (OAuth2 password form, console login).
    ("/api/v1/auth/token", {"username": "officer1\x00", "password": PASSWORD}, {}, "表单字段 username"),
    ("/api/v1/auth/login", {"username": "officer1", "password": "pw\x1b[2J"}, {}, "表单字段 password"),
    ("/api/v1/auth/login", {}, {"rules": ("rules.yaml", b"- expr: \x00", "application/yaml")}, "上传文件 rules"),
    # A raw NUL in a file name (httpx would percent-encode it; a hostile client does not).
    ("/api/v1/auth/login", {}, {"rules": ("a\x00.yaml", b"ok", "application/octet-stream")}, "文件名"),
]


def _multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body written by hand, byte for byte as given (no escaping of names)."""
    boundary = "yuqing-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    for name, (filename, content, kind) in files.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        parts.append(head.encode() + f"Content-Type: {kind}\r\n\r\n".encode() + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(("path", "fields", "files", "where"), MULTIPART)
def test_control_characters_in_multipart_bodies_get_a_clear_422(
    live: Live, path: str, fields: dict[str, str], files: dict[str, Any], where: str
) -> None:
    """Form fields, file names and text files of a multipart body are checked like JSON bodies."""
    body, content_type = _multipart(fields, files)
    conn = live.connect()
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert response.status == 422, answer
        assert where in answer["detail"], answer
        assert "控制字符" in answer["detail"], answer
        _still_alive(live, conn)
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/api/v1/auth/token", "/api/v1/auth/login"])
def test_a_binary_upload_may_hold_nul_bytes_and_a_clean_multipart_sign_in_works(live: Live, path: str) -> None:
    """No false alarm: NUL bytes inside a binary file are data, and a multipart sign-in goes through."""
    body, content_type = _multipart(
        {"username": "officer1", "password": PASSWORD},
        {"attachment": ("sheet.xlsx", b"PK\x03\x04\x00\x00", "application/octet-stream")},
    )
    conn = live.connect()
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert response.status == 200, answer
        _still_alive(live, conn)
    finally:
        conn.close()


def test_a_file_where_credentials_belong_is_refused_with_422_not_500(live: Live) -> None:
    """The console sign-in given only a file part says what is missing instead of failing to answer."""
    body, content_type = _multipart({}, {"username": ("u.txt", b"officer1", "text/plain")})
    conn = live.connect()
    try:
        conn.request("POST", "/api/v1/auth/login", body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert response.status == 422, answer
        _still_alive(live, conn)
    finally:
        conn.close()


def test_a_backslash_u0000_typed_as_text_is_fine(live: Live) -> None:
    """The six characters \\u0000 in a JSON string are text, not a NUL: no false alarm."""
    conn = live.connect()
    try:
        status, answer, _ = live.request(conn, "POST", "/api/v1/rules/test", b'{"expr": "x", "text": "\\\\u0000 x"}')
        assert status == 200, answer
        assert answer["matched"] is True
    finally:
        conn.close()


DEEP = [
    "(" * 2000 + "排污" + ")" * 2000,
    "(" * 1000 + "排污" + ")" * 1000,
    "NOT " * 990 + "排污",
    "!" * 990 + "排污",
    " OR ".join(f"词{n}" for n in range(600)),
    "排污 OR " + "长" * 5000,
]


@pytest.mark.parametrize("expr", DEEP, ids=["2000-parens", "1000-parens", "990-nots", "990-bangs", "600-terms", "long"])
@pytest.mark.parametrize("path", ["/api/v1/rules/test", "/api/v1/rules"])
def test_oversized_rules_answer_422_in_chinese_with_position_and_column(live: Live, expr: str, path: str) -> None:
    conn = live.connect()
    try:
        body: dict[str, str] = {"expr": expr, "text": "排污"}
        if not path.endswith("test"):
            body = {"id": "deep", "department": "env", "expr": expr}
        status, answer, _ = live.request(conn, "POST", path, body)
        assert status == 422, answer
        detail = answer["detail"]
        assert any(word in detail["message"] for word in ("嵌套过深", "词过多", "表达式过长")), detail
        assert 0 <= detail["position"] <= len(expr)
        assert detail["column"] == detail["position"] + 1
        _still_alive(live, conn)
    finally:
        conn.close()


def test_structured_rules_have_a_term_limit(live: Live) -> None:
    conn = live.connect()
    try:
        body = {"id": "many", "department": "env", "regions": ["青川"], "events": [f"词{n}" for n in range(600)]}
        status, answer, _ = live.request(conn, "POST", "/api/v1/rules", body)
        assert status == 422, answer
        assert "词过多" in answer["detail"]
    finally:
        conn.close()


SHORT_TERMS = [chr(0x4E00 + n) for n in range(299)]


def test_rule_test_refuses_a_text_longer_than_the_cap_at_once(live: Live) -> None:
    """299 short terms over 200,000 characters ran for minutes and took GBs."""
    conn = live.connect()
    try:
        text = "".join(SHORT_TERMS[n % 299] for n in range(200_000))
        status, answer, seconds = live.request(
            conn, "POST", "/api/v1/rules/test", {"expr": " OR ".join(SHORT_TERMS), "text": text}
        )
        assert status == 422, answer
        assert "文本过长" in answer["detail"]
        assert seconds < 30
        _still_alive(live, conn)
    finally:
        conn.close()


def test_rule_test_caps_occurrences_time_and_highlights(live: Live) -> None:
    conn = live.connect()
    try:
        # Overlapping terms (一, 一一, 一一一, ...) on a run of one character: millions of occurrences.
        overlapping = " OR ".join(f'"{"一" * n}"' for n in range(1, 60))
        status, answer, seconds = live.request(
            conn, "POST", "/api/v1/rules/test", {"expr": overlapping, "text": "一" * 50_000}
        )
        assert status == 422, answer
        assert "试运行已中止" in answer["detail"]
        assert seconds < 30
        # Allowed, but many occurrences: the answer lists at most 1000 highlights and says it was cut.
        text = "".join(SHORT_TERMS[n % 299] for n in range(20_000))
        conn.request(
            "POST",
            "/api/v1/rules/test",
            body=json.dumps({"expr": " OR ".join(SHORT_TERMS), "text": text}, ensure_ascii=False).encode(),
            headers={"Authorization": f"Bearer {live.token}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        raw = response.read()
        assert response.status == 200
        assert len(raw) < 200_000
        answer = json.loads(raw)
        assert answer["matched"] is True
        assert len(answer["highlights"]) == 1000
        assert answer["truncated"] is True
        _still_alive(live, conn)
    finally:
        conn.close()


def test_near_on_a_long_text_answers_quickly(live: Live) -> None:
    """Every right-hand occurrence far before every left-hand one: a pairwise scan was quadratic."""
    conn = live.connect()
    try:
        text = "乙" * 20_000 + "。" * 5000 + "甲" * 20_000
        status, answer, seconds = live.request(
            conn, "POST", "/api/v1/rules/test", {"expr": "甲 NEAR/10 乙", "text": text}
        )
        assert status == 200, answer
        assert answer["matched"] is False
        assert seconds < 20
    finally:
        conn.close()
