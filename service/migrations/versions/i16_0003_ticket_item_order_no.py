"""ticket_items: order_no (the source's own number, 12345 工单号 / 信件编号, shown in the ledger)

Revision ID: i16_0003_ticket_item_order_no
Revises: i16_0002_response_type
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "i16_0003_ticket_item_order_no"
down_revision = "i16_0002_response_type"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_items") as batch:
        batch.add_column(sa.Column("order_no", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_items") as batch:
        batch.drop_column("order_no")
