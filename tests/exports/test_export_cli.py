"""`yuqing export` through the real console script."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl

from service.db import Database
from tests.exports.builders import PHONE, T0, make_ticket
from tests.foundation.conftest import run_cli

DEPARTMENTS = """departments:
  - {id: env, name: 市生态环境局, rules: []}
  - {id: water, name: 市水务局, rules: []}
"""


def test_export_writes_the_range_and_refuses_bad_input(tmp_path: Path, database_url: str) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "departments.yaml").write_text(
        DEPARTMENTS,
        encoding="utf-8",
    )
    env = {"YUQING_DATA_DIR": str(tmp_path / "data"), "YUQING_DATABASE__URL": database_url}
    db = Database(database_url)
    db.migrate()
    with db.session() as s:
        make_ticket(s, 1, T0, result=f"联系人{PHONE}")
        make_ticket(s, 2, T0, department="water")
        make_ticket(s, 3, T0, department="old")  # a department removed from departments.yaml since
    db.dispose()

    def export(*args: str):
        return run_cli("--config", str(config), "export", *args, env=env)

    out = tmp_path / "out" / "ledger.xlsx"
    done = export("--from", "2026-03-02", "--to", "2026-03-02", "--format", "xlsx", "-o", str(out), "--per-department")
    assert done.returncode == 0, done.stderr
    assert "已导出 3 件工单" in done.stdout
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["汇总", "台账", "市生态环境局", "市水务局", "old"]

    csv_out = tmp_path / "water.csv"
    done = export(
        "--from", "2026-03-02", "--to", "2026-03-08", "--department", "water", "--format", "csv", "-o", str(csv_out)
    )
    assert done.returncode == 0, done.stderr
    with csv_out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert [r[6] for r in rows[1:]] == ["市水务局"]
    # The removed department keeps its ledger; a name neither configured nor on a ticket is a typo.
    done = export("--from", "2026-03-02", "--to", "2026-03-08", "--department", "old", "-o", str(tmp_path / "o.xlsx"))
    assert done.returncode == 0, done.stderr
    assert "已导出 1 件工单" in done.stdout
    typo = export("--from", "2026-03-02", "--to", "2026-03-08", "--department", "wtaer", "-o", str(tmp_path / "t.xlsx"))
    assert typo.returncode == 2
    assert "departments.yaml 中没有责任单位 'wtaer'，也没有它的工单" in typo.stderr
    assert not (tmp_path / "t.xlsx").exists()


def test_export_refuses_bad_input_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "departments.yaml").write_text(DEPARTMENTS, encoding="utf-8")
    env = {"YUQING_DATA_DIR": str(tmp_path / "data")}
    for args, reason in [
        (("--from", "2026-3-2", "--to", "2026-03-08"), "--from: 日期格式应为 YYYY-MM-DD"),
        (("--from", "2026-03-08", "--to", "2026-03-02"), "晚于"),
        (("--from", "2026-03-02", "--to", "2026-03-08", "--format", "pdf"), "--format"),
        (("--from", "2026-03-02", "--to", "2026-03-08", "--department", "nope"), "--department"),
    ]:
        bad = run_cli("--config", str(config), "export", *args, "-o", str(tmp_path / "bad.xlsx"), env=env)
        assert bad.returncode == 2, (args, bad.stderr)
        assert reason in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad.xlsx").exists()
