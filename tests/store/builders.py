"""Small builders for store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from service.store.base import Item, item_id

DAY0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def make_item(n: int, **fields: Any) -> Item:
    """Item number ``n`` of source demo-12345, published n hours after DAY0 unless told otherwise."""
    source = fields.pop("source", "demo-12345")
    data: dict[str, Any] = {
        "id": item_id(source, external_id=f"WO-{n}"),
        "source": source,
        "channel": "hotline",
        "external_id": f"WO-{n}",
        "url": f"http://127.0.0.1:8801/detail_{n}.html",
        "title": f"工单{n}",
        "content": f"市民反映第{n}号问题",
        "published_at": DAY0 + timedelta(hours=n),
        "fetched_at": DAY0 + timedelta(days=1),
    }
    data.update(fields)
    return Item(**data)
