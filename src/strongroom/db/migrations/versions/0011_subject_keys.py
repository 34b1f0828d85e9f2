"""Subjects' data keys, for envelope encryption.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

One row per subject whose data is encrypted (a customer, a counterparty, a card): its data key,
wrapped by a versioned key-encryption key of the key manager (security/kms.py). Erasure sets
`wrapped` to NULL (crypto-shredding) and records when.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_keys",
        sa.Column("subject_id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("kek_version", sa.Integer, nullable=False),
        sa.Column("wrapped", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("shredded_at", sa.BigInteger, nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("subject_keys_version", "subject_keys", ["kek_version", "subject_id"])


def downgrade() -> None:
    op.drop_index("subject_keys_version", "subject_keys")
    op.drop_table("subject_keys")
