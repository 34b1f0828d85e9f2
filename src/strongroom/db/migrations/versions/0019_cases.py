"""The case queue.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

One row per case (cases/): a decision a person must take, such as a transfer a gate held for
review (kind `risk_review`, or `<gate>_review`). A case is `open` until an analyst approves
(its transfer posts) or declines it (its transfer voids), or until its transfer is posted,
voided or expired by another door (`closed`). `detail` is the gate's decision detail as
canonical JSON (score, reasons, model and rule versions, features: no personal data); `label`
is the decision as a training label (`fraud` or `genuine`), set by approve and decline only.
Ids are time-ordered (core.ids), so the listing indexes (tenant, status, id) and
(tenant, kind, id) give the newest cases first.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("transfer_id", sa.String(64), nullable=True),
        sa.Column("gate", sa.String(64), nullable=True),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("decided_at", sa.BigInteger, nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decision_reason", sa.Text, nullable=True),
        sa.Column("label", sa.String(16), nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("cases_tenant", "cases", ["tenant_id", "id"])
    op.create_index("cases_tenant_status", "cases", ["tenant_id", "status", "id"])
    op.create_index("cases_tenant_kind", "cases", ["tenant_id", "kind", "id"])
    op.create_index("cases_transfer_kind", "cases", ["transfer_id", "kind"], unique=True)


def downgrade() -> None:
    op.drop_index("cases_transfer_kind", "cases")
    op.drop_index("cases_tenant_kind", "cases")
    op.drop_index("cases_tenant_status", "cases")
    op.drop_index("cases_tenant", "cases")
    op.drop_table("cases")
