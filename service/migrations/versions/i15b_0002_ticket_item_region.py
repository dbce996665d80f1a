"""ticket_items: region (地域分布 of the item, worked out once so the chart is a GROUP BY)

Revision ID: i15b_0002_ticket_item_region
Revises: i16_0003_ticket_item_order_no
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "i15b_0002_ticket_item_region"
down_revision = "i16_0003_ticket_item_order_no"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for every existing link: the chart works the regions out the first time it counts them.
    with op.batch_alter_table("ticket_items") as batch:
        batch.add_column(sa.Column("region", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_items") as batch:
        batch.drop_column("region")
