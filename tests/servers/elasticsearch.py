"""A real single-node Elasticsearch for tests: the integ-test distribution from Maven Central.

The zip holds the server with only the transport modules and x-pack core/security (no bundled JDK, no
painless, ingest, percolator or ILM). It is fetched once with Maven and kept in the cache dir; each test
session runs a fresh copy with security on (basic auth, HTTP without TLS on loopback).

Set ``YUQING_TEST_ES_URL`` (plus ``YUQING_TEST_ES_USERNAME``/``YUQING_TEST_ES_PASSWORD``) to use a
server you already run instead.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.servers.process import (
    ServerUnavailable,
    cache_dir,
    free_port,
    link_or_copy_tree,
    run_as,
    stop_process_group,
    tail,
)

# The newest 8.x on Maven Central when this was written; keep the major equal to the Python client's.
ES_VERSION = os.environ.get("YUQING_TEST_ES_VERSION", "8.19.21")
ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
# dependency:copy of Maven's default plugin version (2.8) predates some fixes; pin a current one.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
USERNAME = "yuqing"
START_TIMEOUT = 180.0
MAX_CONTENT_MB = 4


@dataclass(frozen=True)
class ElasticsearchServer:
    """How tests reach the server."""

    url: str
    username: str
    password: str
    version: str
    # The launcher's process id (the node runs in its session); None for an external server.
    pid: int | None = None


def _add_superuser(home: Path, run: Path, env: dict[str, str], password: str, user: Any) -> None:
    """The tests' basic-auth superuser in the node's file realm (before the node starts)."""
    added = subprocess.run(
        [str(home / "bin" / "elasticsearch-users"), "useradd", USERNAME, "-p", password, "-r", "superuser"],
        env=env,
        cwd=run,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **user.popen_kwargs(),
    )
    if added.returncode != 0:
        raise ServerUnavailable(f"elasticsearch-users failed: {added.stdout}{added.stderr}")


def java_home() -> Path:
    """The JDK to run Elasticsearch with: ES_JAVA_HOME, JAVA_HOME, else the one `java` on PATH is in."""
    for var in ("ES_JAVA_HOME", "JAVA_HOME"):
        value = os.environ.get(var)
        if value and (Path(value) / "bin" / "java").exists():
            return Path(value)
    java = shutil.which("java")
    if not java:
        raise ServerUnavailable("Elasticsearch needs Java 17+: no `java` on PATH (run .ci/install-deps.sh)")
    return Path(os.path.realpath(java)).parent.parent


def _download(version: str, dest: Path) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise ServerUnavailable(
            f"Elasticsearch {version} is not cached at {dest} and Maven (`mvn`) is missing to fetch it"
        )
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        cmd = [
            mvn,
            "-B",
            "-q",
            f"{DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact={ARTIFACT.format(version=version)}",
            f"-DoutputDirectory={tmp}",
        ]
        # A scratch cwd: Maven must not pick up some pom.xml from wherever pytest was started.
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=900, check=False)
        got = Path(tmp) / f"elasticsearch-{version}.zip"
        if proc.returncode != 0 or not got.exists():
            raise ServerUnavailable(
                f"mvn could not fetch {ARTIFACT.format(version=version)}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
        os.replace(got, dest)


def _unpack(zip_path: Path, dest: Path) -> None:
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp, zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = Path(tmp) / info.filename
            zf.extract(info, tmp)
            mode = info.external_attr >> 16
            # zipfile drops Unix modes; bin/ scripts must stay executable.
            if mode and not info.is_dir():
                target.chmod(mode & 0o777)
        (top,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        for path in [top, *top.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        os.replace(top, dest)


def distribution(version: str = ES_VERSION) -> Path:
    """The unpacked distribution in the cache dir, fetched and unpacked on first use."""
    root = cache_dir()
    home = root / f"elasticsearch-{version}"
    with open(root / ".elasticsearch.lock", "w") as lock:
        # Two sessions on one machine must not unpack into each other.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (home / "bin" / "elasticsearch").exists():
            return home
        zip_path = root / f"elasticsearch-{version}.zip"
        if not zip_path.exists():
            _download(version, zip_path)
        _unpack(zip_path, home)
    return home


def _modules(home: Path) -> set[str]:
    return {p.name for p in (home / "modules").iterdir()}


def _config(home: Path, run: Path, http_port: int, transport_port: int, write_queue_size: int | None) -> str:
    lines = [
        "cluster.name: yuqing-test",
        "node.name: yuqing-test-node",
        f"path.data: {run / 'data'}",
        f"path.logs: {run / 'logs'}",
        "network.host: 127.0.0.1",
        f"http.port: {http_port}",
        f"transport.port: {transport_port}",
        "discovery.type: single-node",
        # Developer disks are often fuller than ES's 85/90/95% defaults; never go read-only in tests.
        "cluster.routing.allocation.disk.threshold_enabled: false",
        "xpack.security.enabled: true",
        "xpack.security.http.ssl.enabled: false",
        "xpack.security.transport.ssl.enabled: false",
        "action.destructive_requires_name: false",
        # Small enough that a test can send a request over it (the store must then split, not lose).
        f"http.max_content_length: {MAX_CONTENT_MB}mb",
    ]
    if write_queue_size is not None:
        # One write thread with a queue of one: concurrent bulks get real per-document 429s, so the
        # store's retry path runs against the real server. Everything else must cope with it too.
        lines += ["node.processors: 1", f"thread_pool.write.queue_size: {write_queue_size}"]
    modules = _modules(home)
    if "x-pack-ml" in modules:
        lines.append("xpack.ml.enabled: false")
    if "ingest-geoip" in modules:
        lines.append("ingest.geoip.downloader.enabled: false")
    return "\n".join(lines) + "\n"


# The JIT's quick tier only (C1): a test node lives minutes and serves small requests, where the optimising
# compiler's threads cost more CPU than they ever win back. Measured on the 2-core machine, start-up and a
# little indexing and search: 50 s of CPU per node with both tiers, 30 s with C1 only, and no slower.
# The command-line tools (the launcher, elasticsearch-users) are JVMs too.
JIT = "-XX:TieredStopAtLevel=1"


def _env(conf: Path, run: Path, heap: str = "512m") -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(run),
        "ES_JAVA_HOME": str(java_home()),
        "ES_PATH_CONF": str(conf),
        "ES_TMPDIR": str(run / "tmp"),
        "ES_JAVA_OPTS": f"-Xms256m -Xmx{heap} -XX:-HeapDumpOnOutOfMemoryError -XX:-UsePerfData {JIT}",
        "CLI_JAVA_OPTS": JIT,
    }


def _wait_ready(url: str, auth: tuple[str, str], proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerUnavailable(f"Elasticsearch exited with {proc.returncode}:\n{tail(log)}")
        try:
            resp = httpx.get(f"{url}/_cluster/health", params={"wait_for_status": "yellow", "timeout": "1s"}, auth=auth)
            if resp.status_code == 200 and resp.json().get("status") in ("green", "yellow"):
                return
            last = f"HTTP {resp.status_code}: {resp.text[:300]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise ServerUnavailable(f"Elasticsearch not ready after {START_TIMEOUT:.0f}s ({last}):\n{tail(log)}")


def _node_dir(cached: Path, run: Path, user: Any) -> Path:
    """Lay out one node's run directory (config copy, data, logs, tmp); the distribution home it runs from."""
    home = cached
    if user.switches:
        # The cache may sit in root's home, which the server's user cannot enter: give it its own
        # copy (hard links, so no 100 MB copy).
        home = run / "home"
        link_or_copy_tree(cached, home)
    shutil.copytree(home / "config", run / "config")
    for sub in ("data", "logs", "tmp"):
        (run / sub).mkdir()
    return home


