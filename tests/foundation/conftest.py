"""Builders for foundation tests: a config dir and a data dir per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.mkdir()
    return path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("YUQING_DATA_DIR", str(path))
    return path


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str = "", timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run the real console script in a child process (exit codes and stderr as a user sees them).

    The timeout only stops a hung command: a loaded 2-core CI machine has taken minutes for one start-up."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


# Runs each command of a JSON list through the real entry point (service.cli.main) in this one interpreter:
# argv, stdin, stdout, stderr and the exit code of each command are its own, as in a process of its own.
_SESSION = """
import contextlib, io, json, sys
from service.cli import main

commands, results_path = json.loads(sys.stdin.read()), sys.argv[1]
results = []
for args, stdin in commands:
    out, err = io.StringIO(), io.StringIO()
    sys.argv, sys.stdin, code = ["yuqing", *args], io.StringIO(stdin), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as exc:
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
            code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    results.append([code, out.getvalue(), err.getvalue()])
with open(results_path, "w", encoding="utf-8") as fh:
    json.dump(results, fh)
"""


def run_cli_session(
    commands: list[tuple[list[str], str]], env: dict[str, str] | None = None, timeout: float = 300
) -> list[subprocess.CompletedProcess]:
    """Run several `yuqing` commands, each ``(args, stdin)``, one after the other in ONE child process.

    Each command goes through the same entry point as the console script (its own argv, stdin, output and
    exit code), but the interpreter and the service's imports (about 2 s of CPU per process) are paid once.
    Tests of a sequence of commands use this; a command whose behaviour is about its own process (start-up,
    signals, a fresh database) still runs in a process of its own with ``run_cli``.
    """
    with tempfile.TemporaryDirectory(prefix="yuqing-cli-") as tmp:
        results = Path(tmp) / "results.json"
        child = subprocess.run(
            [sys.executable, "-c", _SESSION, str(results)],
            input=json.dumps(commands),
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=timeout,
            check=False,
        )
        assert child.returncode == 0, child.stdout[-2000:] + child.stderr[-3000:]
        outcomes = json.loads(results.read_text(encoding="utf-8"))
    return [
        subprocess.CompletedProcess(["yuqing", *args], code, out, err)
        for (args, _stdin), (code, out, err) in zip(commands, outcomes, strict=True)
    ]
