"""KYC state and usage counters; a frozen flag on accounts.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06

`kyc_customers` holds each customer's verification status and tier (compliance/kyc); the
posting transaction locks a payer's row (FOR UPDATE on PostgreSQL, in customer order) before it
reads and adds to `kyc_usage`, the customer's hourly buckets of what its payments took out, per
asset (money as everywhere: NUMERIC(39,0), or SQLite's INTEGER or 17-byte BLOB). `accounts.frozen`
refuses an account's debits and credits (account_frozen) until it is unfrozen.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

Money = sa.Numeric(39, 0).with_variant(sa.BigInteger(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "kyc_customers",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tier", sa.String(64), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "kyc_usage",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("asset", sa.String(16), primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("amount", Money, nullable=False),
        sqlite_with_rowid=False,
    )
    op.add_column(
        "accounts", sa.Column("frozen", sa.Boolean, nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("frozen")
    op.drop_table("kyc_usage")
    op.drop_table("kyc_customers")
