"""Idempotency records scoped to the tenant, with a lease and a compact stored answer.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

`idempotency_keys` (one record per API key and key, in flight until its answer was stored,
the answer as text) becomes `idempotency_records`: one record per tenant and key (as Stripe
scopes keys to the account, not to one of its API keys), an owner with a lease while a request
runs (a record whose owner died is taken over once the lease ends, instead of answering 409 for
24 hours) and the answer zlib-compressed.

Records are copied over. Where two API keys of one tenant used the same key, the earliest record
is kept. An in-flight record gets an expired lease: its request can only have died in the
upgrade's downtime, and its retry runs again.
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "idempotency_records",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("claimed_at", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.BigInteger, nullable=False),
        sa.Column("status_code", sa.SmallInteger, nullable=True),
        sa.Column("body", sa.LargeBinary, nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("idempotency_records_claimed", "idempotency_records", ["claimed_at"])
    conn = op.get_bind()
    new = sa.table(
        "idempotency_records",
        *(
            sa.column(c)
            for c in (
                "tenant_id",
                "key",
                "fingerprint",
                "claimed_at",
                "owner",
                "lease_until",
                "status_code",
                "body",
            )
        ),
    )
    rows = conn.execute(
        sa.text(
            "SELECT k.tenant_id, i.key, i.fingerprint, i.created_at, i.status_code, i.body "
            "FROM idempotency_keys i JOIN api_keys k ON k.id = i.api_key_id "
            "ORDER BY i.created_at, i.api_key_id"
        )
    )
    seen: set[tuple[str, str]] = set()
    batch: list[dict[str, object]] = []
    for tenant_id, key, fingerprint, created_at, status_code, body in rows:
        if (tenant_id, key) in seen:
            continue  # the tenant's earliest record for this key is kept
        seen.add((tenant_id, key))
        batch.append(
            {
                "tenant_id": tenant_id,
                "key": key,
                "fingerprint": fingerprint,
                "claimed_at": created_at,
                "owner": None,
                "lease_until": 0,
                "status_code": status_code,
                "body": None if body is None else zlib.compress(body.encode()),
            }
        )
        if len(batch) >= _BATCH:
            conn.execute(new.insert(), batch)
            batch = []
    if batch:
        conn.execute(new.insert(), batch)
    op.drop_table("idempotency_keys")


def downgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("api_key_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.SmallInteger, nullable=True),
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("idempotency_keys_created", "idempotency_keys", ["created_at"])
    op.drop_table("idempotency_records")
