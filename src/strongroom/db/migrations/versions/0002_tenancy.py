"""Tenants, API keys, idempotency records; ledgers belong to a tenant.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DEFAULT_TENANT_ID = "ten_default"


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.execute(
        sa.text("INSERT INTO tenants (id, name, created_at) VALUES (:id, 'default', 0)").bindparams(
            id=DEFAULT_TENANT_ID
        )
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(16), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("api_key_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.SmallInteger, nullable=True),  # null while in flight
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("idempotency_keys_created", "idempotency_keys", ["created_at"])
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    with op.batch_alter_table("ledgers") as batch:
        batch.add_column(
            sa.Column("tenant_id", sa.String(64), nullable=False, server_default=DEFAULT_TENANT_ID)
        )
    op.create_index("ledgers_tenant", "ledgers", ["tenant_id", "id"])


def downgrade() -> None:
    op.drop_index("ledgers_tenant", "ledgers")
    with op.batch_alter_table("ledgers") as batch:
        batch.drop_column("tenant_id")
    for table in ("server_secrets", "idempotency_keys", "api_keys", "tenants"):
        op.drop_table(table)
