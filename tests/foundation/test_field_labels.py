"""Every input field of the API has a Chinese name, and refusals name fields by it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.field_labels import FIELD_LABELS
from service.settings import load_settings
from tests.auth.fixtures import Accounts


def _body_fields(spec: dict[str, Any], schema: dict[str, Any], seen: frozenset[str]) -> set[str]:
    """Property names of a body schema, through references, unions and list items."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return set()
        seen, schema = seen | {name}, spec["components"]["schemas"][name]
    found: set[str] = set()
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            found |= _body_fields(spec, part, seen)
    if "items" in schema:
        found |= _body_fields(spec, schema["items"], seen)
    for prop, sub in schema.get("properties", {}).items():
        found.add(prop)
        found |= _body_fields(spec, sub, seen)
    return found


def declared_fields(spec: dict[str, Any]) -> dict[str, set[str]]:
    """Each query, path, header and body field name the API declares, with the routes that declare it."""
    fields: dict[str, set[str]] = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            route = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                fields.setdefault(parameter["name"], set()).add(route)
            for content in (operation.get("requestBody") or {}).get("content", {}).values():
                for name in _body_fields(spec, content.get("schema", {}), frozenset()):
                    fields.setdefault(name, set()).add(route)
    return fields


def test_every_declared_parameter_of_every_route_has_a_chinese_label(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    monkeypatch.setenv("YUQING_DATA_DIR", str(tmp_path / "data"))
    spec = create_app(load_settings(tmp_path / "config")).openapi()
    fields = declared_fields(spec)
    # The walk sees the routes' real inputs (a broken walk would pass with an empty list).
    assert {"size", "from", "ticket_id", "expr", "action", "totp"} <= set(fields)
    unlabelled = {name: sorted(routes) for name, routes in fields.items() if name not in FIELD_LABELS}
    assert not unlabelled, f"add a Chinese name to service/field_labels.py for: {unlabelled}"
    for name, label in FIELD_LABELS.items():
        assert any("\u4e00" <= ch <= "\u9fff" for ch in label), (name, label)


def test_refusals_name_fields_in_chinese(client: TestClient, accounts: Accounts) -> None:
    accounts.add("officer1", "officer")
    headers = accounts.headers("officer1")
    cases = [
        ("GET", "/api/v1/items", {"size": "0"}, None, "每页条数（size）不能小于 1"),
        ("GET", "/api/v1/items", {"from": "yesterday"}, None, "开始日期（from）：'yesterday' 不是日期或 ISO 8601 时间"),
        ("GET", "/api/v1/tickets/0", None, None, "工单编号（ticket_id）不能小于 1"),
        ("POST", "/api/v1/tickets/1/actions", None, {}, "缺少动作（action）"),
        ("POST", "/api/v1/rules/test", None, {"expr": "a", "text": 5}, "测试文本（text）应为文本"),
        ("GET", "/api/v1/items", {"q": "a\x00"}, None, "检索词（q）含有不允许的控制字符 NUL"),
    ]
    for method, path, params, body, expected in cases:
        answer = client.request(method, path, params=params, json=body, headers=headers)
        assert answer.status_code == 422, (path, answer.text)
        data = answer.json()
        message = data.get("message") or data["detail"]
        message = message["message"] if isinstance(message, dict) else message
        assert message.startswith(expected), (path, message)


def test_routing_and_paging_refusals_are_chinese_too(client: TestClient, accounts: Accounts) -> None:
    accounts.add("officer1", "officer")
    headers = accounts.headers("officer1")
    missing = client.get("/api/v1/no-such-thing", headers=headers)
    assert (missing.status_code, missing.json()) == (404, {"detail": "请求的地址不存在"})
    wrong_method = client.delete("/api/v1/tickets", headers=headers)
    assert (wrong_method.status_code, wrong_method.json()) == (405, {"detail": "该地址不支持此请求方法"})
    assert "GET" in wrong_method.headers["allow"]
    cursor = client.get("/api/v1/items", params={"after": "garbage"}, headers=headers)
    assert cursor.status_code == 400
    assert cursor.json()["detail"].startswith("起始位置（after）不是有效的翻页游标")
    nested = client.post("/api/v1/tickets/1/merge", json={"sources": [1], "version": 1}, headers=headers)
    assert nested.status_code == 422
    assert nested.json()["message"] == "并入的工单（sources）第 1 项应为对象"
