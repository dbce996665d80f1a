"""The command line speaks Chinese and stays quiet: usage errors, help, library logs, a busy port."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.foundation.conftest import run_cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "config").mkdir()
    return {"YUQING_DATA_DIR": str(tmp_path / "data"), "YUQING_CONFIG_DIR": str(tmp_path / "config")}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["export", "--from", "2026-01-01", "--to", "2026-01-02"], "缺少选项 '-o' / '--output'"),
        (["nosuch"], "没有命令 'nosuch'"),
        (["crawl", "--bad"], "没有选项 --bad"),
        (["sla", "check", "--at"], "选项 --at 需要一个值"),
        (["user", "add"], "缺少参数 USERNAME"),
        (["run", "--port", "abc"], "'--port' 的值无效：不是整数"),
    ],
)
def test_usage_errors_are_one_chinese_line(env: dict[str, str], args: list[str], expected: str) -> None:
    done = run_cli(*args, env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"yuqing: {expected}")
    assert "--help 查看用法" in lines[0] or args[0] == "sla"


def test_help_is_chinese(env: dict[str, str]) -> None:
    done = run_cli("export", "--help", env=env)
    assert done.returncode == 0
    assert "显示此帮助并退出" in done.stdout
    assert "Show this message" not in done.stdout
    assert "用法：yuqing export" in done.stdout
    assert "Usage:" not in done.stdout
    assert "选项" in done.stdout


def test_commands_are_quiet_unless_verbose(env: dict[str, str]) -> None:
    quiet = run_cli("init", env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert "INFO" not in quiet.stderr  # no "Running upgrade ..." lines from Alembic
    assert "Running upgrade" not in quiet.stderr
    verbose = run_cli("--verbose", "user", "list", env={**env, "YUQING_DATA_DIR": env["YUQING_DATA_DIR"] + "2"})
    assert "Running upgrade" in verbose.stderr


def test_a_busy_port_is_one_chinese_line_before_anything_starts(env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_cli("run", "--port", str(port), env=env, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [f"yuqing: 端口 {port} 已被占用（127.0.0.1:{port}），请关闭占用它的程序或用 --port 换一个端口"]
    # Nothing started: no database, so no scheduler lease was taken either.
    database = tmp_path / "data" / "yuqing.db"
    if database.exists():
        engine = create_engine(f"sqlite:///{database}")
        with engine.connect() as conn:
            if "scheduler_leases" in inspect(conn).get_table_names():
                assert conn.execute(text("SELECT count(*) FROM scheduler_leases")).scalar_one() == 0
        engine.dispose()
