"""The `yuqing` command line's frame: the command groups, the settings of an invocation, one-line failures.

Exit codes: 0 ok, 1 when some work failed, 2 on bad input. The commands live beside this module, one
module per domain (server, pipeline, ledger, users); importing ``service.cli`` registers them all on ``app``.
The product is imported inside the commands: ``yuqing --help`` stays fast and a command loads only what
it uses (the command line is an entry point, where such imports belong).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer

from service.config_files import ConfigError
from service.settings import Settings, load_settings

app = typer.Typer(
    help="yuqing 政务舆情监测与回应台账",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
sources_app = typer.Typer(help="来源 (sources)", no_args_is_help=True)
rules_app = typer.Typer(help="关键词规则 (rules)", no_args_is_help=True)
sla_app = typer.Typer(help="时限 (SLA)", no_args_is_help=True)
user_app = typer.Typer(help="用户 (users)", no_args_is_help=True)
app.add_typer(sources_app, name="sources")
app.add_typer(rules_app, name="rules")
app.add_typer(sla_app, name="sla")
app.add_typer(user_app, name="user")
audit_app = typer.Typer(help="审计日志 (audit log)", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, then exit."""
    typer.echo(f"yuqing: {message}", err=True)
    raise typer.Exit(code)


def not_available(command: str) -> NoReturn:
    fail(f"'{command}' 尚未提供 (not available yet)")


def settings_of(ctx: typer.Context, quiet: bool = False) -> Settings:
    """Settings for this invocation, logging set up; exit 2 on an invalid config."""
    cached = ctx.obj.get("settings") if ctx.obj else None
    if cached is not None:
        return cached
    from service.logs import setup_logging

    try:
        settings = load_settings((ctx.obj or {}).get("config_dir"))
    except ConfigError as exc:
        fail(str(exc))
    verbose = bool((ctx.obj or {}).get("verbose"))
    setup_logging(
        "WARNING" if quiet and not verbose else ("DEBUG" if verbose else settings.logging.level),
        settings.data_path("logs"),
        settings.logging.file_level,
        settings.logging.rotation,
        settings.logging.retention,
        library_info=verbose,
    )
    ctx.obj["settings"] = settings
    return settings


@app.callback()
def main_callback(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", help="配置目录 (默认：$YUQING_CONFIG_DIR 或 ./config)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="显示详细日志 (含数据库迁移、调度器等库的 INFO 日志)"),
) -> None:
    ctx.obj = {"config_dir": config, "verbose": verbose}


def app_context(ctx: typer.Context) -> Any:
    """Settings, database migrated, store initialised; exit 2 when a backend cannot be reached."""
    from service import context
    from service.app import prepare
    from service.context import AppContext

    app_ctx = AppContext.create(settings_of(ctx))
    problems = prepare(app_ctx)
    if problems:
        app_ctx.close()
        fail("; ".join(problems.values()))
    context.set_current(app_ctx)
    return app_ctx
