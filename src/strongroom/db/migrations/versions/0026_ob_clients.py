"""Open banking clients: the third-party providers (TPPs) registered with the deployment's
authorization server.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08

`ob_clients` is deployment-wide (one authorization server per deployment), so it has no
tenant: its changes are leaves of the system tenant's audit log. `jwks` is the canonical JSON
of the client's public keys (openbanking/tpp/model.py checked it: no private member),
`redirect_uris` a JSON array of exact URIs, `scopes` the allowed scopes space-separated,
`status` active or disabled.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ob_clients",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("software_id", sa.String(64), nullable=True),
        sa.Column("jwks", sa.Text, nullable=False),
        sa.Column("redirect_uris", sa.Text, nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("ob_clients")
