"""The `yuqing` command line (exit 0 ok, 1 when some work failed, 2 on bad input)."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import NoReturn

from service.preflight import missing_module, require_dependencies

# Before the third-party imports below: a dependency missing after an upgrade without reinstalling is one
# Chinese line naming it and the fix (exit 2), not a traceback.
require_dependencies()

import typer  # noqa: E402
from loguru import logger  # noqa: E402

from service.config_files import ConfigError  # noqa: E402
from service.settings import Settings, load_settings  # noqa: E402

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


@app.command()
def init(ctx: typer.Context) -> None:
    """创建/迁移数据库，初始化条目存储 (ES 索引模板)。"""
    import psycopg

    from service.context import AppContext
    from service.db import DatabaseUnavailable
    from service.items.duplicates import backfill_bands
    from service.scheduling import queue
    from service.store.base import StoreUnavailable
    from service.upgrade import migrate

    settings = settings_of(ctx)
    app_ctx = AppContext.create(settings)
    try:
        migrate(app_ctx)
        # The task queue's tables (procrastinate) live in the same PostgreSQL database.
        queued = queue.ensure_schema(settings)
    except DatabaseUnavailable as exc:
        fail(str(exc))
    except psycopg.OperationalError as exc:
        fail(f"数据库不可用：{str(exc).splitlines()[0]}")
    try:
        app_ctx.store.init()
        backfilled = backfill_bands(app_ctx.store)
    except StoreUnavailable as exc:
        fail(str(exc))
    finally:
        app_ctx.close()
    typer.echo(f"database ready: {app_ctx.db.engine.url.render_as_string()}")
    typer.echo(f"store ready: {settings.store.backend}")
    if backfilled:
        typer.echo(f"已为 {backfilled} 条旧条目补建转载比对索引 (LSH bands backfilled)")
    if queue.is_postgresql(settings):
        typer.echo(f"task queue ready: procrastinate {queue.installed_version()}" + (f" ({queued})" if queued else ""))


@app.command()
def worker(
    ctx: typer.Context,
    concurrency: int = typer.Option(1, min=1, max=64, help="同时执行的任务数（每个抓取任务一个子进程）"),
) -> None:
    """工作进程：从任务队列领取抓取与匹配任务（需 queue.backend: procrastinate）。可在多台机器上运行任意个。"""
    from service.context import AppContext
    from service.scheduling import queue
    from service.worker import run_worker

    settings = settings_of(ctx)
    if not queue.enabled(settings):
        fail("任务队列未启用：请在 settings.yaml 中设置 queue.backend: procrastinate（database.url 须为 PostgreSQL）")
    app_ctx = AppContext.create(settings)
    try:
        run_worker(app_ctx, concurrency=concurrency)
    finally:
        app_ctx.close()


def ensure_port_free(host: str, port: int, what: str = "端口") -> None:
    """Exit 2 with one Chinese line when ``host:port`` cannot be listened on, before anything else starts
    (the scheduler's lease, the demo site): a busy port must not leave half a product running."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        fail(f"监听地址 {host} 无法解析")
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        # The same option uvicorn sets: a port in TIME_WAIT after a restart is not "busy".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except PermissionError:
            fail(f"{what} {port} 需要更高权限才能监听（{host}:{port}），请换一个 1024 以上的端口")
        except OSError:
            fail(f"{what} {port} 已被占用（{host}:{port}），请关闭占用它的程序或用 --port 换一个端口")


def _serve(settings: Settings, host: str | None, port: int | None, with_scheduler: bool) -> None:
    import uvicorn

    from service.app import create_app

    host, port = host or settings.server.host, port or settings.server.port
    ensure_port_free(host, port)
    api = create_app(settings, with_scheduler=with_scheduler)
    # jieba's dictionary (a second or more of CPU) loads now, beside the start-up, instead of inside the
    # first ticket views, which would wait on it (seconds under load).
    from service.items.places import gazetteer

    threading.Thread(target=gazetteer().prepare, name="gazetteer-load", daemon=True).start()
    server = uvicorn.Server(
        uvicorn.Config(
            api,
            host=host,
            port=port,
            log_config=None,  # uvicorn's records go through loguru (service.logs)
            **proxy_options(settings),  # type: ignore[arg-type]
        )
    )
    # A scheduler that died stops the server; the exit code tells the supervisor to restart us.
    api.state.stop_server = lambda: setattr(server, "should_exit", True)
    server.run()
    if getattr(api.state, "fatal", None):
        fail(f"调度器已停止，进程退出以便由守护进程重启：{api.state.fatal}", 1)


def proxy_options(settings: Settings) -> dict[str, object]:
    """uvicorn's proxy-header options: believed only from server.trusted_proxies (default: from nobody).

    uvicorn would otherwise trust X-Forwarded-For from 127.0.0.1, so any local process (or a forged header
    behind a plain TCP forwarder) could pose as any address and slip past per-address sign-in limits.
    """
    trusted = settings.server.trusted_proxies
    if not trusted:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(trusted)}


