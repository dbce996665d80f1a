"""JSON for the Elasticsearch client by orjson, the standard library's json where orjson refuses a value.

A crawl writes every item's text four to six times (original, masked copy, search keys): encoding the bulk
bodies with the client's default json module cost this process more CPU per document than the rest of the
write. orjson gives the same JSON; it refuses what is not valid UTF-8 (a lone surrogate from a broken page)
and keys that are not strings, which then take the default encoding exactly as before. The client's own
``OrjsonSerializer`` has no such fallback (a broken page would fail its whole bulk) and covers application/json
only, not the bulk bodies' ndjson.
"""

from __future__ import annotations

from typing import Any

import orjson
from elasticsearch.serializer import JsonSerializer, NdjsonSerializer


class _Orjson(JsonSerializer):
    def json_dumps(self, data: Any) -> bytes:
        try:
            return orjson.dumps(data, default=self.default)
        except orjson.JSONEncodeError:
            return super().json_dumps(data)

    def json_loads(self, data: bytes) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return super().json_loads(data)


class OrjsonSerializer(_Orjson):
    """Request and response bodies (application/json)."""


class OrjsonNdjsonSerializer(_Orjson, NdjsonSerializer):
    """Bulk bodies (application/x-ndjson): one document a line."""


def serializers() -> dict[str, JsonSerializer]:
    """The client's serializers by mimetype (the client uses them for the compatibility mimetypes too)."""
    return {OrjsonSerializer.mimetype: OrjsonSerializer(), OrjsonNdjsonSerializer.mimetype: OrjsonNdjsonSerializer()}
