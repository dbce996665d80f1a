"""Loading YAML config files into Pydantic models with errors that name file, key path and reason."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
# libyaml's parser is ~10x faster than the pure-Python one on a large departments.yaml.
_FastLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _construct_mapping_once(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    """The safe loader's mapping, refusing a key written twice in it: YAML would keep the last one silently,
    and an admin who added a second ``scheduler:`` block would lose the first without a word."""
    seen: set[str] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value != "<<":
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                )
            seen.add(key_node.value)
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=deep)


_YamlLoader = type("_YamlLoader", (_FastLoader,), {"construct_mapping": _construct_mapping_once})


class ConfigError(Exception):
    """A config file is invalid; the message is one line: ``file: key.path: reason（中文说明）``.

    ``reason`` keeps its English words (scripts and acceptance checks match ``sources.yaml: x.y: required``);
    ``explanation`` says the same in Chinese for the administrator, derived here from the reason (or given by
    the caller that knows the pydantic error type) unless the reason is Chinese already.
    """

    def __init__(self, file: str, path: str, reason: str, explanation: str | None = None) -> None:
        self.file = file
        self.path = path
        self.reason = reason
        self.explanation = explanation if explanation is not None else explain(reason)
        where = f"{file}: {path}: " if path else f"{file}: "
        said = f"{reason}（{self.explanation}）" if self.explanation else reason
        super().__init__(f"{where}{said}")


def format_loc(loc: tuple[Any, ...]) -> str:
    """Turn a Pydantic error location into ``sources[2].list.items``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


# -- the Chinese of every reason a config file is refused for: one table ---------------------------------

# By pydantic error type; ``{name}`` is filled from the error's context (``ge``, ``expected``...).
TYPE_WORDS: dict[str, str] = {
    "missing": "缺少必填项",
    "extra_forbidden": "未知的键，可能是拼写错误",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "int_from_float": "应为整数",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "string_type": "应为文本",
    "list_type": "应为列表",
    "tuple_type": "应为列表",
    "set_type": "应为列表",
    "dict_type": "应为“键: 值”的映射",
    "model_type": "应为“键: 值”的映射",
    "model_attributes_type": "应为“键: 值”的映射",
    "literal_error": "应为 {expected} 之一",
    "enum": "应为 {expected} 之一",
    "greater_than_equal": "不能小于 {ge}",
    "greater_than": "应大于 {gt}",
    "less_than_equal": "不能大于 {le}",
    "less_than": "应小于 {lt}",
    "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "too_short": "至少 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "string_pattern_mismatch": "格式不对",
    "url_parsing": "不是有效的网址",
    "url_scheme": "网址协议不对，应为 {expected_schemes}",
    "date_parsing": "不是有效的日期，应写成 YYYY-MM-DD",
    "date_from_datetime_parsing": "不是有效的日期，应写成 YYYY-MM-DD",
    "date_type": "不是有效的日期，应写成 YYYY-MM-DD",
    "datetime_parsing": "不是有效的时间，应写成如 2026-03-02T10:25:00+08:00",
    "datetime_from_date_parsing": "不是有效的时间，应写成如 2026-03-02T10:25:00+08:00",
    "datetime_type": "不是有效的时间，应写成如 2026-03-02T10:25:00+08:00",
    "time_parsing": "不是有效的时刻，应写成如 08:30",
    "timedelta_parsing": "不是有效的时长",
    "json_invalid": "不是合法的 JSON",
    "json_type": "应为 JSON 文本",
}

