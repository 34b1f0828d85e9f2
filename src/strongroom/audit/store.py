"""SQL for the audit log (migration 0005): logs, leaves, tiles, checkpoints, signing keys.

Every function takes the caller's unit of work: appends run inside the ledger's own write
transaction, so a leaf commits or rolls back with the change it records.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from strongroom.audit.tiles import TileId
from strongroom.core import frames
from strongroom.core.limits import AUDIT_BUNDLE_BYTES_MAX, AUDIT_BUNDLE_ZSTD_LEVEL
from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork


def _blob(value: Any) -> bytes:
    """A BLOB as bytes; text if someone stored text there (a hand edit): verify still reads
    it, and finds it does not match."""
    return value.encode() if isinstance(value, str) else bytes(value)


def lock_log(uow: UnitOfWork, log_id: str, now_us: int) -> int:
    """The log's size, with its row locked until the transaction ends (created at 0)."""
    cur = uow.cursor()
    if uow.sqlite:  # the write transaction already holds SQLite's only write lock
        cur.execute("SELECT size FROM audit_logs WHERE log_id = ?", (log_id,))
    else:
        cur.execute("SELECT size FROM audit_logs WHERE log_id = %s FOR UPDATE", (log_id,))
    row = cur.fetchone()
    if row is not None:
        return int(row[0])
    if uow.sqlite:
        cur.execute(
            "INSERT INTO audit_logs (log_id, size, updated_at) VALUES (?, 0, ?)", (log_id, now_us)
        )
    else:
        cur.execute(
            "INSERT INTO audit_logs (log_id, size, updated_at) VALUES (%s, 0, %s) "
            "ON CONFLICT (log_id) DO NOTHING",
            (log_id, now_us),
        )
        cur.execute("SELECT size FROM audit_logs WHERE log_id = %s FOR UPDATE", (log_id,))
        return int(cur.fetchone()[0])
    return 0


def log_size(uow: UnitOfWork, log_id: str) -> int:
    cur = uow.cursor()
    cur.execute(sql(uow, "SELECT size FROM audit_logs WHERE log_id = ?"), (log_id,))
    row = cur.fetchone()
    return 0 if row is None else int(row[0])


def log_ids(uow: UnitOfWork) -> list[str]:
    cur = uow.cursor()
    cur.execute("SELECT log_id FROM audit_logs ORDER BY log_id")
    return [r[0] for r in cur.fetchall()]


# A bundle written before bundles were compressed (or too large to be: pack_bundle) starts with
# its first leaf's 4-byte length. A leaf that long (~683 MB) cannot exist (leaves repeat what a
# request held), so a zstd frame's magic number is never read as one.
_MAGIC_AS_LENGTH: Final = int.from_bytes(frames.MAGIC, "big")
assert _MAGIC_AS_LENGTH > 8 * AUDIT_BUNDLE_BYTES_MAX


def pack_bundle(leaves: Sequence[bytes]) -> bytes:
    """Leaves as one stored blob: each a 4-byte big-endian length, then its bytes, the whole
    compressed as one zstd frame that records its size and a checksum. Leaves repeat their
    ledger, accounts and actor: a bulk batch's compress about nine times, which makes the
    bundle a tenth of the WAL and database pages it was, and the commit that writes them
    shorter. Leaves over AUDIT_BUNDLE_BYTES_MAX together (a batch posted in process, with no
    request bound) are stored packed only. (The checksum is no integrity check: whoever can
    write the row can write a new frame. The leaves' hashes in the tree are: `verify`.)"""
    raw = _join(leaves)
    if len(raw) > AUDIT_BUNDLE_BYTES_MAX:
        return raw
    return frames.compress(raw, AUDIT_BUNDLE_ZSTD_LEVEL)


def _join(leaves: Sequence[bytes]) -> bytes:
    sizes = set(map(len, leaves))
    if len(sizes) == 1:  # a bulk batch's leaves are all of one size: one join, in C
        # Joined after an empty first item, so that the length leads every leaf (the first
        # too) without copying the blob again.
        return sizes.pop().to_bytes(4, "big").join([b"", *leaves])
    return b"".join([len(d).to_bytes(4, "big") + d for d in leaves])


