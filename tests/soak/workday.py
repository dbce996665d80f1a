"""A working day against a running `yuqing run`, compressed: the driver shared by the soak test and benchmark.

Everything talks to loopback servers started here: the demo site (which publishes new 12345 work orders
while the day runs), a webhook receiver for the notifications, and the product itself as a real process.
Every loop is bounded by the day's length. What one day needs from the product:
- officers poll the alert feed, the ticket queue and the statistics, and hold SSE streams open;
- department users work their tickets (签收, 办理, 回应, 办结), race each other on the same ticket, act
  with stale versions and missing input, and act on another department's tickets;
- a leader tries to escalate (refused), an admin reads tickets with personal data (each read audited);
- the scheduler crawls the demo site, matches new items, runs the SLA monitor and sends notifications.
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import resource
import shutil
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text

from crawlers.demo.server import DemoSite, _make_handler
from service import clock
from service.audit.models import AuditRecord
from service.db import Database
from service.masking import mask_value
from tests.ledger.builders import WebhookReceiver
from tests.servers.product import Product, running_product

ROOT = Path(__file__).resolve().parents[2]
USERS: dict[str, tuple[str, str | None]] = {
    "officer1": ("officer", None),
    "officer2": ("officer", None),
    "watcher1": ("officer", None),
    "watcher2": ("officer", None),
    "env1": ("department", "env"),
    "env2": ("department", "env"),
    "water1": ("department", "water"),
    "wang": ("leader", None),
    "root": ("admin", None),
}


@dataclass
class DayResult:
    """What the day produced, as seen by the callers, plus what the product recorded."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    # Per route ("GET /api/v1/tickets/{id}"): which requests are slow, not only how slow the slowest are.
    by_route: dict[str, list[float]] = field(default_factory=dict)
    # (seconds into the day when sent, route, seconds taken) of every request: when the slow ones came.
    timeline: list[tuple[float, str, float]] = field(default_factory=list)
    began: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    ticket_actions: int = 0
    leader_denials: int = 0
    reveals_expected: int = 0
    stream_events: int = 0
    published: int = 0
    audited: dict[str, int] = field(default_factory=dict)
    alerts: int = 0
    webhook_messages: int = 0
    locked_lines: list[str] = field(default_factory=list)
    health: dict[str, Any] = field(default_factory=dict)
    # Where the machine's CPU went while the day ran (cores on average): the product, its crawl processes,
    # this driver, and everything else on the machine (neighbours). Empty where /proc is not available.
    cpu: dict[str, float] = field(default_factory=dict)
    # Whether the day ran with the driver and product at a raised CPU priority (see ``shielded``).
    shielded: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self) -> int:
        return len(self.latencies)

    def percentile(self, p: float) -> float:
        return _percentile(self.latencies, p)

    def slowest(self, n: int = 10) -> list[str]:
        """The ``n`` slowest requests: when in the day they were sent, what, and how long they took."""
        ranked = sorted(self.timeline, key=lambda entry: -entry[2])[:n]
        return [f"{took * 1000:.0f} ms {route} at {at:.1f} s" for at, route, took in ranked]

    def routes(self) -> dict[str, dict[str, float]]:
        """Per route: requests, p50 and p99 in ms, slowest first (by p99)."""
        table = {
            route: {
                "n": len(took),
                "p50_ms": round(_percentile(took, 50) * 1000, 1),
                "p99_ms": round(_percentile(took, 99) * 1000, 1),
                "max_ms": round(max(took) * 1000, 1),
            }
            for route, took in self.by_route.items()
        }
        return dict(sorted(table.items(), key=lambda kv: -kv[1]["p99_ms"]))

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 1),
            "requests": self.requests(),
            "requests_per_second": round(self.requests() / self.seconds, 1) if self.seconds else 0,
            "p50_ms": round(statistics.median(self.latencies) * 1000, 1) if self.latencies else None,
            "p99_ms": round(self.percentile(99) * 1000, 1),
            "max_ms": round(max(self.latencies, default=0) * 1000, 1),
            "statuses": dict(sorted(self.statuses.items())),
            "ticket_actions": self.ticket_actions,
            "audited": self.audited,
            "reveals_expected": self.reveals_expected,
            "stream_events": self.stream_events,
            "published": self.published,
            "alerts": self.alerts,
            "webhook_messages": self.webhook_messages,
            "machine": f"{platform.machine()} {_cpus()} CPU, Python {platform.python_version()}",
            "cpu_cores_used": self.cpu,
            "shielded": self.shielded,
        }


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


