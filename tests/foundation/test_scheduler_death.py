"""A real `yuqing run` process whose scheduler thread dies ends with exit code 1 and says so in Chinese,
and a stop ends the process, even while consoles hold live alert streams open.

Nothing in the product can kill its scheduler on request: the fault is injected from outside the product,
the way Python itself allows. A ``sitecustomize`` module on the child's PYTHONPATH (imported by the
interpreter before anything else) starts a thread that, once the test creates a trigger file, raises
SystemExit inside the APScheduler thread (``PyThreadState_SetAsyncExc``). SystemExit is no ``Exception``,
so nothing in the loop catches it: the thread really ends, as it would from a fatal error, and the
watchdog must notice and stop the process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.servers.product import Product, running_product

# Wide margin: start-up and the watchdog's round on a loaded 2-core machine.
WAIT = 90.0
# Before the fix the process never stopped; a stop must take seconds, with a wide margin for load.
STOP_WAIT = 45.0

KILLER = """
import ctypes, os, threading, time

def _kill_apscheduler_when_asked(trigger):
    while not os.path.exists(trigger):
        time.sleep(0.1)
    while True:
        loop = [t for t in threading.enumerate() if t.name == "APScheduler"]
        if not loop:
            return  # gone: the exception was delivered and the thread ended
        # Delivered when the thread next runs Python code (it wakes at least every heartbeat).
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(loop[0].ident), ctypes.py_object(SystemExit))
        time.sleep(0.2)

_trigger = os.environ.get("TEST_KILL_APSCHEDULER_TRIGGER")
if _trigger:
    threading.Thread(target=_kill_apscheduler_when_asked, args=(_trigger,), daemon=True).start()
"""


@contextlib.contextmanager
def open_alert_stream(product: Product, username: str) -> Iterator[None]:
    """Hold the SSE alert stream open as a console does, reading in the background until it ends."""
    client = httpx.Client(
        base_url=product.base, headers=product.headers(username), timeout=httpx.Timeout(10, read=None)
    )
    with client, client.stream("GET", "/api/v1/alerts/stream") as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines).startswith("retry:")  # the stream is open and served
        reader = threading.Thread(target=lambda: [None for _ in lines], daemon=True)
        reader.start()
        yield
        reader.join(timeout=WAIT)


def test_sigterm_stops_serve_with_a_console_stream_open(tmp_path: Path) -> None:
    """A stop (SIGTERM from systemd or docker) ends the process although consoles hold live streams."""
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    users = {"officer1": ("officer", None)}
    with running_product(tmp_path, database_url, users=users) as product, open_alert_stream(product, "officer1"):
        product.proc.send_signal(signal.SIGTERM)
        try:
            # uvicorn's grace for open connections is 5 s; the stream itself ends within a poll.
            product.proc.wait(timeout=STOP_WAIT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {STOP_WAIT}s after SIGTERM with a stream open") from None
    assert product.proc.returncode in (0, -signal.SIGTERM)


def test_a_run_process_whose_scheduler_thread_dies_exits_1_with_a_chinese_line(tmp_path: Path) -> None:
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(KILLER, encoding="utf-8")
    trigger = tmp_path / "kill-now"
    config = tmp_path / "config"
    config.mkdir()
    # The loop wakes every second (lease heartbeat); the watchdog looks twice a second.
    settings = "scheduler: {heartbeat_seconds: 1, watchdog_seconds: 0.5}\n"
    (config / "settings.yaml").write_text(settings, encoding="utf-8")
    env = {
        "PYTHONPATH": os.pathsep.join(p for p in (str(inject), os.environ.get("PYTHONPATH")) if p),
        "TEST_KILL_APSCHEDULER_TRIGGER": str(trigger),
    }
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    users = {"officer1": ("officer", None)}
    with running_product(tmp_path, database_url, command="run", env=env, users=users) as product:
        assert product.proc.poll() is None
        # An officer has the console open: its live alert stream is a connection that never ends by itself.
        with open_alert_stream(product, "officer1"):
            trigger.touch()
            try:
                code = product.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                tail = product.log_text()[-3000:]
                raise AssertionError(f"still serving {WAIT}s after its scheduler died:\n{tail}") from None
        log = product.log_text()
    assert code == 1, log[-3000:]
    assert "调度线程已停止运行" in log
    assert "调度器已停止，进程退出以便由守护进程重启" in log