@app.command()
def run(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="监听地址 (default 127.0.0.1)"),
    port: int | None = typer.Option(None, help="端口 (default 8000)"),
) -> None:
    """一个进程运行全部：API + 控制台 + 调度器。"""
    _serve(settings_of(ctx), host, port, with_scheduler=True)


@app.command()
def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="监听地址"),
    port: int | None = typer.Option(None, help="端口"),
) -> None:
    """只运行 API + 控制台 (生产环境调度器单独运行)。"""
    _serve(settings_of(ctx), host, port, with_scheduler=False)


@app.command()
def scheduler(ctx: typer.Context) -> None:
    """只运行调度器 (生产环境的独立进程)。"""
    from service import context
    from service.app import build_scheduler, prepare
    from service.context import AppContext
    from service.scheduling.lease import LeaseHeld

    settings = settings_of(ctx)
    app_ctx = AppContext.create(settings)
    context.set_current(app_ctx)
    problems = prepare(app_ctx)
    if "database" in problems:
        fail(problems["database"], 1)
    sched = build_scheduler(app_ctx)
    try:
        sched.start()
    except LeaseHeld as exc:
        app_ctx.close()
        fail(str(exc), 1)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set() and not sched.lost.is_set() and not sched.failed:
        stop.wait(1)
    sched.shutdown()
    app_ctx.close()
    if sched.failed:
        fail(f"调度器已停止，进程退出以便由守护进程重启：{sched.failed}", 1)
    if sched.lost.is_set():
        raise typer.Exit(1)


@app.command()
def crawl(ctx: typer.Context, source_ids: list[str] = typer.Argument(None, help="来源 ID，省略则全部")) -> None:
    """立即抓取来源，输出每个来源的 新增/更新/跳过/错误 数。"""
    from crawlers.runner import CrawlError, crawl_sources

    settings = settings_of(ctx)
    try:
        results = crawl_sources(settings, source_ids or [])
    except ConfigError as exc:
        fail(str(exc))
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
    if failed:
        raise typer.Exit(1)


@sources_app.command("check")
def sources_check(ctx: typer.Context, source_id: str) -> None:
    """抓取一个列表页和一个详情页，输出提取的字段，不保存。"""
    import json

    from crawlers.runner import CrawlError, check_source

    settings = settings_of(ctx, quiet=True)
    try:
        result = check_source(settings, source_id)
    except ConfigError as exc:
        fail(str(exc))
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


def _app_context(ctx: typer.Context):
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


@app.command()
def match(ctx: typer.Context) -> None:
    """立即匹配所有未匹配的条目，输出命中和新建工单数。"""
    from service.matching.engine import engine_for

    app_ctx = _app_context(ctx)
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

        app_ctx = _app_context(ctx)
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
    from service.exports.service import FORMATS, export_ledger
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
    if department and known and department not in known:
        fail(f"--department: departments.yaml 中没有责任单位 {department!r}（可选：{', '.join(sorted(known))}）")
    app_ctx = AppContext.create(settings)
    try:
        migrate(app_ctx)
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


