"""HTML pages of the console. Each page is a shell: its script in /static fetches the data from the API.

Pages never render crawled text on the server: the scripts put it into the DOM as text nodes, so one
escaping rule covers the live feed and the pages alike. What the server renders (user name, department
names, configuration) goes through Jinja2's autoescape.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from loguru import logger
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.clock import to_local
from service.config_files import ConfigError
from service.console import catalog
from service.console.audit_labels import audit_labels
from service.console.session import principal_of
from service.ledger.config import holiday_notices
from service.principal import Principal
from service.rules.names import rule_names
from service.users.home import home_of
from service.vocabulary import CHANNEL_LABELS, RESPONSE_TYPE_LABELS, ROLE_LABELS, ROLES, SEVERITIES, SEVERITY_LABELS

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
# Times are stored in UTC; pages show them in Asia/Shanghai.
templates.env.filters["localtime"] = lambda value: to_local(value).strftime("%Y-%m-%d %H:%M")

router = APIRouter(include_in_schema=False)

# Which roles may open which page; the API enforces the same again, this only keeps the menu honest.
PAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "alerts": ("预警", ("admin", "officer", "department", "leader")),
    "tickets": ("工单", ("admin", "officer", "department", "leader")),
    "rules": ("规则", ("admin", "officer", "leader")),
    "dashboard": ("看板", ("admin", "officer", "department", "leader")),
    "ledger": ("台账", ("admin", "officer", "department", "leader")),
    "sources": ("来源", ("admin", "officer", "leader")),
    "sla": ("时限", ("admin", "officer", "department", "leader")),
    "users": ("用户", ("admin",)),
    "audit": ("审计日志", ("auditor",)),
}
# What the audit page's filter offers; the log may hold other types too (shown by their code).
AUDIT_EVENTS: tuple[tuple[str, str], ...] = (
    ("login", "登录"),
    ("logout", "退出"),
    ("account_locked", "账号锁定"),
    ("authz_denied", "越权访问被拒"),
    ("password_change", "修改密码"),
    ("user_*", "用户管理（全部）"),
    ("user_add", "新增用户"),
    ("user_update", "修改角色/部门"),
    ("user_disable", "停用用户"),
    ("user_enable", "启用用户"),
    ("user_unlock", "解锁用户"),
    ("user_reset_password", "重置密码"),
    ("user_delete", "删除用户"),
    ("ticket_action", "工单操作"),
    ("alert.state", "预警处理"),
    ("rule.*", "规则变更（全部）"),
    ("rule.create", "新建规则"),
    ("rule.update", "修改规则"),
    ("rule.delete", "删除规则"),
    ("rule.mute", "规则静音"),
    ("source.*", "来源变更（全部）"),
    ("personal_data.reveal", "查看未脱敏个人信息"),
    ("audit_purge", "审计日志清理"),
)
# Pages any signed-in user may open, outside the menu.
ANYONE = ROLES
# Menus list the gravest severity first.
SEVERITY_NAMES = {s: SEVERITY_LABELS[s] for s in reversed(SEVERITIES)}

# The console's own policy, in case no middleware set one: everything from this origin, nothing inline
# but styles (ECharts writes style attributes into its tooltips).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def _render(
    request: Request, template: str, principal: Principal | None, page: str, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    settings = request.app.state.ctx.settings
    departments = _departments_for(settings, principal)
    context = {
        "request": request,
        "user": principal,
        "page": page,
        "nav": [
            (name, label)
            for name, (label, roles) in PAGES.items()
            if principal is not None and principal.role in roles and not principal.must_change_password
        ],
        "roles": ROLE_LABELS,
        "response_types": RESPONSE_TYPE_LABELS,
        "audit_events": AUDIT_EVENTS,
        "password_policy": settings.security,
        "names": _names(request.app.state.ctx) if principal is not None else {"rules": {}, "sources": {}},
        "role_name": ROLE_LABELS.get(principal.role, principal.role) if principal else "",
        "departments": departments,
        "department_names": dict(departments),
        "channels": dict(CHANNEL_LABELS),
        "severities": SEVERITY_NAMES,
        **extra,
    }
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["Cache-Control"] = "no-store"
    return response


def _names(ctx: Any) -> dict[str, dict[str, str]]:
    """Rule and source names for the pages' scripts, so people read names rather than ids."""
    with ctx.db.session() as session:
        rules = rule_names(session, ctx.settings.config_dir)
    return {"rules": rules, "sources": catalog.source_names(ctx.settings)}


def _departments_for(settings: Any, principal: Principal | None) -> list[tuple[str, str]]:
    """(id, name) pairs the user may see: all for readers of everything, their own for a department user."""
    if principal is None:
        return []
    try:
        everything = catalog.departments(settings.config_dir)
    except ConfigError as exc:
        logger.warning("控制台：无法读取 departments.yaml：{}", exc)
        everything = []
    if principal.sees_everything:
        return everything
    own = principal.department or ""
    return [(d, n) for d, n in everything if d == own] or [(own, own)]


