"""The audit log: one append-only RFC 9162 Merkle log per tenant, in the ledger's database.

- Appends run inside the transaction of the change they record (the ledger calls this object
  as its audit sink right before its commit), so the log holds a leaf for a change if and only
  if the change committed. The log's row is locked for the append: leaf indexes follow commit
  order, on SQLite and PostgreSQL alike.
- The tree is kept as tiles (audit/tiles.py) updated in the same transaction: any proof or
  root for any size up to the log's is one query for a handful of tiles.
- Checkpoints (C2SP tlog-checkpoint, signed as C2SP signed notes with Ed25519) are published
  on demand and by `serve` at an interval; every one is kept.
- `verify` recomputes every log from its leaves against its tiles and every checkpoint, and
  checks the ledger's transfers against their leaves.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from sqlalchemy.engine import Engine as SAEngine

from strongroom.audit import leaf as leaves_
from strongroom.audit import note as notes
from strongroom.audit import offline, replay, store
from strongroom.audit import statement as statement_
from strongroom.audit.checkpoint import Checkpoint, CheckpointError
from strongroom.audit.checkpoint import parse as parse_checkpoint
from strongroom.audit.merkle import HASH_SIZE, RootAccumulator, leaf_hash
from strongroom.audit.tiles import TileError, TileId, TileLayout
from strongroom.core import clock
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.core.limits import (
    AUDIT_TRAIL_WINDOW_TRANSFERS,
    AUDIT_VERIFY_BUNDLES_READ,
    AUDIT_VERIFY_TILES_READ_MAX,
    STATEMENT_PAGE_ENTRIES_MAX,
)
from strongroom.core.money import from_stored_int
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.engine import EntryRow
from strongroom.ledger.model import Status, TransferRow
from strongroom.ledger.pipeline import TR_CREATED_AT, TR_ID, TR_LEDGER_ID, CommittedBatch
from strongroom.ledger.service import EXPIRED_EVENT, LedgerService

# Tree levels per stored tile. A storage format constant: changing it needs a migration that
# rewrites every tile. 4 keeps a proof at a million leaves to ~5 tiles and ~75 hashes.
TILE_HEIGHT: Final = 4
LEAVES_PAGE_MAX: Final = 1000
KEY_ROTATED: Final = "audit.key_rotated"


class TenantLookup(Protocol):
    """ledger id -> tenant id (LedgerService.ledger_tenants), through the caller's unit of
    work when given."""

    def __call__(
        self, ledger_ids: Sequence[str], *, uow: UnitOfWork | None = None
    ) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    log_id: str
    size: int
    root: bytes
    note: str
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "audit_checkpoint",
            "tree_size": self.size,
            "root_hash": base64.b64encode(self.root).decode(),
            "note": self.note,
            "created_at": clock.format_us(self.created_at),
        }


@dataclass(slots=True)
class VerifyReport:
    logs: int = 0
    leaves: int = 0
    checkpoints: int = 0
    transfers: int = 0
    accounts: int = 0  # account rows compared with their leaves (audit/replay.py)
    entries: int = 0  # entry rows compared with their leaves
    problems: list[str] = field(default_factory=list)
    trust: str = ""  # what the checkpoints' signatures were checked against

    @property
    def ok(self) -> bool:
        return not self.problems


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


_POSTED: Final = int(Status.POSTED)
_PENDING: Final = int(Status.PENDING)
_VOIDED: Final = int(Status.VOIDED)


def _rotation(data: bytes) -> tuple[str, str] | None:
    try:
        content = leaves_.parse(data)["data"]
        return str(content["old_key"]), str(content["new_key"])
    except (leaves_.LeafError, KeyError, TypeError):
        return None


def _transfer_digest(transfer: dict[str, Any]) -> bytes:
    """A transfer as a leaf holds it, but for its status (which later changes move on)."""
    fields = {k: v for k, v in transfer.items() if k != "status"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).digest()


def _content(data: bytes) -> dict[str, Any] | None:
    """A leaf decoded for people; None when it does not decode (verify says why)."""
    try:
        return leaves_.parse(data)
    except leaves_.LeafError:
        return None


def _entries_in_order(
    rows: Sequence[TransferRow], entries: Sequence[EntryRow]
) -> list[Sequence[EntryRow]]:
    """Each change's entries. The engine writes a transfer's entries together and in the order
    of its transfers, so one pass with slices does; anything else falls back to a dict."""
    out: list[Sequence[EntryRow]] = []
    j, n = 0, len(entries)
    for row in rows:
        tid = row[TR_ID]
        k = j
        while k < n and entries[k][4] == tid:
            k += 1
        out.append(entries[j:k])
        j = k
    if j == n:
        return out
    by_transfer: dict[str, list[EntryRow]] = {}
    for e in entries:
        by_transfer.setdefault(e[4], []).append(e)
    return [by_transfer.get(row[TR_ID], []) for row in rows]


class _TrailLog:
    """One log's ledger-change leaves as the transfer check reads them."""

    __slots__ = ("held", "id", "leaves", "waiting")

    def __init__(self, log_id: str, leaves: Iterator[tuple[int, bytes]]) -> None:
        self.id = log_id
        self.leaves = leaves
        # transfer id -> [leaf index, leaf, the status its leaves lead to so far, still open,
        # its transfer's bytes but the status]: creation leaves read whose row is not read yet
        self.held: dict[str, list[Any]] = {}
        self.waiting: dict[str, tuple[Any, ...]] = {}  # rows read whose creation leaf is not