def _read_password(prompt: str = "密码: ", *, required: bool = True) -> str | None:
    """The password from the terminal (asked twice) or the first line of stdin; None when none is piped."""
    if sys.stdin.isatty():
        if not required:
            return None
        import getpass

        password = getpass.getpass(prompt)
        if getpass.getpass("再次输入密码: ") != password:
            fail("两次输入的密码不一致")
        return password
    password = sys.stdin.readline().rstrip("\r\n")
    if not password and required:
        fail("标准输入中没有密码 (第一行为密码)")
    return password or None


def _with_users(ctx: typer.Context, work):
    """Run ``work(session, settings)`` in one committed transaction; one-line errors, exit 2 or 1."""
    from service.context import AppContext
    from service.db import DatabaseUnavailable
    from service.upgrade import migrate
    from service.users.admin import UserNotFound
    from service.users.service import UserError

    settings = settings_of(ctx, quiet=True)
    app_ctx = AppContext.create(settings)
    try:
        migrate(app_ctx)
        with app_ctx.db.session() as session:
            result = work(session, settings)
            session.commit()
            return result
    except (UserError, UserNotFound) as exc:
        fail(str(exc))
    except DatabaseUnavailable as exc:
        fail(str(exc), 1)
    finally:
        app_ctx.close()


def _show_totp(uri: str | None) -> None:
    if not uri:
        return
    from service.users.qr import qr_terminal

    typer.echo("请用身份验证器扫描下面的二维码 (仅显示一次):")
    typer.echo(qr_terminal(uri))
    typer.echo(f"或手动导入绑定地址 (仅显示一次): {uri}")


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    username: str = typer.Argument(..., help="用户名"),
    role: str = typer.Option(..., "--role", help="admin | officer | department | leader | auditor"),
    department: str | None = typer.Option(None, "--department", help="部门 ID (departments.yaml 中的 id)"),
) -> None:
    """新增用户，密码从标准输入读取 (第一行)；管理员会得到一次性显示的 TOTP 绑定二维码。"""
    from service.users.admin import add_user, check_department
    from service.users.service import UserError, password_problems

    settings = settings_of(ctx, quiet=True)
    try:
        check_department(role, department, settings.config_dir)
    except UserError as exc:
        fail(str(exc))
    password = _read_password()
    problems = password_problems(password or "", username, settings.security)
    if problems:
        fail("；".join(problems))
    user, shown = _with_users(
        ctx,
        lambda session, s: add_user(
            session,
            _os_user(),
            username=username,
            role=role,
            department=department,
            password=password,
            policy=s.security,
            config_dir=s.config_dir,
        ),
    )
    where = f"，部门 {department}" if department else ""
    typer.echo(f"已创建用户 {user.username} (角色 {role}{where})")
    _show_totp(shown.totp_uri)


@user_app.command("list")
def user_list(ctx: typer.Context) -> None:
    """列出全部用户及其状态 (停用、锁定、须改密)。"""
    from service.clock import to_local
    from service.users.admin import describe, list_users

    rows = _with_users(ctx, lambda session, _s: [describe(u) for u in list_users(session)])
    if not rows:
        typer.echo("还没有用户：yuqing user add 用户名 --role officer")
        return
    typer.echo("用户名\t角色\t部门\t状态\t创建时间")
    for row in rows:
        state = [("已停用" if not row["active"] else "正常")]
        if row["locked"]:
            state.append(f"锁定至 {to_local(row['locked_until']):%Y-%m-%d %H:%M}")
        if row["must_change_password"]:
            state.append("须修改密码")
        typer.echo(
            f"{row['username']}\t{row['role_name']}\t{row['department'] or '—'}\t{'，'.join(state)}\t"
            f"{to_local(row['created_at']):%Y-%m-%d %H:%M}"
        )


