"""Loading YAML config files into Pydantic models with errors that name file, key path and reason."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
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
    """A config file is invalid; the message is one line: ``file: key.path: reason``."""

    def __init__(self, file: str, path: str, reason: str) -> None:
        self.file = file
        self.path = path
        self.reason = reason
        where = f"{file}: {path}: " if path else f"{file}: "
        super().__init__(f"{where}{reason}")


def format_loc(loc: tuple[Any, ...]) -> str:
    """Turn a Pydantic error location into ``sources[2].list.items``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _reason(err: ErrorDetails) -> str:
    if err.get("type") == "missing":
        return "required"
    if err.get("type") == "extra_forbidden":
        return "unknown key"
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def validation_to_config_error(file: str, exc: ValidationError) -> ConfigError:
    """The first validation error of ``exc`` as a ConfigError (one line is what start-up prints)."""
    err = exc.errors()[0]
    loc = tuple(p for p in err.get("loc", ()) if p not in ("function-after", "function-before"))
    return ConfigError(file, format_loc(loc), _reason(err))


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
