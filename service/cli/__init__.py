"""The `yuqing` command line (exit 0 ok, 1 when some work failed, 2 on bad input).

``app`` and its command groups are in :mod:`service.cli.base`; the commands are in one module per domain,
imported here so that each registers on ``app``. ``main`` is the console-script entry point.
"""

from __future__ import annotations

import sys

from service.preflight import missing_module, require_dependencies

# Before the third-party imports below: a dependency missing after an upgrade without reinstalling is one
# Chinese line naming it and the fix (exit 2), not a traceback.
require_dependencies()

import typer  # noqa: E402
from loguru import logger  # noqa: E402

# isort: off
# The order of registration is the order of `yuqing --help`: running the product, the data flow by hand,
# the ledger, the demo, accounts and the audit log.
from service.cli import server, pipeline, ledger, demo, users  # noqa: E402

# isort: on
from service.cli.base import app  # noqa: E402
from service.config_files import ConfigError  # noqa: E402

__all__ = ["app", "demo", "ledger", "main", "pipeline", "server", "users"]


def main() -> None:
    """Console-script entry point: usage errors as one Chinese line on stderr, exit 2."""
    from service import cli_zh
    from service.cli_zh import click

    cli_zh.install()
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="yuqing", standalone_mode=False)
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(0)  # the help was printed already
        typer.echo(f"yuqing: {cli_zh.usage_error_text(exc)}", err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("yuqing: 已取消", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        typer.echo(f"yuqing: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        typer.echo(f"yuqing: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        logger.info("已中断")
        sys.exit(130)
    except ModuleNotFoundError as exc:
        # A dependency imported late (by one command only) and missing: the same line as at start-up.
        if (name := missing_module(exc)) is None:
            raise
        from service.preflight import message

        typer.echo(message([name]), err=True)
        sys.exit(2)
    if isinstance(code, int) and code:
        sys.exit(code)
