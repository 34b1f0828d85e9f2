"""Amounts and account totals are unsigned 128-bit integers of minor units.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

- PostgreSQL: the money columns (accounts' four totals, transfers.amount, entries' amount,
  pending delta and four running totals) become NUMERIC(39,0), with CHECK constraints holding
  them to 0..2^128-1 (a pending delta to +-(2^128-1)). The rewrite takes a table lock: run it
  in a maintenance window on a large ledger.
- SQLite: nothing to rewrite. SQLite has no integer wider than 64 bits; a money value that
  fits a signed 64-bit integer stays a native INTEGER (all data written before this revision),
  a larger one is a 17-byte big-endian BLOB in the same column (core.money.to_stored_int;
  SQLite never converts a BLOB by column affinity). docs/architecture.md has the reasons.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

AMOUNT_MAX = 2**128 - 1
TOTALS = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")
# (table, column, lowest value allowed)
COLUMNS = (
    *(("accounts", c, 0) for c in TOTALS),
    ("transfers", "amount", 1),
    ("entries", "amount", 0),
    ("entries", "pending_delta", -AMOUNT_MAX),
    *(("entries", c, 0) for c in TOTALS),
)


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table in ("accounts", "transfers", "entries"):
        mine = [(c, low) for t, c, low in COLUMNS if t == table]
        alters = ", ".join(f"ALTER COLUMN {c} TYPE NUMERIC(39,0)" for c, _ in mine)
        checks = ", ".join(
            f"ADD CONSTRAINT {table}_{c}_range CHECK ({c} BETWEEN {low} AND {AMOUNT_MAX})"
            for c, low in mine
        )
        op.execute(f"ALTER TABLE {table} {alters}, {checks}")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    # Fails (numeric out of range for bigint) if any value is past 64 bits: nothing is lost.
    for table in ("accounts", "transfers", "entries"):
        mine = [c for t, c, _ in COLUMNS if t == table]
        drops = ", ".join(f"DROP CONSTRAINT {table}_{c}_range" for c in mine)
        alters = ", ".join(f"ALTER COLUMN {c} TYPE BIGINT" for c in mine)
        op.execute(f"ALTER TABLE {table} {drops}, {alters}")