def open_bundle(data: bytes) -> bytes:
    """A stored bundle's length-prefixed leaves (`split_bundle` parts them): decompressed, or
    as stored when it is not a zstd frame (written before bundles were compressed, or too
    large to be). ValueError if the frame does not open (a hand edit): its header says more
    than AUDIT_BUNDLE_BYTES_MAX (refused before anything is allocated), or it fails to
    decompress or its checksum, or bytes follow it."""
    if not frames.is_frame(data):
        return data
    try:
        return frames.decompress(data, AUDIT_BUNDLE_BYTES_MAX)
    except ValueError as exc:
        raise ValueError(f"a bundle does not open: {exc}") from None


def unpack_bundle(data: bytes) -> list[bytes]:
    """The leaves of a stored bundle; ValueError if the blob is not one (a hand edit)."""
    return split_bundle(open_bundle(data))


def split_bundle(data: bytes, lo: int = 0, hi: int | None = None) -> list[bytes]:
    """The leaves of an opened bundle (`open_bundle`), or those at positions lo <= k < hi
    (the length prefixes before `lo` are stepped over, none after `hi` read: one leaf of a
    bulk bundle costs a walk to it, not 8,190 leaves cut out); ValueError if the bundle is
    not one as far as it is read."""
    leaves: list[bytes] = []
    offset, end, k = 0, len(data), 0
    while offset < end and (hi is None or k < hi):
        if offset + 4 > end:
            raise ValueError("a bundle ends inside a length prefix")
        length = int.from_bytes(data[offset : offset + 4], "big")
        offset += 4
        if offset + length > end:
            raise ValueError("a bundle ends inside a leaf")
        if k >= lo:
            leaves.append(data[offset : offset + length])
        offset += length
        k += 1
    return leaves


def leaves_holding(data: bytes, needles: Iterable[bytes]) -> list[tuple[int, bytes]]:
    """(position in the bundle, leaf) of each leaf of an opened bundle whose bytes hold one of
    `needles`, found by searching the whole bundle first and walking its length prefixes only
    as far as the last match, without cutting out the leaves that hold none: a transfer's
    receipt or proof reads one leaf of a bulk bundle (8,190) in a few milliseconds, not the
    ~20 it took to split them all. ValueError if the bundle's prefixes do not hold together up
    to there."""
    hits: list[int] = []
    for needle in needles:
        at = data.find(needle)
        while at >= 0:
            hits.append(at)
            at = data.find(needle, at + 1)
    if not hits:
        return []
    hits.sort()
    last = hits[-1]
    out: list[tuple[int, bytes]] = []
    offset, end, k, h = 0, len(data), 0, 0
    while offset <= last:
        if offset + 4 > end:
            raise ValueError("a bundle ends inside a length prefix")
        start = offset + 4
        stop = start + int.from_bytes(data[offset:start], "big")
        if stop > end:
            raise ValueError("a bundle ends inside a leaf")
        if hits[h] < stop:
            if hits[h] >= start:
                out.append((k, data[start:stop]))
            while h < len(hits) and hits[h] < stop:
                h += 1
            if h == len(hits):
                break
        offset, k = stop, k + 1
    return out