_ID = re.compile(r"/\d+(?=/|$)")


def route_of(method: str, path: str) -> str:
    """``GET /api/v1/tickets/{id}`` for ``GET /api/v1/tickets/17?x=1``."""
    return f"{method} {_ID.sub('/{id}', path.split('?')[0])}"


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# -- the machine -------------------------------------------------------------------------------------

# How much the day's processes are raised above the rest of the machine when that is allowed (root or
# CAP_SYS_NICE): on a CI box shared with other jobs, the figures then measure this product, not the
# neighbours' load. Everything the day starts inherits it: the product, its threads, its crawl processes
# (which the product starts 10 lower), and, on PostgreSQL, the server processes serving the day's database.
SHIELD = 19


@contextmanager
def shielded() -> Iterator[bool]:
    """Raise this thread's CPU priority (inherited by the threads and processes it starts) if allowed."""
    try:
        os.nice(-SHIELD)
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        os.nice(SHIELD)


def shield_database(db: Database) -> None:
    """PostgreSQL serves each connection from its own process: raise those serving the day's database too."""
    if db.engine.dialect.name != "postgresql":
        return
    with db.engine.connect() as conn:
        pids = list(conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars())
    for pid in pids:
        with suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, -SHIELD)


@contextmanager
def _unshielded() -> Iterator[bool]:
    yield False


_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy() -> float:
    """CPU-seconds all cores spent busy since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / _HZ  # minus idle and iowait


def _process_cpu(pid: int) -> tuple[float, float]:
    """(own, waited-for children) CPU-seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _HZ, (int(fields[13]) + int(fields[14])) / _HZ


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def cpu_accounting(pid: int, day: DayResult) -> Iterator[None]:
    """Fill ``day.cpu`` with the cores used on average while the block ran, by whom."""
    try:
        began = (time.monotonic(), _machine_busy(), _process_cpu(pid), _own_cpu())
    except (OSError, ValueError, IndexError):
        yield
        return
    yield
    try:
        ended = (time.monotonic(), _machine_busy(), _process_cpu(pid), _own_cpu())
    except (OSError, ValueError, IndexError):
        return
    wall = ended[0] - began[0]
    machine = ended[1] - began[1]
    product = ended[2][0] - began[2][0]
    crawls = ended[2][1] - began[2][1]
    driver = ended[3] - began[3]
    day.cpu = {
        name: round(value / wall, 2)
        for name, value in {
            "machine": machine,
            "product": product,
            "crawl_processes": crawls,
            "driver": driver,
            "neighbours": max(0.0, machine - product - crawls - driver),
        }.items()
    }


# -- the loopback world ------------------------------------------------------------------------------


