"""tickets: response_type (how the response was made: online, phone, written, in person, other)

Revision ID: i16_0002_response_type
Revises: i16_0001_user_admin
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "i16_0002_response_type"
down_revision = "i16_0001_user_admin"
branch_labels = None
depends_on = ("0004_ledger",)


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("response_type", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("response_type")
