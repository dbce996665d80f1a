"""users: must_change_password (an administrator's reset forces a new password at the next login)

Revision ID: i16_0001_user_admin
Revises: 0003_users_audit
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "i16_0001_user_admin"
down_revision = "0003_users_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("must_change_password")