def _launch(home: Path, run: Path, env: dict[str, str], user: Any) -> subprocess.Popen:
    """Start the node in its own session (so it can be stopped as a group), output to logs/console.log."""
    with open(run / "logs" / "console.log", "wb") as out:
        return subprocess.Popen(
            [str(home / "bin" / "elasticsearch")],
            env=env,
            cwd=run,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **user.popen_kwargs(),
        )


@contextmanager
def elasticsearch_server(
    version: str = ES_VERSION, write_queue_size: int | None = 1, heap: str = "512m"
) -> Iterator[ElasticsearchServer]:
    """Start a throwaway single-node server with basic auth; stop and delete it on exit.

    ``heap`` is the JVM's maximum heap (benchmarks at millions of items give it more)."""
    external = os.environ.get("YUQING_TEST_ES_URL")
    if external:
        yield ElasticsearchServer(
            url=external.rstrip("/"),
            username=os.environ.get("YUQING_TEST_ES_USERNAME", "elastic"),
            password=os.environ.get("YUQING_TEST_ES_PASSWORD", ""),
            version="external",
        )
        return
    java_home()  # fail early with the clear reason, before a 100 MB download
    cached = distribution(version)
    user = run_as()
    run = Path(tempfile.mkdtemp(prefix="yuqing-es-"))
    proc: subprocess.Popen | None = None
    try:
        home = _node_dir(cached, run, user)
        http_port, transport_port = free_port(), free_port()
        (run / "config" / "elasticsearch.yml").write_text(
            _config(home, run, http_port, transport_port, write_queue_size), encoding="utf-8"
        )
        user.chown_tree(run)
        env = _env(run / "config", run, heap)
        password = secrets.token_urlsafe(18)
        _add_superuser(home, run, env, password, user)
        log = run / "logs" / "console.log"
        proc = _launch(home, run, env, user)
        url = f"http://127.0.0.1:{http_port}"
        _wait_ready(url, (USERNAME, password), proc, log)
        yield ElasticsearchServer(url=url, username=USERNAME, password=password, version=version, pid=proc.pid)
    finally:
        if proc is not None:
            stop_process_group(proc)
        shutil.rmtree(run, ignore_errors=True)