@user_app.command("disable")
def user_disable(ctx: typer.Context, username: str = typer.Argument(..., help="用户名")) -> None:
    """停用账号 (立即退出所有会话)。"""
    from service.users.admin import set_active

    _with_users(ctx, lambda session, _s: set_active(session, _os_user(), username, False))
    typer.echo(f"已停用用户 {username}")


@user_app.command("enable")
def user_enable(ctx: typer.Context, username: str = typer.Argument(..., help="用户名")) -> None:
    """重新启用账号。"""
    from service.users.admin import set_active

    _with_users(ctx, lambda session, _s: set_active(session, _os_user(), username, True))
    typer.echo(f"已启用用户 {username}")


@user_app.command("unlock")
def user_unlock(ctx: typer.Context, username: str = typer.Argument(..., help="用户名")) -> None:
    """解除连续登录失败造成的锁定。"""
    from service.users.admin import unlock

    _with_users(ctx, lambda session, _s: unlock(session, _os_user(), username))
    typer.echo(f"已解锁用户 {username}")


@user_app.command("reset-password")
def user_reset_password(ctx: typer.Context, username: str = typer.Argument(..., help="用户名")) -> None:
    """重置密码：临时密码从标准输入读取，未提供则自动生成；用户下次登录时必须修改。"""
    from service.users.admin import reset_password

    password = _read_password(required=False)
    _user, shown = _with_users(
        ctx, lambda session, s: reset_password(session, _os_user(), username, password=password, policy=s.security)
    )
    typer.echo(f"已重置用户 {username} 的密码，下次登录时须修改")
    if shown.password:
        typer.echo(f"临时密码 (仅显示一次): {shown.password}")


@user_app.command("set-role")
def user_set_role(
    ctx: typer.Context,
    username: str = typer.Argument(..., help="用户名"),
    role: str = typer.Option(..., "--role", help="admin | officer | department | leader | auditor"),
    department: str | None = typer.Option(None, "--department", help="部门 ID (仅 department 角色)"),
) -> None:
    """修改角色和部门 (部门须在 departments.yaml 中)。"""
    from service.users.admin import change_role

    _user, shown = _with_users(
        ctx,
        lambda session, s: change_role(
            session, _os_user(), username, role=role, department=department, config_dir=s.config_dir
        ),
    )
    where = f"，部门 {department}" if department else ""
    typer.echo(f"用户 {username} 的角色已改为 {role}{where}")
    _show_totp(shown.totp_uri)


@user_app.command("delete")
def user_delete(
    ctx: typer.Context,
    username: str = typer.Argument(..., help="用户名"),
    yes: bool = typer.Option(False, "--yes", "-y", help="不再确认"),
) -> None:
    """删除账号 (审计日志保留其记录)。"""
    from service.users.admin import delete_user

    if not yes:
        if not sys.stdin.isatty():
            fail("删除账号须加 --yes 确认")
        if not typer.confirm(f"确定删除用户 {username}？"):
            raise typer.Exit(1)
    _with_users(ctx, lambda session, _s: delete_user(session, _os_user(), username))
    typer.echo(f"已删除用户 {username}")


