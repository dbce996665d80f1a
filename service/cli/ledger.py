"""Commands on the response ledger: the SLA check and the ledger export."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli.base import app, fail, settings_of, sla_app


@sla_app.command("check")
def sla_check(
    ctx: typer.Context,
    at: str | None = typer.Option(None, "--at", help="ISO 8601 时间（只报告，不改变任何东西）"),
    apply: bool = typer.Option(False, "--apply", help="真正执行：记录预警/超期、督办并发送通知（不接受未来时间）"),
) -> None:
    """按当前或指定时间报告时限监控会发出的预警/超期；只有 --apply 才真正执行。"""
    from datetime import datetime

    from service import clock
    from service.clock import ensure_aware, to_local

    settings = settings_of(ctx, quiet=True)
    when = clock.now()
    if at is not None:
        try:
            when = ensure_aware(datetime.fromisoformat(at.strip()))
        except ValueError:
            fail(f"--at: {at!r} 不是 ISO 8601 时间（例如 2026-03-02T10:25:00+08:00）")
        # Acting "as of" a future time would spend the real notices before the real deadlines.
        if apply and when > clock.now():
            fail(f"--apply 不能用于未来时间：{to_local(when):%Y-%m-%d %H:%M} 尚未到来；去掉 --apply 只查看报告")
    from service.context import AppContext
    from service.db import DatabaseUnavailable
    from service.ledger.monitoring import check_sla
    from service.upgrade import migrate

    app_ctx = AppContext.create(settings)
    try:
        migrate(app_ctx)
        report = check_sla(app_ctx, when, apply=apply)
    except DatabaseUnavailable as exc:
        fail(str(exc), 1)
    finally:
        app_ctx.close()
    counts = {level: len(report.of_level(level)) for level in ("warning", "breach", "escalation", "recovery")}
    mode = "已执行" if apply else "仅报告，未做任何改动；加 --apply 才执行"
    typer.echo(
        f"时限检查（截至 {to_local(when):%Y-%m-%d %H:%M}，{mode}）：预警 {counts['warning']} 条，"
        f"超期 {counts['breach']} 条，督办 {counts['escalation']} 条，超期后完成 {counts['recovery']} 条"
    )
    for notice in report.notices:
        typer.echo(f"  {notice.subject}  {notice.body}")


@app.command()
def export(
    ctx: typer.Context,
    date_from: str = typer.Option(..., "--from", help="开始日期 YYYY-MM-DD (含)"),
    date_to: str = typer.Option(..., "--to", help="结束日期 YYYY-MM-DD (含)"),
    department: str | None = typer.Option(None, "--department"),
    fmt: str = typer.Option("xlsx", "--format", help="xlsx | csv"),
    output: Path = typer.Option(..., "-o", "--output"),
    per_department: bool | None = typer.Option(
        None, "--per-department/--no-per-department", help="xlsx：每个责任单位另加一个工作表 (默认取 settings.yaml)"
    ),
) -> None:
    """导出回应台账：按发现时间 (北京时间，首尾两天均含) 筛选工单。"""
    from datetime import date

    from service.context import AppContext
    from service.db import DatabaseUnavailable
    from service.exports.ledger_rows import Names
    from service.exports.service import FORMATS, export_ledger, known_department
    from service.exports.writers import ExportTooLarge
    from service.upgrade import migrate

    settings = settings_of(ctx)
    days = {}
    for option, value in (("--from", date_from), ("--to", date_to)):
        try:
            days[option] = date.fromisoformat(value)
        except ValueError:
            fail(f"{option}: 日期格式应为 YYYY-MM-DD，收到 {value!r}")
    if days["--to"] < days["--from"]:
        fail(f"--from {days['--from']} 晚于 --to {days['--to']}")
    if fmt not in FORMATS:
        fail(f"--format: 应为 {' 或 '.join(FORMATS)}，收到 {fmt!r}")
    known = Names.load(settings.config_dir).departments
    app_ctx = AppContext.create(settings)
    try:
        migrate(app_ctx)
        if department and known and not known_department(app_ctx.db, known, department):
            fail(
                f"--department: departments.yaml 中没有责任单位 {department!r}，也没有它的工单"
                f"（可选：{', '.join(sorted(known))}）"
            )
        summary = export_ledger(
            app_ctx.db,
            settings,
            output,
            date_from=days["--from"],
            date_to=days["--to"],
            department=department,
            fmt=fmt,
            per_department_sheets=settings.exports.per_department_sheets if per_department is None else per_department,
        )
    except DatabaseUnavailable as exc:
        fail(str(exc), 1)
    except ExportTooLarge as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{output}: 无法写入 ({exc.strerror or exc})", 1)
    finally:
        app_ctx.close()
    typer.echo(f"已导出 {summary.rows} 件工单（超期 {summary.total.overdue} 件）：{output}")
