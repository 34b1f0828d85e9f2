"""The card vault's tokens.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

One row per tokenized card (security/vault/): the token (`card_...`), what may be shown (the
BIN, the last four, the brand, the expiry), a keyed hash of the number (HMAC under the key
manager's MAC key for purpose `card.pan`, per tenant) to recognise the same card, and the
number and the holder's name sealed (AES-256-GCM) under the card's own data key in
subject_keys. The security code has no column: it is never stored. Deleting a card deletes its
row and shreds its data key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cards",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("bin", sa.String(8), nullable=False),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.Column("digits", sa.SmallInteger, nullable=False),
        sa.Column("brand", sa.String(16), nullable=False),
        sa.Column("exp_month", sa.SmallInteger, nullable=False),
        sa.Column("exp_year", sa.SmallInteger, nullable=False),
        sa.Column("sealed_number", sa.LargeBinary, nullable=False),
        sa.Column("sealed_holder_name", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("cards_tenant", "cards", ["tenant_id", "id"])
    op.create_index("cards_fingerprint", "cards", ["tenant_id", "fingerprint", "id"])


def downgrade() -> None:
    op.drop_index("cards_fingerprint", "cards")
    op.drop_index("cards_tenant", "cards")
    op.drop_table("cards")
