"""Where audited history begins: `audit.baseline` leaves for accounts older than the audit log.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

A database upgraded from before 0005 holds accounts, entries and transfers written before the
audit log existed: no leaf records them, so `strongroom audit verify` (which replays the
leaves into balances and compares them with every account and entry) could never pass. This
revision appends, to the log of each tenant that has such accounts (the accounts no
`account.created` leaf records), `audit.baseline` leaves holding each such account's state now
(ledger, asset, normal balance, flags, closed, version and the four totals) and `transfer_seq`,
the highest transfer seq now. Verify's replay starts those accounts from their baseline (their
entries up to that version need no leaf) and a transfer up to `transfer_seq` may have no leaf.
The baseline is a leaf like any other: the next signed checkpoint covers it, so it cannot be
rewritten later without the change being caught.

Data, not schema: no table changes. The leaf encoding (a version-2 record leaf) and the tile
layout (height 4) are storage formats, frozen here rather than imported, so that this revision
writes what it wrote the day it shipped. Running it again (after a downgrade) adds nothing for
accounts a baseline already holds. It reads every account once and, for accounts the log has
references to, the leaves that created them: on a large database it takes a while.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from strongroom.audit.tiles import TileLayout

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BASELINE = "audit.baseline"  # the leaves' type, and the ref that indexes them
ACTOR = "system"
TILE_HEIGHT = 4
LEAF_BODY_BYTES_MAX = 60_000  # a record leaf's data is a string of at most 0xFFFE bytes
LEAVES_PER_BUNDLE = 16
NATIVE_INT_MAX = 2**63 - 1
FLAG_NAMES = ((1, "debits_must_not_exceed_credits"), (2, "credits_must_not_exceed_debits"))
_U16 = struct.Struct(">H")
_I64 = struct.Struct(">q")


def _money(value: Any) -> int:
    """A stored money value: an int, or on SQLite past 64 bits a 17-byte big-endian BLOB."""
    if isinstance(value, bytes | memoryview):
        return int.from_bytes(bytes(value), "big", signed=True)
    return int(value)


def _str(value: str) -> bytes:
    data = value.encode()
    assert len(data) < 0xFFFF
    return _U16.pack(len(data)) + data


def _record_leaf(at_us: int, data: dict[str, Any]) -> bytes:
    """A version-2 record leaf (audit/leaf.py record_leaf, as of this revision)."""
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return b"".join((bytes((2, 2)), _str(BASELINE), _I64.pack(at_us), _str(ACTOR), _str(body)))


# Bundles written after this revision are zstd frames (audit/store.py pack_bundle), and this
# revision runs again after a downgrade past it: it reads those too, or it would find no
# account of them audited and vouch for them a second time. Frozen here like the rest.
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BUNDLE_BYTES_MAX = 64 * 1024 * 1024


def _unpack_bundle(data: bytes) -> list[bytes]:
    if data[:4] == _ZSTD_MAGIC:
        import zstandard

        try:
            size = zstandard.frame_content_size(data)
            if not 0 <= size <= _BUNDLE_BYTES_MAX:
                return []
            data = zstandard.ZstdDecompressor().decompress(data, allow_extra_data=False)
        except zstandard.ZstdError:
            return []  # damaged: `audit verify` names it
    out, offset = [], 0
    while offset + 4 <= len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        out.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return out


def _record(leaf: bytes) -> tuple[str, str] | None:
    """(type, data JSON) of a record leaf (any version), None for any other leaf."""
    if len(leaf) < 4 or leaf[0] not in (1, 2) or leaf[1] != 2:
        return None
    offset = 2
    (length,) = _U16.unpack_from(leaf, offset)
    kind = leaf[offset + 2 : offset + 2 + length].decode(errors="replace")
    offset += 2 + length + 8
    (length,) = _U16.unpack_from(leaf, offset)  # the actor
    offset += 2 + length
    (length,) = _U16.unpack_from(leaf, offset)
    return kind, leaf[offset + 2 : offset + 2 + length].decode(errors="replace")


class _Leaves:
    """Leaves by (log, index), a bundle read once for the run of look-ups inside it."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.bundle: tuple[str, int, list[bytes]] | None = None

    def get(self, log_id: str, index: int) -> bytes | None:
        b = self.bundle
        if b is None or b[0] != log_id or not b[1] <= index < b[1] + len(b[2]):
            row = self.conn.execute(
                sa.text(
                    "SELECT first_idx, data FROM audit_bundles WHERE log_id = :log "
                    "AND first_idx <= :i ORDER BY first_idx DESC LIMIT 1"
                ),
                {"log": log_id, "i": index},
            ).first()
            if row is None:
                return None
            b = self.bundle = (log_id, int(row[0]), _unpack_bundle(bytes(row[1])))
        k = index - b[1]
        return b[2][k] if 0 <= k < len(b[2]) else None


