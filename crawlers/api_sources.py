"""API-created sources, kept in ``<data dir>/sources.api.yaml`` next to the administrator's sources.yaml.

A file rather than a table: the crawl subprocess reads sources without a database connection, and an
operator can inspect or back it up like sources.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from service.files import file_lock, write_text_atomic
from service.settings import Settings

API_SOURCES_FILE = "sources.api.yaml"


def api_sources_path(settings: Settings) -> Path:
    return settings.data_path(API_SOURCES_FILE)


def read_api_sources(path: Path) -> list[dict[str, Any]]:
    """The raw source definitions in the file ([] when there is none)."""
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return list(data.get("sources") or [])


def _write(path: Path, sources: list[dict[str, Any]]) -> None:
    text = "# 通过接口/控制台添加的来源（请勿手工编辑；配置文件中的来源见 config/sources.yaml）\n"
    text += yaml.safe_dump({"sources": sources}, allow_unicode=True, sort_keys=False)
    write_text_atomic(path, text)


def add_api_source(path: Path, definition: dict[str, Any]) -> None:
    """Append one definition; KeyError when its id is taken."""
    with file_lock(path.with_suffix(".lock")):
        sources = read_api_sources(path)
        if any(s.get("id") == definition["id"] for s in sources):
            raise KeyError(definition["id"])
        _write(path, [*sources, definition])


def remove_api_source(path: Path, source_id: str) -> bool:
    """Remove one definition; False when it is not there."""
    with file_lock(path.with_suffix(".lock")):
        sources = read_api_sources(path)
        kept = [s for s in sources if s.get("id") != source_id]
        if len(kept) == len(sources):
            return False
        _write(path, kept)
        return True
