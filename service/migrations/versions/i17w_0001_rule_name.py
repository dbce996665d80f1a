"""rules: name (the rule's Chinese name, shown in alerts and lists instead of its id)

Rules imported from departments.yaml keep taking their name from the file until their text there changes;
rules made through the API or console get theirs here.

Revision ID: i17w_0001_rule_name
Revises: 0002_matching
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "i17w_0001_rule_name"
down_revision = "0002_matching"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.add_column(sa.Column("name", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.drop_column("name")
