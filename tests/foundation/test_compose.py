"""docker-compose.yml is the production shape and passes `docker compose config`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers.fixtures import in_ci

ROOT = Path(__file__).resolve().parents[2]


def _compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return probe.returncode == 0


def _config(profile: str) -> dict:
    env = {**os.environ, "ELASTIC_PASSWORD": "x-test-elastic", "POSTGRES_PASSWORD": "x-test-postgres"}
    env.pop("COMPOSE_PROFILES", None)
    result = subprocess.run(
        [
            "docker",
            "compose",
            "-f",
            str(ROOT / "docker-compose.yml"),
            "--profile",
            profile,
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


def _require_compose() -> None:
    if not _compose_available():
        if in_ci():
            pytest.fail("CI=true and `docker compose` is missing (.ci/install-deps.sh builds it)")
        pytest.skip("docker compose plugin not installed (bash .ci/install-deps.sh builds it)")


def test_compose_file_is_valid_and_has_the_one_box_services() -> None:
    _require_compose()
    services = _config("office")
    assert set(services) == {"elasticsearch", "postgres", "init", "api", "scheduler"}
    for name in ("elasticsearch", "postgres", "api", "scheduler"):
        assert "healthcheck" in services[name], name
    assert services["elasticsearch"]["environment"]["xpack.security.enabled"] == "true"
    assert services["api"]["environment"]["YUQING_STORE__BACKEND"] == "elasticsearch"
    # One box: crawling and matching stay in the scheduler process, no task queue.
    assert "YUQING_QUEUE__BACKEND" not in services["scheduler"]["environment"]


def test_compose_production_profile_is_a_cluster_with_workers() -> None:
    """3 Elasticsearch nodes (security, transport TLS), PostgreSQL, API x2 behind a proxy, one scheduler,
    N workers taking crawl and match work from the queue; health checks and volumes on what keeps data."""
    _require_compose()
    services = _config("production")
    assert {"es01", "es02", "es03", "postgres", "cluster-api", "proxy", "cluster-scheduler", "worker"} <= set(services)
    assert not {"elasticsearch", "api", "scheduler"} & set(services)
    nodes = [services[f"es0{n}"] for n in (1, 2, 3)]
    for node in nodes:
        env = node["environment"]
        assert env["cluster.initial_master_nodes"] == "es01,es02,es03"
        assert env["xpack.security.enabled"] == "true"
        assert env["xpack.security.transport.ssl.enabled"] == "true"
        assert "discovery.type" not in env
        assert "healthcheck" in node
        assert any(v["target"] == "/usr/share/elasticsearch/data" for v in node["volumes"])
    assert services["cluster-api"]["deploy"]["replicas"] == 2
    assert services["cluster-scheduler"]["deploy"]["replicas"] == 1
    assert services["worker"]["deploy"]["replicas"] >= 1
    assert services["worker"]["command"][:2] == ["yuqing", "worker"]
    for name in ("postgres", "cluster-api", "proxy", "cluster-scheduler", "worker"):
        assert "healthcheck" in services[name], name
    for name in ("cluster-api", "cluster-scheduler", "worker"):
        env = services[name]["environment"]
        assert env["YUQING_QUEUE__BACKEND"] == "procrastinate"
        assert json.loads(env["YUQING_STORE__ELASTICSEARCH__HOSTS"]) == [
            "http://es01:9200",
            "http://es02:9200",
            "http://es03:9200",
        ]
        assert env["YUQING_STORE__ELASTICSEARCH__NUMBER_OF_REPLICAS"] == "1"
    assert (ROOT / "deploy" / "nginx.conf").exists()


def test_compose_refuses_to_start_without_passwords() -> None:
    if not _compose_available():
        pytest.skip("docker compose plugin not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("ELASTIC_PASSWORD", "POSTGRES_PASSWORD")}
    result = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode != 0
    assert "ELASTIC_PASSWORD" in result.stderr or "POSTGRES_PASSWORD" in result.stderr
