"""Customers and counterparties, whose personal data is sealed under their own data keys.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-06

`customers`: the people and businesses who own accounts. Each personal-data field is a sealed
blob (security/envelope.py: AES-256-GCM under the customer's data key, bound to its row and
field); the email and the national id also have a blind index (a keyed hash of the normalised
value, per tenant) for exact lookup. Erasure destroys the data key, nulls the blobs and the blind
indexes and sets `erased_at`. `counterparties`: payees who are not customers, likewise sealed;
their country is not personal and stays in clear. `accounts.customer_id` names an account's
owner. `events.tenant_id` is the tenant of an event that belongs to no ledger (a customer's).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None

_PII = ("name", "date_of_birth", "address", "email", "phone", "national_id")


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        *(sa.Column(f"{name}_sealed", sa.LargeBinary, nullable=True) for name in _PII),
        sa.Column("email_index", sa.LargeBinary, nullable=True),
        sa.Column("national_id_index", sa.LargeBinary, nullable=True),
        sa.Column("legal_hold", sa.Boolean, nullable=False),
        sa.Column("metadata", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("erased_at", sa.BigInteger, nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("customers_tenant", "customers", ["tenant_id", "id"])
    op.create_index("customers_email", "customers", ["tenant_id", "email_index"])
    op.create_index("customers_national_id", "customers", ["tenant_id", "national_id_index"])
    op.create_table(
        "counterparties",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("name_sealed", sa.LargeBinary, nullable=True),
        sa.Column("account_sealed", sa.LargeBinary, nullable=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("erased_at", sa.BigInteger, nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("counterparties_tenant", "counterparties", ["tenant_id", "id"])
    op.add_column("accounts", sa.Column("customer_id", sa.String(64), nullable=True))
    op.create_index(
        "accounts_customer",
        "accounts",
        ["customer_id", "id"],
        sqlite_where=sa.text("customer_id IS NOT NULL"),
        postgresql_where=sa.text("customer_id IS NOT NULL"),
    )
    op.add_column("events", sa.Column("tenant_id", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("events", "tenant_id")
    op.drop_index("accounts_customer", "accounts")
    op.drop_column("accounts", "customer_id")
    op.drop_index("counterparties_tenant", "counterparties")
    op.drop_table("counterparties")
    op.drop_index("customers_national_id", "customers")
    op.drop_index("customers_email", "customers")
    op.drop_index("customers_tenant", "customers")
    op.drop_table("customers")
