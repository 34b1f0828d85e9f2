"""The subject of an Idempotency-Key record's answer.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

`idempotency_records.subject_id` names the customer or counterparty whose (masked) personal
data a stored answer holds, when it holds some: erasure replaces those answers (by a 410
`data_erased`) in its transaction, so a replay after erasure does not answer the masked data
again, nor runs the request anew.
Records written before this revision keep NULL (their answers expire with the retention).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): no table rebuild, no rewrite.
    op.add_column("idempotency_records", sa.Column("subject_id", sa.String(64), nullable=True))
    op.create_index(
        "idempotency_records_subject", "idempotency_records", ["tenant_id", "subject_id"]
    )


def downgrade() -> None:
    op.drop_index("idempotency_records_subject", table_name="idempotency_records")
    with op.batch_alter_table("idempotency_records") as batch:
        batch.drop_column("subject_id")
