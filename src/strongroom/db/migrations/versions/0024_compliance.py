"""Compliance: the stored reports of the automated controls.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06

`compliance_reports` keeps every run of the controls (compliance/controls/): its id, when it
started, its outcome (`pass` or `fail`), the report as JSON (no secret, no personal data: ids,
table and column names, masked card numbers) and who ran it. `GET /v1/compliance/report` reads
the newest row; the scheduled job reads its time to know whether a run is due.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compliance_reports",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_index("compliance_reports_time", "compliance_reports", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("compliance_reports_time", table_name="compliance_reports")
    op.drop_table("compliance_reports")
