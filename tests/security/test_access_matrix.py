"""Every route of the OpenAPI schema, called as every role, against one explicit table of who may do what.

A route added later without a row here fails ``test_the_table_covers_every_route``: whoever adds an
endpoint has to decide, in this file, who may call it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from httpx import Response

from service import clock
from service.ledger.merging import merge
from service.ledger.models import Ticket
from service.principal import Principal
from tests.auth.fixtures import PASSWORD
from tests.item_stores import on_both_item_stores
from tests.security.conftest import World

OK = "2xx"
# The callers: anonymous, one account per role, and the env department user reaching for water's objects.
CALLERS = ("anonymous", "admin1", "officer1", "env1", "env1→water", "leader1", "auditor1")


def row(
    *,
    anonymous: int | str = 401,
    admin: int | str = OK,
    officer: int | str = OK,
    department: int | str = OK,
    other_department: int | str | None = None,
    leader: int | str = OK,
    auditor: int | str = 403,
) -> dict[str, int | str]:
    """Expected outcome per caller; ``other_department`` (default: same as ``department``) is env on water's object."""
    return {
        "anonymous": anonymous,
        "admin1": admin,
        "officer1": officer,
        "env1": department,
        "env1→water": department if other_department is None else other_department,
        "leader1": leader,
        "auditor1": auditor,
    }


PUBLIC = row(anonymous=OK, auditor=OK)
ANY_SIGNED_IN = row(auditor=OK)
AUDITOR_ONLY = row(admin=403, officer=403, department=403, leader=403, auditor=OK)
READERS = row()  # officers, leaders, admins everything; department its own; auditors nothing
OWN_DEPARTMENT_OBJECT = row(other_department=404)
RULE_EDITORS = row(department=403, leader=403)
DECIDERS_ON_ALERTS = row(department=403, leader=403)
ADMIN_ONLY = row(officer=403, department=403, leader=403)

EXPECTED: dict[tuple[str, str], dict[str, int | str]] = {
    ("GET", "/healthz"): PUBLIC,
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): ANY_SIGNED_IN,
    ("GET", "/api/v1/auth/me"): ANY_SIGNED_IN,
    ("GET", "/api/v1/audit"): AUDITOR_ONLY,
    ("GET", "/api/v1/audit/verify"): AUDITOR_ONLY,
    # Items carry the department named by the source, not ours: department users reach them via tickets.
    ("GET", "/api/v1/items"): row(department=403),
    ("GET", "/api/v1/tickets"): READERS,
    ("GET", "/api/v1/tickets/{ticket_id}"): OWN_DEPARTMENT_OBJECT,
    ("POST", "/api/v1/tickets/{ticket_id}/actions"): row(other_department=404, leader=403),
    # Re-grading is the officers' call: a department user is refused by role, on any department's ticket.
    ("PUT", "/api/v1/tickets/{ticket_id}/severity"): row(department=403, leader=403),
    ("POST", "/api/v1/tickets/{ticket_id}/merge"): row(department=403, leader=403),
    ("POST", "/api/v1/tickets/{ticket_id}/split"): row(department=403, leader=403),
    ("GET", "/api/v1/stats"): READERS,
    ("GET", "/api/v1/stats/regions"): READERS,
    ("GET", "/api/v1/stats/trend"): READERS,
    ("GET", "/api/v1/stats/terms"): READERS,
    ("GET", "/api/v1/tickets/stream"): READERS,
    ("GET", "/api/v1/alerts"): READERS,
    ("GET", "/api/v1/alerts/stream"): READERS,
    ("POST", "/api/v1/alerts/{alert_id}/state"): DECIDERS_ON_ALERTS,
    ("GET", "/api/v1/rules"): READERS,
    ("POST", "/api/v1/rules"): RULE_EDITORS,
    ("PUT", "/api/v1/rules/{rule_id}"): RULE_EDITORS,
    ("DELETE", "/api/v1/rules/{rule_id}"): RULE_EDITORS,
    ("POST", "/api/v1/rules/{rule_id}/mute"): RULE_EDITORS,
    # Trying an expression changes nothing, but leaders change nothing and auditors read the audit log only.
    ("POST", "/api/v1/rules/test"): row(leader=403),
    ("POST", "/api/v1/rules/test-recent"): RULE_EDITORS,
    ("GET", "/api/v1/ledger/export"): OWN_DEPARTMENT_OBJECT,
    ("GET", "/api/v1/sources"): row(department=403),
    ("POST", "/api/v1/sources"): ADMIN_ONLY,
    ("DELETE", "/api/v1/sources/{source_id}"): ADMIN_ONLY,
    ("GET", "/api/v1/users"): ADMIN_ONLY,
    ("POST", "/api/v1/users"): ADMIN_ONLY,
    ("PATCH", "/api/v1/users/{username}"): ADMIN_ONLY,
    ("DELETE", "/api/v1/users/{username}"): ADMIN_ONLY,
    ("POST", "/api/v1/users/{username}/unlock"): ADMIN_ONLY,
    ("POST", "/api/v1/users/{username}/reset-password"): ADMIN_ONLY,
    # Everyone signed in may change their own password; the matrix sends a wrong current password.
    ("POST", "/api/v1/auth/password"): row(admin=422, officer=422, department=422, leader=422, auditor=422),
}

