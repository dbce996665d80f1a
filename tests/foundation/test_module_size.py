"""No module of the product grows past 500 lines: a bigger one mixes responsibilities (README 目录)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 500


def modules_over(limit: int, root: Path = ROOT) -> dict[str, int]:
    """Python modules of service/, crawlers/ and alerting/ longer than ``limit`` lines (migrations excluded)."""
    over = {}
    for package in ("service", "crawlers", "alerting"):
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.relative_to(root).parts:
                continue
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > limit:
                over[str(path.relative_to(root))] = lines
    return over


def test_no_module_is_over_500_lines() -> None:
    assert modules_over(LIMIT) == {}, "split these by responsibility (see README 目录)"


def test_the_check_sees_a_long_module(tmp_path: Path) -> None:
    (tmp_path / "service" / "migrations").mkdir(parents=True)
    (tmp_path / "crawlers").mkdir()
    (tmp_path / "service" / "long.py").write_text("x = 1\n" * (LIMIT + 1), encoding="utf-8")
    (tmp_path / "service" / "migrations" / "long.py").write_text("x = 1\n" * (LIMIT + 1), encoding="utf-8")
    (tmp_path / "crawlers" / "short.py").write_text("x = 1\n" * LIMIT, encoding="utf-8")
    assert modules_over(LIMIT, tmp_path) == {"service/long.py": LIMIT + 1}
