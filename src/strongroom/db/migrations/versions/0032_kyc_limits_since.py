"""KYC: when the deployment first ran with the limits on.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06

`kyc_limits_since` holds one row (id 1): `since`, the time (microseconds) the KYC caps were
first on, written once and never later than the earliest `kyc_usage` bucket (the posting
transaction that writes a bucket writes it when none exists; compliance/kyc/store.py). The
control `kyc_usage_counted` compares the hours after it, not after the earliest bucket stored,
which a hand edit of `kyc_usage` could move. On an upgrade, a database that already holds
buckets is dated from the start of the hour of its earliest one (what the control compared
from before); one without any gets its row when the limits next write.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

BUCKET_US = 3_600_000_000  # compliance/kyc/model.py: one hour


def upgrade() -> None:
    op.create_table(
        "kyc_limits_since",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("since", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO kyc_limits_since (id, since) "
        f"SELECT 1, hour * {BUCKET_US} FROM kyc_usage ORDER BY hour LIMIT 1"
    )


def downgrade() -> None:
    op.drop_table("kyc_limits_since")
