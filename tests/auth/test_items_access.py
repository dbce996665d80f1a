"""Who may search items, and what personal data they see there (on both item stores)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from service.audit.models import AuditRecord
from service.store import make_store
from service.store.base import Item, item_id
from tests.auth.fixtures import Accounts
from tests.item_stores import backends, item_store, ledger_database_kind, searchable_now  # noqa: F401 - both item stores

PUBLISHED = datetime(2026, 11, 20, 2, tzinfo=UTC)


def _store_item(settings) -> None:
    store = make_store(settings)
    try:
        store.init()
        store.upsert(
            [
                Item(
                    id=item_id("demo-12345", "1"),
                    source="demo-12345",
                    channel="hotline",
                    external_id="1",
                    title="市民13812345678反映化工厂排污",
                    content="联系人身份证110101199001011234，电话13812345678。",
                    reply="已联系 0571-88881234 处理",
                    url="http://127.0.0.1:8801/detail?id=13812345678",
                    published_at=PUBLISHED,
                    fetched_at=PUBLISHED,
                )
            ]
        )
        searchable_now(store)
    finally:
        store.close()


def test_officers_see_masked_items_and_admins_see_them_whole(app_settings, frozen) -> None:
    _store_item(app_settings)
    with TestClient(create_app(app_settings)) as client:
        accounts = Accounts(client, frozen)
        accounts.add("zhang", "officer")
        accounts.add("root", "admin")
        accounts.add("wang", "leader")

        officer = client.get("/api/v1/items", headers=accounts.headers("zhang")).json()["results"][0]
        assert officer["title"] == "市民138****5678反映化工厂排污"
        assert officer["content"] == "联系人身份证110101********1234，电话138****5678。"
        assert officer["reply"] == "已联系 0571-****1234 处理"
        assert officer["url"] == "http://127.0.0.1:8801/detail?id=13812345678", "links keep working"

        leader = client.get("/api/v1/items", headers=accounts.headers("wang")).json()["results"][0]
        assert "13812345678" not in leader["content"]

        admin = client.get("/api/v1/items", headers=accounts.headers("root")).json()["results"][0]
        assert admin["title"] == "市民13812345678反映化工厂排污"
        assert "110101199001011234" in admin["content"]


def test_items_need_a_sign_in_and_are_closed_to_department_users(client: TestClient, accounts: Accounts) -> None:
    accounts.add("env-user", "department", department="env")
    accounts.add("audit", "auditor")
    assert client.get("/api/v1/items").status_code == 401
    assert client.get("/api/v1/items", headers=accounts.headers("env-user")).status_code == 403
    assert client.get("/api/v1/items", headers=accounts.headers("audit")).status_code == 403
    with client.app.state.ctx.db.session() as session:
        denials = session.execute(select(AuditRecord).where(AuditRecord.event_type == "authz_denied")).scalars().all()
    assert [(d.username, d.result, d.detail["path"]) for d in denials] == [
        ("env-user", "denied", "/api/v1/items"),
        ("audit", "denied", "/api/v1/items"),
    ]


def test_search_is_rate_limited_per_user(app_settings, frozen) -> None:
    app_settings.security.search_rate_per_minute = 2
    with TestClient(create_app(app_settings)) as client:
        accounts = Accounts(client, frozen)
        accounts.add("zhang", "officer")
        accounts.add("li", "officer")
        zhang, li = accounts.headers("zhang"), accounts.headers("li")
        codes = [client.get("/api/v1/items", headers=zhang).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert client.get("/api/v1/items", headers=li).status_code == 200


def test_search_runs_on_what_the_user_sees_and_admin_searches_are_audited(app_settings, frozen) -> None:
    _store_item(app_settings)
    with TestClient(create_app(app_settings)) as client:
        accounts = Accounts(client, frozen)
        accounts.add("wang", "leader")
        accounts.add("root", "admin")
        leader = accounts.headers("wang")

        def total(q: str, headers: dict[str, str]) -> int:
            return client.get("/api/v1/items", params={"q": q}, headers=headers).json()["total"]

        assert total("化工厂排污 138****5678", leader) == 1
        # One digit at a time was enough to read a masked mobile; now no guess answers.
        assert [total(f"化工厂排污 138{d}", leader) for d in "0123456789"] == [0] * 10
        assert total("13812345678", leader) == 0
        assert total("1990010112", leader) == 0
        assert total("13812345678", accounts.headers("root")) == 1
        with client.app.state.ctx.db.session() as session:
            searches = session.execute(select(AuditRecord).where(AuditRecord.event_type == "item.search")).scalars()
            assert [(r.username, r.detail["q"]) for r in searches] == [("root", "13812345678")]


def test_trying_a_rule_on_recent_items_runs_on_masked_text_for_officers(app_settings, frozen) -> None:
    _store_item(app_settings)
    with TestClient(create_app(app_settings)) as client:
        accounts = Accounts(client, frozen)
        accounts.add("zhang", "officer")
        officer = accounts.headers("zhang")

        def matched(expr: str) -> int:
            body = {"expr": expr, "days": 31}
            return client.post("/api/v1/rules/test-recent", json=body, headers=officer).json()["matched"]

        assert matched("化工厂") == 1
        assert matched("13812345678") == 0
        assert matched("化工厂 AND 1381") == 0
