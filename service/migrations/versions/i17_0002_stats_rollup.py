"""tickets: statistics roll-up (day and month sums per department) kept current by triggers; backfilled

Revision ID: i17_0002_stats_rollup
Revises: i13_0002_ticket_suggestions
Create Date: 2026-11-30
"""

from alembic import op

from service.ledger import rollup
from service.ledger.models import stats_delta, stats_rollup

revision = "i17_0002_stats_rollup"
down_revision = "i13_0002_ticket_suggestions"
branch_labels = None
depends_on = None

DUE_INDEXES = {
    "ix_tickets_ack_due": "ack_due",
    "ix_tickets_handle_due": "handle_due",
    "ix_tickets_respond_due": "respond_due",
}


def upgrade() -> None:
    conn = op.get_bind()
    for name, column in DUE_INDEXES.items():
        op.create_index(name, "tickets", [column])
    stats_rollup.create(conn)
    stats_delta.create(conn)
    # Backfill and triggers in the same transaction: no ticket write can fall between them.
    rollup.backfill(conn)
    rollup.install_triggers(conn)


def downgrade() -> None:
    conn = op.get_bind()
    rollup.drop_triggers(conn)
    stats_delta.drop(conn)
    stats_rollup.drop(conn)
    for name in DUE_INDEXES:
        op.drop_index(name, "tickets")
