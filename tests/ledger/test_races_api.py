"""Races against a real server: one winner, every other caller a 409 with the current version, at once.

Found in use: 20 parallel `acknowledge` calls with one version on one ticket answered 1×200, 2×409, 13×503
and 4×500 (`QueuePool limit of size 5 overflow 10 reached`), some after 60 s.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from service.audit.models import AuditRecord
from service.db import Database
from tests.ledger.builders import make_config, new_ticket
from tests.servers.product import running_product

RACERS = 20
# Generous for a loaded 2-core machine; the failure this guards against took a minute.
ALL_ANSWERED_WITHIN = 30.0


def test_twenty_parallel_acknowledges_one_wins_the_others_get_409(tmp_path: Path, database_url: str) -> None:
    with running_product(tmp_path, database_url, users={"env1": ("department", "env")}) as product:
        db = Database(database_url)
        with db.session() as s:
            ticket_id = new_ticket(s, make_config(), 1).id
        token = product.token("env1")
        start = threading.Barrier(RACERS)
        answers: list[tuple[int, dict, float]] = []
        lock = threading.Lock()

        def racer() -> None:
            with httpx.Client(timeout=120) as client:
                start.wait(timeout=60)
                began = time.monotonic()
                try:
                    response = client.post(
                        f"{product.base}/api/v1/tickets/{ticket_id}/actions",
                        json={"action": "acknowledge", "version": 1, "note": "签收"},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    outcome = (response.status_code, response.json(), time.monotonic() - began)
                except httpx.HTTPError as exc:
                    outcome = (0, {"error": repr(exc)}, time.monotonic() - began)
            with lock:
                answers.append(outcome)

        threads = [threading.Thread(target=racer) for _ in range(RACERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=180)
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [200] + [409] * (RACERS - 1), [(s, b) for s, b, _ in answers if s != 409]
        for status, body, _ in answers:
            if status == 409:
                assert body["detail"]["current_version"] == 2, body
        slowest = max(took for _, _, took in answers)
        assert slowest < ALL_ANSWERED_WITHIN, f"slowest answer {slowest:.1f} s"
        # Every answer, won or lost, left its audit record.
        with db.session() as s:
            audited = s.scalar(
                select(func.count()).select_from(AuditRecord).where(AuditRecord.event_type == "ticket_action")
            )
        db.dispose()
        assert audited == RACERS
        assert "database is locked" not in product.log_text()
        assert "QueuePool limit" not in product.log_text()
