"""`yuqing user add` through the real console script: password on stdin, one-line results, exit codes.

The first command of each test meets a new database (it migrates it); the first test runs it in a process of
its own, the rest of a test's commands run one after the other in one child process (run_cli_session: the
same entry point, argv, stdin, output and exit code per command, one interpreter start instead of fifteen).
"""

from __future__ import annotations

from pathlib import Path

import pyotp
from sqlalchemy import create_engine, text

from tests.foundation.conftest import run_cli, run_cli_session

PASSWORD = "Kx9!mPq2#vLt"
DEPARTMENTS = "departments:\n  - id: env\n    name: 市生态环境局\n    rules: []\n"


def test_user_add_creates_accounts_and_refuses_bad_input(tmp_path: Path, empty_database_url: str) -> None:
    database_url = empty_database_url
    config = tmp_path / "config"
    config.mkdir()
    (config / "departments.yaml").write_text(DEPARTMENTS, encoding="utf-8")
    env = {"YUQING_DATA_DIR": str(tmp_path / "data"), "YUQING_DATABASE__URL": database_url}

    def user_add(*args: str) -> list[str]:
        return ["--config", str(config), "user", "add", *args]

    dept = run_cli(*user_add("env-user", "--role", "department", "--department", "env"), env=env, stdin=PASSWORD + "\n")
    assert dept.returncode == 0, dept.stderr
    assert dept.stdout.strip().splitlines() == ["已创建用户 env-user (角色 责任单位 department，部门 env)"]

    refusals = [
        (("li", "--role", "officer"), "short\n", "密码至少"),
        (("li", "--role", "department"), PASSWORD + "\n", "--department"),
        (("lisi", "--role", "department", "--department", "nosuch"), PASSWORD + "\n", "不在 departments.yaml 中"),
    ]
    admin, *refused = run_cli_session(
        [(user_add("root", "--role", "admin"), PASSWORD + "\n")]
        + [(user_add(*args), stdin) for args, stdin, _reason in refusals],
        env=env,
    )
    assert admin.returncode == 0, admin.stderr
    uri = admin.stdout.strip().splitlines()[-1].split(" ")[-1]
    assert uri.startswith("otpauth://totp/")
    assert pyotp.parse_uri(uri).secret

    for (args, _stdin, reason), result in zip(refusals, refused, strict=True):
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


def test_user_admin_commands_in_chinese(tmp_path: Path, empty_database_url: str) -> None:
    database_url = empty_database_url
    config = tmp_path / "config"
    config.mkdir()
    (config / "departments.yaml").write_text(DEPARTMENTS, encoding="utf-8")
    env = {"YUQING_DATA_DIR": str(tmp_path / "data"), "YUQING_DATABASE__URL": database_url}

    def user(*args: str, stdin: str = "") -> tuple[list[str], str]:
        return ["--config", str(config), "user", *args], stdin

    results = run_cli_session(
        [
            user("add", "lisi", "--role", "officer", stdin=PASSWORD + "\n"),
            user("add", "root", "--role", "admin", stdin=PASSWORD + "\n"),
            user("disable", "lisi"),
            user("list"),
            user("enable", "lisi"),
            user("unlock", "lisi"),
            user("set-role", "lisi", "--role", "department", "--department", "nosuch"),
            user("set-role", "lisi", "--role", "department", "--department", "env"),
            user("reset-password", "lisi"),
            user("list"),
            user("delete", "lisi"),
            user("delete", "lisi", "--yes"),
            user("disable", "lisi"),
        ],
        env=env,
    )
    added, admin, disabled, listing, enabled, unlocked, refused_move, moved, reset, relisted = results[:10]
    refused_delete, deleted, missing = results[10:]
    assert added.returncode == 0, added.stderr
    assert "█" in admin.stdout  # the QR code, drawn in the terminal
    # No migration chatter, not even from the first command, which migrated the new database.
    assert not any("INFO" in r.stdout + r.stderr for r in results)

    assert disabled.stdout.strip() == "已停用用户 lisi"
    listed = listing.stdout.splitlines()
    assert listed[0].split("\t") == ["用户名", "角色", "部门", "状态", "创建时间"]
    assert any(line.startswith("lisi\t舆情专员\t—\t已停用") for line in listed)
    assert enabled.returncode == 0
    assert unlocked.stdout.strip() == "已解锁用户 lisi"

    assert refused_move.returncode == 2
    assert "不在 departments.yaml 中" in refused_move.stderr
    assert len(refused_move.stderr.strip().splitlines()) == 1
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.strip().startswith("用户 lisi 的角色已改为 责任单位 department")

    assert reset.returncode == 0
    assert "临时密码" in reset.stdout
    assert "须修改密码" in relisted.stdout

    assert refused_delete.returncode == 2  # needs --yes when not asked on a terminal
    assert (deleted.returncode, deleted.stdout.strip()) == (0, "已删除用户 lisi"), deleted.stderr
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
