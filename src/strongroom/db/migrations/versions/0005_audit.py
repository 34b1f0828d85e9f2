"""The verifiable audit log: one RFC 9162 Merkle log per tenant, its tiles and checkpoints.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

- audit_logs: one row per log (a tenant's): its size. Appending locks this row, so leaf
  indexes are handed out in commit order; it is taken last in a write transaction.
- audit_bundles: the leaves (each the canonical bytes of one change, audit/leaf.py) that one
  transaction appended to one log, as one row: a bulk batch of 8,190 transfers is one insert,
  not 8,190. `created_at` is the time of the transfers it holds (a transfer's leaf is found by
  its created_at).
- audit_refs: (ref, index) of the leaves found by reference instead: expiries (ref: the
  transfer) and actions outside the ledger's transfers (ref: the account, ledger, key...).
- audit_tiles: the tree's hashes, TILE_HEIGHT levels to a tile (audit/tiles.py), bottom row
  only; the partial tile at the right edge of each tile level is rewritten as it grows.
- audit_checkpoints: every signed checkpoint (C2SP tlog-checkpoint in a signed note).
- audit_keys: the checkpoint signing keys (C2SP signed-note Ed25519), the retired ones kept so
  that old checkpoints still verify.
- events.transfer_id: the transfer an event is about; its data is rendered from that row when
  it is read (events/render.py), so `data` is now NULL for new events (older ones keep theirs).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _id(name: str, **kw: object) -> sa.Column[str]:
    return sa.Column(name, sa.String(64), **kw)  # type: ignore[arg-type]


def _big(name: str, **kw: object) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, **kw)  # type: ignore[arg-type]


def upgrade() -> None:
    with op.batch_alter_table("events") as events:
        events.add_column(sa.Column("transfer_id", sa.String(64), nullable=True))
        events.alter_column("data", existing_type=sa.Text, nullable=True)
    op.create_table(
        "audit_logs",
        _id("log_id", primary_key=True),
        _big("size", nullable=False),
        _big("updated_at", nullable=False),
    )
    op.create_table(
        "audit_bundles",
        _id("log_id", primary_key=True),
        _big("first_idx", primary_key=True, autoincrement=False),
        sa.Column("count", sa.Integer, nullable=False),
        _big("created_at", nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("audit_bundles_time", "audit_bundles", ["log_id", "created_at"])
    op.create_table(
        "audit_refs",
        _id("ref", primary_key=True),
        _id("log_id", primary_key=True),
        _big("idx", primary_key=True, autoincrement=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "audit_tiles",
        _id("log_id", primary_key=True),
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        _big("idx", primary_key=True, autoincrement=False),
        sa.Column("hashes", sa.LargeBinary, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "audit_checkpoints",
        _id("log_id", primary_key=True),
        _big("size", primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        _big("created_at", nullable=False),
    )
    op.create_table(
        "audit_keys",
        sa.Column("key_id", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("verifier_key", sa.Text, nullable=False),
        sa.Column("signer_key", sa.Text, nullable=True),  # NULL: the key is configured outside
        _big("created_at", nullable=False),
        _big("retired_at", nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("events") as events:
        events.drop_column("transfer_id")
    for table in (
        "audit_keys",
        "audit_checkpoints",
        "audit_tiles",
        "audit_refs",
        "audit_bundles",
        "audit_logs",
    ):
        op.drop_table(table)
