"""tickets: region (its first item's 地域分布 region, so the chart is one GROUP BY over the tickets)

Revision ID: i15b_0003_ticket_region
Revises: i15b_0002_ticket_item_region
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "i15b_0003_ticket_region"
down_revision = "i15b_0002_ticket_item_region"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for every existing ticket: worked out by yuqing init or the first chart that counts it.
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("region", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("region")
