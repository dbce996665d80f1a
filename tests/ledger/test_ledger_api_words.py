"""What the ticket API says to a person: time left in the unit of each deadline, the 办理 entry of the timeline."""

from __future__ import annotations

from datetime import datetime

from service.clock import SHANGHAI
from service.ledger.config import ledger_config
from tests.ledger.builders import new_ticket
from tests.ledger.test_ledger_api import accounts, client  # noqa: F401 - the fixtures of the ledger API tests


def test_time_left_is_said_in_working_days_where_the_deadline_counts_them_across_the_spring_festival(
    client,  # noqa: F811
    accounts,  # noqa: F811
    frozen,
) -> None:
    """A major ticket found on the eve of the 2026 Spring Festival (chinesecalendar: Saturday the 14th worked,
    15th-23rd off): 办理 is due in 1 working day, 回应 in 2, and the list and the ticket say so in working days;
    签收 (2 hours) keeps natural time. After the holiday the late stages say how many working days late."""
    frozen.set(datetime(2026, 2, 13, 11, tzinfo=SHANGHAI))
    ctx = client.app.state.ctx
    config = ledger_config(ctx.settings)
    with ctx.db.session() as s:
        ticket_id = new_ticket(
            s, config, 1, severity="major", discovered_at=datetime(2026, 2, 13, 10, tzinfo=SHANGHAI)
        ).id
    body = client.get(f"/api/v1/tickets/{ticket_id}", headers=accounts.headers("env1")).json()
    assert body["time_left_text"] == {
        "acknowledge": "剩 1小时0分钟",
        "handle": "剩 1 个工作日",
        "respond": "剩 2 个工作日",
    }
    assert body["time_left_workdays"] == {"acknowledge": None, "handle": 1, "respond": 2}
    assert body["time_left"]["respond"] == (11 * 24 + 12) * 3600 + 59 * 60 + 59  # seconds stay as they were
    assert (
        client.post(
            f"/api/v1/tickets/{ticket_id}/actions",
            json={"action": "acknowledge", "version": 1},
            headers=accounts.headers("env1"),
        ).status_code
        == 200
    )

    accounts.headers("zhang")  # the officer's account, made now
    frozen.set(datetime(2026, 2, 25, 9, tzinfo=SHANGHAI))
    fresh = {"Authorization": f"Bearer {accounts.token('zhang')}"}  # sessions made before have long gone idle
    listed = client.get("/api/v1/tickets", headers=fresh).json()["results"]
    assert [t["time_left_text"] for t in listed] == [
        {"acknowledge": None, "handle": "已超期 2 个工作日", "respond": "已超期 1 个工作日"}
    ]
    assert listed[0]["time_left_workdays"] == {"acknowledge": None, "handle": -2, "respond": -1}


def test_the_handle_entry_of_the_timeline_keeps_who_when_and_the_result_masked_for_non_admins(
    client,  # noqa: F811
    accounts,  # noqa: F811
) -> None:
    ctx = client.app.state.ctx
    with ctx.db.session() as s:
        ticket_id = new_ticket(s, ledger_config(ctx.settings), 1).id
    env = accounts.headers("env1")
    url = f"/api/v1/tickets/{ticket_id}/actions"
    assert client.post(url, json={"action": "acknowledge", "version": 1}, headers=env).status_code == 200
    result = "已约谈企业负责人（电话13812345678），<b>停产整改</b>"
    done = client.post(url, json={"action": "handle", "version": 2, "result": result, "note": "现场核查"}, headers=env)
    assert done.status_code == 200, done.text
    entry = done.json()["timeline"][-1]
    assert (entry["action"], entry["actor"], entry["note"]) == ("handle", "env1", "现场核查")
    assert entry["at"] == "2026-03-02T10:00:00+08:00"
    assert entry["detail"] == {
        "result": "已约谈企业负责人（电话138****5678），<b>停产整改</b>",
        "handle_due": "2026-03-05T15:59:59+00:00",  # 23:59:59 in Beijing, 3 working days on
        "on_time": True,
        "department": "env",
    }
    officer = client.get(f"/api/v1/tickets/{ticket_id}", headers=accounts.headers("zhang")).json()
    assert officer["timeline"][-1]["detail"]["result"] == "已约谈企业负责人（电话138****5678），<b>停产整改</b>"
    admin = client.get(f"/api/v1/tickets/{ticket_id}", headers=accounts.headers("root")).json()
    assert admin["timeline"][-1]["detail"]["result"] == result
