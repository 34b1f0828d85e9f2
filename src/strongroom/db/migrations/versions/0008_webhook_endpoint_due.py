"""An index of each endpoint's pending deliveries by when they are due.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08

The dispatcher claims due deliveries endpoint by endpoint, round robin across tenants, so that
one slow endpoint holds a bounded share of its senders (events/scheduling.py). For that it
asks, per enabled endpoint, for its oldest due deliveries: this index answers that from the
pending rows only, however many delivered ones the endpoint's history holds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEX = "webhook_delivery_endpoint_due"


def upgrade() -> None:
    pending = sa.text("status = 'pending'")
    op.create_index(
        INDEX,
        "webhook_delivery_state",
        ["endpoint_id", "next_attempt_at"],
        sqlite_where=pending,
        postgresql_where=pending,
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="webhook_delivery_state")