class _TransferTrail:
    """Every transfer row against its leaves: the leaf that created it (every leaf but an
    expiry creates its own transfer id) must hold the row's content, and its status must be
    the one its leaves lead to (created pending or posted; then posted or voided by a leaf
    that targets it, or expired by its expiry leaf).

    Bounded whatever the history's length, like the replay: the rows are read by seq and each
    log's leaves in step (the same order on SQLite, nearly so on PostgreSQL), each side held
    until its counterpart comes, at most `window` a side; of the rest only the transfers
    created pending and not yet settled are kept (id -> the row's status)."""

    def __init__(
        self,
        uow: UnitOfWork,
        before_log_seq: int = -1,
        window: int = AUDIT_TRAIL_WINDOW_TRANSFERS,
    ) -> None:
        self.uow = uow
        self.before_log_seq = before_log_seq
        self.window = window
        self.logs = {
            log_id: _TrailLog(log_id, replay.log_leaves(uow, log_id))
            for log_id in store.log_ids(uow)
        }
        self.open: dict[str, int] = {}  # created pending, matched, not settled: id -> row status
        self.held = 0  # leaves held, all logs together
        self.waiting = 0  # rows waiting, all logs together
        self.problems: list[str] = []

    def check(self, report: VerifyReport) -> None:
        """Every transfer row has a leaf whose transfer matches it and the status its leaves
        lead to (but one up to `before_log_seq`, written before the log began, has none);
        every transfer leaf names a stored transfer of its log's tenant."""
        tenants = store.ledger_tenants(self.uow)
        for row in store.transfer_rows(self.uow):
            report.transfers += 1
            log = self.logs.get(tenants.get(row[2], ""))
            if log is None:
                self._no_leaf(row)
                continue
            tid = row[1]
            found = log.held.pop(tid, None)
            if found is not None:
                self.held -= 1
            else:
                # One from before the log began may have no leaf: it never makes a leaf
                # read ahead of it go.
                found = self._pull(log, tid, soft=int(row[0]) <= self.before_log_seq)
            if found is not None:
                self._match(row, found)
                continue
            log.waiting[tid] = tuple(row)
            self.waiting += 1
            if self.waiting > self.window:
                self.waiting -= 1
                self._no_leaf(log.waiting.pop(next(iter(log.waiting))))
        rest: list[tuple[Any, ...]] = []
        for log in self.logs.values():
            self._pull(log, None)
            rest += log.waiting.values()
            log.waiting.clear()
        for row in sorted(rest, key=lambda r: int(r[0])):
            self._no_leaf(row)
        for log in self.logs.values():
            for tid in log.held:
                self.problems.append(f"the audit log has transfer {tid}, the ledger does not")
            log.held.clear()
        for tid, status in self.open.items():
            if status != _PENDING:
                self._bad_status(tid)
        self.open.clear()
        report.problems += self.problems

    def _no_leaf(self, row: Sequence[Any]) -> None:
        if int(row[0]) > self.before_log_seq:
            self.problems.append(f"transfer {row[1]} has no leaf in the audit log")

    def _bad_status(self, tid: str) -> None:
        self.problems.append(f"transfer {tid} has a status its leaves do not lead to")

    def _pull(self, log: _TrailLog, want: str | None, soft: bool = False) -> list[Any] | None:
        """Read the log's leaves until the one that creates `want` (None: to the end) or a
        window of creation leaves (`soft`: or a window held); each leaf read is matched with a
        waiting row, or held, and settles the transfer it posts, voids or expires."""
        read = 0
        if soft and self.held >= self.window:
            return None
        for index, data in log.leaves:
            try:
                head = leaves_.transfer_head(data)
            except leaves_.LeafError:
                continue  # the replay names it
            if head is None:
                continue
            if head.event == EXPIRED_EVENT:
                self._settle(log, head.id, head.status)
                continue
            if head.target_id is not None and head.action in ("post", "void"):
                self._settle(log, head.target_id, _POSTED if head.action == "post" else _VOIDED)
            item = [index, data, head.status, head.status == _PENDING, head.body]
            if head.id == want:
                return item
            row = log.waiting.pop(head.id, None)
            if row is not None:
                self.waiting -= 1
                self._match(row, item)
            elif head.id not in log.held:  # a second leaf creating it: the first counts
                log.held[head.id] = item
                self.held += 1
                if self.held > self.window:
                    self.held -= 1
                    oldest = next(iter(log.held))
                    del log.held[oldest]
                    self.problems.append(
                        f"the audit log has transfer {oldest}, the ledger does not"
                    )
            read += 1
            if want is not None and (read >= self.window or (soft and self.held >= self.window)):
                break
        return None

    def _settle(self, log: _TrailLog, tid: str, status: int) -> None:
        """A leaf settles transfer `tid` (created pending) at `status`."""
        row_status = self.open.pop(tid, None)
        if row_status is not None:
            if row_status != status:
                self._bad_status(tid)
            return
        item = log.held.get(tid)
        if item is not None and item[3]:
            item[2], item[3] = status, False

    def _match(self, row: Sequence[Any], item: list[Any]) -> None:
        """A transfer row and the leaf that created it."""
        tid = row[1]
        try:
            row = (*row[:7], from_stored_int(row[7]), *row[8:])
        except ValueError as exc:
            self.problems.append(f"transfer {tid}: amount: {exc}")
            return
        if not _same_transfer(row, item[1], item[4]):
            self.problems.append(f"transfer {tid} differs from its leaf")
        elif item[3]:
            self.open[tid] = int(row[4])
        elif int(row[4]) != item[2]:
            self._bad_status(tid)