@contextmanager
def demo_site(publish_every: float) -> Iterator[tuple[DemoSite, str]]:
    """The bundled demo site, publishing a new 12345 work order every ``publish_every`` seconds."""
    site = DemoSite(clock.now(), live_interval=publish_every)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(site))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def write_config(config_dir: Path, site_url: str, webhook_url: str, *, crawl_interval: str) -> None:
    """The default config with the demo hotline as the one source, minute-scale deadlines, a webhook."""
    config_dir.mkdir(parents=True, exist_ok=True)
    for name in ("departments.yaml", "holidays.yaml"):
        shutil.copy(ROOT / "config" / name, config_dir / name)
    (config_dir / "sources.yaml").write_text(
        f"""crawl: {{autothrottle: false, download_delay: 0, timeout: 10, retries: 1}}
sources:
  - id: demo-12345
    name: 示例市12345热线
    channel: hotline
    type: html
    start_urls: ["{site_url}/12345/list_1.html"]
    encoding: gbk
    interval: {crawl_interval}
    max_pages: 5
    list: {{items: "ul.orders > li", url: "a::attr(href)", next: "a.next::attr(href)"}}
    fields:
      external_id: "label:工单编号"
      title: "td.title"
      content: "td.content"
      published_at: "label:受理时间"
      department: "label:承办单位"
      status: "label:办理状态"
      reply: "td.reply"
      replied_at: "label:答复时间"
""",
        encoding="utf-8",
    )
    # Deadlines in minutes, so the SLA monitor warns and flags breaches while the day runs.
    minutes = "{acknowledge: 2m, handle: 6m, respond: 8m}"
    (config_dir / "sla.yaml").write_text(
        "warn_at: 0.5\npolicies:\n" + "".join(f"  {s}: {minutes}\n" for s in ("critical", "major", "normal", "minor")),
        encoding="utf-8",
    )
    (config_dir / "settings.yaml").write_text(
        f"""scheduler: {{match_interval_seconds: 10, sla_interval_seconds: 5}}
alerts: {{stream_poll_seconds: 0.5}}
notifications:
  delivery_interval_seconds: 3
  channels:
    hook: {{type: webhook, url: "{webhook_url}", secret: "soak-secret-0123456789", timeout: 5}}
  routes:
    - {{channels: [hook]}}
""",
        encoding="utf-8",
    )


# -- the callers -------------------------------------------------------------------------------------