def append(
    uow: UnitOfWork,
    log_id: str,
    start: int,
    leaves: Sequence[bytes],
    refs: Sequence[tuple[str, int]],
    tiles: Mapping[TileId, bytes],
    now_us: int,
    at_us: int,
) -> None:
    """Leaves [start, start + len) as one bundle row (a transaction's leaves of one log),
    `refs` (ref, index) for the leaves found by reference rather than by time, and the tiles
    they changed; the log's size moves on. `at_us` is the bundle's time: the `created_at` of
    the transfers whose leaves it holds, by which their leaves are found."""
    cur = uow.cursor()
    tile_rows = [(log_id, level, index, hashes) for (level, index), hashes in tiles.items()]
    bundle = (log_id, start, len(leaves), at_us, pack_bundle(leaves))
    ref_rows = [(ref, log_id, index) for ref, index in refs]
    if uow.sqlite:
        cur.execute(
            "INSERT INTO audit_bundles (log_id, first_idx, count, created_at, data) "
            "VALUES (?,?,?,?,?)",
            bundle,
        )
        cur.executemany(
            "INSERT OR REPLACE INTO audit_tiles (log_id, level, idx, hashes) VALUES (?,?,?,?)",
            tile_rows,
        )
    else:
        cur.execute(
            "INSERT INTO audit_bundles (log_id, first_idx, count, created_at, data) "
            "VALUES (%s,%s,%s,%s,%s)",
            bundle,
        )
        cur.executemany(
            "INSERT INTO audit_tiles (log_id, level, idx, hashes) VALUES (%s,%s,%s,%s) "
            "ON CONFLICT (log_id, level, idx) DO UPDATE SET hashes = EXCLUDED.hashes",
            tile_rows,
        )
    if ref_rows:
        cur.executemany(
            sql(uow, "INSERT INTO audit_refs (ref, log_id, idx) VALUES (?,?,?)"), ref_rows
        )
    cur.execute(
        sql(uow, "UPDATE audit_logs SET size = ?, updated_at = ? WHERE log_id = ?"),
        (start + len(leaves), now_us, log_id),
    )


def read_tiles(uow: UnitOfWork, log_id: str, tile_ids: Sequence[TileId]) -> dict[TileId, bytes]:
    """The tiles asked for that exist, in one statement: one primary-key look-up each."""
    if not tile_ids:
        return {}
    cur = uow.cursor()
    wanted = sorted(set(tile_ids))
    if uow.sqlite:
        # The whole key in every term: SQLite then seeks each, where `log_id = ? AND (...)`
        # would scan all of the log's tiles.
        terms = " OR ".join(["(log_id = ? AND level = ? AND idx = ?)"] * len(wanted))
        params: list[Any] = []
        for level, index in wanted:
            params += [log_id, level, index]
        cur.execute(f"SELECT level, idx, hashes FROM audit_tiles WHERE {terms}", params)
    else:
        cur.execute(
            "SELECT t.level, t.idx, t.hashes FROM audit_tiles t "
            "JOIN unnest(%s::smallint[], %s::bigint[]) AS w(level, idx) "
            "ON t.level = w.level AND t.idx = w.idx WHERE t.log_id = %s",
            ([w[0] for w in wanted], [w[1] for w in wanted], log_id),
        )
    return {(int(r[0]), int(r[1])): _blob(r[2]) for r in cur.fetchall()}


