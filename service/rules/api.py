"""Rule management: CRUD, mute, and trying an expression on a text or on recent items."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from loguru import logger
from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import select

from service import clock
from service.api_fields import InputDateTime, LocalDateTime
from service.audit.service import record
from service.auth.deps import CurrentUser, client_address, require_roles
from service.deps import CtxDep, SessionDep
from service.masking import mask_for
from service.principal import Principal
from service.rules import trial
from service.rules.config import current_departments
from service.rules.language import MAX_EXPR_CHARS, RuleSyntaxError, parse
from service.rules.matcher import (
    TEST_MAX_OCCURRENCES,
    TEST_MAX_SECONDS,
    TEST_MAX_TEXT_CHARS,
    TEST_MAX_TITLE_CHARS,
    TooCostly,
    evaluate_expression,
)
from service.rules.models import RuleRecord
from service.rules.names import rule_names
from service.rules.rulebook import compile_record
from service.rules.structured import BOTH_FORMS, NO_FORM
from service.store.base import StoreUnavailable
from service.vocabulary import Severity

router = APIRouter(prefix="/api/v1/rules", tags=["rules"])
RuleEditor = Depends(require_roles("officer", "admin"))


class RuleBody(BaseModel):
    department: str = Field(min_length=1, max_length=64)
    name: str | None = Field(None, max_length=100, description="规则名称，预警和列表中显示")
    expr: str | None = Field(None, max_length=4 * MAX_EXPR_CHARS)
    regions: list[str] = Field(default_factory=list)
    subjects: list[str] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    severity: Severity = "normal"
    enabled: bool = True

    @model_validator(mode="after")
    def _one_form(self) -> RuleBody:
        structured = self.regions or self.subjects or self.events or self.exclude
        if self.expr is not None and structured:
            raise ValueError(BOTH_FORMS)
        if self.expr is None and not (self.regions or self.subjects or self.events):
            raise ValueError(NO_FORM)
        return self

    def structured(self) -> dict[str, list[str]] | None:
        if self.expr is not None:
            return None
        return {"regions": self.regions, "subjects": self.subjects, "events": self.events, "exclude": self.exclude}


RULE_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")


class RuleCreate(RuleBody):
    # Length first, then the letters, each refused in its own words (a pattern alone said only "格式不对").
    id: str = Field(min_length=1, max_length=64, json_schema_extra={"pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"})

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not RULE_ID.fullmatch(value):
            raise ValueError("只能包含小写字母、数字、连字符（-）和下划线（_），并以小写字母或数字开头")
        return value


class RuleRead(BaseModel):
    id: str
    name: str | None = None
    department: str
    expr: str | None
    structured: dict[str, list[str]] | None
    severity: str
    enabled: bool
    origin: str
    muted_until: LocalDateTime | None
    updated_at: LocalDateTime
    updated_by: str | None


class RuleList(BaseModel):
    results: list[RuleRead]
    total: int


# Generous backstops: the rule language and the test caps answer over-long input in Chinese first.
class TestBody(BaseModel):
    expr: str = Field(max_length=4 * MAX_EXPR_CHARS)
    text: str = Field("", max_length=4 * TEST_MAX_TEXT_CHARS)
    title: str | None = Field(None, max_length=4 * TEST_MAX_TITLE_CHARS)


class RecentBody(BaseModel):
    expr: str = Field(max_length=4 * MAX_EXPR_CHARS)
    days: int = Field(7, ge=1, le=31)
    limit: int = Field(2000, ge=1, le=10_000)


class MuteBody(BaseModel):
    minutes: int | None = Field(None, ge=1, le=60 * 24 * 90)
    until: InputDateTime | None = None


def _syntax_error(exc: RuleSyntaxError) -> JSONResponse:
    return JSONResponse(
        status_code=422,
        content={"detail": {"message": exc.message, "position": exc.position, "column": exc.column}},
    )


def _validate(ctx: Any, rule_id: str, body: RuleBody) -> JSONResponse | None:
    known = {d.id for d in current_departments(ctx.settings.config_dir).departments}
    if body.department not in known:
        raise HTTPException(422, f"未知的责任单位 {body.department!r}")
    probe = RuleRecord(
        id=rule_id, department=body.department, expr=body.expr, structured=body.structured(), severity=body.severity
    )
    try:
        compile_record(probe)
    except RuleSyntaxError as exc:
        return _syntax_error(exc)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return None


def _name(body: RuleBody) -> str | None:
    """The name as given, without surrounding blanks; None when left empty."""
    return (body.name or "").strip() or None


def _audit(session: Any, request: Request, principal: Principal, event: str, detail: dict[str, Any]) -> None:
    record(
        session,
        event=event,
        principal_or_username=principal,
        result="success",
        address=client_address(request),
        detail=detail,
    )


@router.get("", response_model=RuleList)
def list_rules(
    principal: CurrentUser,
    session: SessionDep,
    ctx: CtxDep,
    department: str | None = Query(None, max_length=64),
) -> RuleList:
    """Rules the caller may read (department users: their own department's)."""
    if principal.role == "auditor":
        raise HTTPException(403, "无权查看 (forbidden for your role)")
    stmt = select(RuleRecord).order_by(RuleRecord.department, RuleRecord.id)
    if not principal.sees_everything:
        stmt = stmt.where(RuleRecord.department == principal.department)
    if department:
        stmt = stmt.where(RuleRecord.department == department)
    rows = session.execute(stmt).scalars().all()
    names = rule_names(session, ctx.settings.config_dir)
    results = [RuleRead.model_validate(r, from_attributes=True) for r in rows]
    return RuleList(results=[r.model_copy(update={"name": names.get(r.id)}) for r in results], total=len(rows))


@router.post("", response_model=RuleRead, status_code=201)
def create_rule(
    body: RuleCreate, request: Request, session: SessionDep, ctx: CtxDep, principal: Principal = RuleEditor
) -> Any:
    if (error := _validate(ctx, body.id, body)) is not None:
        return error
    if session.get(RuleRecord, body.id) is not None:
        raise HTTPException(409, f"规则 {body.id!r} 已存在")
    now = clock.now()
    rule = RuleRecord(
        id=body.id,
        department=body.department,
        name=_name(body),
        expr=body.expr,
        structured=body.structured(),
        severity=body.severity,
        enabled=body.enabled,
        origin="api",
        created_at=now,
        updated_at=now,
        updated_by=principal.username,
    )
    session.add(rule)
    _audit(session, request, principal, "rule.create", {"rule_id": body.id, "expr": body.expr})
    session.flush()
    return RuleRead.model_validate(rule, from_attributes=True)


@router.put("/{rule_id}", response_model=RuleRead)
def update_rule(
    rule_id: str, body: RuleBody, request: Request, session: SessionDep, ctx: CtxDep, principal: Principal = RuleEditor
) -> Any:
    """Change a rule; a rule imported from departments.yaml becomes an API rule (the file no longer overrides it)."""
    rule = session.get(RuleRecord, rule_id)
    if rule is None:
        raise HTTPException(404, "规则不存在")
    if (error := _validate(ctx, rule_id, body)) is not None:
        return error
    before = {"expr": rule.expr, "structured": rule.structured, "severity": rule.severity, "enabled": rule.enabled}
    rule.department = body.department
    rule.name = _name(body)
    rule.expr = body.expr
    rule.structured = body.structured()
    rule.severity = body.severity
    rule.enabled = body.enabled
    rule.origin = "api"
    rule.updated_at = clock.now()
    rule.updated_by = principal.username
    _audit(session, request, principal, "rule.update", {"rule_id": rule_id, "before": before, "expr": body.expr})
    return RuleRead.model_validate(rule, from_attributes=True)


@router.delete("/{rule_id}", status_code=204)
def delete_rule(rule_id: str, request: Request, session: SessionDep, principal: Principal = RuleEditor) -> Response:
    rule = session.get(RuleRecord, rule_id)
    if rule is None:
        raise HTTPException(404, "规则不存在")
    session.delete(rule)
    _audit(session, request, principal, "rule.delete", {"rule_id": rule_id, "expr": rule.expr})
    return Response(status_code=204)


@router.post("/{rule_id}/mute", response_model=RuleRead)
def mute_rule(
    rule_id: str, body: MuteBody, request: Request, session: SessionDep, principal: Principal = RuleEditor
) -> RuleRead:
    """Mute a rule's pushes for a while (its alerts still appear in the feed); no minutes/until unmutes."""
    rule = session.get(RuleRecord, rule_id)
    if rule is None:
        raise HTTPException(404, "规则不存在")
    until = body.until
    if body.minutes is not None:
        until = clock.now() + timedelta(minutes=body.minutes)
    rule.muted_until = clock.ensure_aware(until) if until else None
    rule.muted_by = principal.username if until else None
    _audit(
        session, request, principal, "rule.mute", {"rule_id": rule_id, "until": until.isoformat() if until else None}
    )
    return RuleRead.model_validate(rule, from_attributes=True)


@router.post("/test")
def test_rule(body: TestBody, principal: CurrentUser) -> Any:
    """Try an expression on a pasted text: matched or not, and where its terms are (capped; see README)."""
    if len(body.text) > TEST_MAX_TEXT_CHARS:
        raise HTTPException(422, f"试运行文本过长：{len(body.text)} 个字符，最多 {TEST_MAX_TEXT_CHARS} 个")
    if body.title is not None and len(body.title) > TEST_MAX_TITLE_CHARS:
        raise HTTPException(422, f"试运行标题过长：{len(body.title)} 个字符，最多 {TEST_MAX_TITLE_CHARS} 个")
    try:
        return evaluate_expression(body.expr, body.text, body.title)
    except RuleSyntaxError as exc:
        return _syntax_error(exc)
    except TooCostly as exc:
        reason = (
            f"超过 {TEST_MAX_SECONDS:g} 秒"
            if str(exc) == "time"
            else f"关键词在文本中出现超过 {TEST_MAX_OCCURRENCES} 次"
        )
        raise HTTPException(422, f"试运行已中止：{reason}；请缩短文本或去掉过短的词") from exc


@router.post("/test-recent")
def test_rule_on_recent_items(body: RecentBody, principal: CurrentUser, ctx: CtxDep) -> Any:
    """Try an expression on the ``limit`` newest items of the last ``days`` days before saving it.

    Only what can decide is read and evaluated (see service.rules.trial): for ``化工厂 AND 排污`` the items
    holding a term every match needs, found through the store's search; for ``NOT 表扬`` the items holding
    表扬, every other item matching as it is. ``scanned`` is how many recent items the answer covers,
    ``candidates`` how many were decided one by one (their terms looked up, or their text evaluated).
    """
    if principal.role not in ("officer", "admin"):
        raise HTTPException(403, "无权执行此操作 (forbidden for your role)")
    try:
        node = parse(body.expr)
    except RuleSyntaxError as exc:
        return _syntax_error(exc)
    since = clock.now() - timedelta(days=body.days)
    # Counted on the masked text for every role, as live matching runs (service.matching.engine): the count
    # is what the rule would alert on, and the original would answer guesses at hidden digits. Admins see
    # the listed titles as published.
    # Like the rule test, the trial is capped in time (checked between steps; a page read is bounded by the
    # store's own timeout): the answer says when it stopped early.
    limit_seconds = ctx.settings.alerts.recent_trial_max_seconds
    deadline = time.monotonic() + limit_seconds
    try:
        result = trial.run(ctx.store, node, since, body.limit, deadline, principal.sees_personal_data)
    except StoreUnavailable as exc:
        logger.warning("条目存储不可用：{}", exc)
        raise HTTPException(503, {"message": exc.message}) from exc
    stopped = result.stopped_early
    return {
        "scanned": result.scanned,
        "candidates": result.candidates,
        "matched": result.matched,
        # True when ``matched`` is extrapolated from a sample of the items holding the rule's terms (see
        # service.rules.trial.precise_enough); the console shows it as “约”.
        "matched_estimated": result.estimated,
        # Titles come from the masked copy for non-admins already; masked here as every title shown is.
        "items": mask_for(principal, result.items, fields=("title",)),
        "stopped_early": stopped,
        # What the console shows when the trial was cut (the cap is alerts.recent_trial_max_seconds).
        "notice": _trial_notice(result, limit_seconds),
    }


def _trial_notice(result: trial.Trial, limit_seconds: float) -> str | None:
    """What the console shows when the trial was cut (the cap is alerts.recent_trial_max_seconds) or its
    count estimated; None for a complete, counted answer."""
    if result.stopped_early:
        return (
            f"试运行达到 {limit_seconds:g} 秒上限，只试了 {result.scanned} 条（共 {result.window} 条近期条目），"
            "结果不完整；可缩短天数或加入更具体的关键词后重试"
        )
    if result.estimated:
        return (
            f"命中数为估算：含关键词的条目较多，按其中 {result.sampled} 条的结果推算（约 {result.matched} 条）；"
            "列出的条目均已逐条核对"
        )
    return None
