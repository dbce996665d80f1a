"""Items for matching tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service import clock
from service.store.base import Item, ItemQuery, Store, item_id


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


def forget_matched(store: Store) -> None:
    """Leave every stored item unmarked, as a process dying after its alerts were committed would."""
    if store.backend == "sqlite":
        store._conn().execute("UPDATE items SET matched_at = NULL")  # type: ignore[attr-defined]
        return
    ids = [i.id for i in store.search(ItemQuery(size=500)).results]
    store._bulk_update({i: {"matched_at": None} for i in ids})  # type: ignore[attr-defined]
    # Visible to the next process's searches, as it would be long before a restart.
    store._refresh()  # type: ignore[attr-defined]
