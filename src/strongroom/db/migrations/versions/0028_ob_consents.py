"""Open banking: the consents third-party providers ask for, and the customers decide.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-08

`ob_consents` holds every consent a TPP created under a tenant (openbanking/resources/): its
kind (`account_access`, `funds_confirmation`, `domestic_payment`), its status in the one state
machine of openbanking/consents.py (AWAU, AUTH, RJCT, EXPD, CANC, COND) and when it last
changed, its permissions (account access: space-separated OB names), its ExpirationDateTime
(epoch microseconds, or null: open-ended), the OB request's `Data` as canonical JSON (bounded:
no personal data beyond what the TPP sent, such as a funds consent's DebtorAccount), and, once
the customer authorised it, the customer and the accounts they selected (a JSON array of ledger
account ids). `idempotency_key` and `request_hash`: an optional `x-idempotency-key` of the
TPP's creation request and the SHA-256 of the request, unique per tenant and client (NULL keys
never collide). Indexes: the expiry sweep (`status, expires_at`: it reads open consents only)
and a customer's consents.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ob_consents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("status_updated_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("permissions", sa.String(600), nullable=True),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("account_ids", sa.Text, nullable=True),
        sa.Column("idempotency_key", sa.String(64), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ob_consents_expiry", "ob_consents", ["status", "expires_at"])
    op.create_index("ob_consents_customer", "ob_consents", ["customer_id", "id"])
    op.create_index(
        "ob_consents_idempotency",
        "ob_consents",
        ["tenant_id", "client_id", "idempotency_key"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ob_consents_idempotency", table_name="ob_consents")
    op.drop_index("ob_consents_customer", table_name="ob_consents")
    op.drop_index("ob_consents_expiry", table_name="ob_consents")
    op.drop_table("ob_consents")
