"""The API ledger export through the real route: the server process's memory growth while it answers.

Usage: ``nice -n 10 python benchmarks/export_api.py --ledger /tmp/yq-export-scale/ledger-100000.sqlite3
[--formats xlsx,csv] [--rounds 2]`` (or ``--url postgresql+psycopg://...`` for a ledger on PostgreSQL)

A copy of the ledger (``benchmarks/ledger_gen.py``) is served by ``yuqing serve`` on loopback (its own data
dir, an officer created in the copy). After a warm-up export of one day in each format, each round asks
``GET /api/v1/ledger/export`` for the year 2026 (every ticket of the ledger; the route's limit is 366 days)
and drains the answer to a file, while a thread reads the server's VmRSS from /proc every 50 ms. Printed
per request: rows, bytes, wall, the server's CPU seconds, its RSS before and at the peak, and the growth
(goal: under 50 MB at 100k tickets).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from tests.servers.product import running_product

USER = "bench_officer"
PAGE = 4096


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime in clock ticks (100 Hz)


class Sampler(threading.Thread):
    """The highest RSS of ``pid`` seen while running."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, _rss_mb(self.pid))
            time.sleep(0.05)


def _export(client: httpx.Client, base: str, headers: dict, fmt: str, to: str, out: Path) -> tuple[int, float]:
    params = {"from": "2026-01-01", "to": to, "format": fmt}
    started = time.perf_counter()
    with client.stream("GET", f"{base}/api/v1/ledger/export", params=params, headers=headers) as response:
        response.raise_for_status()
        with out.open("wb") as fh:
            for chunk in response.iter_bytes(PAGE * 16):
                fh.write(chunk)
    return out.stat().st_size, time.perf_counter() - started


def _rows(path: Path, fmt: str) -> int | str:
    if fmt == "csv":
        with path.open(encoding="utf-8-sig") as fh:
            return sum(1 for _ in fh) - 1
    return "-"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ledger", type=Path, help="a SQLite ledger (served from a copy)")
    parser.add_argument("--url", help="or a ledger database URL (PostgreSQL), served as it is")
    parser.add_argument("--formats", default="xlsx,csv")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="yq-export-api-") as tmp:
        work = Path(tmp)
        url = args.url
        if not url:
            db_file = work / "ledger.sqlite3"
            shutil.copyfile(args.ledger, db_file)
            url = f"sqlite:///{db_file}"
        users = {USER: ("officer", None)}
        with running_product(work, url, users=users, start_timeout=600) as product:
            pid = product.proc.pid
            client = httpx.Client(timeout=3600)
            headers = {"Authorization": f"Bearer {product.token(USER, client=client)}"}
            print(f"server pid {pid}, RSS after sign-in {_rss_mb(pid):.1f} MB", flush=True)
            for fmt in args.formats.split(","):
                _export(client, product.base, headers, fmt, "2026-01-01", work / f"warm.{fmt}")
            print(f"RSS after the warm-up exports {_rss_mb(pid):.1f} MB", flush=True)
            for round_no in range(args.rounds):
                for fmt in args.formats.split(","):
                    before, cpu = _rss_mb(pid), _cpu_s(pid)
                    sampler = Sampler(pid)
                    sampler.start()
                    out = work / f"year.{fmt}"
                    size, wall = _export(client, product.base, headers, fmt, "2026-12-31", out)
                    sampler.stop.set()
                    sampler.join()
                    peak = max(sampler.peak, _rss_mb(pid))
                    print(
                        f"round {round_no + 1} {fmt:4} rows {_rows(out, fmt)!s:>7}  {size / 2**20:6.1f} MB  wall "
                        f"{wall:6.1f} s  server CPU {_cpu_s(pid) - cpu:6.1f} s  RSS {before:6.1f} -> peak "
                        f"{peak:6.1f} MB  growth {peak - before:5.1f} MB",
                        flush=True,
                    )
            client.close()


if __name__ == "__main__":
    main()
