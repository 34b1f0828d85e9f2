"""AML monitoring: one row per raised alert (compliance/aml).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06

`aml_alerts` holds each alert the monitor raised: its tenant, the account it is about, the
typology and the start of the window it fell in (the hit's time rounded down to the
typology's window). The primary key is the dedupe: one alert per account and typology per
window, whether the live sink or a scan over history raised it (an insert that finds the key
raises nothing). `case_id` names the case it opened.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aml_alerts",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("typology", sa.String(32), primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("aml_alerts")