def _guard(request: Request, page: str) -> Principal | Response:
    """The principal, or the response that sends an anonymous user to /login and a wrong role home."""
    principal = principal_of(request)
    if principal is None:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
    if principal.must_change_password and page != "password":
        return RedirectResponse("/password", status_code=303)
    roles = ANYONE if page == "password" else PAGES[page][1]
    if principal.role not in roles:
        return _render(request, "forbidden.html", principal, page, status_code=403)
    return principal


def _quote(path: str) -> str:
    return quote(path, safe="/")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    """The login form; an already logged-in user goes home."""
    principal = principal_of(request)
    if principal is not None:
        return RedirectResponse(home_of(principal), status_code=303)
    return _render(request, "login.html", None, "login")


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> Response:
    """Home: depends on the role."""
    principal = principal_of(request)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(home_of(principal), status_code=303)


def _page(name: str, template: str | None = None) -> Callable[[Request], Response]:
    def view(request: Request) -> Response:
        guarded = _guard(request, name)
        if isinstance(guarded, Response):
            return guarded
        return _render(request, template or f"{name}.html", guarded, name)

    view.__name__ = f"{name}_page"
    view.__doc__ = f"The {name} page."
    return view


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request) -> Response:
    """The live alert feed; the source filter lists the configured sources by name."""
    guarded = _guard(request, "alerts")
    if isinstance(guarded, Response):
        return guarded
    try:
        sources = [(s["id"], s["name"]) for s in catalog.sources(request.app.state.ctx.settings)]
    except ConfigError:
        sources = []  # the sources page shows the error; the feed still works, with ids for names
    return _render(request, "alerts.html", guarded, "alerts", sources=sources)


for _name in ("tickets", "rules", "dashboard", "ledger", "password"):
    router.add_api_route(f"/{_name}", _page(_name), methods=["GET"], response_class=HTMLResponse)


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request) -> Response:
    """Account administration; above it, what the admin must configure (holidays of a coming year)."""
    guarded = _guard(request, "users")
    if isinstance(guarded, Response):
        return guarded
    try:
        notices = holiday_notices(request.app.state.ctx.settings.config_dir)
    except ConfigError as exc:
        notices = [f"时限配置有误：{exc}"]
    return _render(request, "users.html", guarded, "users", calendar_notices=notices)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request) -> Response:
    """The audit log, its details named in Chinese from the product's vocabulary."""
    guarded = _guard(request, "audit")
    if isinstance(guarded, Response):
        return guarded
    return _render(request, "audit.html", guarded, "audit", audit_labels=audit_labels())


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_page(request: Request, ticket_id: int) -> Response:
    """One ticket; whether the user may see it is the API's answer (404 for another department's)."""
    guarded = _guard(request, "tickets")
    if isinstance(guarded, Response):
        return guarded
    return _render(request, "ticket.html", guarded, "tickets", ticket_id=ticket_id)


@router.get("/sources", response_class=HTMLResponse)
def sources_page(request: Request) -> Response:
    """The configured sources, read-only."""
    guarded = _guard(request, "sources")
    if isinstance(guarded, Response):
        return guarded
    settings = request.app.state.ctx.settings
    try:
        sources, error = catalog.sources(settings) + catalog.invalid_sources(settings), None
    except ConfigError as exc:
        sources, error = [], str(exc)
    spooled = catalog.spooled(request.app.state.ctx.store)
    return _render(request, "sources.html", guarded, "sources", sources=sources, error=error, spooled=spooled)


@router.get("/sla", response_class=HTMLResponse)
def sla_page(request: Request) -> Response:
    """The SLA policy and the holiday calendar's state, read-only."""
    guarded = _guard(request, "sla")
    if isinstance(guarded, Response):
        return guarded
    settings = request.app.state.ctx.settings
    try:
        policy, error = catalog.sla(settings.config_dir), None
    except ConfigError as exc:
        policy, error = None, str(exc)
    return _render(request, "sla.html", guarded, "sla", policy=policy, error=error)


ROUTING_WORDS = {404: "请求的地址不存在", 405: "该地址不支持此请求方法"}


async def _not_found(request: Request, exc: Exception) -> Response:
    """A mistyped or outdated console address gets a Chinese page with the menu, not a bare English JSON answer.

    Only browsers asking for a page get it: the API and scripts keep the JSON answer they parse.
    """
    assert isinstance(exc, StarletteHTTPException)
    wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
    if exc.status_code == 404 and wants_page and not request.url.path.startswith(("/api/", "/static/")):
        principal = principal_of(request)
        if principal is not None and principal.must_change_password:
            principal = None  # no menu before the password is changed
        return _render(request, "notfound.html", principal, "", status_code=404)
    if exc.detail == HTTPStatus(exc.status_code).phrase and exc.status_code in ROUTING_WORDS:
        # Starlette's own English phrase (no route, wrong method): the same answer in Chinese, headers kept.
        exc = StarletteHTTPException(exc.status_code, ROUTING_WORDS[exc.status_code], headers=exc.headers)
    return await http_exception_handler(request, exc)


def install(app: FastAPI) -> None:
    """Add the console pages and mount /static (CSS, scripts, the vendored ECharts) on ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.add_exception_handler(StarletteHTTPException, _not_found)
