"""Sanctions: the payer and payee subjects of each payment created pending.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07

`payment_subjects` holds, for each payment created pending (a two-phase payment, or one a gate
held for review), its payer (`customer:<id>`) and its payee subject (`counterparty:<id>` or
`customer:<id>`, none for a payee Strongroom does not screen), written in its posting
transaction (compliance/sanctions/sink.py). A later post of it, by a client or by a case's
approval, is screened again against them (compliance/sanctions/gate.py `recheck`). Empty on an
upgrade: payments pending before it are screened again only through their sanctions case.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_subjects",
        sa.Column("transfer_id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("payer", sa.String(80), nullable=False),
        sa.Column("payee", sa.String(80), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("payment_subjects")
