"""A throwaway PostgreSQL cluster for tests: Debian's server binaries, initdb in a temp dir, loopback only.

Set ``YUQING_TEST_POSTGRES_URL`` to use a server you already run instead.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers.process import ServerUnavailable, free_port, run_as, tail

DATABASE = "yuqing_test"
USERNAME = "yuqing"
START_TIMEOUT = 120.0  # initdb and start-up on a loaded 2-core CI machine


def postgres_bin() -> Path:
    """The newest server binaries Debian installed (/usr/lib/postgresql/<major>/bin), or the ones on PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    raise ServerUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found (run .ci/install-deps.sh)")


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throwaway cluster with one database; yields its ``postgresql+psycopg://`` URL."""
    external = os.environ.get("YUQING_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    bindir = postgres_bin()
    user = run_as()
    run = Path(tempfile.mkdtemp(prefix="yuqing-pg-"))
    data, sockets, log = run / "data", run / "sock", run / "postgres.log"
    password = secrets.token_urlsafe(18)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    started = False
    try:
        sockets.mkdir()
        (run / "pwfile").write_text(password + "\n", encoding="utf-8")
        user.chown_tree(run)
        init = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                USERNAME,
                "--pwfile",
                str(run / "pwfile"),
                "--auth-local=trust",
                # The URL carries a password, so the authenticated path is the one tested.
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ],
            env=env,
            cwd=run,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **user.popen_kwargs(),
        )
        if init.returncode != 0:
            raise ServerUnavailable(f"initdb failed: {init.stdout[-2000:]}{init.stderr[-2000:]}")
        port = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sockets} "
            # A test database need not survive a crash: trade durability for speed.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        start = subprocess.run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
            env=env,
            cwd=run,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT + 10,
            check=False,
            **user.popen_kwargs(),
        )
        started = True
        if start.returncode != 0:
            raise ServerUnavailable(f"PostgreSQL did not start: {start.stderr}\n{tail(log)}")
        _create_database(port, password)
        yield f"postgresql+psycopg://{USERNAME}:{password}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if started:
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                env=env,
                cwd=run,
                capture_output=True,
                timeout=60,
                check=False,
                **user.popen_kwargs(),
            )
        shutil.rmtree(run, ignore_errors=True)


def _create_database(port: int, password: str) -> None:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with psycopg.connect(
                host="127.0.0.1", port=port, user=USERNAME, password=password, dbname="postgres", autocommit=True
            ) as conn:
                conn.execute(f"CREATE DATABASE {DATABASE}")
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise ServerUnavailable(f"cannot connect to the test PostgreSQL on port {port}: {exc}") from exc
            time.sleep(0.2)
