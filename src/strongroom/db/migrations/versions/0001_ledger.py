"""The ledger: ledgers, assets, accounts, transfers, entries and the entry index.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id(name: str = "id", **kw: object) -> sa.Column[str]:
    return sa.Column(name, sa.String(64), **kw)  # type: ignore[arg-type]


def _big(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "ledgers",
        _id(primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("metadata", sa.Text, nullable=True),
        _big("created_at"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "assets",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("scale", sa.SmallInteger, nullable=False),
        _big("created_at"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "accounts",
        _id(primary_key=True),
        _id("ledger_id", nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("normal_balance", sa.SmallInteger, nullable=False),
        sa.Column("flags", sa.Integer, nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False),
        sa.Column("metadata", sa.Text, nullable=True),
        _big("debits_posted"),
        _big("credits_posted"),
        _big("debits_pending"),
        _big("credits_pending"),
        _big("version"),
        _big("last_entry_id", nullable=True),
        _big("created_at"),
        _big("updated_at"),
        sqlite_with_rowid=False,
        postgresql_with={"fillfactor": "70"},  # room for HOT updates of the balances
    )
    op.create_index("accounts_ledger_id", "accounts", ["ledger_id", "id"])
    op.create_table(
        "transfers",
        sa.Column("seq", RowId, primary_key=True, autoincrement=False),
        _id(nullable=False),
        _id("ledger_id", nullable=False),
        sa.Column("action", sa.SmallInteger, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        _id("debit_account_id", nullable=True),
        _id("credit_account_id", nullable=True),
        _big("amount"),
        sa.Column("legs", sa.Text, nullable=True),
        _id("target_id", nullable=True),
        sa.Column("pending", sa.Boolean, nullable=False),
        sa.Column("timeout_s", sa.Integer, nullable=False),
        _big("expires_at", nullable=True),
        sa.Column("metadata", sa.Text, nullable=True),
        _big("created_at"),
    )
    op.create_index("transfers_id", "transfers", ["id"], unique=True)
    pending_due = sa.text("status = 1 AND expires_at IS NOT NULL")
    op.create_index(
        "transfers_pending_expiry",
        "transfers",
        ["expires_at"],
        sqlite_where=pending_due,
        postgresql_where=pending_due,
    )
    has_target = sa.text("target_id IS NOT NULL")
    op.create_index(
        "transfers_target",
        "transfers",
        ["target_id"],
        sqlite_where=has_target,
        postgresql_where=has_target,
    )
    op.create_table(
        "entries",
        sa.Column("id", RowId, primary_key=True, autoincrement=False),
        _id("account_id", nullable=False),
        _big("version"),
        _big("prev_id", nullable=True),
        _id("transfer_id", nullable=False),
        sa.Column("direction", sa.SmallInteger, nullable=False),
        _big("amount"),
        _big("pending_delta"),
        _big("debits_posted"),
        _big("credits_posted"),
        _big("debits_pending"),
        _big("credits_pending"),
        _big("created_at"),
    )
    op.create_table(
        "entry_index",
        _id("account_id", primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True),
        _big("entry_id"),
        _big("created_at"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "id_blocks",
        sa.Column("name", sa.String(32), primary_key=True),
        _big("value"),
        sqlite_with_rowid=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE id_block_seq START 1")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE id_block_seq")
    for table in (
        "id_blocks",
        "entry_index",
        "entries",
        "transfers",
        "accounts",
        "assets",
        "ledgers",
    ):
        op.drop_table(table)
