"""Bring a database up to date at start-up: Alembic migrations, then the steps that need keys kept outside it.

Migrations run without the audit key and the secrets key (they never enter the database), so what needs them
runs here, right after: re-anchoring an audit log written before the HMAC change, and encrypting TOTP
secrets stored before encryption. Both are idempotent and cheap once done. Every start path calls this
(``yuqing init``, ``yuqing run``, the CLI commands that open the database, ``create_app``).
"""

from __future__ import annotations

from service.audit.legacy import reanchor_legacy_segment
from service.context import AppContext
from service.users.service import encrypt_plaintext_secrets


def migrate(ctx: AppContext) -> None:
    """Migrate the schema, then finish what needs the keys (raises DatabaseUnavailable like Database.migrate)."""
    ctx.db.migrate()
    with ctx.db.session() as session:
        reanchor_legacy_segment(session)
        encrypt_plaintext_secrets(session)
