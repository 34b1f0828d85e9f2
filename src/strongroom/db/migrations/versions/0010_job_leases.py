"""Leases of the background jobs, with each job's last run.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10

Where several processes share one database (`serve --workers N`, several servers), each
periodic job (pending-transfer expiry, audit checkpoint publishing, retention) runs in the one
process that holds its lease: `owner` until `lease_until`, renewed while it runs, taken over by
another process once it has run out (its holder was killed). The holder also keeps here when
the job last succeeded and last failed (the error's type), so that every process reports the
same last run (strongroom/jobs.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("lease_until", sa.BigInteger, nullable=False),
        sa.Column("last_success_at", sa.BigInteger, nullable=True),
        sa.Column("last_error_at", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("job_leases")