# By the words of the reason (our validators' messages and the loaders' own reasons); the first match wins.
REASON_WORDS: tuple[tuple[str, str], ...] = (
    (r"^required$", "缺少必填项"),
    (r"^unknown key$", "未知的键，可能是拼写错误"),
    (r"^not UTF-8 text$", "文件不是 UTF-8 编码，请另存为 UTF-8"),
    (r"^not valid YAML: duplicate key", "同一层中同一个键写了两次"),
    (r"^not valid YAML", "不是合法的 YAML，请检查这一行的缩进、冒号和引号"),
    (r"^the top level must be a mapping$", "文件最外层应为“键: 值”的映射"),
    (r"must be a list of sources$", "应为来源列表，每个来源以“- id: ...”开始"),
    (r"^must be a list$", "应为列表"),
    (r"^a source must be a mapping$", "每个来源应为“键: 值”的映射"),
    (r"^origin and trust_private are not settings$", "origin 与 trust_private 由系统设定，不能写在配置中"),
    (r"^duplicate source id", "来源 id 重复"),
    (r"^cannot read API sources", "无法读取通过接口添加的来源"),
    (r"unsupported database URL scheme", "不支持的数据库地址，请用 sqlite:/// 或 postgresql://"),
    (r"is not an IP address or network", "不是 IP 地址或网段，如 10.0.0.5 或 10.0.0.0/24"),
    (r"stalled_seconds must be more than twice", "stalled_seconds 必须大于 heartbeat_seconds 的两倍"),
    (r"unknown channel type", "未知的通知渠道类型"),
    (r"unknown channel", "没有配置这个通知渠道"),
    (r"is not a range like", "时间段应写成 22:00-07:00 的形式"),
    (r"must not start and end at the same time", "免打扰时段的开始与结束不能相同"),
    (r"not a cron day of week", "不是有效的星期写法，如 mon、mon-fri、0"),
    (r"unknown time zone", "未知的时区，如 Asia/Shanghai"),
    (r"needs database\.url on PostgreSQL", "任务队列需要 database.url 为 PostgreSQL 数据库"),
    (r"invalid interval", "周期应写成正数加单位 s、m、h 或 d，如 15m"),
    (r"not an http\(s\) URL", "不是 http 或 https 网址"),
    (r"unknown encoding", "未知的网页编码，如 gbk、utf-8"),
    (r"only for json sources", "只适用于 json 类型的来源"),
    (r"only for html sources", "只适用于 html 类型的来源"),
    (r"only in sources\.yaml", "插件只能写在 sources.yaml 中，通过接口添加的来源不能用"),
    (r"unknown placeholder", "模板中有未知的占位符；字面量花括号请写成 {{ 和 }}"),
    (r"write exactly one of select or template", "select 与 template 必须写一个，且只能写一个"),
    (r"unknown field", "未知的字段名"),
    (r"write form or json, not both", "form 与 json 只能写一个"),
    (r"page_url must contain", "page_url 中必须含有 {page}、{page0}、{offset} 或 {end}"),
    (r"not a JavaScript name", "不是合法的 JavaScript 名称"),
    (r"invalid regex", "正则表达式写法有误"),
    (r"department id .* is already used", "部门 id 重复"),
    (r"rule id .* is already used|duplicate rule id", "规则 id 重复，所有部门的规则 id 必须各不相同"),
    (r"is not an e-mail address", "不是有效的邮箱地址"),
    (r"must start with http:// or https://", "必须以 http:// 或 https:// 开头"),
    (r"required for type", "这种通知渠道必须填写此项"),
    (r"^required \(one of", "缺少必填项"),
    (r"unknown option for type", "这种通知渠道没有这个选项"),
    (r"has a time of day", "只写日期 YYYY-MM-DD，不要写时刻"),
    (r"is not a date", "不是有效的日期，应写成 YYYY-MM-DD"),
    (
        r"is listed both in holidays and in workdays|is both a holiday and a working day",
        "同一天既是节假日又是调休上班日",
    ),
    (r"working days", "工作日数不对"),
)

_CJK = re.compile(r"[\u4e00-\u9fff]")
# Anything the tables do not know still gets Chinese: the key path above says where to look.
FALLBACK_WORDS = "取值无效，请对照该文件中的中文注释修改"