def _same_transfer(row: Sequence[Any], data: bytes, body: bytes) -> bool:
    """Whether a leaf (`body`: its transfer_head's) holds the transfer row, but for the status:
    its bytes as the row would be written, else (a leaf of another version or money width)
    decoded in full."""
    written = leaves_.transfer_leaf(EXPIRED_EVENT, row, [])  # type: ignore[arg-type]
    mine = leaves_.transfer_head(written)
    assert mine is not None
    if mine.body == body:
        return True
    try:
        logged = leaves_.parse(data)["transfer"]
    except leaves_.LeafError:
        return False
    return _transfer_digest(leaves_.parse(written)["transfer"]) == _transfer_digest(logged)


class AuditLog:
    """The transfer pipeline's last sink (ledger.pipeline.Sink), the ledger's Recorder, and
    everything else about the logs."""

    def __init__(
        self,
        engine: SAEngine,
        *,
        origin: str = "strongroom.localhost/audit",
        tenant_of: TenantLookup | None = None,
        signer_key: str | None = None,
    ) -> None:
        """`origin` prefixes each log's origin (`<origin>/<tenant id>`) and names the signing
        key; `tenant_of(ledger_ids)` says which tenant (log) each ledger's changes go to;
        `signer_key` (a C2SP signer key, PRIVATE+KEY+...) signs checkpoints instead of a key
        generated and kept in the database."""
        self.engine = engine
        self.origin = origin
        self.layout = TileLayout(TILE_HEIGHT)
        self._tenant_of = tenant_of
        self._tenants: dict[str, str] = {}  # ledger id -> tenant id; never changes
        self._configured = notes.Signer(signer_key) if signer_key else None
        # A key being replaced co-signs the checkpoints of the transaction that replaces it.
        self._outgoing: list[notes.Signer] = []
        # The ledger whose history statements are cut from (set by the composition root).
        self.ledger: LedgerService | None = None

    def origin_of(self, log_id: str) -> str:
        return f"{self.origin}/{log_id}"

    @contextlib.contextmanager
    def _uow(self, write: bool) -> Iterator[UnitOfWork]:
        with UnitOfWork(self.engine, write=write) as uow:
            yield uow

    # -- appending -------------------------------------------------------------------------

    def __call__(self, uow: UnitOfWork, batch: CommittedBatch) -> None:
        """A sink of the transfer pipeline, the last: one leaf per ledger change, in the
        ledger's transaction, to its tenant's log (appending locks the log's row).

        The hot path of a bulk batch: entries are matched to their transfers in one pass (the
        engine writes both in the same order), and each log gets one bundle. A transfer's
        leaf is found later by the transfer's created_at, the bundle's time (the batch's);
        an expiry's (the transfer row keeps its creation time) by reference."""
        rows = batch.transfers
        if not rows:
            return
        grouped = _entries_in_order(rows, batch.entries)
        tenants = self._tenants
        ledgers = {row[TR_LEDGER_ID] for row in rows}
        if not ledgers <= tenants.keys():
            tenants = self._tenants_of(uow, ledgers)
        at = batch.at_us
        kinds = batch.kinds
        datas = leaves_.transfer_leaves(kinds, rows, grouped, wide=batch.wide)
        # A leaf not found by the bundle's time (an expiry: its row keeps its creation time)
        # is indexed by reference.
        if len(ledgers) == 1:  # the usual case: one log, no per-event look-up
            refs = [
                (row[TR_ID], i)
                for i, (k, row) in enumerate(zip(kinds, rows, strict=True))
                if k == EXPIRED_EVENT or row[TR_CREATED_AT] != at
            ]
            self._append(uow, tenants[rows[0][TR_LEDGER_ID]], datas, refs, at)
            return
        by_log: dict[str, tuple[list[bytes], list[tuple[str, int]]]] = {}
        for kind, row, data in zip(kinds, rows, datas, strict=True):
            mine, refs = by_log.setdefault(tenants[row[TR_LEDGER_ID]], ([], []))
            if kind == EXPIRED_EVENT or row[TR_CREATED_AT] != at:
                refs.append((row[TR_ID], len(mine)))
            mine.append(data)
        for log_id in sorted(by_log):
            self._append(uow, log_id, *by_log[log_id], at)

    def _tenants_of(self, uow: UnitOfWork, ledger_ids: set[str]) -> dict[str, str]:
        missing = [i for i in ledger_ids if i not in self._tenants]
        if missing:
            if self._tenant_of is None:
                raise RuntimeError("the audit log was given no way to find a ledger's tenant")
            self._tenants.update(self._tenant_of(missing, uow=uow))
        return self._tenants

    def append(
        self,
        uow: UnitOfWork,
        log_id: str,
        items: Sequence[tuple[str, str | None, bytes]],
        *,
        at_us: int | None = None,
    ) -> int:
        """Append (type, ref, leaf bytes) items to a log through `uow`, as one bundle of time
        `at_us` (default now); a leaf with a ref is also indexed by it. The first index."""
        datas = [data for _, _, data in items]
        refs = [(ref, k) for k, (_, ref, _) in enumerate(items) if ref is not None]
        return self._append(uow, log_id, datas, refs, at_us)

    def _append(
        self,
        uow: UnitOfWork,
        log_id: str,
        datas: Sequence[bytes],
        refs: Sequence[tuple[str, int]],
        at_us: int | None,
    ) -> int:
        """`refs`: (ref, position in datas)."""
        now = clock.now_us()
        size = store.lock_log(uow, log_id, now)
        layout = self.layout
        edge = store.read_tiles(uow, log_id, layout.edge_tiles(size))
        sha, leaf = hashlib.sha256, b"\x00"
        tiles = layout.append(size, edge, [sha(leaf + data).digest() for data in datas])
        indexed = [(ref, size + k) for ref, k in refs]
        store.append(uow, log_id, size, datas, indexed, tiles, now, now if at_us is None else at_us)
        return size

    def record_all(
        self,
        uow: UnitOfWork,
        log_id: str,
        actor: str,
        items: Sequence[tuple[str, str | None, dict[str, Any]]],
    ) -> None:
        """(type, ref, data) leaves of actions outside the transfers, in `uow`."""
        now = clock.now_us()
        encode = leaves_.record_leaf
        self.append(uow, log_id, [(t, ref, encode(t, now, actor, data)) for t, ref, data in items])

    def record(
        self,
        log_id: str,
        event_type: str,
        actor: str,
        data: dict[str, Any],
        *,
        ref: str | None = None,
        uow: UnitOfWork | None = None,
    ) -> int:
        """A leaf for an action outside the ledger; in `uow` when given, else on its own."""
        item = (event_type, ref, leaves_.record_leaf(event_type, clock.now_us(), actor, data))
        if uow is not None:
            return self.append(uow, log_id, [item])
        with self._uow(write=True) as own:
            index = self.append(own, log_id, [item])
            own.commit()
        return index

    # -- signing keys and checkpoints ------------------------------------------------------

    def _signers(self, uow: UnitOfWork) -> list[notes.Signer]:
        """The active signing key(s), the first use creating one. A newly configured key
        takes over from the active one as a rotation does (a leaf in every log); the old key
        also signs this transaction's checkpoints when its private half is here."""
        store.lock_keys(uow)
        everything = store.keys(uow)
        rows = [r for r in everything if r[5] is None]
        if self._configured is not None:
            signer = self._configured
            key_id = f"{signer.key_id:08x}"
            if not any(r[0] == key_id for r in rows):
                now = clock.now_us()
                old = rows[-1] if rows else None
                if any(r[0] == key_id for r in everything):
                    store.reactivate_key(uow, key_id)
                else:
                    store.insert_key(uow, key_id, signer.name, signer.verifier_key, None, now)
                store.retire_keys(uow, key_id, now)
                if old is not None:
                    self._hand_over(uow, old[2], signer.verifier_key)
                    if old[3] is not None:
                        self._outgoing = [notes.Signer(old[3])]
            return [*self._outgoing, signer]
        usable = [notes.Signer(r[3]) for r in rows if r[3] is not None]
        if usable:
            return usable[-1:]
        signer = notes.generate_signer(self.origin)
        key_id, now = f"{signer.key_id:08x}", clock.now_us()
        store.insert_key(uow, key_id, signer.name, signer.verifier_key, signer.skey, now)
        if rows:  # a configured key no longer configured: this one takes over from it
            store.retire_keys(uow, key_id, now)
            self._hand_over(uow, rows[-1][2], signer.verifier_key)
        return [signer]

    def verifier_keys(self) -> list[dict[str, Any]]:
        """Every key that ever signed a checkpoint, the active one last."""
        with self._uow(write=False) as uow:
            rows = store.keys(uow)
        return [
            {
                "object": "audit_key",
                "key_id": r[0],
                "name": r[1],
                "verifier_key": r[2],
                "created_at": clock.format_us(r[4]),
                "retired_at": None if r[5] is None else clock.format_us(r[5]),
            }
            for r in rows
        ]

    def _publish_in(
        self,
        uow: UnitOfWork,
        log_id: str,
        signers: Sequence[notes.Signer],
        force: bool = False,
    ) -> SignedCheckpoint | None:
        """A checkpoint of the log as it is, signed by `signers`; the latest one when the log
        has not grown (unless `force`: a key hand-over signs anew)."""
        size = store.log_size(uow, log_id)
        latest = store.latest_checkpoint(uow, log_id)
        if latest is not None and latest[0] == size and not force:
            return SignedCheckpoint(log_id, *latest)
        if size == 0:
            return None
        layout = self.layout
        root = layout.root(size, store.read_tiles(uow, log_id, layout.root_tiles(size)))
        text = Checkpoint(self.origin_of(log_id), size, root).to_text()
        signed = notes.sign(text, signers)
        now = clock.now_us()
        if not store.insert_checkpoint(uow, log_id, size, root, signed, now):
            found = store.checkpoint(uow, log_id, size)
            assert found is not None
            return SignedCheckpoint(log_id, *found)
        return SignedCheckpoint(log_id, size, root, signed, now)

    def publish(self, log_ids: Sequence[str] | None = None) -> list[SignedCheckpoint]:
        """A checkpoint of every log (or those given) that grew since its last one."""
        published: list[SignedCheckpoint] = []
        with self._uow(write=True) as uow:
            # Once, and first: a key change's leaves go into these checkpoints.
            signers = self._signers(uow)
            try:
                for log_id in log_ids if log_ids is not None else store.log_ids(uow):
                    found = self._publish_in(uow, log_id, signers)
                    if found is not None:
                        published.append(found)
                uow.commit()
            finally:
                self._outgoing = []
        return published

    def _hand_over(self, uow: UnitOfWork, old_key: str, new_key: str) -> None:
        """The rotation leaf, in every log: a verifier that trusts the old key learns the new
        one from a checkpoint the old key signed."""
        data = {"old_key": old_key, "new_key": new_key}
        for log_id in store.log_ids(uow):
            self.record(log_id, KEY_ROTATED, "system", data, uow=uow)

    def rotate_key(self) -> str:
        """A new signing key: the rotation is a leaf of every log, and the first checkpoint
        that holds it is signed by the old key and the new one. Returns the new verifier key.
        """
        if self._configured is not None:
            raise InvalidRequest(
                "the signing key is configured (STRONGROOM_AUDIT_SIGNING_KEY): rotate it there",
                param="key",
            )
        with self._uow(write=True) as uow:
            old = self._signers(uow)[0]
            new = notes.generate_signer(self.origin)
            now = clock.now_us()
            store.insert_key(uow, f"{new.key_id:08x}", new.name, new.verifier_key, new.skey, now)
            if not store.log_ids(uow):  # nothing signed yet: nothing to hand over
                store.delete_key(uow, f"{old.key_id:08x}")
            else:
                self._hand_over(uow, old.verifier_key, new.verifier_key)
            store.retire_keys(uow, f"{new.key_id:08x}", now)
            for log_id in store.log_ids(uow):
                self._publish_in(uow, log_id, [old, new], force=True)
            uow.commit()
        return new.verifier_key

    def latest(self, log_id: str) -> SignedCheckpoint:
        with self._uow(write=False) as uow:
            found = store.latest_checkpoint(uow, log_id)
        if found is None:
            raise NotFound("this log has no checkpoint yet", param="tree_size")
        return SignedCheckpoint(log_id, *found)

    def checkpoint(self, log_id: str, size: int) -> SignedCheckpoint:
        with self._uow(write=False) as uow:
            found = store.checkpoint(uow, log_id, size)
        if found is None:
            raise NotFound(f"no checkpoint of tree size {size}", param="tree_size")
        return SignedCheckpoint(log_id, *found)

    def covering(self, log_id: str, index: int) -> SignedCheckpoint:
        """The latest checkpoint if it holds leaf `index`, else a new one published now."""
        with self._uow(write=False) as uow:
            found = store.latest_checkpoint(uow, log_id)
        if found is not None and found[0] > index:
            return SignedCheckpoint(log_id, *found)
        published = self.publish([log_id])
        if not published or published[0].size <= index:
            raise NotFound(f"no leaf {index} in this log", param="leaf_index")
        return published[0]

    # -- proofs ----------------------------------------------------------------------------

    def _size_for(self, uow: UnitOfWork, log_id: str, tree_size: int | None) -> int:
        size = store.log_size(uow, log_id)
        if tree_size is None:
            return size
        if not 0 < tree_size <= size:
            raise InvalidRequest(
                f"tree_size must be 1 to {size}, the log's size", param="tree_size"
            )
        return tree_size

    def inclusion(self, log_id: str, index: int, tree_size: int) -> list[bytes]:
        with self._uow(write=False) as uow:
            size = self._size_for(uow, log_id, tree_size)
            if not 0 <= index < size:
                raise InvalidRequest(
                    f"leaf_index must be 0 to {size - 1} for tree size {size}",
                    param="leaf_index",
                )
            layout = self.layout
            tiles = store.read_tiles(uow, log_id, layout.inclusion_tiles(index, size))
        return layout.inclusion_proof(index, size, tiles)

    def consistency(self, log_id: str, first: int, second: int) -> list[bytes]:
        with self._uow(write=False) as uow:
            size = self._size_for(uow, log_id, second)
            if not 0 < first <= size:
                raise InvalidRequest(f"first must be 1 to {size}", param="first")
            layout = self.layout
            if first == size:
                return []
            tiles = store.read_tiles(uow, log_id, layout.consistency_tiles(first, size))
        return layout.consistency_proof(first, size, tiles)

    def leaf_indexes(self, log_id: str, ref: str) -> list[int]:
        """The leaves of a transfer (its change, and its expiry if it expired) or of another
        object recorded with a ref, oldest first."""
        with self._uow(write=False) as uow:
            found = [index for index, _ in self._leaves_of(uow, log_id, [ref]).get(ref, [])]
        if not found:
            raise NotFound(f"no leaf for {ref} in this log", param="transfer_id")
        return found

    def _leaves_of(
        self, uow: UnitOfWork, log_id: str, refs: Sequence[str]
    ) -> dict[str, list[tuple[int, bytes]]]:
        """(index, leaf) of each ref's leaves, oldest first: by reference (expiries, other
        actions), and for transfers by their time, each bundle of that time read once."""
        out: dict[str, list[tuple[int, bytes]]] = {}
        by_time: dict[int, set[bytes]] = {}
        for ref in refs:
            prefix = leaves_.transfer_id_prefix(ref)
            for index in store.ref_indexes(uow, log_id, ref):
                for found, data in store.leaves(uow, log_id, index, index + 1):
                    # Refs are shared by every kind of object: only this transfer's leaves.
                    if leaves_.is_ledger_change(data) and data[3 : 3 + len(prefix)] == prefix:
                        out.setdefault(ref, []).append((found, data))
            at = store.transfer_created_at(uow, ref)
            if at is not None:
                by_time.setdefault(at, set()).add(leaves_.transfer_id_prefix(ref))
        for at, prefixes in by_time.items():
            for first, data in store.bundles_at(uow, log_id, at):
                if not any(prefix in data for prefix in prefixes):
                    continue
                for k, leaf in enumerate(store.unpack_bundle(data)):
                    if (
                        not leaves_.is_ledger_change(leaf)
                        or leaves_.leaf_type(leaf) == EXPIRED_EVENT
                    ):
                        continue
                    end = 5 + int.from_bytes(leaf[3:5], "big")
                    if leaf[3:end] in prefixes:
                        ref = leaf[5:end].decode()
                        out.setdefault(ref, []).append((first + k, leaf))
        for found_leaves in out.values():
            found_leaves.sort()
        return out

    def leaves(self, log_id: str, start: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Leaves from `start`, at most `limit`; and the log's size."""
        with self._uow(write=False) as uow:
            size = store.log_size(uow, log_id)
            rows = store.leaves(uow, log_id, start, min(start + limit, size))
        return [self._leaf_out(i, data) for i, data in rows], size

    @staticmethod
    def _leaf_out(index: int, data: bytes) -> dict[str, Any]:
        return {
            "object": "audit_leaf",
            "index": index,
            "type": leaves_.leaf_type(data),
            "content": _content(data),
            "leaf": _b64(data),
            "leaf_hash": _b64(leaf_hash(data)),
        }

    def receipt(self, log_id: str, ref: str) -> dict[str, Any]:
        """A self-contained proof that `ref`'s leaves are in the log: the leaves, their
        inclusion proofs and the signed checkpoint they are proved against. Checked offline by
        `strongroom audit verify-receipt` with the log's public key only."""
        indexes = self.leaf_indexes(log_id, ref)
        checkpoint = self.covering(log_id, indexes[-1])
        with self._uow(write=False) as uow:
            rows = {r[0]: r[1] for i in indexes for r in store.leaves(uow, log_id, i, i + 1)}
            layout = self.layout
            wanted = [t for i in indexes for t in layout.inclusion_tiles(i, checkpoint.size)]
            tiles = store.read_tiles(uow, log_id, wanted)
        return {
            "object": "audit_receipt",
            "version": offline.DOCUMENT_VERSION,
            "origin": self.origin_of(log_id),
            "ref": ref,
            "checkpoint": checkpoint.note,
            "leaves": [
                {
                    "index": i,
                    "type": leaves_.leaf_type(rows[i]),
                    "leaf": _b64(rows[i]),
                    "inclusion_proof": [
                        _b64(h) for h in layout.inclusion_proof(i, checkpoint.size, tiles)
                    ],
                }
                for i in indexes
            ],
        }

    def statement(
        self,
        log_id: str,
        account_id: str,
        from_us: int,
        to_us: int,
        *,
        limit: int = STATEMENT_PAGE_ENTRIES_MAX,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of the account's statement for (from, to]: the entries from the one in
        force at `from` to the first after `to`, `limit` at most a page, each leaf proved in
        a signed checkpoint (audit/statement.py says what a verifier concludes from the
        pages). The first page fixes the statement's versions; `next_cursor` carries them to
        the next, so the pages join without a gap or an overlap."""
        ledger = self.ledger
        if ledger is None:
            raise RuntimeError(
                "statements need the ledger: build the log with runtime.build_ledger"
            )
        if from_us > to_us:
            raise InvalidRequest("from must not be after to", param="from")
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= STATEMENT_PAGE_ENTRIES_MAX
        ):
            raise InvalidRequest(
                f"limit must be an integer from 1 to {STATEMENT_PAGE_ENTRIES_MAX}",
                param="limit",
                code="invalid_limit",
            )
        account = ledger.get_account(account_id)
        if ledger.ledger_tenants([account.ledger_id]).get(account.ledger_id) != log_id:
            raise NotFound(f"no account {account_id}", param="account_id")
        if cursor is None:
            opening = ledger.balance_at(account_id, as_of_us=from_us)[0]
            closing = ledger.balance_at(account_id, as_of_us=to_us)[0]
            boundary = closing < account.version
            start = max(opening, 1)
        else:
            page = statement_.parse_cursor(cursor, from_us, to_us, account.version)
            opening, closing, boundary, start = page
        last = closing + (1 if boundary else 0)
        stop = min(start + limit - 1, last)
        wanted = ledger.entry_transfers(account_id, start, stop) if stop >= start else {}
        datas = self._entry_leaves(log_id, account_id, wanted)
        indexes = sorted(datas)
        checkpoint = self.covering(log_id, max(indexes, default=-1))
        size = checkpoint.size
        with self._uow(write=False) as uow:
            layout = self.layout
            tiles = store.read_tiles(
                uow, log_id, [t for i in indexes for t in layout.inclusion_tiles(i, size)]
            )
        has_more = stop < last
        return {
            "object": "audit_statement",
            "version": offline.DOCUMENT_VERSION,
            "origin": self.origin_of(log_id),
            "account_id": account_id,
            "from": from_us,
            "to": to_us,
            "opening_version": opening,
            "closing_version": closing,
            "boundary": boundary,
            "first_version": start,
            "last_version": stop,
            "has_more": has_more,
            "next_cursor": (
                statement_.cursor(from_us, to_us, opening, closing, boundary, stop + 1)
                if has_more
                else None
            ),
            "checkpoint": checkpoint.note,
            "leaves": [
                {
                    "index": i,
                    "leaf": _b64(datas[i]),
                    "inclusion_proof": [_b64(h) for h in layout.inclusion_proof(i, size, tiles)],
                }
                for i in sorted(indexes)
            ],
        }

    def _entry_leaves(
        self, log_id: str, account_id: str, wanted: dict[int, str]
    ) -> dict[int, bytes]:
        """index -> leaf, for the leaf of each (version -> transfer id) entry of the account."""
        found: dict[int, bytes] = {}
        with self._uow(write=False) as uow:
            by_transfer = self._leaves_of(uow, log_id, sorted(set(wanted.values())))
        for version, transfer_id in sorted(wanted.items()):
            for index, data in by_transfer.get(transfer_id, []):
                entries = leaves_.parse(data).get("entries") or []
                if any(e[0] == account_id and e[1] == version for e in entries):
                    found[index] = data
                    break
            else:
                raise RuntimeError(
                    f"entry {version} of {account_id} has no leaf: run `strongroom audit verify`"
                )
        return found

    # -- verification ----------------------------------------------------------------------

    def verify(
        self,
        progress: Callable[[str], None] | None = None,
        trusted_keys: Sequence[str] | None = None,
    ) -> VerifyReport:
        """Recompute every log from its leaves: each leaf against the tile it was hashed into,
        every stored tile against the tiles the leaves make, each checkpoint's root, origin and
        signature, every ledger transfer (its content and status) against its leaves, and
        every account and entry row against the leaves replayed (audit/replay.py). Names the
        first bad leaf of each log.

        Checkpoints must be signed by a trusted key: `trusted_keys` (C2SP verifier keys held
        outside this database), or else the database's first key; a key becomes trusted when
        a checkpoint signed by a trusted key holds the rotation leaf that hands over to it."""
        report = VerifyReport()
        say = progress or (lambda _m: None)
        with self._uow(write=False) as uow:
            keys = store.keys(uow)
            if trusted_keys:
                roots = list(trusted_keys)
                report.trust = "the keys given"
            else:
                roots = [keys[0][2]] if keys else []
                report.trust = "the database's first key (give a key you hold for a check "
                report.trust += "that someone who can write to the database cannot fake)"
            try:
                for key in roots:
                    notes.Verifier(key)
            except notes.NoteError as exc:
                raise InvalidRequest(f"not a verifier key: {exc}", param="public_key") from None
            reached = set(roots)
            for log_id in store.log_ids(uow):
                report.logs += 1
                self._verify_log(uow, log_id, roots, reached, report, say)
            for key_id, name, vkey, _signer, _created, _retired in keys:
                if vkey not in reached:
                    report.problems.append(
                        f"signing key {key_id} ({name}) was never handed over by a trusted key"
                    )
            baseline = replay.load_baseline(uow)
            say("transfers against their leaves")
            _TransferTrail(uow, baseline.transfer_seq).check(report)
            replayed = replay.check(uow, baseline, say)
            report.accounts, report.entries = replayed.accounts, replayed.entries
            report.problems += replayed.problems
        return report

    def _verify_log(
        self,
        uow: UnitOfWork,
        log_id: str,
        roots: Sequence[str],
        reached: set[str],
        report: VerifyReport,
        say: Callable[[str], None],
    ) -> None:
        """The log's leaves against its tiles and checkpoints, in one pass that holds a bundle
        and the tree's right edge (not a hash a leaf): each tile is rebuilt from the leaves as
        they come and compared with the stored one once complete, the right edge's at the end,
        and then the number of stored tiles with the number the leaves make."""
        size = store.log_size(uow, log_id)
        checkpoints = store.checkpoints(uow, log_id)
        say(f"log {log_id}: {size} leaves, {len(checkpoints)} checkpoints")
        origin = self.origin_of(log_id)
        acc = RootAccumulator()
        layout = self.layout
        trusted = set(roots)
        rotations: list[tuple[int, str, str]] = []  # (index, old key, new key)
        next_cp = 0
        expected = 0
        first_bad: str | None = None
        tiles: dict[tuple[int, int], bytes] = {}
        edge: dict[TileId, bytes] = {}  # the rebuilt tree's partial tiles at `expected` leaves
        bad_tile: str | None = None  # the first rebuilt tile that differs from the stored one

        def bad(problem: str) -> None:
            nonlocal first_bad
            if first_bad is None:
                first_bad = f"log {log_id}: {problem}"
                report.problems.append(first_bad)

        for first, count, data in store.iter_bundles(uow, log_id, AUDIT_VERIFY_BUNDLES_READ):
            if first != expected:
                bad(f"leaf {expected} is missing (next stored: {first})")
                break
            if first >= size:
                bad(f"leaf {first} is beyond the log's size {size}")
                break
            try:
                bundle = store.unpack_bundle(data)
            except ValueError as exc:
                bad(f"leaves from {first} are unreadable: {exc}")
                break
            if len(bundle) != count:
                bad(f"leaves from {first}: {len(bundle)} stored where {count} were written")
            hashes: list[bytes] = []
            for index, leaf in enumerate(bundle, first):
                h = leaf_hash(leaf)
                tile_id = (0, index >> TILE_HEIGHT)
                if tile_id not in tiles:
                    tiles = store.read_tiles(uow, log_id, [tile_id])
                try:
                    stored = layout.leaf_hash(index, tiles)
                except (TileError, ValueError):
                    stored = b""  # the tile is gone or cut short: no leaf matches it
                if stored != h:
                    bad(f"leaf {index} does not match the tree (changed?)")
                if leaves_.leaf_type(leaf) == KEY_ROTATED:
                    rotation = _rotation(leaf)
                    if rotation is not None:
                        rotations.append((index, *rotation))
                acc.append(h)
                hashes.append(h)
                expected += 1
                while next_cp < len(checkpoints) and checkpoints[next_cp][0] == expected:
                    cp = checkpoints[next_cp]
                    if self._check_checkpoint(log_id, origin, cp, acc.root(), trusted, report):
                        for at, old, new in rotations:
                            if at < cp[0] and old in trusted and new not in trusted:
                                trusted.add(new)
                                reached.add(new)
                    next_cp += 1
                if expected % 100_000 == 0:
                    say(f"  {expected} leaves")
            if first_bad is None and bad_tile is None:
                edge, bad_tile = self._rebuild(uow, log_id, expected - len(hashes), edge, hashes)
            if first_bad is not None and expected >= size:
                break
        report.leaves += expected
        if first_bad is None and expected != size:
            first_bad = f"log {log_id}: {expected} leaves stored, the log says {size}"
            report.problems.append(first_bad)
        for cp in checkpoints[next_cp:]:
            report.problems.append(
                f"log {log_id}: checkpoint of size {cp[0]} is beyond the {expected} leaves found"
            )
        if first_bad is None:
            # Every stored tile, the inner ones too (proofs are read from them), against the
            # tiles the leaves make: the complete ones were compared as they were made.
            if bad_tile is None:
                bad_tile = self._compare_tiles(uow, log_id, edge)
            if bad_tile is None:
                bad_tile = self._surplus_tile(uow, log_id, size)
            if bad_tile is not None:
                report.problems.append(f"log {log_id}: {bad_tile}")

    def _rebuild(
        self,
        uow: UnitOfWork,
        log_id: str,
        size: int,
        edge: dict[TileId, bytes],
        hashes: Sequence[bytes],
    ) -> tuple[dict[TileId, bytes], str | None]:
        """A bundle's leaf hashes appended at `size` to the rebuilt tree whose right edge is
        `edge`: the new edge, and what is wrong with the first tile completed here that differs
        from the stored one (None: they all match)."""
        layout = self.layout
        written = layout.append(size, edge, hashes)
        grown = size + len(hashes)
        full = layout.width_max * HASH_SIZE
        new_edge = {t: written.get(t) or edge[t] for t in layout.edge_tiles(grown)}
        done = {t: v for t, v in written.items() if len(v) == full}
        return new_edge, self._compare_tiles(uow, log_id, done)

    def _compare_tiles(
        self, uow: UnitOfWork, log_id: str, rebuilt: dict[TileId, bytes]
    ) -> str | None:
        """What is wrong with the first of the rebuilt tiles the store does not hold as is."""
        ids = sorted(rebuilt)
        for k in range(0, len(ids), AUDIT_VERIFY_TILES_READ_MAX):
            chunk = ids[k : k + AUDIT_VERIFY_TILES_READ_MAX]
            stored = store.read_tiles(uow, log_id, chunk)
            for tile_id in chunk:
                if tile_id not in stored:
                    return f"tile {tile_id} is missing"
                if stored[tile_id] != rebuilt[tile_id]:
                    return f"tile {tile_id} does not match the leaves"
        return None

    def _surplus_tile(self, uow: UnitOfWork, log_id: str, size: int) -> str | None:
        """A stored tile that the leaves do not make (each one they make was compared)."""
        height = self.layout.height
        widths: list[int] = []  # tiles at each level
        count = size
        while count:
            widths.append((count + (1 << height) - 1) >> height)
            count >>= height
        made = sum(widths)
        stored = store.count_tiles(uow, log_id)
        if stored == made:
            return None
        extra = store.tile_outside(uow, log_id, widths)
        return f"{stored} tiles stored where the leaves make {made}" + (
            f": tile {extra} is not one of them" if extra is not None else ""
        )

    def _check_checkpoint(
        self,
        log_id: str,
        origin: str,
        cp: tuple[int, bytes, str, int],
        root: bytes,
        trusted: set[str],
        report: VerifyReport,
    ) -> bool:
        """Whether the checkpoint is signed by a trusted key and is the tree's at its size."""
        report.checkpoints += 1
        size = cp[0]
        try:
            opened = notes.open(cp[2], [notes.Verifier(k) for k in sorted(trusted)])
            parsed = parse_checkpoint(opened.text)
        except (notes.NoteError, CheckpointError) as exc:
            report.problems.append(
                f"log {log_id}: checkpoint {size} is not signed by a trusted key: {exc}"
            )
            return False
        if parsed.origin != origin or parsed.size != size or parsed.root_hash != cp[1]:
            report.problems.append(f"log {log_id}: checkpoint {size} was altered")
            return False
        if parsed.root_hash != root:
            report.problems.append(
                f"log {log_id}: the leaves up to {size} do not give checkpoint {size}'s root"
            )
            return False
        return True

    # -- export ----------------------------------------------------------------------------

    def export(self, directory: Path, progress: Callable[[str], None] | None = None) -> int:
        """Every log as tlog-tiles with all its checkpoints, and the public keys in keys.txt
        (audit/offline.py). Returns the number of leaves written."""
        say = progress or (lambda _m: None)
        directory.mkdir(parents=True, exist_ok=True)
        self.publish()  # every leaf exported is under a signed checkpoint
        total = 0
        with self._uow(write=False) as uow:
            keys = [r[2] for r in store.keys(uow)]
            (directory / "keys.txt").write_text("".join(k + "\n" for k in keys))
            for log_id in store.log_ids(uow):
                say(f"log {log_id} ...")
                leaves = (data for _i, data in store.iter_leaves(uow, log_id))
                cps = [(size, note) for size, _root, note, _at in store.checkpoints(uow, log_id)]
                total += offline.write_log(directory / log_id, leaves, cps)
        return total
