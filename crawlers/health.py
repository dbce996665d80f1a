"""Source health: last success, consecutive failures, items per crawl (a JSON file under the data dir).

A crawl fails when it met a WAF/captcha page, when the list came back empty where it used to have
items, when every item lacked its title, or when it fetched nothing at all. "0 new" is never a
failure by itself: a quiet mailbox is not a broken one.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from service import clock
from service.files import file_lock, write_text_atomic
from service.settings import Settings

HEALTH_FILE = "source_health.json"
HISTORY = 20


class SourceHealth(BaseModel):
    """What the last crawls of one source looked like."""

    source: str
    last_crawl_at: datetime | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_failure: str | None = None
    consecutive_failures: int = 0
    # Entries found per crawl, newest last (bounded).
    items_per_crawl: list[int] = Field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.consecutive_failures == 0


def _path(settings: Settings) -> Path:
    return settings.data_path(HEALTH_FILE)


def load_health(settings: Settings) -> dict[str, SourceHealth]:
    """Health of every source crawled so far; an unreadable file reads as no history."""
    path = _path(settings)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out = {}
    for key, value in raw.items() if isinstance(raw, dict) else ():
        try:
            out[key] = SourceHealth.model_validate(value)
        except ValueError:
            continue
    return out


def get_health(settings: Settings, source_id: str) -> SourceHealth:
    """Health of one source (an empty record when never crawled)."""
    return load_health(settings).get(source_id) or SourceHealth(source=source_id)


def judge(summary: dict[str, Any], previous: SourceHealth) -> str | None:
    """The reason this crawl counts as a source failure, or None when it worked."""
    if summary.get("config_error"):
        return str(summary["config_error"])
    if summary.get("challenge"):
        return "遇到验证页面（WAF/验证码），未取得内容"
    entries = int(summary.get("entries", 0))
    if entries == 0:
        if summary.get("pages", 0) == 0:
            return "列表页未能获取：" + _first_reason(summary)
        nodes = int(summary.get("nodes", 0))
        if nodes:
            # The list selector matched but nothing came out of the nodes: the page changed or is read
            # the wrong way (records inside CDATA), never a quiet mailbox, first crawl or not.
            return f"列表选择器匹配到 {nodes} 个节点，但没有提取出任何条目：" + _first_reason(summary)
        if any(n > 0 for n in previous.items_per_crawl):
            return "列表为空，而此前抓取到过条目（页面结构可能已改变）"
        if summary.get("errors"):
            return "没有抓取到任何条目：" + _first_reason(summary)
        return None
    items = int(summary.get("items", 0))
    if items and int(summary.get("missing_title", 0)) >= items:
        return "所有条目的标题都为空（请检查 fields.title 选择器）"
    if items == 0:
        return "找到条目但没有一条能提取：" + _first_reason(summary)
    for name, count in (summary.get("empty_fields") or {}).items():
        if count >= items:
            return f"所有条目的 {name} 都为空（请检查 fields.{name} 的选择器）"
    return None


def _first_reason(summary: dict[str, Any]) -> str:
    samples = summary.get("error_samples") or []
    return samples[0]["reason"] if samples else "未知原因"


def record_crawl(settings: Settings, source_id: str, summary: dict[str, Any]) -> SourceHealth:
    """Judge a finished crawl and write it into the health file; returns the source's new record."""
    # Crawl processes read-modify-write the health file: one at a time.
    with file_lock(_path(settings).with_suffix(".lock")):
        return _record(settings, source_id, summary)


def _record(settings: Settings, source_id: str, summary: dict[str, Any]) -> SourceHealth:
    records = load_health(settings)
    health = records.get(source_id) or SourceHealth(source=source_id)
    failure = judge(summary, health)
    now = clock.now()
    health.last_crawl_at = now
    health.items_per_crawl = [*health.items_per_crawl, int(summary.get("entries", 0))][-HISTORY:]
    if failure:
        health.consecutive_failures += 1
        health.last_failure = failure
        health.last_failure_at = now
    else:
        health.consecutive_failures = 0
        health.last_success_at = now
    records[source_id] = health
    _write(_path(settings), {k: v.model_dump(mode="json") for k, v in records.items()})
    return health


def _write(path: Path, data: dict[str, Any]) -> None:
    # Write-then-rename so a crash never leaves half a file for the next reader.
    write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=1))