def _audited_accounts(conn: sa.Connection) -> set[str]:
    """Accounts an `account.created` leaf or an earlier baseline records."""
    found: set[str] = set()
    leaves = _Leaves(conn)
    rows = conn.execute(
        sa.text(
            "SELECT r.ref, r.log_id, r.idx FROM audit_refs r JOIN accounts a ON a.id = r.ref "
            "ORDER BY r.log_id, r.idx"
        )
    )
    for ref, log_id, index in rows.fetchall():
        leaf = leaves.get(log_id, int(index))
        record = _record(leaf) if leaf is not None else None
        if record is None or record[0] != "account.created":
            continue
        if json.loads(record[1]).get("account_id") == ref:
            found.add(ref)
    rows = conn.execute(
        sa.text("SELECT log_id, idx FROM audit_refs WHERE ref = :ref ORDER BY log_id, idx"),
        {"ref": BASELINE},
    )
    for log_id, index in rows.fetchall():
        leaf = leaves.get(log_id, int(index))
        record = _record(leaf) if leaf is not None else None
        if record is not None and record[0] == BASELINE:
            found.update(str(a[0]) for a in json.loads(record[1])["accounts"])
    return found


def _chunks(accounts: Sequence[list[Any]], transfer_seq: int) -> Iterable[dict[str, Any]]:
    """Baseline leaves' data, each under LEAF_BODY_BYTES_MAX."""
    mine: list[list[Any]] = []
    size = 100
    for a in accounts:
        cost = len(json.dumps(a, separators=(",", ":"))) + 1
        if mine and size + cost > LEAF_BODY_BYTES_MAX:
            yield {"accounts": mine, "transfer_seq": transfer_seq}
            mine, size = [], 100
        mine.append(a)
        size += cost
    if mine:
        yield {"accounts": mine, "transfer_seq": transfer_seq}


def _append(conn: sa.Connection, log_id: str, leaves: Sequence[bytes], now_us: int) -> None:
    """The leaves at the end of the log, with their tiles, refs and the log's new size."""
    row = conn.execute(
        sa.text("SELECT size FROM audit_logs WHERE log_id = :log"), {"log": log_id}
    ).first()
    if row is None:
        conn.execute(
            sa.text("INSERT INTO audit_logs (log_id, size, updated_at) VALUES (:log, 0, :now)"),
            {"log": log_id, "now": now_us},
        )
        size = 0
    else:
        size = int(row[0])
    layout = TileLayout(TILE_HEIGHT)
    edge: dict[tuple[int, int], bytes] = {}
    for level, index in layout.edge_tiles(size):
        found = conn.execute(
            sa.text(
                "SELECT hashes FROM audit_tiles WHERE log_id = :log AND level = :l AND idx = :i"
            ),
            {"log": log_id, "l": level, "i": index},
        ).first()
        if found is not None:
            edge[(level, index)] = bytes(found[0])
    tiles = layout.append(size, edge, [hashlib.sha256(b"\x00" + d).digest() for d in leaves])
    for start in range(0, len(leaves), LEAVES_PER_BUNDLE):
        part = leaves[start : start + LEAVES_PER_BUNDLE]
        conn.execute(
            sa.text(
                "INSERT INTO audit_bundles (log_id, first_idx, count, created_at, data) "
                "VALUES (:log, :first, :count, :at, :data)"
            ),
            {
                "log": log_id,
                "first": size + start,
                "count": len(part),
                "at": now_us,
                "data": b"".join(len(d).to_bytes(4, "big") + d for d in part),
            },
        )
    conn.execute(
        sa.text("INSERT INTO audit_refs (ref, log_id, idx) VALUES (:ref, :log, :i)"),
        [{"ref": BASELINE, "log": log_id, "i": size + k} for k in range(len(leaves))],
    )
    for (level, index), hashes in tiles.items():
        conn.execute(
            sa.text("DELETE FROM audit_tiles WHERE log_id = :log AND level = :l AND idx = :i"),
            {"log": log_id, "l": level, "i": index},
        )
        conn.execute(
            sa.text(
                "INSERT INTO audit_tiles (log_id, level, idx, hashes) VALUES (:log, :l, :i, :h)"
            ),
            {"log": log_id, "l": level, "i": index, "h": hashes},
        )
    conn.execute(
        sa.text("UPDATE audit_logs SET size = :size, updated_at = :now WHERE log_id = :log"),
        {"size": size + len(leaves), "now": now_us, "log": log_id},
    )


def upgrade() -> None:
    conn = op.get_bind()
    audited = _audited_accounts(conn)
    by_tenant: dict[str, list[list[Any]]] = {}
    rows = conn.execute(
        sa.text(
            "SELECT a.id, a.ledger_id, a.asset, a.normal_balance, a.flags, a.closed, "
            "a.version, a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending, "
            "l.tenant_id FROM accounts a JOIN ledgers l ON l.id = a.ledger_id ORDER BY a.id"
        )
    )
    for r in rows.fetchall():
        if r[0] in audited:
            continue
        flags = int(r[4])
        state = [
            r[0],
            r[1],
            r[2],
            "debit" if int(r[3]) == 0 else "credit",
            [name for bit, name in FLAG_NAMES if flags & bit],
            bool(r[5]),
            int(r[6]),
            *(_money(v) for v in r[7:11]),
        ]
        by_tenant.setdefault(r[11], []).append(state)
    if not by_tenant:
        return
    transfer_seq = conn.execute(sa.text("SELECT MAX(seq) FROM transfers")).scalar()
    seq = -1 if transfer_seq is None else int(transfer_seq)
    now_us = time.time_ns() // 1000
    for tenant_id in sorted(by_tenant):
        leaves = [_record_leaf(now_us, d) for d in _chunks(by_tenant[tenant_id], seq)]
        _append(conn, tenant_id, leaves, now_us)


def downgrade() -> None:
    # Leaves are never taken out of a log (its checkpoints hold them); upgrading again adds
    # nothing for the accounts these baselines hold.
    pass
