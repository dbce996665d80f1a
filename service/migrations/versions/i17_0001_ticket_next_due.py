"""tickets: next_due_at (when the SLA monitor must look at the ticket next), indexed

Revision ID: i17_0001_ticket_next_due
Revises: 0005_outbox_attachment
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "i17_0001_ticket_next_due"
down_revision = "0005_outbox_attachment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_tickets_next_due_at", ["next_due_at"])
    # Every existing ticket is looked at once by the next monitor run, which sets its real next time
    # (NULL for tickets with nothing left to raise).
    op.execute("UPDATE tickets SET next_due_at = discovered_at")


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_next_due_at")
        batch.drop_column("next_due_at")
