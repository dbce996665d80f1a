"""Commands on accounts (yuqing user ...) and on the audit log (yuqing audit verify)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from service.cli.base import audit_app, fail, settings_of, user_app


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
    from service.users.service import UserError, UserNotFound

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
    from service.oversight.accounts import add_user, check_department
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
    typer.echo(f"已创建用户 {user.username} (角色 {_role_words(role)}{where})")
    _show_totp(shown.totp_uri)


def _role_words(role: str) -> str:
    """责任单位 department: the role as people say it, and the code the command takes."""
    from service.vocabulary import ROLE_LABELS

    label = ROLE_LABELS.get(role)
    return f"{label} {role}" if label else role


@user_app.command("list")
def user_list(ctx: typer.Context) -> None:
    """列出全部用户及其状态 (停用、锁定、须改密)。"""
    from service.clock import to_local
    from service.oversight.accounts import describe, list_users

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
    from service.oversight.accounts import set_active

    _with_users(ctx, lambda session, _s: set_active(session, _os_user(), username, False))
    typer.echo(f"已停用用户 {username}")


@user_app.command("enable")
def user_enable(ctx: typer.Context, username: str = typer.Argument(..., help="用户名")) -> None:
    """重新启用账号。"""
    from service.oversight.accounts import set_active

    _with_users(ctx, lambda session, _s: set_active(session, _os_user(), username, True))
    typer.echo(f"已启用用户 {username}")


@user_app.command("unlock")
def user_unlock(ctx: typer.Context, username: str = typer.Argument(..., help="用户名")) -> None:
    """解除连续登录失败造成的锁定。"""
    from service.oversight.accounts import unlock

    _with_users(ctx, lambda session, _s: unlock(session, _os_user(), username))
    typer.echo(f"已解锁用户 {username}")


@user_app.command("reset-password")
def user_reset_password(ctx: typer.Context, username: str = typer.Argument(..., help="用户名")) -> None:
    """重置密码：临时密码从标准输入读取，未提供则自动生成；用户下次登录时必须修改。"""
    from service.oversight.accounts import reset_password

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
    from service.oversight.accounts import change_role

    _user, shown = _with_users(
        ctx,
        lambda session, s: change_role(
            session, _os_user(), username, role=role, department=department, config_dir=s.config_dir
        ),
    )
    where = f"，部门 {department}" if department else ""
    typer.echo(f"用户 {username} 的角色已改为 {_role_words(role)}{where}")
    _show_totp(shown.totp_uri)


@user_app.command("delete")
def user_delete(
    ctx: typer.Context,
    username: str = typer.Argument(..., help="用户名"),
    yes: bool = typer.Option(False, "--yes", "-y", help="不再确认"),
) -> None:
    """删除账号 (审计日志保留其记录)。"""
    from service.oversight.accounts import delete_user

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
