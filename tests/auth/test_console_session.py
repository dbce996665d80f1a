"""Console sign-in by cookie: HttpOnly session, double-submit CSRF token, foreign origins refused."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.app import create_app
from tests.auth.fixtures import PASSWORD, Accounts


def _set_cookie_headers(response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def test_cookie_login_needs_the_csrf_token_for_changes(client: TestClient, accounts: Accounts) -> None:
    accounts.add("zhang", "officer")
    response = client.post("/api/v1/auth/login", json={"username": "zhang", "password": PASSWORD})
    assert response.status_code == 200
    cookies = _set_cookie_headers(response)
    assert "HttpOnly" in cookies["yuqing_session"]
    assert "samesite=lax" in cookies["yuqing_session"].lower()
    assert "HttpOnly" not in cookies["yuqing_csrf"]
    csrf = response.json()["csrf_token"]
    assert client.cookies.get("yuqing_csrf") == csrf

    assert client.get("/api/v1/auth/me").json()["username"] == "zhang", "reads need no CSRF token"
    assert client.post("/api/v1/auth/logout").status_code == 403
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    client.cookies.set("yuqing_session", response.cookies["yuqing_session"])
    assert client.get("/api/v1/auth/me").status_code == 401, "the server revoked the session"


def test_form_login_and_bad_credentials(client: TestClient, accounts: Accounts) -> None:
    accounts.add("zhang", "officer")
    assert client.post("/api/v1/auth/login", data={"username": "zhang", "password": PASSWORD}).status_code == 200
    assert client.post("/api/v1/auth/login", json={"username": "zhang", "password": "nope"}).status_code == 401
    assert client.post("/api/v1/auth/login", json={"username": "zhang"}).status_code == 422


def test_state_changing_requests_from_a_foreign_origin_are_refused(client: TestClient, accounts: Accounts) -> None:
    accounts.add("zhang", "officer")
    form = {"username": "zhang", "password": PASSWORD}
    evil = client.post("/api/v1/auth/token", data=form, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert client.post("/api/v1/auth/token", data=form, headers={"Origin": "http://testserver"}).status_code == 200
    login = client.post("/api/v1/auth/login", json=form)
    csrf = login.json()["csrf_token"]
    refused = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf, "Origin": "null"})
    assert refused.status_code == 403
    assert client.get("/api/v1/auth/me", headers={"Origin": "https://evil.example"}).status_code == 200


def test_security_headers_on_every_answer(client: TestClient) -> None:
    for response in (client.get("/healthz"), client.get("/api/v1/auth/me")):
        assert response.headers["content-security-policy"] == (
            "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'"
        )
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"


def test_oversized_bodies_are_refused(client: TestClient) -> None:
    big = b"x" * (1024 * 1024 + 1)
    declared = client.post("/api/v1/auth/login", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413

    def chunks():
        for _ in range(3):
            yield b"y" * (512 * 1024)

    streamed = client.post("/api/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413


def test_login_attempts_are_rate_limited_per_address_and_user(app_settings, frozen) -> None:
    app_settings.security.login_rate_per_minute = 3
    with TestClient(create_app(app_settings)) as client:
        form = {"username": "ghost", "password": PASSWORD}
        codes = [client.post("/api/v1/auth/token", data=form).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        other = client.post("/api/v1/auth/token", data={**form, "username": "ghost2"})
        assert other.status_code == 401, "another user name has its own bucket"
        from datetime import timedelta

        frozen.advance(timedelta(seconds=20))
        assert client.post("/api/v1/auth/token", data=form).status_code == 401


def test_cookies_are_secure_when_the_public_url_is_https(app_settings, frozen) -> None:
    app_settings.server.public_url = "https://yuqing.example.gov.cn"
    with TestClient(create_app(app_settings)) as client:
        accounts = Accounts(client, frozen)
        accounts.add("zhang", "officer")
        response = client.post("/api/v1/auth/login", json={"username": "zhang", "password": PASSWORD})
        cookies = _set_cookie_headers(response)
        assert "secure" in cookies["yuqing_session"].lower()
        assert "secure" in cookies["yuqing_csrf"].lower()


def test_cookies_are_not_marked_secure_on_a_plain_http_deployment(client: TestClient, accounts: Accounts) -> None:
    accounts.add("zhang", "officer")
    response = client.post("/api/v1/auth/login", json={"username": "zhang", "password": PASSWORD})
    assert "secure" not in _set_cookie_headers(response)["yuqing_session"].lower()
