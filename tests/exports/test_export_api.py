"""GET /api/v1/ledger/export through the real app: who may export what, and the file that comes back."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import openpyxl
import pytest
from fastapi.testclient import TestClient

from tests.auth.fixtures import Accounts, accounts, app_settings, client, frozen  # noqa: F401 (fixtures)
from tests.exports.builders import PHONE, T0, make_ticket

URL = "/api/v1/ledger/export"
WEEK = {"from": "2026-03-02", "to": "2026-03-08"}


@pytest.fixture
def users(client: TestClient, accounts: Accounts) -> Accounts:  # noqa: F811 (fixture use)
    with client.app.state.ctx.db.session() as s:
        make_ticket(s, 1, T0, result=f"联系人{PHONE}")
        make_ticket(s, 2, T0 + timedelta(hours=1), department="water")
        make_ticket(s, 3, T0 + timedelta(days=7))  # the week after
    accounts.add("officer1", "officer")
    accounts.add("env1", "department", department="env")
    accounts.add("auditor1", "auditor")
    return accounts


def test_officer_exports_every_department_as_xlsx(client: TestClient, users: Accounts) -> None:  # noqa: F811
    response = client.get(URL, params=WEEK, headers=users.headers("officer1"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in response.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(response.content))
    titles = [r[1] for r in wb["台账"].iter_rows(min_row=2, values_only=True)]
    assert titles == ["化工厂异味投诉1", "化工厂异味投诉2"]
    assert PHONE.encode() not in response.content
    # The temporary file is gone once sent.
    assert list(client.app.state.ctx.settings.data_path("exports", ".api").iterdir()) == []


def test_department_user_gets_own_department_only(client: TestClient, users: Accounts) -> None:  # noqa: F811
    headers = users.headers("env1")
    own = client.get(URL, params={**WEEK, "format": "csv"}, headers=headers)
    assert own.status_code == 200, own.text
    assert own.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(own.content.decode("utf-8-sig"))))
    assert [r[1] for r in rows[1:]] == ["化工厂异味投诉1"]
    assert rows[1][9] == "联系人138****5678"

    named = client.get(URL, params={**WEEK, "format": "csv", "department": "env"}, headers=headers)
    assert named.status_code == 200
    other = client.get(URL, params={**WEEK, "department": "water"}, headers=headers)
    assert other.status_code == 404


def test_refusals(client: TestClient, users: Accounts) -> None:  # noqa: F811
    assert client.get(URL, params=WEEK).status_code == 401
    assert client.get(URL, params=WEEK, headers=users.headers("auditor1")).status_code == 403
    officer = users.headers("officer1")
    backwards = client.get(URL, params={"from": "2026-03-08", "to": "2026-03-02"}, headers=officer)
    assert backwards.status_code == 422
    # Said the way every other date range is refused (items, tickets, audit log).
    assert backwards.json()["detail"] == "开始日期（from）2026-03-08 晚于结束日期（to）2026-03-02，请对调两个日期"
    assert client.get(URL, params={**WEEK, "format": "pdf"}, headers=officer).status_code == 422
    # A mistyped department would give an empty ledger that reads as "no tickets that week".
    typo = client.get(URL, params={**WEEK, "department": "evn"}, headers=officer)
    assert typo.status_code == 422
    assert typo.json()["detail"] == "部门（department）：departments.yaml 中没有责任单位 'evn'，也没有它的工单"
    # One with tickets is exported even when departments.yaml no longer names it (the test config names none).
    assert client.get(URL, params={**WEEK, "department": "water"}, headers=officer).status_code == 200
    assert client.get(URL, params={"from": "03/02/2026", "to": "2026-03-08"}, headers=officer).status_code == 422


def test_csv_export_streams_rows_as_the_cursor_yields_them(client: TestClient, accounts: Accounts) -> None:  # noqa: F811
    import anyio
    from sqlalchemy import event

    from alerting.calendar import WorkCalendar
    from alerting.sla import SlaConfig, SlaPolicy
    from service.exports.ledger_rows import BATCH
    from service.ledger.batch import Opening, open_or_attach_many
    from service.ledger.service import ItemRef

    count = BATCH * 6
    db = client.app.state.ctx.db
    with db.session() as s:
        openings = [
            Opening(
                title=f"渣土车夜间施工{n}",
                severity="normal",
                department="env",
                item=ItemRef(item_id=f"i{n}", source="demo-12345", channel="hotline", url=f"http://x/{n}"),
                discovered_at=T0 + timedelta(seconds=n),
            )
            for n in range(count)
        ]
        open_or_attach_many(s, openings, policy=SlaPolicy(SlaConfig(), WorkCalendar()))
    accounts.add("officer1", "officer")
    ledger_queries: list[int] = []

    def counted(conn, cursor, statement, *args) -> None:
        if "ticket_items" in statement:
            ledger_queries.append(1)

    body = bytearray()
    lines_at_first_rows: list[int] = []

    async def run() -> None:
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": URL,
            "raw_path": URL.encode(),
            "root_path": "",
            "query_string": b"from=2026-03-02&to=2026-03-08&format=csv",
            "headers": [(k.lower().encode(), v.encode()) for k, v in accounts.headers("officer1").items()],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }

        requested = anyio.Event()

        async def receive() -> dict:
            if not requested.is_set():
                requested.set()
                return {"type": "http.request", "body": b"", "more_body": False}
            await anyio.sleep_forever()  # the client stays connected; the app ends the exchange
            raise AssertionError("unreachable")

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 200
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not lines_at_first_rows and body.count(b"\n") > 1:
                    lines_at_first_rows.append(body.count(b"\n"))

        await client.app(scope, receive, send)

    event.listen(db.engine, "before_cursor_execute", counted)
    try:
        # In a thread of its own: a browser test earlier in the session may leave Playwright's event loop
        # running in this one, and anyio refuses to start a second loop in a thread that has one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(anyio.run, run).result(timeout=300)
    finally:
        event.remove(db.engine, "before_cursor_execute", counted)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) == count + 1
    assert rows[1][1] == "渣土车夜间施工0"
    assert rows[-1][1] == f"渣土车夜间施工{count - 1}"
    # The first rows left after one batch was rendered, not the whole ledger, and tickets with their items
    # came from one query read batch by batch (yield_per), not one query per batch.
    assert lines_at_first_rows
    assert lines_at_first_rows[0] <= BATCH + 1
    assert len(ledger_queries) == 1
