"""audit_head.legacy_last_id: how far an audit log written before the HMAC change reaches

Revision ID: i11_0004_audit_legacy_segment
Revises: i11_0002_totp_encrypted
Create Date: 2026-11-29

Records up to this id may carry the old unkeyed hash; the first start with the key verifies them with it and
appends a signed re-anchor record (service.audit.legacy). The key is not in the database, so the signing
cannot happen here. The bound only goes down: nobody can later widen what counts as legacy.
"""

import sqlalchemy as sa
from alembic import op

revision = "i11_0004_audit_legacy_segment"
down_revision = "i11_0002_totp_encrypted"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_SQLITE_GUARD = """CREATE TRIGGER audit_head_legacy_down BEFORE UPDATE OF legacy_last_id ON audit_head
    WHEN new.legacy_last_id > old.legacy_last_id
    BEGIN SELECT RAISE(ABORT, 'audit_head: the legacy bound only goes down'); END"""


def _postgres_guard(with_legacy: bool) -> str:
    legacy = (
        """
        IF NEW.legacy_last_id > OLD.legacy_last_id THEN
            RAISE EXCEPTION 'audit_head: the legacy bound only goes down';
        END IF;"""
        if with_legacy
        else ""
    )
    return f"""CREATE OR REPLACE FUNCTION yuqing_audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'UPDATE' THEN
            RAISE EXCEPTION 'audit_head: % refused', TG_OP;
        END IF;
        IF NEW.anchor_after_id < OLD.anchor_after_id THEN
            RAISE EXCEPTION 'audit_head: the retention anchor only moves forward';
        END IF;{legacy}
        RETURN NEW;
    END $$"""


def upgrade() -> None:
    # A plain ADD COLUMN (no table copy on SQLite): the audit_head triggers stay in place.
    op.add_column("audit_head", sa.Column("legacy_last_id", BigId, nullable=False, server_default="0"))
    op.execute("UPDATE audit_head SET legacy_last_id = (SELECT COALESCE(MAX(id), 0) FROM audit_log)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_postgres_guard(with_legacy=True))
    else:
        op.execute(_SQLITE_GUARD)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_postgres_guard(with_legacy=False))
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_head_legacy_down")
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a table copy that would lose the other triggers.
    op.drop_column("audit_head", "legacy_last_id")
