"""tickets: merged_into, merged_from, split_from (并单/拆单)

Revision ID: i13_0001_ticket_merge
Revises: i17_0001_ticket_next_due
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "i13_0001_ticket_merge"
down_revision = "i17_0001_ticket_next_due"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("merged_into", sa.Integer, nullable=True))
        batch.add_column(sa.Column("merged_from", sa.String(500), nullable=True))
        batch.add_column(sa.Column("split_from", sa.Integer, nullable=True))
        batch.create_index("ix_tickets_merged_into", ["merged_into"])


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_merged_into")
        batch.drop_column("split_from")
        batch.drop_column("merged_from")
        batch.drop_column("merged_into")
