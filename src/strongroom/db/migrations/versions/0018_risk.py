"""Risk events, decisions and the per-tenant counter that orders them.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

`risk_events`: every created transfer that carried a payment (the feature store's source of
truth, tailed by a per-tenant `seq` from `risk_tails`); the payee, device and IP as keyed
hashes, never in clear; the fraud label once known. `risk_decisions`: the risk gate's decision
on every scored payment (db/tables.py says more). New tables only: nothing is rewritten.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

Money = sa.Numeric(39, 0).with_variant(sa.BigInteger(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "risk_tails",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "risk_events",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("transfer_id", sa.String(64), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("amount", Money, nullable=False),
        sa.Column("scale", sa.SmallInteger, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("payee", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(24), nullable=True),
        sa.Column("device", sa.String(64), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("fraud", sa.Boolean, nullable=True),
        sa.Column("labelled_at", sa.BigInteger, nullable=True),
        sa.Column("label_seq", sa.BigInteger, nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("risk_events_transfer", "risk_events", ["transfer_id"], unique=True)
    op.create_index("risk_events_at", "risk_events", ["tenant_id", "at_us"])
    op.create_index("risk_events_label", "risk_events", ["tenant_id", "label_seq"])
    op.create_table(
        "risk_decisions",
        sa.Column("transfer_id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("rules_version", sa.String(64), nullable=True),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("contributions", sa.Text, nullable=True),
        sa.Column("shadow_score", sa.Float, nullable=True),
        sa.Column("shadow_version", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("risk_decisions")
    op.drop_index("risk_events_label", table_name="risk_events")
    op.drop_index("risk_events_at", table_name="risk_events")
    op.drop_index("risk_events_transfer", table_name="risk_events")
    op.drop_table("risk_events")
    op.drop_table("risk_tails")
