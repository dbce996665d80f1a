"""Fields added to documents by later releases: filled in on `yuqing init`, and what searches may rely on.

Documents stored before the masked copy or the search keys existed get them in one pass; afterwards every
index behind the alias records in its mapping ``_meta`` that its documents have keys, and term searches stop
asking the unfolded texts (two phrase queries per term instead of four).
"""

from __future__ import annotations

import time
from typing import Any

from service.store.base import StoreUnavailable
from service.store.es_bulk import BulkWriting
from service.store.es_layout import KEY_FIELDS, SEARCH_KEYS_META, derived_fields

# How long a process trusts "some index still holds documents without search keys" before asking again.
_KEYS_RECHECK_SECONDS = 300.0


class Backfills(BulkWriting):
    """The backfills of :class:`service.store.elasticsearch.ElasticsearchStore` and the search-keys flag."""

    # Whether every index behind the alias says its documents have search keys (None: not asked yet).
    _keys_complete: bool | None
    _keys_checked: float

    def _backfill_derived(self) -> None:
        """Give documents stored before the masked copy or the search keys existed those fields, then
        record on every index that its documents have keys (searches then skip the unfolded texts)."""
        with self._call("get mapping"):
            mappings = self._es.indices.get_mapping(index=self.alias)
        if all((m["mappings"].get("_meta") or {}).get(SEARCH_KEYS_META) for m in mappings.values()):
            self._keys_complete = True
            return
        missing = [{"bool": {"must_not": [{"exists": {"field": f}}]}} for f in ("content_masked", *KEY_FIELDS)]
        # One pass in id order (an empty title may never count as "existing", so no re-query until empty).
        after: list[Any] | None = None
        while True:
            kwargs: dict[str, Any] = {"search_after": after} if after is not None else {}
            with self._call("search"):
                resp = self._es.search(
                    index=self.alias,
                    query={"bool": {"should": missing, "minimum_should_match": 1}},
                    source_includes=["title", "content"],
                    sort=[{"id": "asc"}],
                    size=500,
                    **kwargs,
                )
            hits = resp["hits"]["hits"]
            if not hits:
                break
            after = hits[-1]["sort"]
            self._bulk_update(
                {
                    h["_id"]: derived_fields(h["_source"].get("title") or "", h["_source"].get("content") or "")
                    for h in hits
                }
            )
            if len(hits) < 500:
                break
        with self._call("put mapping"):
            for name, mapping in mappings.items():
                meta = {**(mapping["mappings"].get("_meta") or {}), SEARCH_KEYS_META: True}
                self._es.indices.put_mapping(index=name, meta=meta)
        self._keys_complete = True

    def _legacy_terms(self) -> bool:
        """Whether term searches must also ask the unfolded texts (some index may lack search keys)."""
        if self._keys_complete is None or (
            not self._keys_complete and time.monotonic() - self._keys_checked > _KEYS_RECHECK_SECONDS
        ):
            self._keys_checked = time.monotonic()
            try:
                with self._call("get mapping"):
                    mappings = self._es.indices.get_mapping(index=self.alias)
            except StoreUnavailable:
                return True  # the search itself reports the cluster's state
            self._keys_complete = all(
                (m["mappings"].get("_meta") or {}).get(SEARCH_KEYS_META) for m in mappings.values()
            )
        return not self._keys_complete