def _bundle_rows(uow: UnitOfWork, log_id: str, start: int, end: int) -> list[tuple[Any, ...]]:
    """The bundles holding leaves start <= index < end, in order."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT first_idx, count, data FROM audit_bundles WHERE log_id = ? AND first_idx < ? "
            "AND first_idx >= COALESCE((SELECT MAX(first_idx) FROM audit_bundles "
            "WHERE log_id = ? AND first_idx <= ?), 0) ORDER BY first_idx",
        ),
        (log_id, end, log_id, start),
    )
    return list(cur.fetchall())


def leaves(uow: UnitOfWork, log_id: str, start: int, end: int) -> list[tuple[int, bytes]]:
    """(index, data) of the leaves start <= index < end, in order."""
    out: list[tuple[int, bytes]] = []
    for first, _count, data in _bundle_rows(uow, log_id, start, end):
        first = int(first)
        lo = max(start - first, 0)
        part = _unpack_named(log_id, first, _blob(data), lo, end - first)
        out.extend((first + lo + k, leaf) for k, leaf in enumerate(part))
    return out


def iter_bundles(uow: UnitOfWork, log_id: str, page: int = 64) -> Iterator[tuple[int, int, bytes]]:
    """Every bundle of the log as (first index, count, data), in index order: the verifier's
    stream."""
    after = -1
    while True:
        cur = uow.cursor()
        cur.execute(
            sql(
                uow,
                "SELECT first_idx, count, data FROM audit_bundles WHERE log_id = ? "
                "AND first_idx > ? ORDER BY first_idx LIMIT ?",
            ),
            (log_id, after, page),
        )
        rows = cur.fetchall()
        if not rows:
            return
        for r in rows:
            yield int(r[0]), int(r[1]), _blob(r[2])
        after = int(rows[-1][0])


def iter_leaves(uow: UnitOfWork, log_id: str) -> Iterator[tuple[int, bytes]]:
    """Every leaf of the log as (index, data), in order (bundles as stored, not checked)."""
    for first, _count, data in iter_bundles(uow, log_id):
        for k, leaf in enumerate(_unpack_named(log_id, first, data)):
            yield first + k, leaf


class BundleDamaged(ValueError):
    """A stored bundle that does not open or part into leaves (a hand edit), naming it."""


@contextlib.contextmanager
def _named(log_id: str, first: int) -> Iterator[None]:
    """A bundle that does not open or part into leaves, named (BundleDamaged) by its log and
    first index: every read of leaves raises it so."""
    try:
        yield
    except BundleDamaged:
        raise
    except ValueError as exc:
        raise BundleDamaged(f"log {log_id}: the bundle of leaves from {first}: {exc}") from None


def leaves_holding_named(
    log_id: str, first: int, data: bytes, needles: Iterable[bytes]
) -> list[tuple[int, bytes]]:
    """`leaves_holding` of an opened bundle, a damaged one named (BundleDamaged)."""
    with _named(log_id, first):
        return leaves_holding(data, needles)


def _unpack_named(
    log_id: str, first: int, data: bytes, lo: int = 0, hi: int | None = None
) -> list[bytes]:
    """`split_bundle(open_bundle(data), lo, hi)`, a damaged bundle named (BundleDamaged)."""
    with _named(log_id, first):
        return split_bundle(open_bundle(data), lo, hi)


def open_named(log_id: str, first: int, data: bytes) -> bytes:
    """open_bundle, a failure naming the bundle (BundleDamaged)."""
    with _named(log_id, first):
        return open_bundle(data)


def bundles_at(uow: UnitOfWork, log_id: str, at_us: int) -> list[tuple[int, bytes]]:
    """(first index, data) of the bundles of that time."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT first_idx, data FROM audit_bundles WHERE log_id = ? AND created_at = ? "
            "ORDER BY first_idx",
        ),
        (log_id, at_us),
    )
    return [(int(r[0]), _blob(r[1])) for r in cur.fetchall()]


def ref_indexes(uow: UnitOfWork, log_id: str, ref: str) -> list[int]:
    cur = uow.cursor()
    cur.execute(
        sql(uow, "SELECT idx FROM audit_refs WHERE ref = ? AND log_id = ? ORDER BY idx"),
        (ref, log_id),
    )
    return [int(r[0]) for r in cur.fetchall()]


def transfer_created_at(uow: UnitOfWork, transfer_id: str) -> int | None:
    """When the ledger recorded a transfer: the time of the bundle holding its leaf."""
    cur = uow.cursor()
    cur.execute(sql(uow, "SELECT created_at FROM transfers WHERE id = ?"), (transfer_id,))
    row = cur.fetchone()
    return None if row is None else int(row[0])


# -- checkpoints ---------------------------------------------------------------------------


def insert_checkpoint(
    uow: UnitOfWork, log_id: str, size: int, root: bytes, note: str, now_us: int
) -> bool:
    """False when a checkpoint of this size exists already (it is the same tree)."""
    cur = uow.cursor()
    if uow.sqlite:
        cur.execute(
            "INSERT OR IGNORE INTO audit_checkpoints (log_id, size, root, note, created_at) "
            "VALUES (?,?,?,?,?)",
            (log_id, size, root, note, now_us),
        )
    else:
        cur.execute(
            "INSERT INTO audit_checkpoints (log_id, size, root, note, created_at) "
            "VALUES (%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
            (log_id, size, root, note, now_us),
        )
    return bool(cur.rowcount)


