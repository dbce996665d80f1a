"""The Elasticsearch client's JSON by orjson says what the standard library's json said, and falls back to it.

Bulk bodies carry every item's text several times; orjson encodes them for a fraction of the CPU. Crawled
text is hostile: a lone surrogate from a broken page, or a key that is not a string, must be encoded exactly
as before instead of failing the batch.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID

from elasticsearch.serializer import JsonSerializer, NdjsonSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from service.settings import ElasticsearchSettings
from service.store.elasticsearch import ElasticsearchStore
from service.store.es_json import OrjsonNdjsonSerializer, OrjsonSerializer

VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(alphabet=st.characters(exclude_categories=("Cs",))),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(VALUES)
def test_bodies_read_back_as_the_default_encoding_reads(value: object) -> None:
    ours, theirs = OrjsonSerializer(), JsonSerializer()
    assert json.loads(ours.dumps({"doc": value})) == json.loads(theirs.dumps({"doc": value}))
    assert ours.loads(theirs.dumps({"doc": value})) == theirs.loads(theirs.dumps({"doc": value}))


def test_bulk_lines_hold_the_same_documents() -> None:
    doc = {"title": "化工厂夜间排放异味😀", "stored_at": datetime(2024, 3, 5, 10, 23, 1, 5, tzinfo=UTC), "n": 12}
    operations = [{"create": {"_index": "items", "_id": "a"}}, doc, {"index": {"_id": UUID(int=7)}}, {"x": 1.5}]
    ours, theirs = OrjsonNdjsonSerializer().dumps(operations), NdjsonSerializer().dumps(operations)
    assert [json.loads(line) for line in ours.splitlines()] == [json.loads(line) for line in theirs.splitlines()]
    assert ours.endswith(b"\n")


def test_what_orjson_refuses_is_encoded_as_before() -> None:
    for value in ({"content": "断开的页面\ud800文字"}, {1: "a key that is a number"}, {"big": 2**70}):
        assert OrjsonSerializer().dumps(value) == JsonSerializer().dumps(value)
        assert OrjsonNdjsonSerializer().dumps([value]) == NdjsonSerializer().dumps([value])
    # Responses: the node escapes a lone surrogate it was sent; the standard library reads it back.
    assert OrjsonSerializer().loads(b'{"content": "a\\ud800b"}') == {"content": "a\ud800b"}


def test_the_stores_client_uses_them_for_plain_and_compatibility_mimetypes() -> None:
    client = ElasticsearchStore(ElasticsearchSettings(hosts=["http://127.0.0.1:9"]))._es
    chosen = client.transport.serializers
    for mimetype in ("application/json", "application/vnd.elasticsearch+json"):
        assert isinstance(chosen.get_serializer(mimetype), OrjsonSerializer)
    for mimetype in ("application/x-ndjson", "application/vnd.elasticsearch+x-ndjson"):
        assert isinstance(chosen.get_serializer(mimetype), OrjsonNdjsonSerializer)