def _os_user() -> str:
    """Who ran the command, for the audit log."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _follow_demo_port(settings: Settings, base_url: str) -> Settings:
    """Settings whose sources point at the demo site where it really listens.

    The shipped sources.yaml names the default demo address; on another ``--demo-port`` the config dir
    is copied to ``数据目录/demo-config`` with that address rewritten, so every crawl reaches the site.
    """
    import shutil

    from crawlers.demo.server import DEMO_PORT

    default = f"http://127.0.0.1:{DEMO_PORT}"
    sources = settings.config_dir / "sources.yaml"
    if base_url.rstrip("/") == default or not sources.exists():
        return settings
    text = sources.read_text(encoding="utf-8")
    if default not in text:
        return settings
    target = settings.data_path("demo-config")
    shutil.copytree(settings.config_dir, target, dirs_exist_ok=True)
    (target / "sources.yaml").write_text(text.replace(default, base_url.rstrip("/")), encoding="utf-8")
    logger.info("demo: sources follow the demo site at {} (config copied to {})", base_url, target)
    return load_settings(target)


@app.command()
def demo(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="监听地址 (default 127.0.0.1)"),
    port: int | None = typer.Option(None, help="端口 (default 8000)"),
    demo_port: int = typer.Option(8801, help="示例站点端口 (示例来源自动指向它)"),
) -> None:
    """在本机回环地址上启动内置示例站点，并用它运行整个产品。"""
    from crawlers.demo.server import serve_demo

    settings = settings_of(ctx)
    ensure_port_free(host or settings.server.host, port or settings.server.port)
    ensure_port_free("127.0.0.1", demo_port, "示例站点端口")
    try:
        server, base_url = serve_demo(demo_port)
    except OSError as exc:
        fail(f"示例站点无法监听端口 {demo_port}: {exc}", 1)
    try:
        settings = _follow_demo_port(settings, base_url)
    except OSError as exc:
        server.shutdown()
        fail(f"无法准备示例配置：{exc}", 1)
    typer.echo(f"示例站点 (demo site): {base_url}（每分钟发布一条新工单）")
    typer.echo(
        f"控制台 (console): http://{host or settings.server.host}:{port or settings.server.port}/ "
        "— 先创建账号: yuqing user add 用户名 --role officer"
    )
    try:
        _serve(settings, host, port, with_scheduler=True)
    finally:
        server.shutdown()


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    anchors: Path | None = typer.Option(None, "--anchors", help="锚点文件 (默认 数据目录/audit/anchors.jsonl)"),
) -> None:
    """校验审计日志：HMAC 链与每日锚点；有任何断裂时退出码 1，并指出第一条有问题的记录。"""
    from service.audit.anchors import anchors_path, check_anchors, read_anchors
    from service.audit.service import check_chain
    from service.context import AppContext
    from service.db import DatabaseUnavailable
    from service.upgrade import migrate

    settings = settings_of(ctx, quiet=True)
    app_ctx = AppContext.create(settings)
    try:
        # An upgraded database is re-anchored first (a log written before the HMAC change).
        migrate(app_ctx)
        with app_ctx.db.session() as session:
            chain = check_chain(session)
            found = read_anchors(anchors or anchors_path(settings))
            problems = check_anchors(session, found, settings.security.audit_retention_days)
    except DatabaseUnavailable as exc:
        fail(str(exc), 1)
    finally:
        app_ctx.close()
    legacy = chain.legacy
    if legacy is not None:
        typer.echo(
            f"旧版记录段 #{legacy.first_id}–#{legacy.last_id}（{legacy.count} 条，HMAC 启用前写入）："
            f"{'按旧版哈希校验通过 (verified-legacy)' if chain.ok else '见下方断裂'}，"
            f"由签名的重新锚定记录 #{legacy.reanchor_id} 固定"
        )
    if not chain.ok:
        bad = chain.first_bad_id
        where = f"记录 #{bad}" if bad is not None else "链尾（记录被删除）"
        if legacy is not None and bad is not None and legacy.first_id <= bad <= legacy.last_id:
            where += "（旧版记录段内）"
        typer.echo(f"审计日志链断裂：第一条有问题的是{where}", err=True)
    for problem in problems:
        typer.echo(f"审计锚点不符：记录 #{problem['id']}：{problem['reason']}", err=True)
    if not chain.ok or problems:
        raise typer.Exit(1)
    typer.echo(f"审计日志完整：HMAC 链无断裂，{len(found)} 个锚点一致")


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
        logger.info("interrupted")
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


if __name__ == "__main__":
    main()