def latest_checkpoint(uow: UnitOfWork, log_id: str) -> tuple[int, bytes, str, int] | None:
    """(size, root, note, created_at) of the largest checkpoint."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT size, root, note, created_at FROM audit_checkpoints WHERE log_id = ? "
            "ORDER BY size DESC LIMIT 1",
        ),
        (log_id,),
    )
    row = cur.fetchone()
    return None if row is None else (int(row[0]), bytes(row[1]), row[2], int(row[3]))


def checkpoint(uow: UnitOfWork, log_id: str, size: int) -> tuple[int, bytes, str, int] | None:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT size, root, note, created_at FROM audit_checkpoints "
            "WHERE log_id = ? AND size = ?",
        ),
        (log_id, size),
    )
    row = cur.fetchone()
    return None if row is None else (int(row[0]), bytes(row[1]), row[2], int(row[3]))


def checkpoints(uow: UnitOfWork, log_id: str) -> list[tuple[int, bytes, str, int]]:
    """Every checkpoint of the log, smallest first."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT size, root, note, created_at FROM audit_checkpoints WHERE log_id = ? "
            "ORDER BY size",
        ),
        (log_id,),
    )
    return [(int(r[0]), bytes(r[1]), r[2], int(r[3])) for r in cur.fetchall()]


# -- signing keys --------------------------------------------------------------------------


def lock_keys(uow: UnitOfWork) -> None:
    """Serializes key creation between processes (SQLite's write lock already does)."""
    if not uow.sqlite:
        uow.cursor().execute("SELECT pg_advisory_xact_lock(%s)", (0x5352_4B45_5953,))


def keys(uow: UnitOfWork) -> list[tuple[str, str, str, str | None, int, int | None]]:
    """(key_id, name, verifier_key, signer_key, created_at, retired_at), oldest first."""
    cur = uow.cursor()
    cur.execute(
        "SELECT key_id, name, verifier_key, signer_key, created_at, retired_at FROM audit_keys "
        "ORDER BY created_at, key_id"
    )
    return [(r[0], r[1], r[2], r[3], int(r[4]), r[5]) for r in cur.fetchall()]


def insert_key(
    uow: UnitOfWork, key_id: str, name: str, verifier: str, signer: str | None, now_us: int
) -> None:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "INSERT INTO audit_keys (key_id, name, verifier_key, signer_key, created_at) "
            "VALUES (?,?,?,?,?)",
        ),
        (key_id, name, verifier, signer, now_us),
    )


def reactivate_key(uow: UnitOfWork, key_id: str) -> None:
    cur = uow.cursor()
    cur.execute(sql(uow, "UPDATE audit_keys SET retired_at = NULL WHERE key_id = ?"), (key_id,))


def delete_key(uow: UnitOfWork, key_id: str) -> None:
    """Only for a key that never signed anything."""
    cur = uow.cursor()
    cur.execute(sql(uow, "DELETE FROM audit_keys WHERE key_id = ?"), (key_id,))


def retire_keys(uow: UnitOfWork, keep: str, now_us: int) -> None:
    """Every key but `keep` is retired: it no longer signs, its checkpoints still verify."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "UPDATE audit_keys SET retired_at = ?, signer_key = NULL "
            "WHERE key_id <> ? AND retired_at IS NULL",
        ),
        (now_us, keep),
    )


def clear_signer_keys(uow: UnitOfWork, sealed_prefix: str) -> list[tuple[str, str]]:
    """(key_id, signer_key) of every key whose private half is still stored in clear."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT key_id, signer_key FROM audit_keys WHERE signer_key IS NOT NULL "
            "AND substr(signer_key, 1, ?) <> ? ORDER BY key_id",
        ),
        (len(sealed_prefix), sealed_prefix),
    )
    return [(r[0], r[1]) for r in cur.fetchall()]


def set_signer_key(uow: UnitOfWork, key_id: str, old: str, new: str) -> int:
    cur = uow.cursor()
    cur.execute(
        sql(uow, "UPDATE audit_keys SET signer_key = ? WHERE key_id = ? AND signer_key = ?"),
        (new, key_id, old),
    )
    return int(cur.rowcount)


def transfer_rows(uow: UnitOfWork, page: int = 20_000) -> Iterator[tuple[Any, ...]]:
    """The ledger's transfer rows as stored, and last who created each (`actor_ref`, an id
    of `actors`), for `verify`'s cross-check. The one read of another domain's table: the
    check is of the storage itself, below the ledger's service."""
    from strongroom.ledger.store import TRANSFER_COLS

    yield from _by_key(uow, "transfers", f"{TRANSFER_COLS}, actor_ref", "seq", page)