class Caller:
    """One person at a keyboard: a client, a token, and every answer recorded in the day's result."""

    def __init__(self, product: Product, username: str, day: DayResult, stop: threading.Event) -> None:
        self.client = httpx.Client(base_url=product.base, timeout=60)
        self.client.headers["Authorization"] = f"Bearer {product.token(username, client=self.client)}"
        self.day = day
        self.stop = stop
        self.random = random.Random(username)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        began = time.monotonic()
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            with self.day._lock:
                self.day.server_errors.append(f"{method} {path}: {exc!r}")
            return None
        took = time.monotonic() - began
        with self.day._lock:
            self.day.latencies.append(took)
            self.day.by_route.setdefault(route_of(method, path), []).append(took)
            self.day.timeline.append((began - self.day.began, route_of(method, path), took))
            self.day.statuses[response.status_code] += 1
            if response.status_code >= 500:
                self.day.server_errors.append(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response

    def pause(self, low: float, high: float) -> None:
        self.stop.wait(self.random.uniform(low, high))


def officer(caller: Caller) -> None:
    after = 0
    while not caller.stop.is_set():
        feed = caller.call("GET", "/api/v1/alerts", params={"after": after, "size": 50})
        if feed is not None and feed.status_code == 200 and feed.json()["results"]:
            after = feed.json()["results"][-1]["id"]
        caller.call("GET", "/api/v1/tickets", params={"size": 50, "overdue": caller.random.random() < 0.3})
        if caller.random.random() < 0.2:
            caller.call("GET", "/api/v1/stats")
        caller.pause(0.5, 1.5)


def watcher(caller: Caller) -> None:
    """An officer with the live feed open for the whole day (reconnecting if it drops)."""
    while not caller.stop.is_set():
        try:
            with caller.client.stream("GET", "/api/v1/alerts/stream", timeout=httpx.Timeout(60, read=5)) as r:
                if r.status_code >= 500:
                    caller.day.server_errors.append(f"stream: {r.status_code}")
                    return
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        with caller.day._lock:
                            caller.day.stream_events += 1
                    if caller.stop.is_set():
                        return
        except httpx.ReadTimeout:
            continue  # keep-alives come every 15 s; a quiet read just reconnects
        except httpx.HTTPError as exc:
            caller.day.server_errors.append(f"stream: {exc!r}")
            caller.pause(0.5, 1.0)


_NEXT = {"new": "acknowledge", "acknowledged": "handle", "handled": "respond", "responded": "close"}


def _body(action: str, version: int) -> dict[str, Any]:
    body: dict[str, Any] = {"action": action, "version": version, "note": "浸泡测试"}
    if action == "handle":
        body["result"] = "已现场核查并整改"
    if action == "respond":
        body["response_url"] = "https://www.example.gov.cn/reply/1"
    return body


def department(caller: Caller, other_department_ids: Callable[[], list[int]]) -> None:
    """Work the department's open tickets; now and then a stale version, missing input or a foreign ticket."""
    while not caller.stop.is_set():
        open_statuses = "new,acknowledged,handled,responded"
        listing = caller.call("GET", "/api/v1/tickets", params={"size": 20, "status": open_statuses})
        tickets = listing.json()["results"] if listing is not None and listing.status_code == 200 else []
        if tickets:
            # Both users of a department pick from the oldest few: they race on the same ticket.
            ticket = caller.random.choice(tickets[:3])
            detail = caller.call("GET", f"/api/v1/tickets/{ticket['id']}")
            if detail is not None and detail.status_code == 200:
                current = detail.json()
                action = _NEXT.get(current["status"], "acknowledge")
                roll = caller.random.random()
                if roll < 0.15:
                    body = _body(action, current["version"] - 1 if current["version"] > 1 else 99)  # 409
                elif roll < 0.25:
                    body = {"action": "respond", "version": current["version"]}  # 422: no response_url
                else:
                    body = _body(action, current["version"])
                if caller.call("POST", f"/api/v1/tickets/{ticket['id']}/actions", json=body) is not None:
                    with caller.day._lock:
                        caller.day.ticket_actions += 1
        foreign = other_department_ids()
        if foreign and caller.random.random() < 0.2:
            target = caller.random.choice(foreign)
            if caller.call("POST", f"/api/v1/tickets/{target}/actions", json=_body("acknowledge", 1)) is not None:
                with caller.day._lock:
                    caller.day.ticket_actions += 1  # 404, audited as a denial
        caller.pause(0.5, 1.5)


def leader(caller: Caller, env_ids: Callable[[], list[int]]) -> None:
    while not caller.stop.is_set():
        caller.call("GET", "/api/v1/stats")
        ids = env_ids()
        if ids and caller.random.random() < 0.3:
            response = caller.call("POST", f"/api/v1/tickets/{ids[0]}/actions", json=_body("escalate", 1))
            if response is not None and response.status_code == 403:
                with caller.day._lock:
                    caller.day.leader_denials += 1
        caller.pause(1.0, 2.0)


def admin(caller: Caller, env_ids: Callable[[], list[int]]) -> None:
    """Reads tickets unmasked; every answer that shows personal data must leave one reveal record."""
    while not caller.stop.is_set():
        ids = env_ids()
        paths = ["/api/v1/tickets?size=20"] + ([f"/api/v1/tickets/{caller.random.choice(ids)}"] if ids else [])
        for path in paths:
            response = caller.call("GET", path)
            if response is not None and response.status_code == 200:
                body = response.json()
                if mask_value(body) != body:
                    with caller.day._lock:
                        caller.day.reveals_expected += 1
        caller.pause(1.0, 2.0)


# -- the day -----------------------------------------------------------------------------------------


def _ids_of(product: Product, department: str, *, shield: bool = False) -> Callable[[], list[int]]:
    """Ticket ids of one department, read straight from the database (a second office's view).

    ``shield``: also raise the database server processes serving the day (see ``shield_database``).
    """
    db = Database(product.database_url)
    cache: dict[str, Any] = {"at": 0.0, "ids": []}
    lock = threading.Lock()

    def ids() -> list[int]:
        with lock:
            if time.monotonic() - cache["at"] > 3:
                from service.ledger.models import Ticket

                with db.session() as s:
                    cache["ids"] = list(
                        s.execute(select(Ticket.id).where(Ticket.department == department).limit(50)).scalars()
                    )
                cache["at"] = time.monotonic()
                if shield:  # the product's pool opens connections (server processes) as the day goes
                    shield_database(db)
            return list(cache["ids"])

    ids.db = db  # type: ignore[attr-defined]
    return ids


def run_day(
    tmp_path: Path,
    database_url: str,
    *,
    seconds: float,
    publish_every: float,
    crawl_interval: str,
    shield: bool = True,
    start_together: threading.Barrier | None = None,
) -> DayResult:
    """Run the product for ``seconds`` under a working day's traffic; what happened.

    ``shield``: raise the day's CPU priority above the machine's other work where allowed (``shielded``).
    ``start_together``: days run side by side begin their traffic at once, every product up and every caller
    signed in, so one day's start-up is not measured as the other's slow requests.
    """
    receiver = WebhookReceiver()
    receiver.start()
    try:
        with demo_site(publish_every) as (site, site_url), shielded() if shield else _unshielded() as raised:
            write_config(tmp_path / "config", site_url, receiver.url, crawl_interval=crawl_interval)
            with running_product(tmp_path, database_url, command="run", users=USERS) as product:
                day = _drive(product, site, seconds=seconds, shield=raised, start_together=start_together)
                day.shielded = raised
                day.health = _health(product)
            day.locked_lines = [line for line in product.log_text().splitlines() if "database is locked" in line]
            day.webhook_messages = len(receiver.received)
            _count_records(day, database_url)
            return day
    except BaseException:
        if start_together is not None:
            start_together.abort()  # the other day stops waiting for this one
        raise
    finally:
        receiver.stop()


def _drive(
    product: Product, site: DemoSite, *, seconds: float, shield: bool, start_together: threading.Barrier | None
) -> DayResult:
    day = DayResult(seconds=seconds)
    stop = threading.Event()
    env_ids = _ids_of(product, "env", shield=shield)
    callers: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
    for name in ("officer1", "officer2"):
        callers.append((officer, (Caller(product, name, day, stop),)))
    for name in ("watcher1", "watcher2"):
        callers.append((watcher, (Caller(product, name, day, stop),)))
    for name in ("env1", "env2"):
        callers.append((department, (Caller(product, name, day, stop), lambda: [])))
    callers.append((department, (Caller(product, "water1", day, stop), env_ids)))
    callers.append((leader, (Caller(product, "wang", day, stop), env_ids)))
    callers.append((admin, (Caller(product, "root", day, stop), env_ids)))
    day.by_route.clear()
    day.timeline.clear()
    day.latencies.clear()  # sign-ins are slow on purpose (argon2): the day is measured from here
    day.statuses.clear()

    def arrive(fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        # People sit down over the first seconds, not within the same millisecond: a burst of nine first
        # requests at once would measure the start-up, not the day.
        args[0].pause(0.0, 3.0)
        fn(*args)

    threads = [threading.Thread(target=arrive, args=(fn, args), daemon=True) for fn, args in callers]
    if start_together is not None:
        start_together.wait(timeout=600)
    began = day.began = time.monotonic()
    with cpu_accounting(product.proc.pid, day):
        for t in threads:
            t.start()
        stop.wait(seconds)
        stop.set()
        for t in threads:
            t.join(timeout=90)
    day.seconds = time.monotonic() - began
    day.published = site.live_published  # the site publishes on its own clock
    for _, args in callers:
        args[0].client.close()
    env_ids.db.dispose()  # type: ignore[attr-defined]
    return day


def _health(product: Product) -> dict[str, Any]:
    try:
        response = httpx.get(f"{product.base}/healthz", timeout=30)
        return {"status_code": response.status_code, **response.json()}
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        return {"error": repr(exc)}


def _count_records(day: DayResult, database_url: str) -> None:
    from service.feed.models import Alert

    db = Database(database_url)
    try:
        with db.session() as s:
            rows = s.execute(select(AuditRecord.event_type, func.count()).group_by(AuditRecord.event_type)).all()
            day.audited = {event: count for event, count in rows}  # noqa: C416 - rows are Row tuples
            day.alerts = s.scalar(select(func.count()).select_from(Alert)) or 0
    finally:
        db.dispose()
