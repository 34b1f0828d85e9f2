"""People: users, their passkeys, sessions and sign-in challenges; a transfer ceiling per key.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

`users` are staff and customers who sign in (security/auth/): an Argon2id password hash, a
lockout counter, a TOTP secret wrapped by the key manager (never in clear) and the last TOTP
time-step accepted (a code is good once). `webauthn_credentials` are their passkeys. `sessions`
are keyed by a hash of the token the client holds. `auth_challenges` are the WebAuthn
challenges, single use and expiring. `api_keys.transfer_ceiling` lets a machine key move more
than the step-up threshold without a person's step-up.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("failed_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", sa.BigInteger, nullable=True),
        sa.Column("totp_kek_version", sa.Integer, nullable=True),
        sa.Column("totp_secret", sa.LargeBinary, nullable=True),
        sa.Column("totp_confirmed_at", sa.BigInteger, nullable=True),
        sa.Column("totp_last_step", sa.BigInteger, nullable=True),
        sa.Column("webauthn_handle", sa.LargeBinary, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("tenant_id", "email", name="users_tenant_email"),
    )
    op.create_table(
        "webauthn_credentials",
        sa.Column("id", sa.String(1400), primary_key=True),  # base64url credential id
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("sign_count", sa.BigInteger, nullable=False),
        sa.Column("transports", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_used_at", sa.BigInteger, nullable=True),
    )
    op.create_index("webauthn_credentials_user", "webauthn_credentials", ["user_id"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),  # sha256 of the token, hex
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("idle_expires_at", sa.BigInteger, nullable=False),
        sa.Column("stepped_up_at", sa.BigInteger, nullable=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.Column("method", sa.String(16), nullable=False),
    )
    op.create_index("sessions_user", "sessions", ["user_id"])
    op.create_index("sessions_expires", "sessions", ["expires_at"])
    op.create_table(
        "auth_challenges",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("challenge", sa.LargeBinary, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("auth_challenges_expires", "auth_challenges", ["expires_at"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("transfer_ceiling", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("transfer_ceiling")
    op.drop_index("auth_challenges_expires", "auth_challenges")
    op.drop_table("auth_challenges")
    op.drop_index("sessions_expires", "sessions")
    op.drop_index("sessions_user", "sessions")
    op.drop_table("sessions")
    op.drop_index("webauthn_credentials_user", "webauthn_credentials")
    op.drop_table("webauthn_credentials")
    op.drop_table("users")