def actor_names(uow: UnitOfWork) -> dict[int, str]:
    """Every actor by id (an API key, a user, the CLI...: one row each, not one a transfer)."""
    cur = uow.cursor()
    cur.execute("SELECT id, actor FROM actors")
    return {int(r[0]): r[1] for r in cur.fetchall()}


def _by_key(
    uow: UnitOfWork, table: str, columns: str, key: str, page: int
) -> Iterator[tuple[Any, ...]]:
    """Every row of `table` in `key` order (its first column), one page of primary-key range
    at a time: memory holds a page, whatever the table's size."""
    after = -1
    while True:
        cur = uow.cursor()
        cur.execute(
            sql(uow, f"SELECT {columns} FROM {table} WHERE {key} > ? ORDER BY {key} LIMIT ?"),
            (after, page),
        )
        rows = cur.fetchall()
        if not rows:
            return
        yield from rows
        after = int(rows[-1][0])


def count_tiles(uow: UnitOfWork, log_id: str) -> int:
    """How many tiles the log has stored, for `verify` to compare with how many its leaves
    make."""
    cur = uow.cursor()
    cur.execute(sql(uow, "SELECT COUNT(*) FROM audit_tiles WHERE log_id = ?"), (log_id,))
    return int(cur.fetchone()[0])


def tile_outside(uow: UnitOfWork, log_id: str, widths: Sequence[int]) -> TileId | None:
    """The first stored tile of the log that is not among the tiles (level, 0 .. widths[level]
    - 1): `widths` says how many tiles each level has."""
    terms = ["level < 0", "idx < 0", "level >= ?"]
    params: list[Any] = [log_id, len(widths)]
    for level, width in enumerate(widths):
        terms.append("(level = ? AND idx >= ?)")
        params += [level, width]
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            f"SELECT level, idx FROM audit_tiles WHERE log_id = ? AND ({' OR '.join(terms)}) "
            "ORDER BY level, idx LIMIT 1",
        ),
        params,
    )
    row = cur.fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def ledger_tenants(uow: UnitOfWork) -> dict[str, str]:
    """ledger id -> tenant id of every ledger, for `verify` to read each transfer's leaves in
    its tenant's log (one entry a ledger, not a transfer)."""
    cur = uow.cursor()
    cur.execute("SELECT id, tenant_id FROM ledgers")
    return {r[0]: r[1] for r in cur.fetchall()}


# -- the replay's reads of the ledger's tables (audit/replay.py) -----------------------------
# Like transfer_rows: the check is of the storage itself, below the ledger's service.


def entry_rows(uow: UnitOfWork, page: int = 20_000) -> Iterator[tuple[Any, ...]]:
    """Every entry row as stored (ledger.store.ENTRY_COLS), by id: commit order on SQLite."""
    from strongroom.ledger.store import ENTRY_COLS

    yield from _by_key(uow, "entries", ENTRY_COLS, "id", page)


ACCOUNT_REPLAY_COLS = (
    "a.id, a.ledger_id, a.asset, a.normal_balance, a.flags, a.closed, a.debits_posted, "
    "a.credits_posted, a.debits_pending, a.credits_pending, a.version, l.tenant_id, a.frozen"
)


def account_rows(uow: UnitOfWork, page: int = 20_000) -> Iterator[tuple[Any, ...]]:
    """Every account row as stored (ACCOUNT_REPLAY_COLS: what the log says of an account, and
    its ledger's tenant, None for a ledger that is not there), by id."""
    after = ""
    while True:
        cur = uow.cursor()
        cur.execute(
            sql(
                uow,
                f"SELECT {ACCOUNT_REPLAY_COLS} FROM accounts a "
                "LEFT JOIN ledgers l ON l.id = a.ledger_id WHERE a.id > ? ORDER BY a.id LIMIT ?",
            ),
            (after, page),
        )
        rows = cur.fetchall()
        if not rows:
            return
        yield from rows
        after = rows[-1][0]
