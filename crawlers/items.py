"""What spiders yield: raw fields as found on the page, before cleaning and normalization."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.vocabulary import Channel


@dataclass
class RawItem:
    """One record as extracted. Text fields hold HTML fragments (plain text is escaped by the spider).

    ``published_at``/``replied_at`` hold what the page shows (text, epoch number) and are parsed by
    the pipeline relative to the crawl time.
    """

    source: str
    channel: Channel
    url: str | None = None
    external_id: str | None = None
    order_no: str = ""
    title: str = ""
    content: str = ""
    published_at: Any = None
    department: str = ""
    status: str = ""
    reply: str = ""
    replied_at: Any = None
    list_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
