"""What the read-only pages show from the config dir: departments, sources, SLA policy and calendar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loguru import logger

from alerting.sla import load_sla
from crawlers.health import load_health
from crawlers.sources import load_all_sources, parse_interval
from service.config_files import ConfigError, read_yaml
from service.ledger.config import holiday_notices
from service.vocabulary import SEVERITIES, STAGE_LABELS, STAGES

UNIT_NAMES = {"m": "分钟", "h": "小时", "wd": "个工作日"}
# sources.yaml's words as the sources page says them; the raw value stays in the cell's title for admins.
SOURCE_TYPE_NAMES = {"html": "网页", "json": "JSON 接口", "rss": "RSS 订阅"}
_PERIODS = ((86400, "天"), (3600, "小时"), (60, "分钟"), (1, "秒"))


def interval_text(value: Any) -> str:
    """``15m`` -> ``每 15 分钟``, ``1h`` -> ``每小时``; a value that does not parse is shown as written."""
    try:
        seconds = int(parse_interval(str(value)).total_seconds())
    except ValueError:
        return str(value or "")
    size, unit = next((size, unit) for size, unit in _PERIODS if seconds % size == 0)
    count = seconds // size
    return f"每{unit}" if count == 1 else f"每 {count} {unit}"


def departments(config_dir: Path) -> list[tuple[str, str]]:
    """(id, name) of every department in departments.yaml, in file order; [] when the file is missing."""
    data = read_yaml(Path(config_dir) / "departments.yaml") or {}
    entries = data.get("departments") or []
    if not isinstance(entries, list):
        raise ConfigError("departments.yaml", "departments", "must be a list")
    out: list[tuple[str, str]] = []
    for entry in entries:
        if isinstance(entry, dict) and entry.get("id"):
            out.append((str(entry["id"]), str(entry.get("name") or entry["id"])))
    return out


def source_names(settings: Any) -> dict[str, str]:
    """Source id -> name (sources.yaml and the API); {} when the sources cannot be read."""

    try:
        return {src.id: src.name for src in load_all_sources(settings).sources}
    except (ConfigError, OSError):
        return {}


def sources(settings: Any) -> list[dict[str, Any]]:
    """The sources (sources.yaml and API) as the sources page lists them, with crawl health; no selectors."""

    health = load_health(settings)
    out = []
    for src in load_all_sources(settings).sources:
        h = health.get(src.id)
        out.append(
            {
                "id": src.id,
                "name": src.name,
                "channel": src.channel,
                "type": src.type,
                "type_text": SOURCE_TYPE_NAMES.get(src.type, src.type),
                "start_urls": src.start_urls,
                "interval": src.interval,
                "interval_text": interval_text(src.interval),
                "max_pages": src.max_pages,
                "enabled": src.enabled,
                "origin": src.origin,
                "healthy": None if h is None else h.healthy,
                "last_success_at": None if h is None else h.last_success_at,
                "last_failure": None if h is None else h.last_failure,
                "consecutive_failures": 0 if h is None else h.consecutive_failures,
            }
        )
    return out


def spooled(store: Any) -> int | None:
    """Items waiting in the outage spool for the item store to return (None: the store has no spool)."""
    pending = getattr(store, "pending", None)
    if pending is None:
        return None
    try:
        return int(pending())
    except Exception as exc:  # the page still lists the sources when the database hiccups
        logger.warning("无法统计暂存条目：{}", exc)
        return None


def invalid_sources(settings: Any) -> list[dict[str, Any]]:
    """Entries of sources.yaml that did not validate (skipped by every crawl), shown as failing sources."""

    health = load_health(settings)
    out = []
    for bad in load_all_sources(settings).invalid:
        h = health.get(bad.source_id or "")
        out.append(
            {
                "id": bad.label,
                "name": "（配置无效，已跳过）",
                "channel": "",
                "type": "",
                "type_text": "",
                "start_urls": [],
                "interval": "",
                "interval_text": "",
                "max_pages": "",
                "enabled": False,
                "origin": "config",
                "healthy": False,
                "last_success_at": None if h is None else h.last_success_at,
                "last_failure": str(bad.error),
                "consecutive_failures": 1 if h is None else max(1, h.consecutive_failures),
            }
        )
    return out


def duration_text(value: Any) -> str:
    """``2wd`` -> ``2 个工作日``; ``30m`` -> ``30 分钟``."""
    return f"{value.amount} {UNIT_NAMES.get(value.unit, value.unit)}"


def sla(config_dir: Path) -> dict[str, Any]:
    """The SLA policy by severity and stage, and the calendar years computed without official holiday data."""

    config = load_sla(config_dir)
    return {
        "warn_at": round(config.warn_at * 100),
        "rows": [
            {"severity": sev, "stages": [duration_text(config.duration(sev, stage)) for stage in STAGES]}
            for sev in reversed(SEVERITIES)
        ],
        "stages": [STAGE_LABELS[s] for s in STAGES],
        # The years a deadline could fall in (this one, the coming one) whose holidays are not configured.
        "calendar_notices": holiday_notices(config_dir),
    }
