"""scheduler: forget persisted jobs that name the modules before the rename (service.tickets -> service.ledger)

Revision ID: coord_0001_jobs_renamed
Revises: i15b_0001_job_health
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "coord_0001_jobs_renamed"
down_revision = "i15b_0001_job_health"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # APScheduler stores each job's function as a dotted path; a job pickled with the old path cannot be
    # restored and APScheduler logs a traceback for it. The scheduler rewrites every job from the registry
    # at start, so the stored rows carry nothing that would be lost.
    if sa.inspect(op.get_bind()).has_table("apscheduler_jobs"):
        op.execute("DELETE FROM apscheduler_jobs")


def downgrade() -> None:
    pass
