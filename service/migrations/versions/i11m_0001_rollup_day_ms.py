"""tickets: on SQLite the statistics roll-up files a ticket under the Beijing day of its whole millisecond

SQLite's date() rounds to the millisecond, so a ticket discovered at 23:59:59.9996 (Beijing) was filed under
the next day, and on a month's last day under the next month. The triggers are recreated with the corrected
day and the roll-up is rebuilt from the tickets, so rows filed under the wrong day are moved back.

Revision ID: i11m_0001_rollup_day_ms
Revises: i17_0002_stats_rollup
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy import text

from service.ledger import rollup
from service.ledger.models import stats_delta, stats_rollup

revision = "i11m_0001_rollup_day_ms"
down_revision = "i17_0002_stats_rollup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":  # PostgreSQL's to_char(... AT TIME ZONE) never rounded
        return
    rollup.drop_triggers(conn)
    # Rebuilt in the same transaction as the new triggers: no ticket write can fall between them.
    conn.execute(text(f"DELETE FROM {stats_delta.name}"))  # noqa: S608
    conn.execute(text(f"DELETE FROM {stats_rollup.name}"))  # noqa: S608
    rollup.backfill(conn)
    rollup.install_triggers(conn)


def downgrade() -> None:
    """Nothing to undo: the corrected day is also right for the previous revision."""
