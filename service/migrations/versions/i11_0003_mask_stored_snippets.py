"""alerts.snippets: snippets stored before "mask, then cut" are masked, cut edges included

Revision ID: i11_0003_mask_stored_snippets
Revises: 0002_matching
Create Date: 2026-11-29

Old snippets were cut from the raw text. Masking them now catches whole numbers; a run of digits touching
a cut edge may be the visible half of a number, so it is masked entirely. Highlights on masked characters
are dropped (they would confirm the hidden digits).
"""

import re

import sqlalchemy as sa
from alembic import op

from service.masking import mask_text

revision = "i11_0003_mask_stored_snippets"
down_revision = "0002_matching"
branch_labels = None
depends_on = None

_EDGE_HEAD = re.compile(r"^[0-9０-９][0-9０-９ .\-－]*")
_EDGE_TAIL = re.compile(r"[0-9０-９][0-9０-９ .\-－]*$")


def _star_digits(match: re.Match[str]) -> str:
    return "".join("*" if ch.isdigit() else ch for ch in match.group(0))


def _mask_snippet(snippet: dict) -> dict:
    raw = str(snippet.get("text", ""))
    text = mask_text(raw)
    if snippet.get("prefix"):
        text = _EDGE_HEAD.sub(_star_digits, text)
    if snippet.get("suffix"):
        text = _EDGE_TAIL.sub(_star_digits, text)
    kept = [
        h
        for h in snippet.get("highlights", [])
        if isinstance(h, dict) and text[h.get("start", 0) : h.get("end", 0)] == raw[h.get("start", 0) : h.get("end", 0)]
    ]
    return {**snippet, "text": text, "highlights": kept}


def upgrade() -> None:
    alerts = sa.table("alerts", sa.column("id", sa.Integer), sa.column("snippets", sa.JSON))
    bind = op.get_bind()
    for alert_id, snippets in bind.execute(sa.select(alerts.c.id, alerts.c.snippets)).all():
        if not snippets:
            continue
        masked = [_mask_snippet(s) if isinstance(s, dict) else s for s in snippets]
        if masked != snippets:
            bind.execute(alerts.update().where(alerts.c.id == alert_id).values(snippets=masked))


def downgrade() -> None:
    """Masked characters cannot be restored."""
