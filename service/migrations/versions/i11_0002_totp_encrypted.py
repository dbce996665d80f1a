"""users.totp_secret: room for an encrypted value (Fernet token)

Revision ID: i11_0002_totp_encrypted
Revises: i11_0001_audit_append_only
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "i11_0002_totp_encrypted"
down_revision = "i11_0001_audit_append_only"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("totp_secret", type_=sa.String(512), existing_type=sa.String(64), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("totp_secret", type_=sa.String(64), existing_type=sa.String(512), existing_nullable=True)
