"""The floor plan holds: each concept in one place, imports only in the allowed directions."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _fresh(code: str) -> str:
    """Run ``code`` in a new interpreter (nothing imported yet) and return what it prints."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.strip()


def test_model_discovery_finds_every_table_without_cross_domain_model_imports() -> None:
    out = _fresh(
        "import sys\n"
        "import service.ledger.models\n"
        "print('alerting.models' in sys.modules)\n"
        "from service.db import Base, import_models\n"
        "import_models()\n"
        "print(' '.join(sorted(Base.metadata.tables)))\n"
    )
    tickets_pulled_alerting, tables = out.splitlines()
    assert tickets_pulled_alerting == "False"
    assert {"tickets", "sla_notices", "outbox_messages", "alerts", "rules", "users", "audit_log"} <= set(tables.split())


def test_no_import_runs_against_the_flow() -> None:
    """The contracts in .importlinter (layout and allowed directions, README 目录) hold for every import,
    those inside functions included."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_the_contracts_catch_a_back_edge(tmp_path: Path) -> None:
    """A copy of the code with the crawl stage importing the ledger fails the same contracts."""
    for package in ("service", "crawlers", "alerting"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    with open(tmp_path / "crawlers" / "scheduled.py", "a", encoding="utf-8") as handle:
        handle.write("\nfrom service.ledger.service import open_or_attach  # noqa\n")
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "crawlers is not allowed to import service.ledger" in done.stdout


def test_each_shared_word_is_defined_once() -> None:
    """Severity, stage, channel, ticket status and role lists live in service/vocabulary.py only."""
    words = {
        "minor": '"minor", "normal", "major", "critical"',
        "stages": '"acknowledge", "handle", "respond"',
        "channels": '"hotline", "mailbox", "media"',
        "roles": '"admin", "officer", "department", "leader", "auditor"',
    }
    homes: dict[str, list[str]] = {name: [] for name in words}
    for path in sorted(p for package in ("service", "crawlers", "alerting") for p in (ROOT / package).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for name, spelled in words.items():
            if spelled in text:
                homes[name].append(str(path.relative_to(ROOT)))
    assert homes == {name: ["service/vocabulary.py"] for name in words}, homes


def test_one_file_lock_and_one_atomic_write() -> None:
    """Only service/files.py locks files or renames a finished file into place."""
    users = [
        str(path.relative_to(ROOT))
        for package in ("service", "crawlers", "alerting")
        for path in sorted((ROOT / package).rglob("*.py"))
        if re.search(r"\bfcntl\b|os\.replace\(|os\.rename\(", path.read_text(encoding="utf-8"))
    ]
    assert users == ["service/files.py"]


def test_the_composition_root_adds_the_session_purge_to_the_daily_audit_job() -> None:
    out = _fresh(
        "import service.audit.scheduled as s\n"
        "before = sorted(s.HOUSEKEEPERS)\n"
        "import service.app\n"
        "print(before, sorted(s.HOUSEKEEPERS))\n"
    )
    assert out == "[] ['dead sessions']"
