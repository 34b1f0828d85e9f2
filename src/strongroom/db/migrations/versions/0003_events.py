"""Events (the transactional outbox) and webhook endpoints, delivery states and attempts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

- events: one row per ledger change, written in the ledger's own transaction. `seq` grows
  (allocation order; on SQLite, with one writer, also commit order). `data` is JSON text.
- events_unrouted: the seqs of events not yet fanned out to endpoints; the dispatcher deletes
  them as it creates the delivery states. A separate narrow table keeps the outbox rows
  insert-only and the dispatcher's work off them.
- webhook_endpoints: per tenant; `enabled_events` is '*' or a JSON list of types.
- webhook_delivery_state: one row per (event, endpoint): pending/succeeded/failed, when the
  next attempt is due, and the lease (lease_until, lease_owner) of a dispatcher sending it.
- webhook_deliveries: one row per attempt made, kept for inspection.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id(name: str, **kw: object) -> sa.Column[str]:
    return sa.Column(name, sa.String(64), **kw)  # type: ignore[arg-type]


def _big(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", RowId, primary_key=True, autoincrement=False),
        _id("id", nullable=False),
        _id("ledger_id", nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        _big("created_at"),
    )
    op.create_index("events_id", "events", ["id"], unique=True)
    op.create_table(
        "events_unrouted",
        sa.Column("seq", RowId, primary_key=True, autoincrement=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE events_seq START 1")
    op.create_table(
        "webhook_endpoints",
        _id("id", primary_key=True),
        _id("tenant_id", nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("enabled_events", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_count", sa.Integer, nullable=False),
        _big("created_at"),
        _big("updated_at"),
        sqlite_with_rowid=False,
    )
    op.create_index("webhook_endpoints_tenant", "webhook_endpoints", ["tenant_id", "id"])
    op.create_table(
        "webhook_delivery_state",
        _id("event_id", primary_key=True),
        _id("endpoint_id", primary_key=True),
        _big("event_seq"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        _big("next_attempt_at"),
        _big("lease_until"),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        _big("updated_at"),
        sqlite_with_rowid=False,
    )
    due = sa.text("status = 'pending'")
    op.create_index(
        "webhook_delivery_due",
        "webhook_delivery_state",
        ["next_attempt_at"],
        sqlite_where=due,
        postgresql_where=due,
    )
    op.create_index(
        "webhook_delivery_endpoint", "webhook_delivery_state", ["endpoint_id", "event_seq"]
    )
    op.create_table(
        "webhook_deliveries",
        _id("event_id", primary_key=True),
        _id("endpoint_id", primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("response_status", sa.SmallInteger, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        _big("next_attempt_at", nullable=True),
        _big("created_at"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "webhook_deliveries_endpoint", "webhook_deliveries", ["endpoint_id", "created_at"]
    )


def downgrade() -> None:
    for table in (
        "webhook_deliveries",
        "webhook_delivery_state",
        "webhook_endpoints",
        "events_unrouted",
        "events",
    ):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE events_seq")
