"""The floor plan holds: each concept in one place, imports only in the allowed directions."""

from __future__ import annotations

import ast
import configparser
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

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


def test_model_discovery_loads_only_the_model_modules() -> None:
    """Every command that opens the database discovers the tables: it must not load the notifiers (apprise),
    the command line or the console along the way (importing every subpackage to look inside did)."""
    out = _fresh(
        "import sys\n"
        "from service.db import import_models\n"
        "import_models()\n"
        "loaded = ('alerting.channels', 'service.cli', 'service.console', 'apprise')\n"
        "print(' '.join(m for m in loaded if m in sys.modules))\n"
    )
    assert out == ""


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


@pytest.mark.parametrize(
    ("module", "back_edge", "refusal"),
    [
        # The crawl stage importing the ledger.
        (
            "crawlers/scheduled.py",
            "from service.ledger.service import open_or_attach",
            "crawlers is not allowed to import service.ledger",
        ),
        # The two package cycles removed: rules <-> matching (the rulebook) and crawlers <-> service/sources.
        (
            "service/rules/api.py",
            "from service.matching.engine import MatchingEngine",
            "service.rules is not allowed to import service.matching",
        ),
        (
            "crawlers/sources.py",
            "from service.sources import guard",
            "crawlers is not allowed to import service.sources",
        ),
        # The package cycles auth <-> users and auth <-> audit (sign-in stands on both), and the plug-in
        # point reading the sources model that loads it.
        (
            "service/users/service.py",
            "from service.auth.models import AuthSession",
            "service.users is not allowed to import service.auth",
        ),
        (
            "service/audit/request.py",
            "from service.auth.deps import require_roles",
            "service.audit is not allowed to import service.auth",
        ),
        # The ledger reading the alert table (its alerts are passed in as service.ledger.alerts.TicketAlerts).
        (
            "service/ledger/related.py",
            "from service.feed.models import Alert",
            "service.ledger is not allowed to import service.feed",
        ),
        # Inside the foundation: the leaves import nothing of ours, the item store never reaches up to the
        # context built on it, and a domain never uses what only the composition root plugs in.
        (
            "service/clock.py",
            "from service.settings import load_settings",
            "service.clock is not allowed to import service.settings",
        ),
        (
            "service/store/base.py",
            "from service.context import AppContext",
            "service.store is not allowed to import service.context",
        ),
        (
            "service/ledger/service.py",
            "from service.health import router",
            "service.ledger is not allowed to import service.health",
        ),
        (
            "crawlers/plugins/__init__.py",
            "from crawlers.sources import Source",
            "crawlers.plugins is not allowed to import crawlers.sources",
        ),
    ],
)
def test_the_contracts_catch_a_back_edge(tmp_path: Path, module: str, back_edge: str, refusal: str) -> None:
    """A copy of the code with one import against the flow fails the same contracts."""
    for package in ("service", "crawlers", "alerting"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    with open(tmp_path / module, "a", encoding="utf-8") as handle:
        handle.write(f"\n{back_edge}  # noqa\n")
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert refusal in done.stdout


def _floor_plan_layers() -> list[set[str]]:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter", encoding="utf-8")
    lines = config["importlinter:contract:floor-plan"]["layers"].split("\n")
    return [{name.strip() for name in re.split(r"[|:]", line)} for line in lines if line.strip()]


def _top_level_modules() -> set[str]:
    """The code's top-level packages, and every module and package directly inside ``service``."""
    inside = {
        f"service.{path.stem}"
        for path in (ROOT / "service").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }
    return inside | {"crawlers", "alerting"}


def test_every_top_level_module_and_package_has_a_floor_plan_layer() -> None:
    """A module left out of the layers could import anything and be imported by anything: the floor plan
    places every one, so a new top-level module or package must be given its layer, and no layer names a
    module that is gone."""
    layered = [name for layer in _floor_plan_layers() for name in layer]
    assert len(layered) == len(set(layered)), "a module is in two layers"
    modules = _top_level_modules()
    assert {"unplaced": sorted(modules - set(layered)), "gone": sorted(set(layered) - modules)} == {
        "unplaced": [],
        "gone": [],
    }


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
    assert out == "[] ['失效会话']"


def test_no_contract_lets_a_back_edge_through() -> None:
    """Back-edges are removed, not listed: no contract in .importlinter carries ignore_imports."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter", encoding="utf-8")
    allowed = {name: config[name]["ignore_imports"] for name in config.sections() if "ignore_imports" in config[name]}
    assert allowed == {}


def test_settings_check_channels_without_loading_the_notifiers() -> None:
    """Reading settings (channels included) needs no notifier code: the option schema is in the foundation."""
    out = _fresh(
        "import sys\n"
        "from service.settings import NotificationSettings\n"
        "NotificationSettings(channels={'ops': {'type': 'webhook', 'url': 'https://example.org/h', 'secret': 's'}})\n"
        "try:\n"
        "    NotificationSettings(channels={'ops': {'type': 'webhook', 'url': 'ftp://x', 'secret': 's'}})\n"
        "except ValueError as exc:\n"
        "    print('refused', 'must start with http' in str(exc))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alerting'))\n"
    )
    assert out.splitlines() == ["refused True", "[]"]


def test_every_channel_type_has_one_notifier() -> None:
    from alerting.channels import NOTIFIERS
    from service.channel_options import CHANNEL_TYPES

    assert sorted(NOTIFIERS) == sorted(CHANNEL_TYPES)


def test_the_type_checker_reads_every_module_and_no_ignore_is_blanket() -> None:
    """mypy (scripts/test.sh) excludes nothing but migrations; each ``type: ignore`` names its error code."""
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert mypy.get("exclude", []) == ["^service/migrations/"]
    blanket, kept = [], []
    for package in ("service", "crawlers", "alerting"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if re.search(r"#\s*type:\s*ignore", line):
                    where = f"{path.relative_to(ROOT)}:{number}"
                    (kept if re.search(r"#\s*type:\s*ignore\[[a-z-]+(,[a-z-]+)*\]", line) else blanket).append(where)
    assert blanket == []
    # The few left are library typing gaps, each explained next to it: a new one needs the same care.
    assert len(kept) <= 3, kept


# The entry points: they choose what to load for the command or server being started (the yuqing
# command line is the service/cli package, one module per group of commands).
ENTRY_POINTS = {"service/app.py", "crawlers/crawl_process.py"}
ENTRY_PACKAGES = ("service/cli/",)
# The one module that is not an entry point: the store factory imports only the backend the settings name,
# since the Elasticsearch client's import is about a third of a crawl process's start-up (measured with
# python -X importtime) and an SQLite installation would pay it on every crawl.
CHOOSES_A_BACKEND = {"service/store/__init__.py"}
# Libraries most crawl processes never use, imported when first used: jieba when a text is first segmented
# (with the pkg_resources it imports ~0.3 s CPU of every crawl's start), dnspython when a crawl names its own
# resolvers (~0.13 s). BENCHMARKS.md, crawl pipeline.
LOADED_WHEN_FIRST_USED = {"service/items/places.py", "crawlers/middlewares.py"}


def test_imports_are_at_the_top_of_a_module_except_in_the_entry_points() -> None:
    """An import inside a function hides a dependency from readers and from the import contracts."""
    hidden = []
    for package in ("service", "crawlers", "alerting"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            if name in ENTRY_POINTS | CHOOSES_A_BACKEND | LOADED_WHEN_FIRST_USED or name.startswith(ENTRY_PACKAGES):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                    hidden += [
                        f"{name}:{inner.lineno}"
                        for inner in ast.walk(node)
                        if isinstance(inner, ast.Import | ast.ImportFrom)
                    ]
    assert hidden == []


def test_the_ledger_engine_reads_as_named_steps() -> None:
    """Acting on a ticket, opening a matching batch's tickets, merging and finding related tickets stay within
    mccabe complexity 10 (they were 34, 17, 16 and 14): each step has a name, and re-grading is one handler of
    the action table."""
    modules = [
        "service/ledger/actions.py",
        "service/ledger/batch.py",
        "service/ledger/merging.py",
        "service/ledger/related.py",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select=C901", "--config=lint.mccabe.max-complexity=10", *modules],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout
