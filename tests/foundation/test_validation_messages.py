"""Requests that fail validation are answered 422 with FastAPI's detail list and a Chinese message."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.auth.fixtures import Accounts


def test_validation_errors_carry_a_chinese_message(client: TestClient, accounts: Accounts) -> None:
    accounts.add("officer1", "officer")
    headers = accounts.headers("officer1")

    bad_format = client.get(
        "/api/v1/ledger/export", params={"from": "2026-01-01", "to": "2026-01-02", "format": "pdf"}, headers=headers
    )
    assert bad_format.status_code == 422
    body = bad_format.json()
    assert body["detail"][0]["loc"] == ["query", "format"]  # the machine-readable part is unchanged
    assert body["message"] == "文件格式（format）应为 'xlsx'、'csv' 之一"

    # Three choices or more: pydantic writes "'a', 'b' or 'c'"; the message uses one separator, 、.
    channel = client.get("/api/v1/items", params={"channel": "weibo"}, headers=headers)
    assert channel.status_code == 422
    assert channel.json()["message"] == "渠道（channel）应为 'hotline'、'mailbox'、'media' 之一"

    missing = client.post("/api/v1/tickets/1/actions", json={}, headers=headers)
    assert missing.status_code == 422
    assert missing.json()["message"] == "缺少动作（action）"

    several = client.get("/api/v1/alerts", params={"after": "abc", "size": "0"}, headers=headers)
    assert several.status_code == 422
    message = several.json()["message"]
    assert message == "起始位置（after）应为整数；每页条数（size）不能小于 1"
    for text in (bad_format.json()["message"], missing.json()["message"], message):
        # Only the parameter names themselves are in Latin letters.
        assert not re.search(r"[A-Za-z]{5,}", re.sub(r"(format|action|after|size)", "", text)), text

    broken = client.post(
        "/api/v1/rules/test", content=b"{not json", headers={**headers, "Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["message"] == "请求体不是合法的 JSON"
