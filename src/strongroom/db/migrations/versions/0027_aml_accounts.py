"""AML profiles of accounts, set by compliance (compliance/aml).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07

`aml_accounts` holds what the AML monitor trusts about an account besides its transfers: whether
it is exempt (never an alert's subject: a cash desk, a settlement or fee account) and its
jurisdiction (ISO 3166 alpha-2, for the high-risk jurisdiction typology). Only compliance sets
a row (`PUT /v1/accounts/{id}/aml`, compliance:write, an audit leaf and an event each), never a
key that moves money: the account's metadata is no longer read for either. An account without
a row is monitored, with no jurisdiction. Empty on an upgrade: accounts that were exempt by
their metadata are monitored until compliance exempts them again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aml_accounts",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("exempt", sa.Boolean, nullable=False),
        sa.Column("jurisdiction", sa.String(2), nullable=True),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("aml_accounts")
