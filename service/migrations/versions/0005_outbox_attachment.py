"""outbox: attachment (the weekly ledger file for e-mail channels)

Revision ID: 0005_outbox_attachment
Revises: 0004_ledger
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_outbox_attachment"
down_revision = "0004_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.add_column(sa.Column("attachment", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_column("attachment")
