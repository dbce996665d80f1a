"""The command line in Chinese: Click's and Typer's own words (help headings, usage errors) translated.

Click and Typer call gettext for their texts; no Chinese catalogue ships with them, so the words a person
reads on ``--help`` and on a usage error are mapped here. Usage errors are rewritten as one line
(``yuqing: 缺少选项 '-o'``) by :func:`usage_error_text`.
"""

from __future__ import annotations

import gettext
import importlib
from typing import Any

import typer.core
import typer.rich_utils

# Typer 0.2x carries its own copy of Click (typer._click); older ones use the click package. The ignores are
# narrow: mypy sees both imports and only one of them exists in a given install (see [tool.mypy] overrides).
try:
    import typer._click.exceptions as click  # type: ignore[import-not-found,no-redef]

    CLICK = "typer._click"
except ImportError:  # pragma: no cover - depends on the installed Typer
    import click  # type: ignore[no-redef]

    CLICK = "click"

WORDS = {
    "Usage:": "用法：",
    "Show this message and exit.": "显示此帮助并退出。",
    "Options": "选项",
    "Arguments": "参数",
    "Commands": "命令",
    "Error": "错误",
    "Aborted!": "已取消。",
    "Aborted.": "已取消。",
    "required": "必填",
    "[required]": "[必填]",
    "default: {default}": "默认：{default}",
    "[default: {}]": "[默认：{}]",
    "env var: {var}": "环境变量：{var}",
    "[env var: {}]": "[环境变量：{}]",
    "(deprecated) ": "（已弃用）",
    "Try [blue]'{command_path} {help_option}'[/] for help.": "用 [blue]'{command_path} {help_option}'[/] 查看用法。",
    "Try {command} for help.": "用 {command} 查看用法。",
}


# The reasons Click gives for a value it cannot convert, as the person reads them.
BAD_VALUE_REASONS = (
    ("valid integer", "不是整数"),
    ("valid number", "不是数字"),
    ("valid boolean", "不是 true/false"),
    ("is not a valid float", "不是数字"),
    ("is not a valid boolean", "不是 true/false"),
    ("is not one of", "不在可选值中"),
    ("is not a valid", "格式不对"),
    ("does not exist", "不存在"),
)


def _translate(message: str) -> str:
    return WORDS.get(message, gettext.gettext(message))


def install() -> None:
    """Put the Chinese words into Click and Typer (their modules bound gettext's ``_`` at import)."""
    # Modules of either Click, whose gettext alias ``_`` is replaced: typed as what they are at run time.
    modules: list[Any] = [typer.core, typer.rich_utils]
    for name in ("core", "decorators", "exceptions", "formatting", "parser", "types"):
        try:
            modules.append(importlib.import_module(f"{CLICK}.{name}"))
        except ImportError:
            continue
    for module in modules:
        if hasattr(module, "_"):
            module._ = _translate
    core = importlib.import_module(f"{CLICK}.core")
    original = core.Command.get_help_option
    if not getattr(original, "_zh", False):

        def get_help_option(self: Any, ctx: Any) -> Any:
            option = original(self, ctx)
            if option is not None and option.help in WORDS:
                option.help = WORDS[option.help]
            return option

        get_help_option.__dict__["_zh"] = True  # marks the patch so a second install() keeps the original
        core.Command.get_help_option = get_help_option
    # The bundled Click writes its usage prefix as a literal, not through gettext.
    formatting = importlib.import_module(f"{CLICK}.formatting")
    write_usage = formatting.HelpFormatter.write_usage
    if not getattr(write_usage, "_zh", False):

        def zh_write_usage(self: Any, prog: str, args: str = "", prefix: str | None = None) -> None:
            write_usage(self, prog, args, WORDS["Usage:"] if prefix is None else prefix)

        zh_write_usage.__dict__["_zh"] = True
        formatting.HelpFormatter.write_usage = zh_write_usage
    for name in (
        "ARGUMENTS_PANEL_TITLE",
        "OPTIONS_PANEL_TITLE",
        "COMMANDS_PANEL_TITLE",
        "ERRORS_PANEL_TITLE",
        "ABORTED_TEXT",
        "REQUIRED_LONG_STRING",
        "DEFAULT_STRING",
        "ENVVAR_STRING",
        "DEPRECATED_STRING",
        "RICH_HELP",
    ):
        english = {
            "ARGUMENTS_PANEL_TITLE": "Arguments",
            "OPTIONS_PANEL_TITLE": "Options",
            "COMMANDS_PANEL_TITLE": "Commands",
            "ERRORS_PANEL_TITLE": "Error",
            "ABORTED_TEXT": "Aborted.",
            "REQUIRED_LONG_STRING": "[required]",
            "DEFAULT_STRING": "[default: {}]",
            "ENVVAR_STRING": "[env var: {}]",
            "DEPRECATED_STRING": "(deprecated) ",
            "RICH_HELP": "Try [blue]'{command_path} {help_option}'[/] for help.",
        }[name]
        if hasattr(typer.rich_utils, name):
            setattr(typer.rich_utils, name, WORDS[english])


def _hint(error: Any) -> str:
    param = getattr(error, "param", None)
    if param is not None:
        names = getattr(param, "opts", None) or [param.name or ""]
        if getattr(param, "param_type_name", "") == "argument":
            return (param.name or "").upper()
        return " / ".join(f"'{n}'" for n in names)
    return getattr(error, "param_hint", None) or ""


def usage_error_text(error: click.UsageError) -> str:
    """One Chinese line for a usage error, with where to find the command's help."""
    ctx = error.ctx
    where = f"（用 {ctx.command_path} --help 查看用法）" if ctx is not None else ""
    if isinstance(error, click.MissingParameter):
        kind = {"argument": "参数", "option": "选项"}.get(getattr(error.param, "param_type_name", ""), "参数")
        return f"缺少{kind} {_hint(error)}{where}"
    if isinstance(error, click.NoSuchOption):
        guess = f"，是否想用 {' 或 '.join(error.possibilities)}？" if error.possibilities else ""
        return f"没有选项 {error.option_name}{guess}{where}"
    if isinstance(error, click.BadParameter):
        reason = error.message
        for english, chinese in BAD_VALUE_REASONS:
            if english in reason:
                reason = chinese
                break
        return f"{_hint(error)} 的值无效：{reason}{where}"
    if "requires an argument" in error.message:
        return f"选项 {getattr(error, 'option_name', '')} 需要一个值{where}"
    if isinstance(error, click.BadOptionUsage):
        return f"选项 {error.option_name} 用法有误{where}"
    message = error.message
    if message.startswith("No such command"):
        name = message.split(" ", 3)[-1].rstrip(".")
        return f"没有命令 {name}{where}"
    if message.startswith("Got unexpected extra argument"):
        extra = message[message.find("(") + 1 : message.rfind(")")]
        return f"多余的参数：{extra}{where}"
    if message.startswith("Missing command"):
        return f"缺少子命令{where}"
    if "requires an argument" in message:
        return f"{message.split(' ')[1]} 选项需要一个值{where}"
    return f"{message}{where}"