_rule_numbers = itertools.count(1)


def schema_routes(world: World) -> set[tuple[str, str]]:
    schema = world.client.app.openapi()
    return {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}


def test_the_table_covers_every_route(world: World) -> None:
    routes = schema_routes(world)
    missing = sorted(routes - EXPECTED.keys())
    stale = sorted(EXPECTED.keys() - routes)
    assert not missing, f"routes without an entry in EXPECTED (decide who may call them): {missing}"
    assert not stale, f"EXPECTED names routes the app no longer has: {stale}"
    for key, outcomes in EXPECTED.items():
        assert set(outcomes) == set(CALLERS), key


def _username(caller: str) -> str | None:
    return None if caller == "anonymous" else caller.split("→")[0]


def _credentials(world: World, caller: str) -> dict[str, str]:
    username = _username(caller) or "officer1"  # anonymous signs in with someone's password
    creds = {"username": username, "password": PASSWORD}
    if username in world.accounts.secrets:
        world.accounts.frozen.advance(timedelta(seconds=31))  # type: ignore[union-attr]
        creds["totp"] = world.accounts.totp(username)
    return creds


def _new_rule(world: World) -> str:
    rule_id = f"sec-rule-{next(_rule_numbers)}"
    created = world.client.post(
        "/api/v1/rules",
        json={"id": rule_id, "department": "env", "expr": "噪音", "severity": "minor"},
        headers=world.headers("officer1"),
    )
    assert created.status_code == 201, created.text
    return rule_id


def _source(n: int) -> dict[str, Any]:
    # A public address literal: no DNS lookup needed, and not refused as an intranet host.
    return {
        "id": f"sec-src-{n}",
        "name": "安全测试来源",
        "channel": "media",
        "type": "rss",
        "start_urls": [f"http://1.1.1.1/feed-{n}.xml"],
        "interval": "1h",
    }


def _new_source(world: World) -> str:
    body = _source(next(_rule_numbers))
    created = world.client.post("/api/v1/sources", json=body, headers=world.headers("admin1"))
    assert created.status_code == 201, created.text
    return body["id"]


def _new_user(world: World) -> str:
    username = f"sec-user-{next(_rule_numbers)}"
    created = world.client.post(
        "/api/v1/users", json={"username": username, "role": "officer"}, headers=world.headers("admin1")
    )
    assert created.status_code == 201, created.text
    return username


