"""Sanctions list versions remember whether their re-screening completed.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-09

`sanctions_list_versions.rescreened_at` is when the re-screening of the subjects a version's
changes could match completed; NULL while it is still owed (a load stopped after storing the
version, or run without re-screening), which the next load of any list completes first. The
versions already stored count as re-screened (their time: when they were loaded).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "sanctions_list_versions", sa.Column("rescreened_at", sa.BigInteger, nullable=True)
    )
    op.execute("UPDATE sanctions_list_versions SET rescreened_at = loaded_at")


def downgrade() -> None:
    with op.batch_alter_table("sanctions_list_versions") as batch:
        batch.drop_column("rescreened_at")
