"""ticket_suggestions: 可能是同一事件, computed when an item is matched (related places/terms, reposts of both)

Revision ID: i13_0002_ticket_suggestions
Revises: i13_0001_ticket_merge
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "i13_0002_ticket_suggestions"
down_revision = "i13_0001_ticket_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ticket_suggestions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, nullable=False),
        sa.Column("other_id", sa.Integer, nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("places", sa.JSON, nullable=False),
        sa.Column("terms", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("ticket_id", "other_id", "kind", name="uq_ticket_suggestions_pair"),
    )
    op.create_index("ix_ticket_suggestions_ticket_id", "ticket_suggestions", ["ticket_id"])
    op.create_index("ix_ticket_suggestions_department", "ticket_suggestions", ["department"])


def downgrade() -> None:
    op.drop_table("ticket_suggestions")
