"""Session fixtures for real servers. A missing prerequisite skips on a developer machine, fails under CI=true."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from service.settings import ElasticsearchSettings
from tests.servers.elasticsearch import ElasticsearchServer, elasticsearch_server
from tests.servers.postgres import postgres_server
from tests.servers.process import ServerUnavailable


def in_ci() -> bool:
    """CI must never quietly skip what it exists to test; CI=1, CI=true, CI=yes (any case) all count."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def unavailable(reason: str) -> None:
    """Skip the test that needs a server, or fail it loudly under CI."""
    if in_ci():
        pytest.fail(f"CI=true and a test server is unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def es_settings_for(es_server: ElasticsearchServer, prefix: str) -> ElasticsearchSettings:
    """The store's settings for the test node, its indices named ``prefix-*``."""
    return ElasticsearchSettings(
        hosts=[es_server.url],
        username=es_server.username,
        password=es_server.password,
        index_prefix=prefix,
        bulk_initial_backoff=0.05,
    )


@pytest.fixture(scope="session")
def es_server() -> Iterator[ElasticsearchServer]:
    """A real Elasticsearch 8 (security on, basic auth) for the whole session."""
    try:
        with elasticsearch_server() as server:
            yield server
    except ServerUnavailable as exc:
        unavailable(f"Elasticsearch: {exc}")


@pytest.fixture
def es_settings(es_server: ElasticsearchServer) -> Iterator[ElasticsearchSettings]:
    """Store settings pointing at the session server with an index prefix of this test's own.

    For tests of the store's own index life cycle (templates, mappings, a missing index); app-level tests
    use ``shared_es_settings``.
    """
    prefix = f"t{uuid.uuid4().hex[:12]}"
    yield es_settings_for(es_server, prefix)
    client = Elasticsearch(es_server.url, basic_auth=(es_server.username, es_server.password))
    try:
        client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)
        client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-items")
    finally:
        client.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A ``postgresql+psycopg://`` URL of an empty database on a throwaway local cluster."""
    try:
        with postgres_server() as url:
            yield url
    except ServerUnavailable as exc:
        unavailable(f"PostgreSQL: {exc}")


def empty(client: Elasticsearch, index: str) -> None:
    """Delete every document of ``index`` (the test distribution has no delete-by-query: no reindex module)."""
    for _attempt in range(20):  # a rejected delete (the test node's write queue holds one) is tried again
        client.options(ignore_status=404).indices.refresh(index=index, ignore_unavailable=True)
        hits = client.options(ignore_status=404).search(
            index=index, query={"match_all": {}}, source=False, size=5000, ignore_unavailable=True
        )
        rows = hits.get("hits", {}).get("hits", [])
        if not rows:
            return
        client.bulk(operations=[{"delete": {"_index": h["_index"], "_id": h["_id"]}} for h in rows], refresh=True)
    raise AssertionError(f"{index} could not be emptied")


@pytest.fixture(scope="session")
def es_admin(es_server: ElasticsearchServer) -> Iterator[Elasticsearch]:
    """A client of the session server for tests' own set-up and clean-up."""
    client = Elasticsearch(es_server.url, basic_auth=(es_server.username, es_server.password))
    yield client
    client.close()


@pytest.fixture(scope="session")
def _shared_es_prefix(es_admin: Elasticsearch) -> Iterator[str]:
    prefix = f"s{uuid.uuid4().hex[:12]}"
    yield prefix
    es_admin.indices.delete(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)
    es_admin.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-items")


@pytest.fixture
def shared_es_settings(
    es_server: ElasticsearchServer, es_admin: Elasticsearch, _shared_es_prefix: str
) -> ElasticsearchSettings:
    """Store settings on one index prefix for the whole session, emptied before each test.

    Creating and deleting a test's own indices costs seconds of cluster-state updates on a loaded 2-core
    machine; emptying the shared ones costs a search and a bulk delete. Tests of one session run one after the
    other, so each still sees only its own items.
    """
    prefix = _shared_es_prefix
    empty(es_admin, f"{prefix}-items,{prefix}-deadletter")
    return es_settings_for(es_server, prefix)
