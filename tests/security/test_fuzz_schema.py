"""Schemathesis against the app's own OpenAPI schema, in process, as an officer: no input makes it answer 5xx.

Each operation gets a bounded number of generated requests (the whole run stays near a minute on two
cores). Answers must also match the schema's documented shape where the schema documents one.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import ASGIClient
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.security.conftest import World

MAX_EXAMPLES = 25
# The SSE stream never ends by itself (it is covered by the access matrix); logging out would end the
# officer's session for every operation after it.
SKIPPED = {("GET", "/api/v1/alerts/stream"), ("POST", "/api/v1/auth/logout")}
# The console login reads its body by hand (JSON or form) and documents no request body at all.
NOT_CONFORMING = {("POST", "/api/v1/auth/login")}


def successful_answers_conform(ctx, response, case):  # noqa: ANN001, ANN201 - a schemathesis check
    """The documented shape for 2xx answers; error bodies carry our own ``detail`` shapes (see README)."""
    if 200 <= response.status_code < 300:
        return response_schema_conformance(ctx, response, case)
    return None


def _fuzz(operation, checks: list, session: ASGIClient, headers: dict[str, str]) -> None:  # noqa: ANN001
    """Run ``MAX_EXAMPLES`` generated requests of one operation; raises on the first failing check."""

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def probe(case) -> None:  # noqa: ANN001 - hypothesis supplies the case
        response = case.call(base_url="http://testserver", session=session, headers=headers)
        case.validate_response(response, checks=checks)

    probe()


def test_no_generated_request_gets_a_server_error(world: World) -> None:
    app = world.client.app
    schema = schemathesis.openapi.from_dict(app.openapi())
    # No `with`: the app's lifespan is the TestClient's; this client only carries requests in process.
    session = ASGIClient(app)
    headers = world.headers("officer1")
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