def explain(reason: str) -> str:
    """The Chinese explanation of ``reason``; empty when the reason is Chinese already."""
    if _CJK.search(reason):
        return ""
    # A model validator's message may start with the key it is about (``list: required``).
    core = re.sub(r"^[a-z_][a-z0-9_.\[\]]*: ", "", reason)
    for pattern, words in REASON_WORDS:
        if re.search(pattern, core):
            return words
    return FALLBACK_WORDS


def type_words(err: Mapping[str, Any]) -> str | None:
    """The Chinese for one pydantic error by its type, its context filled in (``不能小于 1``); None when the
    table has no words for the type. Config files and the API's 422 messages (service.validation_zh) share it."""
    words = TYPE_WORDS.get(err.get("type", ""))
    if words is None:
        return None
    context = {k: str(v).replace(" or ", "、").replace(", ", "、") for k, v in (err.get("ctx") or {}).items()}
    try:
        return words.format(**context)
    except (KeyError, IndexError):
        return None


def _explain_error(err: ErrorDetails, reason: str) -> str:
    return type_words(err) or explain(reason)


def _reason(err: ErrorDetails) -> str:
    if err.get("type") == "missing":
        return "required"
    if err.get("type") == "extra_forbidden":
        return "unknown key"
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def config_error(file: str, err: ErrorDetails) -> ConfigError:
    """One pydantic error of a config file as a ConfigError: key path, English reason, Chinese explanation."""
    loc = tuple(p for p in err.get("loc", ()) if p not in ("function-after", "function-before"))
    reason = _reason(err)
    return ConfigError(file, format_loc(loc), reason, _explain_error(err, reason))


def validation_to_config_error(file: str, exc: ValidationError) -> ConfigError:
    """The first validation error of ``exc`` as a ConfigError (one line is what start-up prints)."""
    return config_error(file, exc.errors()[0])


def read_yaml(path: Path) -> dict[str, Any] | None:
    """Read a YAML mapping; None when the file does not exist (optional files mean defaults)."""
    if not path.exists():
        return None
    return parse_yaml_bytes(path.name, path.read_bytes())


def parse_yaml_bytes(name: str, raw: bytes) -> dict[str, Any]:
    """The YAML mapping in the bytes of the file ``name``: config files are UTF-8 text, checked here only."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(name, "", "not UTF-8 text") from exc
    return parse_yaml(name, text)


def parse_yaml(name: str, text: str) -> dict[str, Any]:
    """The YAML mapping in ``text`` of the file ``name``; ConfigError when it is not one."""
    try:
        data = yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(name, where, f"not valid YAML: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(name, "", "the top level must be a mapping")
    return data


def load_model(path: Path, model: type[M], default: dict[str, Any] | None = None) -> M:
    """Validate the YAML file at ``path`` as ``model``; a missing file gives ``default`` (or the model's)."""
    data = read_yaml(path)
    if data is None:
        data = default or {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_to_config_error(path.name, exc) from exc


# -- loaded once, replaced when the file changes ------------------------------------------------------

_cache: dict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = {}
_cache_lock = threading.RLock()  # a build may read another cached file


def file_stamp(path: Path) -> tuple[int, int]:
    """(mtime in ns, size) of ``path``; (0, -1) when it does not exist."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return (0, -1)
    return (stat.st_mtime_ns, stat.st_size)


def cached(key: str, paths: Sequence[Path], build: Callable[[], T]) -> T:
    """``build()``, kept until one of ``paths`` changes (mtime or size): config parsed once, not per use.

    Costs one ``stat`` per path per call, so it is safe on the hot path; a build that raises is not
    cached (the next call tries again and raises the same error while the file stays broken).
    """
    resolved = tuple(Path(p).resolve() for p in paths)
    stamp = tuple(file_stamp(p) for p in resolved)
    slot = (key, *resolved)
    hit = _cache.get(slot)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    with _cache_lock:
        hit = _cache.get(slot)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = build()
        _cache[slot] = (stamp, value)
        return value
