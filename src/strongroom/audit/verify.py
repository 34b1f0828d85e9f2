"""`audit verify`: every log recomputed from its leaves (tree, tiles, checkpoints and trusted
keys), every ledger transfer against its leaves, and the leaves replayed into balances
(audit/replay.py); memory bounded whatever the history length."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from strongroom.audit import leaf as leaves_
from strongroom.audit import note as notes
from strongroom.audit import replay, store
from strongroom.audit.base import KEY_ROTATED, TILE_HEIGHT, AuditBase
from strongroom.audit.checkpoint import CheckpointError
from strongroom.audit.checkpoint import parse as parse_checkpoint
from strongroom.audit.merkle import HASH_SIZE, RootAccumulator, leaf_hash
from strongroom.audit.tiles import TileError, TileId
from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import (
    AUDIT_TRAIL_WINDOW_TRANSFERS,
    AUDIT_VERIFY_BUNDLES_READ,
    AUDIT_VERIFY_TILES_READ_MAX,
)
from strongroom.core.money import from_stored_int
from strongroom.db.query import undecodable_problem
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import Status
from strongroom.ledger.service import EXPIRED_EVENT


@dataclass(frozen=True, slots=True)
class _Pin:
    """A held checkpoint (the `number`-th given): the log of `origin` must hold `size` leaves
    whose root is `root`; `note` is checked against the trusted keys at the end."""

    size: int
    root: bytes
    origin: str
    note: str
    number: int


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
    held_checkpoints: int = 0  # signed checkpoints given from outside the database
    notes: list[str] = field(default_factory=list)  # worth saying, not a problem
    # Accounts whose history before the log began is vouched for by the audit baseline.
    baseline: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


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
        self.actors = store.actor_names(uow)
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
            item = [index, data, head.status, head.status == _PENDING, head.body, head]
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
        """A transfer row (and last, its actor_ref) and the leaf that created it."""
        tid = row[1]
        actor_ref, row = row[-1], row[:-1]
        try:
            recorded, actor = leaves_.leaf_actor(item[1], item[5])
        except leaves_.LeafError:
            recorded, actor = False, None  # the replay names a leaf it cannot read
        if recorded:
            mine = None if actor_ref is None else self.actors.get(actor_ref, "")
            if mine != actor:
                self.problems.append(
                    f"transfer {tid}: created by {_who(mine)} in the ledger, by {_who(actor)} "
                    "in its leaf"
                )
        try:
            row = (*row[:7], from_stored_int(row[7]), *row[8:])
        except ValueError as exc:
            self.problems.append(f"transfer {tid}: amount: {exc}")
            return
        try:
            same = _same_transfer(row, item[1], item[4])
            status = int(row[4])
        except (
            leaves_.LeafError,
            struct.error,
            ValueError,
            TypeError,
            OverflowError,
            AttributeError,
        ) as exc:
            # A row edited by hand into something no write makes (a status or an action code
            # that does not exist, metadata or legs that are not JSON, a time that is text):
            # it cannot be the leaf's. Named, and the check goes on.
            self.problems.append(
                f"transfer {tid}: its row holds what no write stores ({replay.why(exc)})"
            )
            return
        if not same:
            self.problems.append(f"transfer {tid} differs from its leaf")
        elif item[3]:
            self.open[tid] = status
        elif status != item[2]:
            self._bad_status(tid)


def _who(actor: str | None) -> str:
    if actor is None:
        return "no one named"
    return repr(actor) if actor else "an actor id that names no one"


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


class AuditVerify(AuditBase):
    """`verify`: every log recomputed from its leaves in bounded memory."""

    def verify(
        self,
        progress: Callable[[str], None] | None = None,
        trusted_keys: Sequence[str] | None = None,
        held_checkpoints: Sequence[str] = (),
    ) -> VerifyReport:
        """Recompute every log from its leaves: each leaf against the tile it was hashed into,
        every stored tile against the tiles the leaves make, each checkpoint's root, origin and
        signature, every ledger transfer (its content and status) against its leaves, and
        every account and entry row against the leaves replayed (audit/replay.py). Names the
        first bad leaf of each log.

        Checkpoints must be signed by a trusted key: `trusted_keys` (C2SP verifier keys held
        outside this database), or else the database's first key; a key becomes trusted when
        a checkpoint signed by a trusted key holds the rotation leaf that hands over to it.

        `held_checkpoints`: signed checkpoint notes kept outside this database (a client's, a
        witness's, an earlier `audit checkpoint`'s), each signed by a trusted key. The stored
        ones can be deleted with the leaves they cover; these cannot: a log must still hold
        each one's size in leaves, with its root there, or leaves were removed or changed.
        Raises InvalidRequest for a note no trusted key signed or that is no checkpoint."""
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
            except (notes.NoteError, TypeError, ValueError) as exc:
                if trusted_keys:
                    raise InvalidRequest(f"not a verifier key: {exc}", param="public_key") from None
                report.problems.append(
                    f"the database's first signing key is not a verifier key ({replay.why(exc)})"
                )
                return report
            held = self._held(held_checkpoints)
            report.held_checkpoints = len(held)
            try:
                reached = self._verify_all(uow, keys, roots, held, report, say)
            except sqlite3.OperationalError as exc:
                problem = undecodable_problem(exc)
                if problem is None:
                    raise
                report.problems.append(problem)
                return report
            except (ValueError, TypeError, AttributeError, OverflowError) as exc:
                # The audit tables themselves edited into what no write stores (a size that
                # is text, a root that is no hash...): named, never a traceback.
                report.problems.append(
                    f"the audit tables hold what no write stores ({replay.why(exc)}); the check "
                    "stopped there"
                )
                return report
            # A held checkpoint counts only signed by a key trusted by now (a key handed over
            # by a rotation leaf included).
            verifiers = [notes.Verifier(k) for k in sorted(reached)]
            for pin in held:
                try:
                    notes.open(pin.note, verifiers)
                except notes.NoteError as exc:
                    report.problems.append(
                        f"held checkpoint {pin.number} is not signed by a trusted key: {exc}"
                    )
        return report

    def _held(self, notes_: Sequence[str]) -> list[_Pin]:
        """The held checkpoints, parsed (their signatures are checked once the logs have shown
        which keys a trusted key handed over to). InvalidRequest for one that is no signed
        checkpoint at all."""
        held: list[_Pin] = []
        for k, text in enumerate(notes_):
            # Trailing blank lines (an editor's, `echo`'s) are not part of a note.
            ending = "\r\n" if text.rstrip().count("\r\n") else "\n"
            text = text.rstrip() + ending
            try:
                body, _signatures = notes.parse_unverified(text)
                parsed = parse_checkpoint(body)
            except (notes.NoteError, CheckpointError) as exc:
                raise InvalidRequest(
                    f"checkpoint {k + 1}: not a signed checkpoint: {exc}", param="checkpoint"
                ) from None
            held.append(_Pin(parsed.size, parsed.root_hash, parsed.origin, text, k + 1))
        return held

    def _verify_all(
        self,
        uow: UnitOfWork,
        keys: Sequence[tuple[Any, ...]],
        roots: Sequence[str],
        held: Sequence[_Pin],
        report: VerifyReport,
        say: Callable[[str], None],
    ) -> set[str]:
        """Every log, then the ledger against the leaves; the keys trusted by the end."""
        reached = set(roots)
        pins: dict[str, list[_Pin]] = {}
        for pin in held:
            pins.setdefault(pin.origin, []).append(pin)
        for log_id in store.log_ids(uow):
            report.logs += 1
            mine = sorted(pins.pop(self.origin_of(log_id), []), key=lambda p: p.size)
            self._verify_log(uow, log_id, roots, reached, report, say, mine)
        for origin, gone in sorted(pins.items()):
            report.problems.append(
                f"log {origin}: a held checkpoint of size {max(p.size for p in gone)} names a "
                "log this database does not hold (deleted?)"
            )
        for key_id, name, vkey, _signer, _created, _retired in keys:
            if vkey not in reached:
                report.problems.append(
                    f"signing key {key_id} ({name}) was never handed over by a trusted key"
                )
        baseline = replay.load_baseline(uow)
        report.problems += baseline.problems
        report.baseline = baseline.describe()
        say("transfers against their leaves")
        _TransferTrail(uow, baseline.transfer_seq).check(report)
        replayed = replay.check(uow, baseline, say)
        report.accounts, report.entries = replayed.accounts, replayed.entries
        report.problems += replayed.problems
        return reached

    def _verify_log(
        self,
        uow: UnitOfWork,
        log_id: str,
        roots: Sequence[str],
        reached: set[str],
        report: VerifyReport,
        say: Callable[[str], None],
        pins: Sequence[_Pin] = (),
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
        anchored = 0  # leaves under a checkpoint that verified
        next_pin = 0
        while next_pin < len(pins) and pins[next_pin].size == 0:
            next_pin += 1  # the empty tree: nothing to hold the log to
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
                while next_pin < len(pins) and pins[next_pin].size == expected:
                    if pins[next_pin].root != acc.root():
                        report.problems.append(
                            f"log {log_id}: the leaves up to {expected} do not give the root of "
                            f"the held checkpoint of size {expected} (leaves changed)"
                        )
                    next_pin += 1
                while next_cp < len(checkpoints) and checkpoints[next_cp][0] == expected:
                    cp = checkpoints[next_cp]
                    if self._check_checkpoint(log_id, origin, cp, acc.root(), trusted, report):
                        anchored = cp[0]
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
        if expected and not anchored and not pins:
            report.notes.append(
                f"log {log_id}: none of its {expected} leaves is under a checkpoint a trusted "
                "key signed (publish one, and keep it outside the database: --checkpoint)"
            )
        for pin in pins[next_pin:]:
            report.problems.append(
                f"log {log_id}: a held checkpoint has {pin.size} leaves, the log {expected}: "
                "leaves were removed"
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
