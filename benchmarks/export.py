"""Ledger export benchmark: xlsx (service.exports.writers) against a plain csv.writer dump of the same rows.

Every measurement runs in a child process of its own, so peak memory (ru_maxrss) of one run never mixes
with another; rows are synthetic, generated on the fly (no list of rows is held by the benchmark either).

    python benchmarks/export.py              # 10k, 50k, 100k rows
    python benchmarks/export.py --rows 100000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.exports.ledger_rows import LedgerRow

PLACES = ["青川县", "河西区", "城关镇", "高新区", "滨江街道", "东城区", "开发区", "南湖片区"]
SUBJECTS = ["化工厂", "排污口", "建筑工地", "小区物业", "农贸市场", "学校周边", "公交站", "医院门口"]
EVENTS = [
    "夜间施工噪音扰民",
    "异味刺鼻影响居民生活",
    "污水直排河道",
    "占道经营交通拥堵",
    "垃圾清运不及时",
    "路灯损坏多日未修",
]
RESULTS = [
    "已责成相关企业限期整改，执法人员现场核查",
    "已协调街道和物业处理，居民表示满意",
    "经核查情况属实，已立案调查",
    "",
]
DEPARTMENTS = [
    ("env", "市生态环境局"),
    ("water", "市水务局"),
    ("housing", "市住房和城乡建设局"),
    ("traffic", "市交通运输局"),
    ("market", "市市场监督管理局"),
    ("urban", "市城市管理局"),
]
SOURCES = [("hotline", "示例市12345热线"), ("mailbox", "市长信箱"), ("media", "示例日报")]
STATUSES = ["new", "acknowledged", "handled", "responded", "closed"]
SEVERITIES = ["minor", "normal", "major", "critical"]


def synthetic_rows(n: int, seed: int = 7) -> Iterator[LedgerRow]:
    """``n`` realistic ledger rows; about one in ten carries a phone number to mask."""
    rnd = random.Random(seed)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    for i in range(1, n + 1):
        found = start + timedelta(seconds=rnd.randrange(7 * 86400))
        dept, dept_name = rnd.choice(DEPARTMENTS)
        channel, source = rnd.choice(SOURCES)
        status = rnd.choice(STATUSES)
        acked = found + timedelta(minutes=rnd.randrange(600)) if status != "new" else None
        handled = acked + timedelta(hours=rnd.randrange(72)) if acked and status in ("handled", "closed") else None
        responded = acked + timedelta(hours=rnd.randrange(120)) if acked and status in ("responded", "closed") else None
        title = f"{rnd.choice(PLACES)}{rnd.choice(SUBJECTS)}{rnd.choice(EVENTS)}"
        if i % 10 == 0:
            title += f"，市民联系电话138{rnd.randrange(10**8):08d}"
        yield LedgerRow(
            seq=i,
            ticket_id=i,
            title=title,
            channel=channel,
            source=source,
            published_at=found - timedelta(minutes=rnd.randrange(240)),
            discovered_at=found,
            department=dept,
            department_name=dept_name,
            severity=rnd.choice(SEVERITIES),
            acknowledged_at=acked,
            result=rnd.choice(RESULTS) if handled else None,
            handled_at=handled,
            responded_at=responded,
            response_url=f"https://www.example.gov.cn/hf/{i}.html" if responded else None,
            status=status,
            acknowledge_overdue=rnd.random() < 0.1,
            handle_overdue=rnd.random() < 0.1,
            respond_overdue=rnd.random() < 0.15,
            escalated=rnd.random() < 0.05,
            note="延期申请待审批" if rnd.random() < 0.03 else "",
        )


def plain_csv(rows: Iterator[LedgerRow], path: Path) -> None:
    """The baseline: every field of every row through csv.writer, no formatting, masking or summary."""
    import csv

    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        for r in rows:
            writer.writerow(
                (
                    r.seq,
                    r.title,
                    r.channel,
                    r.source,
                    r.published_at,
                    r.discovered_at,
                    r.department_name,
                    r.severity,
                    r.acknowledged_at,
                    r.result,
                    r.handled_at,
                    r.responded_at,
                    r.response_url,
                    r.status,
                    r.acknowledge_overdue,
                    r.escalated,
                    r.note,
                )
            )


def child(kind: str, n: int, out_dir: Path) -> dict:
    """One measurement, in this (child) process."""
    from service.exports.writers import write_csv, write_xlsx

    path = out_dir / f"{kind}-{n}.{'xlsx' if kind.startswith('xlsx') else 'csv'}"
    rows = synthetic_rows(n)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu = time.perf_counter(), time.process_time()
    if kind == "xlsx":
        write_xlsx(rows, path)
    elif kind == "xlsx+departments":
        write_xlsx(rows, path, per_department_sheets=True)
    elif kind == "csv":
        write_csv(rows, path)
    elif kind == "plain-csv":
        plain_csv(rows, path)
    else:
        raise SystemExit(f"unknown kind {kind}")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "kind": kind,
        "rows": n,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(peak / 1024, 1),
        "growth_mb": round((peak - baseline) / 1024, 1),
        "file_mb": round(path.stat().st_size / 2**20, 1),
    }


def measure(kind: str, n: int, out_dir: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--rows", str(n), "--out", str(out_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="row counts (default 10000, 50000, 100000)")
    parser.add_argument("--child")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.rows[0], Path(args.out))))
        return
    counts = args.rows or [10_000, 50_000, 100_000]
    kinds = ["plain-csv", "csv", "xlsx", "xlsx+departments"]
    print(f"python {sys.version.split()[0]}; peak = ru_maxrss of a fresh child process per run")
    heads = (
        ("rows", 8),
        ("wall s", 9),
        ("cpu s", 8),
        ("peak MB", 9),
        ("growth MB", 11),
        ("file MB", 9),
        ("cpu/plain", 11),
    )
    print(f"{'kind':<18}" + "".join(f"{h:>{w}}" for h, w in heads))
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            plain_cpu = None
            for kind in kinds:
                r = measure(kind, n, Path(tmp))
                if kind == "plain-csv":
                    plain_cpu = r["cpu_s"]
                ratio = f"{r['cpu_s'] / plain_cpu:.1f}x" if plain_cpu else "-"
                print(
                    f"{r['kind']:<18}{r['rows']:>8}{r['wall_s']:>9}{r['cpu_s']:>8}{r['peak_rss_mb']:>9}"
                    f"{r['growth_mb']:>11}{r['file_mb']:>9}{ratio:>11}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
