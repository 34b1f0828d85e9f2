"""Open banking's authorization server: pushed authorization requests, authorization codes,
tokens and the DPoP replay store.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-08

Deployment-wide (one authorization server per deployment): a code or a token names its
consent's tenant, a pushed request none. Every secret (a request_uri, a code, a token) is kept
only as the SHA-256 of its text (`digest`, base64url), never in clear. `ob_dpop_jti`
remembers the `jti`s of DPoP proofs and client assertions (keyed by the SHA-256 of the replay
key) until they expire; every worker process reads and writes it, and the purge job deletes
what expired.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ob_par_requests",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("begun_at", sa.BigInteger, nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ob_par_requests_expiry", "ob_par_requests", ["expires_at"])
    op.create_table(
        "ob_codes",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("code_challenge", sa.String(64), nullable=False),
        sa.Column("dpop_jkt", sa.String(64), nullable=True),
        sa.Column("consent_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("issued_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger, nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ob_codes_consent", "ob_codes", ["consent_id"])
    op.create_index("ob_codes_expiry", "ob_codes", ["expires_at"])
    op.create_table(
        "ob_tokens",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("grant_type", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("jkt", sa.String(64), nullable=False),
        sa.Column("consent_id", sa.String(64), nullable=True),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("origin", sa.String(64), nullable=True),
        sa.Column("parent", sa.String(64), nullable=True),
        sa.Column("issued_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ob_tokens_consent", "ob_tokens", ["consent_id"])
    op.create_index("ob_tokens_origin", "ob_tokens", ["origin"])
    op.create_index("ob_tokens_expiry", "ob_tokens", ["expires_at"])
    op.create_table(
        "ob_dpop_jti",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ob_dpop_jti_expiry", "ob_dpop_jti", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ob_dpop_jti_expiry", "ob_dpop_jti")
    op.drop_table("ob_dpop_jti")
    for index in ("ob_tokens_expiry", "ob_tokens_origin", "ob_tokens_consent"):
        op.drop_index(index, "ob_tokens")
    op.drop_table("ob_tokens")
    op.drop_index("ob_codes_expiry", "ob_codes")
    op.drop_index("ob_codes_consent", "ob_codes")
    op.drop_table("ob_codes")
    op.drop_index("ob_par_requests_expiry", "ob_par_requests")
    op.drop_table("ob_par_requests")
