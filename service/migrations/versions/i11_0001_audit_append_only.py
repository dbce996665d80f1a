"""audit_log: the database refuses UPDATE and DELETE of audit rows (retention purge below the anchor only)

Revision ID: i11_0001_audit_append_only
Revises: 0003_users_audit
Create Date: 2026-11-29

A purge first moves audit_head.anchor_after_id forward and then deletes the rows up to it; nothing else
may delete, and nothing may update, an audit row. The anchor itself only moves forward. On PostgreSQL
TRUNCATE is refused too. A superuser can still drop these triggers: the HMAC key outside the database and
the daily anchors catch what is done then (and production runs the service as a role without those
rights, see README).
"""

from alembic import op

revision = "i11_0001_audit_append_only"
down_revision = "0003_users_audit"
branch_labels = None
depends_on = None

_SQLITE = [
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    WHEN old.id > (SELECT anchor_after_id FROM audit_head WHERE id = 1)
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused above the retention anchor'); END""",
    """CREATE TRIGGER audit_head_anchor_forward BEFORE UPDATE OF anchor_after_id ON audit_head
    WHEN new.anchor_after_id < old.anchor_after_id
    BEGIN SELECT RAISE(ABORT, 'audit_head: the retention anchor only moves forward'); END""",
    """CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
    BEGIN SELECT RAISE(ABORT, 'audit_head: DELETE refused'); END""",
]

_POSTGRES = [
    """CREATE FUNCTION yuqing_audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            RAISE EXCEPTION 'audit_log is append-only: UPDATE refused';
        ELSIF TG_OP = 'TRUNCATE' THEN
            RAISE EXCEPTION 'audit_log is append-only: TRUNCATE refused';
        ELSIF OLD.id > (SELECT anchor_after_id FROM audit_head WHERE id = 1) THEN
            RAISE EXCEPTION 'audit_log is append-only: DELETE refused above the retention anchor';
        END IF;
        RETURN OLD;
    END $$""",
    """CREATE TRIGGER audit_log_guard BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION yuqing_audit_log_guard()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION yuqing_audit_log_guard()""",
    """CREATE FUNCTION yuqing_audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'UPDATE' THEN
            RAISE EXCEPTION 'audit_head: % refused', TG_OP;
        END IF;
        IF NEW.anchor_after_id < OLD.anchor_after_id THEN
            RAISE EXCEPTION 'audit_head: the retention anchor only moves forward';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER audit_head_guard BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION yuqing_audit_head_guard()""",
    """CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION yuqing_audit_head_guard()""",
]


def upgrade() -> None:
    statements = _POSTGRES if op.get_bind().dialect.name == "postgresql" else _SQLITE
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_guard ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_head_guard ON audit_head")
        op.execute("DROP TRIGGER IF EXISTS audit_head_no_truncate ON audit_head")
        op.execute("DROP FUNCTION IF EXISTS yuqing_audit_log_guard()")
        op.execute("DROP FUNCTION IF EXISTS yuqing_audit_head_guard()")
        return
    for name in ("audit_log_no_update", "audit_log_no_delete", "audit_head_anchor_forward", "audit_head_no_delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
