"""ledger: tickets, ticket items, timeline, SLA notices, notification outbox

Revision ID: 0004_ledger
Revises: 0001_base
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_ledger"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("department", sa.String(100), nullable=False),
        _ts("discovered_at"),
        _ts("published_at", True),
        sa.Column("event_id", sa.String(100), nullable=True),
        sa.Column("event_key", sa.String(120), nullable=False),
        _ts("assigned_at"),
        _ts("ack_from"),
        _ts("ack_due"),
        _ts("ack_met_at", True),
        _ts("handle_from"),
        _ts("handle_due"),
        _ts("handle_met_at", True),
        _ts("respond_from"),
        _ts("respond_due"),
        _ts("respond_met_at", True),
        sa.Column("handled", sa.Boolean(), nullable=False),
        sa.Column("responded", sa.Boolean(), nullable=False),
        sa.Column("response_url", sa.Text(), nullable=True),
        sa.Column("response_source", sa.String(100), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("extension_pending", sa.Boolean(), nullable=False),
        _ts("extension_until", True),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("extension_stages", sa.String(50), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
        sa.UniqueConstraint("event_key", "department", name="uq_tickets_event_department"),
    )
    op.create_index("ix_tickets_department_status", "tickets", ["department", "status"])
    op.create_index("ix_tickets_discovered_at", "tickets", ["discovered_at"])

    op.create_table(
        "ticket_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(20), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        _ts("published_at", True),
        _ts("attached_at"),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_items"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name="fk_ticket_items_ticket_id_tickets", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("ticket_id", "item_id", name="uq_ticket_items_ticket_item"),
    )
    op.create_index("ix_ticket_items_ticket_id", "ticket_items", ["ticket_id"])
    op.create_index("ix_ticket_items_item_id", "ticket_items", ["item_id"])

    op.create_table(
        "ticket_timeline",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        _ts("at"),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("response_url", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_timeline"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name="fk_ticket_timeline_ticket_id_tickets", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_ticket_timeline_ticket_id", "ticket_timeline", ["ticket_id"])

    op.create_table(
        "sla_notices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        _ts("due_at"),
        _ts("raised_at"),
        sa.Column("department", sa.String(100), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sla_notices"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name="fk_sla_notices_ticket_id_tickets", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("ticket_id", "stage", "level", "due_at", name="uq_sla_notices_once"),
    )
    op.create_index("ix_sla_notices_ticket_id", "sla_notices", ["ticket_id"])

    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("department", sa.String(100), nullable=True),
        sa.Column("severity", sa.String(10), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(300), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("next_attempt_at", True),
        _ts("claimed_until", True),
        sa.Column("claim_token", sa.String(64), nullable=True),
        _ts("sent_at", True),
        _ts("failed_at", True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_messages"),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_messages_dedupe_key"),
    )
    op.create_index("ix_outbox_messages_due", "outbox_messages", ["sent_at", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("outbox_messages")
    op.drop_table("sla_notices")
    op.drop_table("ticket_timeline")
    op.drop_table("ticket_items")
    op.drop_table("tickets")
