"""matching: rules and alerts

Revision ID: 0002_matching
Revises: 0001_base
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_matching"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rules",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("department", sa.String(64), nullable=False, index=True),
        sa.Column("expr", sa.Text, nullable=True),
        sa.Column("structured", sa.JSON, nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("file_digest", sa.String(64), nullable=True),
        sa.Column("muted_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("muted_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=True),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(64), nullable=False, index=True),
        sa.Column("department", sa.String(64), nullable=False, index=True),
        sa.Column("rule_ids", sa.JSON, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("snippets", sa.JSON, nullable=False),
        sa.Column("source", sa.String(64), nullable=False, index=True),
        sa.Column("channel", sa.String(16), nullable=False, index=True),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ticket_id", sa.Integer, nullable=True, index=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_by", sa.String(64), nullable=True),
        sa.Column("state_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("push", sa.String(16), nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("item_id", "department", name="uq_alerts_item_department"),
    )


def downgrade() -> None:
    op.drop_table("alerts")
    op.drop_table("rules")
