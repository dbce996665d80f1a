"""Builders for foundation tests: a config dir and a data dir per test."""

from __future__ import annotations

import os
import subprocess
import sys
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
