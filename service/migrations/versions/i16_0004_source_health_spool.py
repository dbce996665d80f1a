"""source_health and item_spool: source health and the Elasticsearch outage spool move into the shared database

Revision ID: i16_0004_source_health_spool
Revises: i16_0003_ticket_item_order_no
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "i16_0004_source_health_spool"
down_revision = "i16_0003_ticket_item_order_no"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_health",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("last_crawl_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure", sa.Text, nullable=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("items_per_crawl", sa.JSON, nullable=False),
        sa.Column("written_by", sa.String(200), nullable=True),
    )
    op.create_table(
        "item_spool",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("spooled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("spooled_by", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("item_spool")
    op.drop_table("source_health")
