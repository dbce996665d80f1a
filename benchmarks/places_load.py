"""The place-name dictionary at start-up with a city's rules: built from departments.yaml vs read from the data dir.

Usage: ``python benchmarks/places_load.py [--departments 200] [--rules 10000] [--rounds 3]``

The configuration of issue 17 (200 departments, 10,000 rules, a 2 MB departments.yaml, the generator of
``benchmarks/burst.py``). Each side is a fresh Python process that loads the gazetteer the way `yuqing run`
does at start (``service.items.places``: jieba's dictionary plus every region of the rules and places.txt),
timed around ``prepare()`` only (imports excluded): ``built``, no kept copy (what every start did before the
data dir kept it: departments.yaml parsed again, jieba's dictionary loaded, each region added); ``kept``, a
restart that finds the copy a previous start left in the data dir. Sides interleaved, the first alternating;
medians of wall and CPU seconds, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.burst import write_departments  # noqa: E402
from benchmarks.matching import place_pool  # noqa: E402

ONE_LOAD = """
import json, sys, time
from pathlib import Path
from service.items.places import Gazetteer
config, keep = Path(sys.argv[1]), (Path(sys.argv[2]) if sys.argv[2] else None)
gazetteer = Gazetteer(config_dir=config, keep_dir=keep)
wall, cpu = time.perf_counter(), time.process_time()
gazetteer.prepare()
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "from": gazetteer.loaded_from, "words": len(gazetteer.words)}))
"""


def load(config: Path, keep: Path | None) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", ONE_LOAD, str(config), str(keep) if keep else ""],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    """Print each round and the medians as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--departments", type=int, default=200)
    parser.add_argument("--rules", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(17)
    with tempfile.TemporaryDirectory() as tmp:
        config, keep = Path(tmp) / "config", Path(tmp) / "data" / "parsed-config"
        config.mkdir()
        write_departments(config / "departments.yaml", args.departments, args.rules, place_pool(rng, 100000), rng)
        first = load(config, keep)  # a new installation: builds and keeps the dictionary
        assert first["from"] == "built", first
        sides = {"built": lambda: load(config, None), "kept": lambda: load(config, keep)}
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
        for round_no in range(args.rounds):
            order = list(sides) if round_no % 2 == 0 else list(sides)[::-1]
            for name in order:
                result = sides[name]()
                assert result["from"] == name, result
                runs[name].append(result)
                print(
                    f"round {round_no + 1} {name}: {result['wall']:.2f} s, {result['cpu']:.2f} s CPU", file=sys.stderr
                )
    medians = {
        name: {key: round(statistics.median(float(r[key]) for r in rows), 3) for key in ("wall", "cpu")}
        for name, rows in runs.items()
    }
    print(
        json.dumps(
            {
                "rules": args.rules,
                "words": runs["kept"][0]["words"],
                "first_start_cpu": round(float(first["cpu"]), 3),
                **medians,
                "cpu_ratio_kept_over_built": round(medians["kept"]["cpu"] / medians["built"]["cpu"], 2),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
