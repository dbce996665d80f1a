"""Schemathesis against the app's own OpenAPI schema, in process, as an officer: no input makes it answer 5xx.

Each operation gets a bounded number of generated requests (the whole run stays near a minute on two
cores). Answers must also match the schema's documented shape where the schema documents one.
"""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import ASGIClient
from schemathesis.specs.openapi.checks import response_schema_conformance

from service.auth import event_stream
from tests.security.conftest import World

pytestmark = pytest.mark.long_running(120)  # seconds in CI: starts first (tests/conftest.py)

MAX_EXAMPLES = 20
# Logging out would end the officer's session for every operation after it.
SKIPPED = {("POST", "/api/v1/auth/logout")}
# The console login reads its body by hand (JSON or form) and documents no request body at all.
NOT_CONFORMING = {("POST", "/api/v1/auth/login")}


def successful_answers_conform(ctx, response, case):
    """The documented shape for 2xx answers; error bodies carry our own ``detail`` shapes, not FastAPI's."""
    if 200 <= response.status_code < 300:
        return response_schema_conformance(ctx, response, case)
    return None


def _fuzz(operation, checks: list, session: ASGIClient, headers: dict[str, str]) -> None:
    """Run ``MAX_EXAMPLES`` generated requests of one operation; raises on the first failing check."""

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def probe(case) -> None:
        response = case.call(base_url="http://testserver", session=session, headers=headers)
        case.validate_response(response, checks=checks)

    probe()


@pytest.fixture
def streams_end_after_one_poll(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """An SSE stream never ends by itself: each generated request would wait for the client's timeout (10 s,
    200 s for one stream's examples). Here each stream polls once and then finds its session over, as after
    a logout, so the generated parameters still reach the stream's query."""
    checks = itertools.count()
    monkeypatch.setattr(event_stream, "SESSION_CHECK_SECONDS", 0.0)
    monkeypatch.setattr(event_stream, "_live", lambda ctx, session_id: next(checks) % 2 == 0)
    world.client.app.state.ctx.settings.alerts.stream_poll_seconds = 0.05


def test_no_generated_request_gets_a_server_error(world: World, streams_end_after_one_poll: None) -> None:
    app = world.client.app
    schema = schemathesis.openapi.from_dict(app.openapi())
    # No `with`: the app's lifespan is the TestClient's; this client only carries requests in process.
    session = ASGIClient(app)
    headers = world.headers("officer1")
    # The first 地域分布 answer builds the place dictionary (seconds of CPU on a fresh data dir); on a loaded CI
    # machine it outlasted the fuzzer's 10 s read timeout per request. Build it once before the timed requests.
    assert world.client.get("/api/v1/stats/regions", headers=headers).status_code == 200
    tried = 0
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in SKIPPED:
            continue
        checks = [not_a_server_error]
        if key not in NOT_CONFORMING:
            checks.append(successful_answers_conform)

        try:
            _fuzz(operation, checks, session, headers)
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failure, not just the first
            failures.append(f"{key[0]} {key[1]}: {exc}")
        tried += 1
    assert tried >= 20, f"only {tried} operations were fuzzed: did the schema lose its paths?"
    assert not failures, "\n\n".join(failures)


EXTREMES = ["0001-01-01", "9999-12-31", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"]
HUGE_ID = 2**63


@pytest.mark.parametrize("value", EXTREMES)
def test_times_at_the_edge_of_the_calendar_are_refused_not_crashed_on(world: World, value: str) -> None:
    """Found by the fuzzer: day edges of year 1 or 9999 overflowed into 500s on every date filter."""
    officer, env = world.headers("officer1"), world.headers("env1")
    day = value[:10]
    answers = {
        "items": world.client.get("/api/v1/items", params={"from": value}, headers=officer),
        "tickets": world.client.get("/api/v1/tickets", params={"to": value}, headers=officer),
        "stats": world.client.get("/api/v1/stats", params={"from": value}, headers=officer),
        "export": world.client.get("/api/v1/ledger/export", params={"from": day, "to": day}, headers=officer),
        "mute": world.client.post("/api/v1/rules/env-pollution/mute", json={"until": value}, headers=officer),
        "extension": world.client.post(
            f"/api/v1/tickets/{world.env_ticket}/actions",
            json={"action": "request_extension", "note": "需要协调", "until": value},
            headers=env,
        ),
    }
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 422)
    assert "1970" in answers["tickets"].text  # the message says which range is supported


def test_ids_beyond_the_database_range_are_refused(world: World) -> None:
    officer = world.headers("officer1")
    for method, url, body in [
        ("GET", f"/api/v1/tickets/{HUGE_ID}", None),
        ("POST", f"/api/v1/tickets/{HUGE_ID}/actions", {"action": "escalate"}),
        ("PUT", f"/api/v1/tickets/{HUGE_ID}/severity", {"severity": "major"}),
        ("POST", f"/api/v1/alerts/{HUGE_ID}/state", {"state": "noise"}),
        ("GET", f"/api/v1/alerts?after={HUGE_ID}", None),
    ]:
        assert world.client.request(method, url, json=body, headers=officer).status_code == 422, url
