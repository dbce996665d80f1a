"""`yuqing user add` through the real console script: password on stdin, one-line results, exit codes."""

from __future__ import annotations

from pathlib import Path

import pyotp
from sqlalchemy import create_engine, text

from tests.foundation.conftest import run_cli

PASSWORD = "Kx9!mPq2#vLt"


def test_user_add_creates_accounts_and_refuses_bad_input(tmp_path: Path, database_url: str) -> None:
    config = tmp_path / "config"
    config.mkdir()
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
