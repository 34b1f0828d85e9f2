"""Actors on rows, roles on API keys.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

Every change records who made it (an API key, a staff user, a customer, a system job):
`created_by` (the actor, e.g. `api_key:key_...`) on ledgers, assets, accounts and webhook
endpoints; on transfers a small integer `actor_ref` into the new `actors` table, where each
actor is written once (a bulk batch's 8,190 rows carry one integer each, not a string). Rows
written before this revision keep NULL: their actor, when one was known, is in their audit
leaf. `api_keys.role` names the role (security/rbac.py) a key was made for, if any;
`tenants.suspended_at` is set while the operator has suspended a tenant. After 0015 (people):
customers, counterparties and cards (0013, 0014) carry their own `created_by` already, and
users' actions are leaves of the audit log.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_CREATED_BY = ("ledgers", "assets", "accounts", "webhook_endpoints")


def upgrade() -> None:
    op.create_table(
        "actors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("actor", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    # Plain ADD COLUMN (nullable, no default): no table rebuild on SQLite, no rewrite on
    # PostgreSQL, however many transfers there are.
    for table in _CREATED_BY:
        op.add_column(table, sa.Column("created_by", sa.String(200), nullable=True))
    op.add_column("transfers", sa.Column("actor_ref", sa.Integer, nullable=True))
    op.add_column("api_keys", sa.Column("role", sa.String(32), nullable=True))
    op.add_column("tenants", sa.Column("suspended_at", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("suspended_at")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("role")
    with op.batch_alter_table("transfers") as batch:
        batch.drop_column("actor_ref")
    for table in _CREATED_BY:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("created_by")
    op.drop_table("actors")
