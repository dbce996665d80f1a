"""tickets: response_note (what the department wrote about its response, shown in the ledger)

Revision ID: i17w_0002_response_note
Revises: i17w_0001_rule_name
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "i17w_0002_response_note"
down_revision = "i17w_0001_rule_name"
branch_labels = None
depends_on = ("i16_0002_response_type",)


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("response_note", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("response_note")
