"""Start-up check: every declared dependency is installed, else one Chinese line and exit 2, not a traceback.

After upgrading the code without reinstalling (``git pull`` and starting ``yuqing`` again), a dependency
added meanwhile is missing and the first import of it would end the process with a traceback, or worse,
fail later inside a scheduled job. This module uses the standard library only, so it runs before any
third-party import: ``service.cli`` imports it first.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from importlib.util import find_spec
from pathlib import Path

FIX = "pip install -e ."
# Our own top-level packages: a missing one of these is a broken checkout, not a dependency to install.
OWN_PACKAGES = frozenset({"service", "crawlers", "alerting"})
# Import names that differ from the distribution's name (the rest import as the normalised name; a
# dependency neither listed here nor importable by its name is looked up in its installed metadata).
IMPORT_NAMES = {
    "pyyaml": "yaml",
    "python-multipart": "multipart",
    "pyahocorasick": "ahocorasick",
    "chinesecalendar": "chinese_calendar",
    "argon2-cffi": "argon2",
    "dnspython": "dns",
}
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def declared() -> list[str]:
    """Names of the distributions the product needs to run (not the ``dev`` extras).

    From pyproject.toml when running from a source checkout: after an upgrade that file is new while the
    installed metadata still lists the old dependencies. Otherwise from the installed package's metadata.
    """
    requirements: list[str] = []
    if _PYPROJECT.is_file():
        with _PYPROJECT.open("rb") as fh:
            project = tomllib.load(fh).get("project", {})
        if project.get("name") == "yuqing":
            requirements = list(project.get("dependencies", []))
    if not requirements:
        try:
            requirements = [r for r in importlib.metadata.requires("yuqing") or [] if "extra ==" not in r]
        except importlib.metadata.PackageNotFoundError:
            return []
    return [match.group(1) for r in requirements if (match := _NAME.match(r))]


def _importable(name: str) -> bool:
    """True when the distribution ``name`` can be imported (found without importing it)."""
    module = IMPORT_NAMES.get(name.lower(), name.lower().replace("-", "_").replace(".", "_"))
    if find_spec(module) is not None:
        return True
    if name.lower() in IMPORT_NAMES:
        return False
    # An import name we do not know: ask the installed metadata which top-level modules it provides.
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    tops = (dist.read_text("top_level.txt") or "").split()
    if not tops:
        tops = sorted({f.parts[0].removesuffix(".py") for f in dist.files or () if f.parts})
    # Private extension modules (``_chompjs``) and stray test folders some wheels ship are not the package.
    tops = [t for t in tops if t.isidentifier() and not t.startswith("_") and t not in ("test", "tests", "docs")]
    return bool(tops) and all(find_spec(top) is not None for top in tops)


def missing() -> list[str]:
    """The declared dependencies that cannot be imported, in declaration order."""
    return [name for name in declared() if not _importable(name)]


def message(names: list[str]) -> str:
    """The one line shown for missing dependencies."""
    return f"yuqing: 缺少依赖包 {'、'.join(names)}（可能是升级后没有重新安装），请在项目目录运行 {FIX} 后再启动"


def require_dependencies() -> None:
    """Exit 2 with one Chinese line when a declared dependency is missing."""
    names = missing()
    if names:
        print(message(names), file=sys.stderr)
        sys.exit(2)


def missing_module(exc: ModuleNotFoundError) -> str | None:
    """The third-party module an import failed on (None for our own modules: that is a broken checkout)."""
    top = (exc.name or "").split(".")[0]
    if not top or top in OWN_PACKAGES:
        return None
    return top