def _call(world: World, method: str, path: str, caller: str) -> int:
    """Make the request of ``(method, path)`` as ``caller`` with real ids; the status code."""
    username = _username(caller)
    other = caller.endswith("→water")
    headers = world.headers(username)
    kwargs: dict[str, Any] = {}
    url = path
    if "{ticket_id}" in path:
        if method != "GET":  # each change on a ticket of its own, so state left by one caller misleads none
            ticket = world.new_ticket("water" if other else "env")
        else:
            ticket = world.water_ticket if other else world.env_ticket
        url = path.replace("{ticket_id}", str(ticket))
    if "{alert_id}" in path:
        url = path.replace("{alert_id}", str(world.water_alert if other else world.env_alert))
    if "{rule_id}" in path:
        url = path.replace("{rule_id}", _new_rule(world))
    if "{source_id}" in path:
        url = path.replace("{source_id}", _new_source(world))
    if "{username}" in path:
        url = path.replace("{username}", _new_user(world))
    today = clock.to_local(clock.now()).date().isoformat()  # the export's days are Beijing days
    match (method, path):
        case ("POST", "/api/v1/auth/token"):
            kwargs["data"] = _credentials(world, caller)
            headers = {}
        case ("POST", "/api/v1/auth/login"):
            kwargs["json"] = _credentials(world, caller)
            headers = {}
        case ("POST", "/api/v1/auth/logout"):
            if username is not None:  # a session of its own: the shared one stays usable
                headers = {"Authorization": f"Bearer {world.fresh_token(username)}"}
        case ("POST", "/api/v1/tickets/{ticket_id}/actions"):
            decider = username in ("admin1", "officer1")
            kwargs["json"] = {"action": "escalate", "note": "请加快办理"} if decider else {"action": "acknowledge"}
        case ("PUT", "/api/v1/tickets/{ticket_id}/severity"):
            kwargs["json"] = {"severity": "critical", "note": "影响扩大"}
        case ("POST", "/api/v1/tickets/{ticket_id}/merge"):
            kwargs["json"] = {"sources": [{"id": world.new_ticket("water" if other else "env")}]}
        case ("POST", "/api/v1/tickets/{ticket_id}/split"):
            # A ticket of two items (one merged in), so that there is something to split off.
            second = world.new_ticket("water" if other else "env")
            with world.client.app.state.ctx.db.session() as session:
                item_id = session.get(Ticket, second).items[0].item_id
                merge(session, ticket, [(second, None)], Principal(user_id=0, username="setup", role="admin"))
            kwargs["json"] = {"item_id": item_id}
        case ("POST", "/api/v1/alerts/{alert_id}/state"):
            kwargs["json"] = {"state": "acknowledged"}
        case ("POST", "/api/v1/rules"):
            kwargs["json"] = {"id": f"sec-new-{next(_rule_numbers)}", "department": "env", "expr": "噪音"}
        case ("PUT", "/api/v1/rules/{rule_id}"):
            kwargs["json"] = {"department": "env", "expr": "噪音 OR 扰民", "severity": "normal"}
        case ("POST", "/api/v1/rules/{rule_id}/mute"):
            kwargs["json"] = {"minutes": 30}
        case ("POST", "/api/v1/rules/test"):
            kwargs["json"] = {"expr": "化工厂 AND 排污", "text": "化工厂排污"}
        case ("POST", "/api/v1/rules/test-recent"):
            kwargs["json"] = {"expr": "化工厂"}
        case ("POST", "/api/v1/sources"):
            kwargs["json"] = _source(next(_rule_numbers))
        case ("POST", "/api/v1/users"):
            kwargs["json"] = {"username": f"sec-new-user-{next(_rule_numbers)}", "role": "leader"}
        case ("PATCH", "/api/v1/users/{username}"):
            kwargs["json"] = {"role": "leader"}
        case ("POST", "/api/v1/users/{username}/reset-password"):
            kwargs["json"] = {}
        case ("POST", "/api/v1/auth/password"):
            kwargs["json"] = {"current_password": "not-the-password", "new_password": "Nw7#kLm2!pQz"}
        case ("GET", "/api/v1/ledger/export"):
            kwargs["params"] = {"from": today, "to": today, "format": "csv"}
            if other:
                kwargs["params"]["department"] = "water"
    try:
        if path in ("/api/v1/alerts/stream", "/api/v1/tickets/stream"):
            with world.client.stream(method, url, headers=headers, params={"after": 0}) as response:
                return response.status_code
        response: Response = world.client.request(method, url, headers=headers, **kwargs)
        return response.status_code
    finally:
        world.client.cookies.clear()  # a console login must not sign in the next caller


def _outcome(status: int) -> int | str:
    return OK if 200 <= status < 300 else status


def _cases() -> Iterator[tuple[str, str, str]]:
    for method, path in EXPECTED:
        for caller in CALLERS:
            yield method, path, caller


@on_both_item_stores
def test_every_route_as_every_role(world: World) -> None:
    wrong = []
    for method, path, caller in _cases():
        expected = EXPECTED[(method, path)][caller]
        got = _outcome(_call(world, method, path, caller))
        if got != expected:
            wrong.append(f"{method} {path} as {caller}: expected {expected}, got {got}")
    assert not wrong, "access matrix violated:\n" + "\n".join(wrong)


@pytest.mark.parametrize("path", ["/api/v1/tickets", "/api/v1/alerts"])
def test_department_lists_hold_only_its_own_department(world: World, path: str) -> None:
    """Listings need no 404: they simply never contain another department's rows."""
    everything = world.client.get(path, headers=world.headers("officer1")).json()["results"]
    assert {r["department"] for r in everything} == {"env", "water"}
    own = world.client.get(path, headers=world.headers("env1")).json()["results"]
    assert own
    assert {r["department"] for r in own} == {"env"}
    # Asking for water explicitly does not widen the view either.
    asked = world.client.get(path, params={"department": "water"}, headers=world.headers("env1"))
    assert asked.status_code in (200, 404)
    if asked.status_code == 200:
        assert asked.json()["results"] == []
