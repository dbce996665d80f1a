"""Start-up with a city's rules: departments.yaml imported into the rules table and compiled into the matcher.

Usage: ``python benchmarks/startup.py [--departments 200] [--rules 10000] [--rounds 3]``

The configuration of issue 17 (200 departments sharing 10,000 structured rules, a 2 MB departments.yaml, the
generator of ``benchmarks/burst.py``), SQLite ledger. Sides, interleaved in rotated order each round:
``first``: the rule book of a new installation (empty rules table, nothing kept in the data dir);
``restart``: a new process on the same data dir (rules in the table, the parsed file kept; the in-process
caches emptied); ``parse``: the baseline, libyaml parsing the same file and nothing else. Medians of wall
and CPU time; the folding tables (built once per process at start-up) are built before timing.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.burst import write_departments
from benchmarks.matching import place_pool
from service import config_files
from service.context import AppContext
from service.folding import fold
from service.rules.rulebook import RuleBook
from service.settings import Settings


def start(config: Path, data: Path) -> tuple[float, float, int]:
    """One process's rule book on ``data``: (wall s, CPU s, rules compiled)."""
    config_files._cache.clear()  # a new process
    ctx = AppContext.create(Settings(config_dir=config, data_dir=data))
    ctx.db.migrate()
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        book = RuleBook(ctx)
        book.refresh()
        return time.perf_counter() - t0, time.process_time() - c0, len(book.current().rule_ids)
    finally:
        ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--departments", type=int, default=200)
    parser.add_argument("--rules", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(17)
    places = place_pool(rng, 100000)
    fold("预热")  # the folding tables: built at start-up by `yuqing run` before any rule
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = root / "config"
        config.mkdir()
        path = config / "departments.yaml"
        write_departments(path, args.departments, args.rules, places, rng)
        print(f"departments.yaml: {args.departments} departments, {args.rules} rules, {path.stat().st_size:,} bytes")
        kept = root / "kept"
        start(config, kept)  # the data dir every restart reuses
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        def first() -> tuple[float, float, int]:
            fresh = root / "fresh"
            shutil.rmtree(fresh, ignore_errors=True)
            return start(config, fresh)

        def restart() -> tuple[float, float, int]:
            return start(config, kept)

        def parse() -> tuple[float, float, int]:
            t0, c0 = time.perf_counter(), time.process_time()
            yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
            return time.perf_counter() - t0, time.process_time() - c0, 0

        sides = {"first": first, "restart": restart, "parse": parse}
        walls: dict[str, list[float]] = {name: [] for name in sides}
        cpus: dict[str, list[float]] = {name: [] for name in sides}
        names = list(sides)
        for round_no in range(args.rounds):
            turn = round_no % len(names)
            for name in names[turn:] + names[:turn]:
                wall, cpu, compiled = sides[name]()
                walls[name].append(wall)
                cpus[name].append(cpu)
                if name != "parse" and compiled != args.rules:
                    raise SystemExit(f"{name}: {compiled} rules compiled, expected {args.rules}")
            print(
                f"round {round_no + 1}: "
                + ", ".join(f"{n} {walls[n][-1]:.2f} s ({cpus[n][-1]:.2f} s CPU)" for n in names)
            )
        med = {n: (statistics.median(walls[n]), statistics.median(cpus[n])) for n in names}
        for name in ("first", "restart"):
            print(
                f"{name}: median {med[name][0]:.2f} s wall, {med[name][1]:.2f} s CPU; "
                f"{med[name][0] / med['parse'][0]:.2f}x / {med[name][1] / med['parse'][1]:.2f}x the bare YAML parse "
                f"({med['parse'][0]:.2f} s wall, {med['parse'][1]:.2f} s CPU)"
            )


if __name__ == "__main__":
    main()