@dataclass(frozen=True)
class ElasticsearchCluster:
    """A running multi-node cluster: one URL per node, the same credentials on every node."""

    urls: list[str]
    username: str
    password: str
    pids: list[int]


def _node_config(run: Path, name: str, http_port: int, transport_port: int, seeds: list[int], names: list[str]) -> str:
    return (
        "\n".join(
            [
                "cluster.name: yuqing-test-cluster",
                f"node.name: {name}",
                f"path.data: {run / 'data'}",
                f"path.logs: {run / 'logs'}",
                "network.host: 127.0.0.1",
                f"http.port: {http_port}",
                f"transport.port: {transport_port}",
                f"discovery.seed_hosts: [{', '.join(f'127.0.0.1:{p}' for p in seeds)}]",
                f"cluster.initial_master_nodes: [{', '.join(names)}]",
                "cluster.routing.allocation.disk.threshold_enabled: false",
                # Security on (basic auth) as in production; transport TLS is a production-mode check only,
                # and nodes bound to loopback run in development mode.
                "xpack.security.enabled: true",
                "xpack.security.http.ssl.enabled: false",
                "xpack.security.transport.ssl.enabled: false",
                "action.destructive_requires_name: false",
                "node.processors: 1",
            ]
        )
        + "\n"
    )


@contextmanager
def elasticsearch_cluster(
    nodes: int = 3, version: str = ES_VERSION, heap: str = "256m"
) -> Iterator[ElasticsearchCluster]:
    """Start ``nodes`` nodes of the cached integ-test distribution on loopback as one cluster (small heaps:
    the tests run on 2 cores), wait for all of them to join; stop and delete them on exit."""
    java_home()
    cached = distribution(version)
    user = run_as()
    root = Path(tempfile.mkdtemp(prefix="yuqing-escluster-"))
    root.chmod(0o755)  # the nodes' user must reach its own directory inside
    procs: list[subprocess.Popen] = []
    names = [f"node-{n}" for n in range(1, nodes + 1)]
    http_ports = [free_port() for _ in names]
    transport_ports = [free_port() for _ in names]
    password = secrets.token_urlsafe(18)
    try:
        for index, name in enumerate(names):
            run = root / name
            run.mkdir()
            home = _node_dir(cached, run, user)
            (run / "config" / "elasticsearch.yml").write_text(
                _node_config(run, name, http_ports[index], transport_ports[index], transport_ports, names),
                encoding="utf-8",
            )
            env = {**_env(run / "config", run), "ES_JAVA_OPTS": f"-Xms{heap} -Xmx{heap} -XX:-UsePerfData {JIT}"}
            if index == 0:
                user.chown_tree(run)
                _add_superuser(home, run, env, password, user)
            else:
                # The same file realm on every node: copied from the first (a JVM start saved per node).
                for realm in ("users", "users_roles"):
                    shutil.copy2(root / names[0] / "config" / realm, run / "config" / realm)
                user.chown_tree(run)
            procs.append(_launch(home, run, env, user))
        urls = [f"http://127.0.0.1:{port}" for port in http_ports]
        auth = (USERNAME, password)
        deadline = time.monotonic() + START_TIMEOUT * 2
        last = ""
        while True:
            for proc, name in zip(procs, names, strict=True):
                if proc.poll() is not None:
                    raise ServerUnavailable(
                        f"{name} exited with {proc.returncode}:\n{tail(root / name / 'logs' / 'console.log')}"
                    )
            try:
                resp = httpx.get(
                    f"{urls[0]}/_cluster/health",
                    params={"wait_for_nodes": str(nodes), "wait_for_status": "green", "timeout": "1s"},
                    auth=auth,
                )
                if resp.status_code == 200 and resp.json().get("number_of_nodes") == nodes:
                    break
                last = f"HTTP {resp.status_code}: {resp.text[:300]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise ServerUnavailable(
                    f"cluster not formed ({last}):\n{tail(root / names[0] / 'logs' / 'console.log')}"
                )
            time.sleep(1)
        yield ElasticsearchCluster(urls=urls, username=USERNAME, password=password, pids=[p.pid for p in procs])
    finally:
        for proc in procs:
            stop_process_group(proc)
        shutil.rmtree(root, ignore_errors=True)
