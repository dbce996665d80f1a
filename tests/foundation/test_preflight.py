"""A dependency missing after an upgrade (new code, old install) is one Chinese line and exit 2, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _yuqing_without(tmp_path: Path, modules: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m service.cli ARGS` in a fresh process where ``modules`` cannot be imported.

    A ``sitecustomize`` on PYTHONPATH (run by Python itself before anything else) marks them as absent in
    ``sys.modules``, which is what importing an uninstalled package looks like to the product.
    """
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in modules), encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hide), str(ROOT)])}
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("args", [["--help"], ["run", "--port", "1"]])
def test_a_missing_dependency_is_named_with_the_fix_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    done = _yuqing_without(tmp_path, ["jieba"], *args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "缺少依赖包 jieba" in lines[0]
    assert "pip install -e ." in lines[0]


def test_every_missing_dependency_is_named_in_the_one_line(tmp_path: Path) -> None:
    done = _yuqing_without(tmp_path, ["chompjs", "yaml"], "--help")
    assert done.returncode == 2, done.stderr
    assert "缺少依赖包 pyyaml、chompjs" in done.stderr, done.stderr


def test_with_everything_installed_the_check_stays_silent(tmp_path: Path) -> None:
    done = _yuqing_without(tmp_path, [], "--help")
    assert done.returncode == 0, done.stderr
    assert "缺少依赖包" not in done.stderr + done.stdout
