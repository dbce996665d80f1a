"""Items for matching tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service import clock
from service.store.base import Item, item_id


def item(n: int, title: str, content: str = "", **fields: Any) -> Item:
    source = fields.pop("source", "demo-12345")
    now = clock.now()
    data: dict[str, Any] = {
        "id": item_id(source, external_id=str(n)),
        "source": source,
        "channel": fields.pop("channel", "hotline"),
        "external_id": str(n),
        "url": f"http://127.0.0.1:8801/detail_{n}.html",
        "title": title,
        "content": content,
        "published_at": now - timedelta(hours=2),
        "fetched_at": now,
    }
    data.update(fields)
    return Item(**data)
