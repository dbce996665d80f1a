"""Templates of sources.yaml: ``{name}`` placeholders, ``{{``/``}}`` for literal braces, typed request bodies.

A template is parsed once into literal text and placeholders; filling it replaces each placeholder
with a value looked up by name (a page number, a field of a JSON record, a regex capture of a
JavaScript link). Nothing is ever evaluated. A value that is a single placeholder keeps the type
of what it names inside a JSON body (``"{id}"`` sends the record's number as a number), and
``{name:int}`` / ``{name:str}`` / ``{name:float}`` convert explicitly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CASTS = ("int", "str", "float")
# A mapping {"$json": value} in a body is sent as the JSON text of value (APIs taking param={"page":1}).
JSON_STRING_KEY = "$json"

Lookup = Callable[[str], Any]


class TemplateError(ValueError):
    """A template is malformed, or names a value the record does not have."""


@dataclass(frozen=True)
class Placeholder:
    name: str
    cast: str | None = None


Part = str | Placeholder


def parse(template: str) -> list[Part]:
    """Literal strings and placeholders of ``template``; TemplateError for an unbalanced brace."""
    parts: list[Part] = []
    literal: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        ch = template[i]
        if ch == "{":
            if template.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            end = template.find("}", i + 1)
            if end < 0:
                raise TemplateError(f"unmatched '{{' in {template!r}: write {{{{ for a literal brace")
            body = template[i + 1 : end]
            if not body or "{" in body:
                raise TemplateError(f"empty or nested placeholder in {template!r}: write {{{{ for a literal brace")
            name, _, cast = body.partition(":")
            name = name.strip()
            if cast and cast not in CASTS:
                raise TemplateError(f"unknown conversion ':{cast}' in {template!r}: use {', '.join(CASTS)}")
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(Placeholder(name, cast or None))
            i = end + 1
        elif ch == "}":
            if template.startswith("}}", i):
                literal.append("}")
                i += 2
                continue
            raise TemplateError(f"unmatched '}}' in {template!r}: write }}}} for a literal brace")
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    return parts


def names(template: str) -> list[str]:
    """The placeholder names of a template (TemplateError when it is malformed)."""
    return [p.name for p in parse(template) if isinstance(p, Placeholder)]


def body_names(value: Any) -> list[str]:
    """Placeholder names anywhere in a request body given as YAML (strings, mappings, lists)."""
    if isinstance(value, str):
        return names(value)
    if isinstance(value, dict):
        return [n for v in value.values() for n in body_names(v)]
    if isinstance(value, list):
        return [n for v in value for n in body_names(v)]
    return []


def _cast(value: Any, cast: str | None, name: str) -> Any:
    if cast is None:
        return value
    try:
        if cast == "int":
            return int(float(value)) if isinstance(value, str) and "." in value else int(value)
        if cast == "float":
            return float(value)
    except (TypeError, ValueError) as exc:
        raise TemplateError(f"{{{name}:{cast}}}: {value!r} is not a number") from exc
    return _text(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _value(part: Placeholder, lookup: Lookup) -> Any:
    value = lookup(part.name)
    if value is None:
        raise TemplateError(f"no value for {{{part.name}}}")
    return _cast(value, part.cast, part.name)


def render(template: str, lookup: Lookup) -> str:
    """The template as text, each placeholder replaced by its looked-up value."""
    return "".join(p if isinstance(p, str) else _text(_value(p, lookup)) for p in parse(template))


def render_typed(template: str, lookup: Lookup) -> Any:
    """Like render, but a template that is exactly one placeholder gives the value with its own type."""
    parts = parse(template)
    if len(parts) == 1 and isinstance(parts[0], Placeholder):
        return _value(parts[0], lookup)
    return "".join(p if isinstance(p, str) else _text(_value(p, lookup)) for p in parts)


def build_json(value: Any, lookup: Lookup) -> Any:
    """A JSON body from its YAML shape: nested mappings and lists kept, strings filled with types kept."""
    if isinstance(value, str):
        return render_typed(value, lookup)
    if isinstance(value, dict):
        if set(value) == {JSON_STRING_KEY}:
            return json.dumps(build_json(value[JSON_STRING_KEY], lookup), ensure_ascii=False, separators=(",", ":"))
        return {str(k): build_json(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [build_json(v, lookup) for v in value]
    return value


def build_form(data: dict[str, Any], lookup: Lookup) -> dict[str, str]:
    """A urlencoded form from its YAML shape: a mapping or list value is sent as JSON text."""
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict) and set(value) == {JSON_STRING_KEY}:
            out[str(key)] = build_json(value, lookup)
        elif isinstance(value, dict | list):
            out[str(key)] = json.dumps(build_json(value, lookup), ensure_ascii=False, separators=(",", ":"))
        elif isinstance(value, str):
            out[str(key)] = render(value, lookup)
        else:
            out[str(key)] = _text(value)
    return out
