"""The risk model registry: versioned model artefacts per tenant, and a revision per tenant.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06

`risk_models` holds each tenant's trained models (risk/registry.py): the artefact's bytes (one
JSON document, never a pickle), its hold-out metrics, who registered it and when, and its status
(`registered`, `shadow`, `live`, `retired`). Partial unique indexes keep at most one live and
one shadow model per tenant, on both databases. `risk_model_revisions` counts each tenant's
changes: a server reads that one row (at most once a second) to notice a promotion made by
another process, and the registry locks it to serialise a tenant's changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_models",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("artefact", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("promoted_at", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "risk_models_one_live",
        "risk_models",
        ["tenant_id"],
        unique=True,
        sqlite_where=sa.text("status = 'live'"),
        postgresql_where=sa.text("status = 'live'"),
    )
    op.create_index(
        "risk_models_one_shadow",
        "risk_models",
        ["tenant_id"],
        unique=True,
        sqlite_where=sa.text("status = 'shadow'"),
        postgresql_where=sa.text("status = 'shadow'"),
    )
    op.create_table(
        "risk_model_revisions",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("risk_model_revisions")
    op.drop_index("risk_models_one_shadow", table_name="risk_models")
    op.drop_index("risk_models_one_live", table_name="risk_models")
    op.drop_table("risk_models")
