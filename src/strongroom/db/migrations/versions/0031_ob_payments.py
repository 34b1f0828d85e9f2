"""Open banking: domestic payments, and the keys that sign the payment API's responses.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-10

`ob_payments` holds each domestic payment a TPP submitted (openbanking/payments/): its id (the
DomesticPaymentId, and the id of the ledger transfer that moves its money), its tenant, its
client and its consent (unique: a payment consent pays once), when it was made, and `refusal`:
the stable code of a payment refused before any transfer was written (a gate's block, a ledger
refusal such as insufficient_funds), NULL for a payment whose transfer exists. Its status is
read from that transfer.

`ob_signing_keys` holds the deployment's RSA keys for the `x-jws-signature` of the payment
initiation API's responses: the key id (its RFC 7638 thumbprint), the public JWK (published at
/oauth2/jwks), the private JWK sealed under the key manager (security/sealing.py), when it was
made and, once replaced, retired (still published, so older signatures verify).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ob_payments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("consent_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("refusal", sa.String(64), nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ob_payments_consent", "ob_payments", ["consent_id"], unique=True)
    op.create_table(
        "ob_signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("public_jwk", sa.Text, nullable=False),
        sa.Column("private_jwk", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("retired_at", sa.BigInteger, nullable=True),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("ob_signing_keys")
    op.drop_index("ob_payments_consent", table_name="ob_payments")
    op.drop_table("ob_payments")
