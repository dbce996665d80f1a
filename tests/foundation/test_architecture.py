"""The floor plan holds: each concept in one place, imports only in the allowed directions."""

from __future__ import annotations

import subprocess
import sys


def _fresh(code: str) -> str:
    """Run ``code`` in a new interpreter (nothing imported yet) and return what it prints."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.strip()


def test_model_discovery_finds_every_table_without_cross_domain_model_imports() -> None:
    out = _fresh(
        "import sys\n"
        "import service.tickets.models\n"
        "print('alerting.models' in sys.modules)\n"
        "from service.db import Base, import_models\n"
        "import_models()\n"
        "print(' '.join(sorted(Base.metadata.tables)))\n"
    )
    tickets_pulled_alerting, tables = out.splitlines()
    assert tickets_pulled_alerting == "False"
    assert {"tickets", "sla_notices", "outbox_messages", "alerts", "rules", "users", "audit_log"} <= set(tables.split())
