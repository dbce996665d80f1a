"""Session fixtures for real servers. A missing prerequisite skips on a developer machine, fails under CI=true."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

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
    """Store settings pointing at the session server with an index prefix of this test's own."""
    from elasticsearch import Elasticsearch

    prefix = f"t{uuid.uuid4().hex[:12]}"
    yield ElasticsearchSettings(
        hosts=[es_server.url],
        username=es_server.username,
        password=es_server.password,
        index_prefix=prefix,
        bulk_initial_backoff=0.05,
    )
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
