"""Commands that run the data flow by hand: crawl, sources check, match, rules check."""

from __future__ import annotations

import typer

from service.cli.base import app, app_context, fail, rules_app, settings_of, sources_app
from service.config_files import ConfigError

# Exit code of a command ended by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130


@app.command()
def crawl(ctx: typer.Context, source_ids: list[str] = typer.Argument(None, help="来源 ID，省略则全部")) -> None:
    """立即抓取来源，输出每个来源的 新增/更新/跳过/错误 数。"""
    from crawlers.runner import CrawlError, CrawlStopped, crawl_sources

    settings = settings_of(ctx)
    try:
        results = crawl_sources(settings, source_ids or [])
    except ConfigError as exc:
        fail(str(exc))
    except CrawlStopped as exc:  # Ctrl-C, and the crawl did not end within its grace
        fail(str(exc), INTERRUPTED)
    except CrawlError as exc:
        fail(f"抓取进程失败 (crawl process failed): {exc}", 1)
    if not results:
        typer.echo("没有启用的来源 (no enabled sources)")
        return
    failed = False
    for source_id, counts in results.items():
        line = (
            f"{source_id}: new={counts.get('new', 0)} updated={counts.get('updated', 0)} "
            f"skipped={counts.get('skipped', 0)} errors={counts.get('errors', 0)}"
        )
        if counts.get("spooled"):
            line += f" spooled={counts['spooled']}"
        if not counts.get("healthy", True):
            line += f"  来源异常: {counts.get('failure')}"
        typer.echo(line)
        for sample in (counts.get("error_samples") or [])[:5]:
            typer.echo(f"  ! {sample.get('url', '')}: {sample.get('reason', '')}")
        failed = failed or bool(counts.get("errors")) or not counts.get("healthy", True)
    if any(isinstance(c, dict) and c.get("stopped") for c in results.values()):
        fail("已中断：本次抓取未完成，以上是已写入存储的条目，其余下次抓取时补齐", INTERRUPTED)
    if failed:
        raise typer.Exit(1)


@sources_app.command("check")
def sources_check(ctx: typer.Context, source_id: str) -> None:
    """抓取一个列表页和一个详情页，输出提取的字段，不保存。"""
    import json

    from crawlers.runner import CrawlError, CrawlStopped, check_source

    settings = settings_of(ctx, quiet=True)
    try:
        result = check_source(settings, source_id)
    except ConfigError as exc:
        fail(str(exc))
    except CrawlStopped as exc:  # Ctrl-C, and the fetch did not end within its grace
        fail(str(exc), INTERRUPTED)
    except CrawlError as exc:
        fail(f"抓取进程失败 (crawl process failed): {exc}", 1)
    selectors = result.pop("selectors", [])
    if selectors:
        typer.echo("选择器检查（每个选择器匹配到的节点数和第一个值）：")
        for row in selectors:
            nodes = "模板" if row.get("nodes") is None else f"{row['nodes']} 个节点"
            value = row.get("error") or row.get("first") or "（空）"
            typer.echo(f"  [{row['where']}] {row['key']}: {row['selector']!r} -> {nodes}；第一个值：{value}")
        typer.echo("")
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    if result.get("errors") or not result.get("items"):
        raise typer.Exit(1)


@app.command()
def match(ctx: typer.Context) -> None:
    """立即匹配所有未匹配的条目，输出命中和新建工单数。"""
    from service.matching.engine import engine_for

    app_ctx = app_context(ctx)
    try:
        report = engine_for(app_ctx).run()
    finally:
        app_ctx.close()
    typer.echo(
        f"items={report.items} hits={report.hits} alerts={report.alerts} "
        f"tickets_created={report.tickets_created} tickets_attached={report.tickets_attached}"
    )


@rules_app.command("check")
def rules_check(ctx: typer.Context) -> None:
    """校验全部规则，列出错误 (规则 ID 与位置)。"""
    from service.rules.config import department_errors

    settings = settings_of(ctx, quiet=True)
    errors = department_errors(settings.config_dir)
    if not errors:
        from service.matching.engine import engine_for

        app_ctx = app_context(ctx)
        try:
            book = engine_for(app_ctx).rulebook
            book.refresh()
            errors = [f"rule {rule_id}: {reason}" for rule_id, reason in sorted(book.errors.items())]
            count = len(book.current().rule_ids)
        finally:
            app_ctx.close()
    for line in errors:
        typer.echo(line)
    if errors:
        fail(f"{len(errors)} 条规则有误 (invalid rules)")
    typer.echo(f"全部 {count} 条规则有效 (all rules valid)")
