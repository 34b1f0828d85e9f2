"""Transfers carry an optional effective time.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

- transfers.effective_at: when the transfer counts for reporting (epoch microseconds), given
  by the client; NULL means when it was recorded (created_at). Balances as of a time still
  follow the recording order: history is append-only and is never rewritten by a backdated
  transfer.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("transfers", sa.Column("effective_at", sa.BigInteger, nullable=True))


def downgrade() -> None:
    op.drop_column("transfers", "effective_at")
