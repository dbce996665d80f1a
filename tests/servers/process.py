"""What the test servers share: a cache dir, free ports, an unprivileged user, process start and stop."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# One account for every server that refuses root (Elasticsearch, PostgreSQL).
TEST_USER = "yuqing-test"


class ServerUnavailable(Exception):
    """A prerequisite (Java, Maven, PostgreSQL binaries) is missing or the server would not start."""


def cache_dir() -> Path:
    """Where downloads and unpacked distributions are kept between runs."""
    base = os.environ.get("YUQING_TEST_CACHE") or Path.home() / ".cache" / "yuqing-test"
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class RunAs:
    """The account a server runs under: the current user, or TEST_USER when we are root."""

    uid: int
    gid: int
    name: str
    home: Path

    @property
    def switches(self) -> bool:
        """Whether starting a server means dropping root."""
        return self.uid != os.getuid()

    def popen_kwargs(self) -> dict:
        """subprocess arguments that run the child as this account."""
        if not self.switches:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def chown_tree(self, path: Path) -> None:
        """Hand a directory the server writes to over to this account."""
        if not self.switches:
            return
        for root, dirs, files in os.walk(path):
            os.chown(root, self.uid, self.gid)
            for name in dirs + files:
                os.chown(os.path.join(root, name), self.uid, self.gid, follow_symlinks=False)


def run_as() -> RunAs:
    """The account to run servers as; creates the unprivileged system user when we are root."""
    if os.getuid() != 0:
        entry = pwd.getpwuid(os.getuid())
        return RunAs(entry.pw_uid, entry.pw_gid, entry.pw_name, Path(entry.pw_dir))
    try:
        entry = pwd.getpwnam(TEST_USER)
    except KeyError:
        useradd = shutil.which("useradd")
        if not useradd:
            raise ServerUnavailable(f"running as root and cannot create user {TEST_USER}: no useradd") from None
        subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
            check=False,
            capture_output=True,
        )
        try:
            entry = pwd.getpwnam(TEST_USER)
        except KeyError:
            raise ServerUnavailable(f"could not create the unprivileged user {TEST_USER}") from None
    return RunAs(entry.pw_uid, entry.pw_gid, entry.pw_name, Path("/nonexistent"))


def link_or_copy_tree(src: Path, dst: Path) -> None:
    """Copy a read-only distribution tree cheaply: hard links where the filesystem allows."""

    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link, symlinks=True)


def stop_process_group(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM the whole process group (launchers fork the real server), SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # The launcher may exit before its child JVM: give the group a moment, then make sure.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def tail(path: Path, lines: int = 40) -> str:
    """The end of a log file, for an error message that says why a server did not come up."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])
