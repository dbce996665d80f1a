"""`yuqing user add` through the real console script: password on stdin, one-line results, exit codes."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from sqlalchemy import create_engine, text

from tests.foundation.conftest import run_cli

pytestmark = pytest.mark.long_running(100)  # seconds in CI: starts first (tests/conftest.py)

PASSWORD = "Kx9!mPq2#vLt"
DEPARTMENTS = "departments:\n  - id: env\n    name: 市生态环境局\n    rules: []\n"


def test_user_add_creates_accounts_and_refuses_bad_input(tmp_path: Path, database_url: str) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "departments.yaml").write_text(DEPARTMENTS, encoding="utf-8")
    env = {"YUQING_DATA_DIR": str(tmp_path / "data"), "YUQING_DATABASE__URL": database_url}

    def user_add(*args: str, stdin: str = PASSWORD + "\n"):
        return run_cli("--config", str(config), "user", "add", *args, env=env, stdin=stdin)

    dept = user_add("env-user", "--role", "department", "--department", "env")
    assert dept.returncode == 0, dept.stderr
    assert dept.stdout.strip().splitlines() == ["已创建用户 env-user (角色 department，部门 env)"]

    admin = user_add("root", "--role", "admin")
    assert admin.returncode == 0, admin.stderr
    uri = admin.stdout.strip().splitlines()[-1].split(" ")[-1]
    assert uri.startswith("otpauth://totp/")
    assert pyotp.parse_uri(uri).secret

    for args, stdin, reason in [
        (("li", "--role", "officer"), "short\n", "密码至少"),
        (("li", "--role", "department"), PASSWORD + "\n", "--department"),
        (("lisi", "--role", "department", "--department", "nosuch"), PASSWORD + "\n", "不在 departments.yaml 中"),
    ]:
        result = user_add(*args, stdin=stdin)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
        assert reason in result.stderr

    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT username, role, department, password_hash FROM users ORDER BY id")).all()
        events = conn.execute(text("SELECT event_type FROM audit_log")).scalars().all()
    engine.dispose()
    assert [(r[0], r[1], r[2]) for r in rows] == [("env-user", "department", "env"), ("root", "admin", None)]
    assert all(r[3].startswith("$argon2id$") and PASSWORD not in r[3] for r in rows)
    assert events == ["user_add", "user_add"]


def test_user_admin_commands_in_chinese(tmp_path: Path, database_url: str) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "departments.yaml").write_text(DEPARTMENTS, encoding="utf-8")
    env = {"YUQING_DATA_DIR": str(tmp_path / "data"), "YUQING_DATABASE__URL": database_url}

    def user(*args: str, stdin: str = ""):
        return run_cli("--config", str(config), "user", *args, env=env, stdin=stdin)

    assert user("add", "lisi", "--role", "officer", stdin=PASSWORD + "\n").returncode == 0
    admin = user("add", "root", "--role", "admin", stdin=PASSWORD + "\n")
    assert "█" in admin.stdout  # the QR code, drawn in the terminal
    assert "INFO" not in admin.stdout + admin.stderr  # no migration chatter

    assert user("disable", "lisi").stdout.strip() == "已停用用户 lisi"
    listed = user("list").stdout.splitlines()
    assert listed[0].split("\t") == ["用户名", "角色", "部门", "状态", "创建时间"]
    assert any(line.startswith("lisi\t舆情专员\t—\t已停用") for line in listed)
    assert user("enable", "lisi").returncode == 0
    assert user("unlock", "lisi").stdout.strip() == "已解锁用户 lisi"

    moved = user("set-role", "lisi", "--role", "department", "--department", "nosuch")
    assert moved.returncode == 2
    assert "不在 departments.yaml 中" in moved.stderr
    assert len(moved.stderr.strip().splitlines()) == 1
    moved = user("set-role", "lisi", "--role", "department", "--department", "env")
    assert moved.returncode == 0, moved.stderr

    reset = user("reset-password", "lisi")
    assert reset.returncode == 0
    assert "临时密码" in reset.stdout
    assert "须修改密码" in user("list").stdout

    assert user("delete", "lisi").returncode == 2  # needs --yes when not asked on a terminal
    deleted = user("delete", "lisi", "--yes")
    assert (deleted.returncode, deleted.stdout.strip()) == (0, "已删除用户 lisi"), deleted.stderr
    missing = user("disable", "lisi")
    assert missing.returncode == 2
    assert missing.stderr.strip() == "yuqing: 用户 lisi 不存在"

    engine = create_engine(database_url)
    with engine.connect() as conn:
        events = conn.execute(text("SELECT event_type FROM audit_log ORDER BY id")).scalars().all()
    engine.dispose()
    assert events == [
        "user_add",
        "user_add",
        "user_disable",
        "user_enable",
        "user_unlock",
        "user_update",
        "user_reset_password",
        "user_delete",
    ]
