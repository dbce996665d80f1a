"""422 answers for requests that fail validation: FastAPI's machine-readable ``detail`` list stays as it is,
and a Chinese ``message`` beside it says what is wrong, for the person who reads it."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from service.config_files import type_words
from service.field_labels import FIELD_LABELS, field_label

PLACES = {"query": "查询参数", "body": "请求体字段", "path": "路径参数", "header": "请求头", "cookie": "Cookie"}


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    """``每页条数（size）`` for a field the label table knows; ``查询参数 xyz`` for one it does not
    (an unknown body field, a header); list positions read ``第 2 项``."""
    parts = list(loc)
    place = PLACES.get(str(parts[0]), "") if parts else ""
    names = parts[1:] if place else parts
    if not names:
        return "请求体"
    words: list[str] = []
    for part in names:
        if isinstance(part, int):
            words.append(f"第 {part + 1} 项")
        elif str(part) in FIELD_LABELS:
            words.append(field_label(str(part)))
        else:
            words.append(f"{place} {part}".strip() if not words else str(part))
    return " ".join(words)


def describe(error: dict[str, Any]) -> str:
    """One Chinese sentence for one pydantic error."""
    # “每页条数（size）不能小于 1”: no gap after the closing bracket of a field's name.
    return _describe(error).replace("） ", "）").replace("项 ", "项")


def _describe(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    where = _where(error.get("loc") or ())
    msg = str(error.get("msg", ""))
    # Words of its own where a request reads differently from a config file (an object, not a mapping); the
    # rest from the one table of pydantic error types (service.config_files.TYPE_WORDS).
    own = {
        "missing": f"缺少{where}",
        "extra_forbidden": f"{where} 是未知字段",
        "json_invalid": "请求体不是合法的 JSON",
        "dict_type": f"{where} 应为对象",
        "model_type": f"{where} 应为对象",
        "model_attributes_type": f"{where} 应为对象",
        "datetime_parsing": f"{where} 不是有效的时间（ISO 8601，如 2026-03-02T10:25:00+08:00）",
        "datetime_from_date_parsing": f"{where} 不是有效的时间（ISO 8601，如 2026-03-02T10:25:00+08:00）",
        "datetime_type": f"{where} 不是有效的时间",
        "date_parsing": f"{where} 不是有效的日期（YYYY-MM-DD）",
        "date_from_datetime_parsing": f"{where} 不是有效的日期（YYYY-MM-DD）",
        "url_scheme": f"{where} 只能是 http 或 https 网址",
    }
    if kind in own:
        return own[kind]
    if words := type_words(error):
        return f"{where} {words}"
    if kind == "value_error":
        reason = msg.removeprefix("Value error, ")
        if "between the years 1970 and 2999" in reason:
            return f"{where} 超出支持的日期范围（1970–2999 年）"
        if any("\u4e00" <= ch <= "\u9fff" for ch in reason):
            return f"{where}：{reason}"
        return f"{where} 的值无效"
    return f"{where} 的值无效"


def message_of(errors: list[dict[str, Any]]) -> str:
    """All errors of a request in one Chinese line (the first five; the count of the rest)."""
    parts = list(dict.fromkeys(describe(e) for e in errors))
    text = "；".join(parts[:5])
    if len(parts) > 5:
        text += f"；另有 {len(parts) - 5} 处错误"
    return text or "请求无效"


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with FastAPI's ``detail`` list unchanged and a Chinese ``message``."""
    errors = list(exc.errors()) if isinstance(exc, RequestValidationError) else []
    return JSONResponse(
        status_code=422,
        content=jsonable_encoder({"detail": errors, "message": message_of(errors)}),
    )
