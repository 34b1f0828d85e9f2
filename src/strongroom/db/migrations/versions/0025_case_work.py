"""Working a case: its assignee and its notes.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06

`cases.assignee` is the staff user a case is assigned to (a user id; null: unassigned), with
an index for "my queue". `case_notes` holds an officer's notes on a case, in order (ids are
time-ordered): free text written by staff, the narrative of a suspicious-activity report
draft; never copied into an audit leaf or an event (those name the note's id only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("assignee", sa.String(64), nullable=True))
    op.create_index("cases_tenant_assignee", "cases", ["tenant_id", "assignee", "id"])
    op.create_table(
        "case_notes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("case_notes_case", "case_notes", ["case_id", "id"])


def downgrade() -> None:
    op.drop_index("case_notes_case", "case_notes")
    op.drop_table("case_notes")
    op.drop_index("cases_tenant_assignee", "cases")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("assignee")
