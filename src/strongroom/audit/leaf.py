"""The canonical bytes of a leaf: binary, version 2 (docs/audit.md has the layout).

A leaf is a compact big-endian record, in the manner of Certificate Transparency's
MerkleTreeLeaf: one byte of version, one of kind, then fixed-order fields. There is exactly one
encoding of a given change, so the bytes are canonical; a verifier hashes them as they are and
decodes them with `parse` (or with the layout in the docs, in any language). Any change to the
layout is a new version byte, and readers keep reading every version ever written (version 1,
written before 128-bit amounts, is read as it was).

- kind 1, a ledger change: the event, the transfer row as stored after the change, and the
  account entries the change wrote, each with the account's gap-free version, its four counters
  after the entry and the entry's time: what an account statement's completeness proof rests on
  (audit/statement.py). Version 2 adds a width byte for money (8: every money field of the leaf
  fits a signed 64-bit integer; 17: they are 17-byte two's complement, for 128-bit amounts and
  totals), and two trailing fields for what the transfer pipeline adds: the actor who asked and
  the gates' decisions (canonical JSON), null when there are none.
- kind 2, any other action: its type, time, actor and data (canonical JSON, sorted keys).

Other integers are signed 64-bit; strings are a 2-byte length and UTF-8 (0xFFFF: null).
It is on the ledger's hot path (one leaf per transfer, 8,190 per bulk batch): the common shape
packs with one precompiled struct per id-length combination.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from strongroom.core.limits import AMOUNT_MAX, NATIVE_INT_MAX
from strongroom.ledger.engine import EntryRow
from strongroom.ledger.model import Action, Status, TransferRow

VERSION: Final = 2  # what is written; VERSIONS are read
VERSIONS: Final = (1, 2)
KIND_LEDGER: Final = 1
KIND_RECORD: Final = 2
EVENTS: Final = (
    "transfer.created",
    "transfer.posted",
    "transfer.voided",
    "transfer.reversed",
    "transfer.expired",
)
_EVENT_CODES: Final = {name: code for code, name in enumerate(EVENTS)}
_ACTIONS: Final = tuple(a.name.lower() for a in sorted(Action))
_STATUSES: Final = tuple(s.label for s in sorted(Status))
_DIRECTIONS: Final = ("debit", "credit")
_NULL: Final = 0xFFFF
# Version 2: an entry's account that is the transfer's debit (credit) account is written as
# this length alone, not again in full: one encoding, and ~60 bytes less a bulk leaf.
_DEBIT_REF: Final = 0xFFFE
_CREDIT_REF: Final = 0xFFFD
STRING_BYTES_MAX: Final = 0xFFFC

# Money fields are WIDTH_NARROW bytes when every one of the leaf's fits a signed 64-bit integer,
# else WIDTH_WIDE (signed: an entry's pending delta goes down to -(2^128-1)).
WIDTH_NARROW: Final = 8
WIDTH_WIDE: Final = 17

_U16 = struct.Struct(">H")
_I64 = struct.Struct(">q")
_ENTRY_NUMBERS = struct.Struct(">qBqqqqqqq")  # version, direction, amount ... at (width 8)
_ENTRY_HEAD = struct.Struct(">qB")  # version, direction (width 17: then the money, then at)


class LeafError(ValueError):
    """Bytes that are not a leaf this code can read, or a value a leaf cannot hold."""


# -- encoding ------------------------------------------------------------------------------

_simple_structs: dict[tuple[int, int, int, int, int], struct.Struct] = {}


def _simple_struct(key: tuple[int, int, int, int, int]) -> struct.Struct | None:
    """The bulk shape's whole leaf as one struct, for these id and actor lengths (None: too
    long). A null actor is its 0xFFFF length and no bytes: `H0s`."""
    found = _simple_structs.get(key)
    if found is None:
        if max(key) > STRING_BYTES_MAX:
            return None
        tid, ledger, debit, credit, actor = key
        # `?`, the pending flag: packed by truth value as 0 or 1, as `_general` writes it.
        found = struct.Struct(
            f">BBBH{tid}sH{ledger}sBBBH{debit}sH{credit}sqHH?qBBHqHHqBqqqqqqqHqBqqqqqqqH{actor}sH"
        )
        if len(_simple_structs) < 256:
            _simple_structs[key] = found
    return found


# Who asked for each change of a batch: one actor for all (`actor`), or one per transfer id
# (`actors`, for a batch the group-commit coalescer gathered from several principals).
Actors = Mapping[str, str | None]


def transfer_leaf(
    event_type: str,
    row: TransferRow,
    entries: Sequence[EntryRow],
    *,
    wide: bool = True,
    actor: str | None = None,
) -> bytes:
    """The leaf of one ledger change: the transfer row as stored (after the change), the
    entries it wrote and who asked (`actor`: `api_key:<id>`, `cli`, `system:expiry`...).
    `wide=False` promises that every money value fits 64 bits (the engine knows it of a whole
    batch, see Writes.wide), which lets the common shape skip the check."""
    return transfer_leaves((event_type,), (row,), (entries,), wide=wide, actor=actor)[0]


def transfer_leaves(
    kinds: Sequence[str],
    rows: Sequence[TransferRow],
    entries: Sequence[Sequence[EntryRow]],
    *,
    wide: bool = True,
    actor: str | None = None,
    actors: Actors | None = None,
) -> list[bytes]:
    """The leaves of a transaction's ledger changes (`entries[i]`: those change i wrote);
    `actors`, when given, names each transfer's actor by id instead of `actor`."""
    if wide:
        if actors is None:
            return [_general(k, r, e, actor) for k, r, e in zip(kinds, rows, entries, strict=True)]
        return [
            _general(k, r, e, actors.get(r[1]))
            for k, r, e in zip(kinds, rows, entries, strict=True)
        ]
    found = _narrow_leaves(kinds, rows, entries, paired=False, actor=actor, actors=actors)
    assert found is not None, "only paired entries are refused"
    return found


def batch_leaves(
    kinds: Sequence[str],
    rows: Sequence[TransferRow],
    entries: Sequence[EntryRow],
    *,
    wide: bool = True,
    actor: str | None = None,
    actors: Actors | None = None,
) -> list[bytes]:
    """`transfer_leaves` of a committed batch as the ledger hands it over (ledger.pipeline.
    CommittedBatch): `entries` all of the transaction's, in the order of their transfers. A
    bulk batch has two a transfer: they are paired as the leaves are packed, without grouping
    them first."""
    if not wide and len(entries) == 2 * len(rows):
        found = _narrow_leaves(
            kinds,
            rows,
            zip(entries[0::2], entries[1::2], strict=True),
            paired=True,
            actor=actor,
            actors=actors,
        )
        if found is not None:
            return found
    by_change = entries_by_change(rows, entries)
    return transfer_leaves(kinds, rows, by_change, wide=wide, actor=actor, actors=actors)


def entries_by_change(
    rows: Sequence[TransferRow], entries: Sequence[EntryRow]
) -> list[Sequence[EntryRow]]:
    """Each change's entries. The engine writes a transfer's entries together and in the order
    of its transfers, so one pass with slices does; anything else falls back to a dict."""
    out: list[Sequence[EntryRow]] = []
    j, n = 0, len(entries)
    for row in rows:
        tid = row[1]
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
    return [by_transfer.get(row[1], []) for row in rows]


def _narrow_leaves(
    kinds: Sequence[str],
    rows: Sequence[TransferRow],
    entries: Iterable[Sequence[EntryRow]],
    *,
    paired: bool,
    actor: str | None = None,
    actors: Actors | None = None,
) -> list[bytes] | None:
    """The leaves of changes whose money fits 64 bits. The bulk shape (a posted or pending
    two-account transfer without legs, target, expiry, metadata or effective time, whose two
    entries are its own two accounts') packs with one precompiled struct per id-length
    combination, in one loop: it is on the hot path, 8,190 leaves a bulk batch. Each row is
    unpacked once (cheaper than indexing its fields one by one); anything but the bulk shape
    goes through `_general`, which writes the same bytes for the bulk shape too.

    `paired`: `entries` pairs the batch's entries two by two, unchecked; None (the caller
    groups them instead) as soon as a pair is not its change's two, or a change's id repeats
    the one before (grouping would give the first all their entries). The actor (`actors`:
    each transfer's) is packed in the same struct; the gates' decisions are null here."""
    a_field, a_bytes = _actor_field(actor)
    fields: dict[str | None, tuple[int, bytes]] = {actor: (a_field, a_bytes)}
    out: list[bytes] = []
    append = out.append
    codes = _EVENT_CODES
    structs = _simple_structs
    ledger_id: str | None = None
    ledger = b""
    key: tuple[int, int, int, int, int] | None = None
    packer: struct.Struct | None = None
    last_tid = None
    for kind, row, mine in zip(kinds, rows, entries, strict=True):
        (_, tid, lid, action, status, debit, credit, amount, legs, target, pending, timeout,
         expires, metadata, created, effective) = row  # fmt: skip
        if len(mine) == 2:
            d, c = mine
            (_, d_account, d_version, _, d_transfer, d_direction, d_amount, d_delta,
             d_dp, d_cp, d_dpend, d_cpend, d_at) = d  # fmt: skip
            (_, c_account, c_version, _, c_transfer, c_direction, c_amount, c_delta,
             c_dp, c_cp, c_dpend, c_cpend, c_at) = c  # fmt: skip
            if paired:
                if d_transfer != tid or c_transfer != tid or tid == last_tid:
                    return None
                last_tid = tid
            if (
                legs is None
                and target is None
                and expires is None
                and metadata is None
                and effective is None
                and debit is not None
                and credit is not None
                and debit != credit
                and d_account == debit
                and c_account == credit
            ):
                if lid != ledger_id:
                    ledger_id = lid
                    ledger = lid.encode()
                tid_b = tid.encode()
                debit_b = debit.encode()
                credit_b = credit.encode()
                if actors is not None:
                    mine_actor = actors.get(tid)
                    got = fields.get(mine_actor)
                    if got is None:
                        got = fields[mine_actor] = _actor_field(mine_actor)
                    a_field, a_bytes = got
                found = (len(tid_b), len(ledger), len(debit_b), len(credit_b), len(a_bytes))
                if found != key:
                    key = found
                    packer = structs.get(key) or _simple_struct(key)
                if packer is not None:
                    packed = packer.pack(
                        VERSION, KIND_LEDGER, codes[kind],
                        found[0], tid_b, found[1], ledger, WIDTH_NARROW, action, status,
                        found[2], debit_b, found[3], credit_b, amount,
                        _NULL, _NULL, pending, timeout, 0, 0, _NULL, created, 2,
                        _DEBIT_REF, d_version, d_direction, d_amount, d_delta,
                        d_dp, d_cp, d_dpend, d_cpend, d_at,
                        _CREDIT_REF, c_version, c_direction, c_amount, c_delta,
                        c_dp, c_cp, c_dpend, c_cpend, c_at,
                        a_field, a_bytes, _NULL,
                    )  # fmt: skip
                    append(packed)
                    continue
        elif paired:
            return None
        append(_general(kind, row, mine, actors.get(tid) if actors is not None else actor))
    return out


def _actor_field(actor: str | None) -> tuple[int, bytes]:
    """The actor as the bulk struct packs it: (its length, or 0xFFFF for null; its bytes)."""
    if actor is None:
        return _NULL, b""
    data = actor.encode()
    if len(data) > STRING_BYTES_MAX:
        raise LeafError(f"a leaf string holds at most {STRING_BYTES_MAX} bytes")
    return len(data), data


def _str(value: str | None) -> bytes:
    if value is None:
        return _U16.pack(_NULL)
    data = value.encode()
    if len(data) > STRING_BYTES_MAX:
        raise LeafError(f"a leaf string holds at most {STRING_BYTES_MAX} bytes")
    return _U16.pack(len(data)) + data


def _opt_int(value: int | None) -> bytes:
    return b"\x00" if value is None else b"\x01" + _I64.pack(value)


def _money_width(row: TransferRow, entries: Sequence[EntryRow]) -> int:
    narrow = -NATIVE_INT_MAX <= row[7] <= NATIVE_INT_MAX and all(
        -NATIVE_INT_MAX <= v <= NATIVE_INT_MAX for e in entries for v in e[6:12]
    )
    return WIDTH_NARROW if narrow else WIDTH_WIDE


def _money(value: int, width: int) -> bytes:
    if not -AMOUNT_MAX <= value <= AMOUNT_MAX:
        raise LeafError("a money value a leaf holds is at most 128 bits")
    return value.to_bytes(width, "big", signed=True)


def _general(
    event_type: str,
    row: TransferRow,
    entries: Sequence[EntryRow],
    actor: str | None = None,
    gates: str | None = None,
) -> bytes:
    code = _EVENT_CODES.get(event_type)
    if code is None:
        raise LeafError(f"no leaf encoding for event {event_type!r}")
    width = _money_width(row, entries)
    parts = [
        bytes((VERSION, KIND_LEDGER, code)),
        _str(row[1]),
        _str(row[2]),
        bytes((width, row[3], row[4])),
        _str(row[5]),
        _str(row[6]),
        _money(row[7], width),
        _str(row[8]),
        _str(row[9]),
        bytes((1 if row[10] else 0,)),
        _I64.pack(row[11]),
        _opt_int(row[12]),
        _opt_int(row[15]),
        _str(row[13]),
        _I64.pack(row[14]),
        _U16.pack(len(entries)),
    ]
    for e in entries:
        if e[1] == row[5]:
            parts.append(_U16.pack(_DEBIT_REF))
        elif e[1] == row[6]:
            parts.append(_U16.pack(_CREDIT_REF))
        else:
            parts.append(_str(e[1]))
        if width == WIDTH_NARROW:
            numbers = (e[2], e[5], e[6], e[7], e[8], e[9], e[10], e[11], e[12])
            parts.append(_ENTRY_NUMBERS.pack(*numbers))
        else:
            parts.append(_ENTRY_HEAD.pack(e[2], e[5]))
            parts.extend(_money(v, width) for v in e[6:12])
            parts.append(_I64.pack(e[12]))
    parts.append(_str(actor))
    parts.append(_str(gates))
    return b"".join(parts)


def record_leaf(event_type: str, at_us: int, actor: str, data: Mapping[str, Any]) -> bytes:
    """The leaf of an action outside the ledger's transfers (an account created, a key
    rotated). `data` holds no secret and no personal data: it is what the log proves forever."""
    body = json.dumps(dict(data), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return b"".join(
        (bytes((VERSION, KIND_RECORD)), _str(event_type), _I64.pack(at_us), _str(actor), _str(body))
    )


# -- decoding ------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("data", "offset")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, n: int) -> bytes:
        end = self.offset + n
        if end > len(self.data):
            raise LeafError("the leaf ends too soon")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def i64(self) -> int:
        value: int = _I64.unpack(self.take(8))[0]
        return value

    def money(self, width: int) -> int:
        if width == WIDTH_NARROW:
            return self.i64()
        value = int.from_bytes(self.take(width), "big", signed=True)
        if not -AMOUNT_MAX <= value <= AMOUNT_MAX:
            raise LeafError("a money value wider than 128 bits")
        return value

    def opt_int(self) -> int | None:
        flag = self.u8()
        if flag > 1:
            raise LeafError("a bad optional-integer flag")
        return self.i64() if flag else None

    def str_(self) -> str | None:
        length: int = _U16.unpack(self.take(2))[0]
        if length == _NULL:
            return None
        try:
            return self.take(length).decode()
        except UnicodeDecodeError:
            raise LeafError("a leaf string is not UTF-8") from None

    def account(self, version: int, debit: str | None, credit: str | None) -> str:
        """An entry's account: in version 2 a reference to the transfer's debit or credit
        account when it is one of them (and only then: one encoding)."""
        if version >= 2:
            length: int = _U16.unpack(self.data[self.offset : self.offset + 2])[0]
            if length in (_DEBIT_REF, _CREDIT_REF):
                self.offset += 2
                named = debit if length == _DEBIT_REF else credit
                if named is None:
                    raise LeafError("an entry refers to an account the transfer does not name")
                return named
            account = self.need_str()
            if account in (debit, credit):
                raise LeafError("an entry names the transfer's account in full: not canonical")
            return account
        return self.need_str()

    def need_str(self) -> str:
        value = self.str_()
        if value is None:
            raise LeafError("a required string is null")
        return value


def _pick(names: Sequence[str], code: int, what: str) -> str:
    if code >= len(names):
        raise LeafError(f"unknown {what} {code}")
    return names[code]


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise LeafError("a leaf's JSON field does not parse") from None


def parse(data: bytes) -> dict[str, Any]:
    """A leaf's content as a JSON-able dict, for display and for verifiers:
    {"v", "type", "transfer", "entries"} for a ledger change (entries as lists:
    [account_id, version, direction, amount, pending_delta, debits_posted, credits_posted,
    debits_pending, credits_pending, at]); {"v", "type", "at", "actor", "data"} otherwise."""
    r = _Reader(bytes(data))
    version = r.u8()
    if version not in VERSIONS:
        raise LeafError(f"leaf version {version} is not supported")
    kind = r.u8()
    if kind == KIND_LEDGER:
        event = _pick(EVENTS, r.u8(), "event")
        transfer: dict[str, Any] = {"id": r.need_str(), "ledger_id": r.need_str()}
        width = WIDTH_NARROW if version == 1 else r.u8()
        if width not in (WIDTH_NARROW, WIDTH_WIDE):
            raise LeafError(f"a bad money width {width}")
        transfer["action"] = _pick(_ACTIONS, r.u8(), "action")
        transfer["status"] = _pick(_STATUSES, r.u8(), "status")
        transfer["debit_account_id"] = r.str_()
        transfer["credit_account_id"] = r.str_()
        transfer["amount"] = r.money(width)
        transfer["legs"] = _json(r.str_())
        transfer["target_id"] = r.str_()
        pending = r.u8()
        if pending > 1:
            raise LeafError("a bad pending flag")
        transfer["pending"] = bool(pending)
        transfer["timeout_s"] = r.i64()
        transfer["expires_at"] = r.opt_int()
        transfer["effective_at"] = r.opt_int()
        transfer["metadata"] = _json(r.str_())
        transfer["created_at"] = r.i64()
        count: int = _U16.unpack(r.take(2))[0]
        entries = []
        widest = abs(transfer["amount"])
        for _ in range(count):
            account = r.account(
                version, transfer["debit_account_id"], transfer["credit_account_id"]
            )
            if width == WIDTH_NARROW:
                numbers = _ENTRY_NUMBERS.unpack(r.take(_ENTRY_NUMBERS.size))
            else:
                head = _ENTRY_HEAD.unpack(r.take(_ENTRY_HEAD.size))
                numbers = (*head, *(r.money(width) for _ in range(6)), r.i64())
                widest = max(widest, *(abs(v) for v in numbers[2:8]))
            entries.append(
                [account, numbers[0], _pick(_DIRECTIONS, numbers[1], "direction"), *numbers[2:]]
            )
        if width == WIDTH_WIDE and widest <= NATIVE_INT_MAX:
            raise LeafError("a wide leaf whose money fits 64 bits is not canonical")
        out = {"v": version, "type": event, "transfer": transfer, "entries": entries}
        if version >= 2:
            out["actor"] = r.str_()
            out["gates"] = _json(r.str_())
    elif kind == KIND_RECORD:
        out = {
            "v": version,
            "type": r.need_str(),
            "at": r.i64(),
            "actor": r.need_str(),
            "data": _json(r.need_str()),
        }
    else:
        raise LeafError(f"unknown leaf kind {kind}")
    if r.offset != len(r.data):
        raise LeafError("bytes after the end of the leaf")
    return out


_STATUS_VALUES: Final = tuple(int(s) for s in sorted(Status))


class TransferHead(NamedTuple):
    """What `verify`'s transfer check reads of every ledger change's leaf (`transfer_head`)."""

    event: str
    id: str
    action: str
    status: int  # a Status value
    target_id: str | None
    body: bytes  # the transfer's bytes, id to created_at, but for the status byte
    end: int = 0  # where the transfer's bytes end (its entries follow)
    width: int = WIDTH_NARROW  # the leaf's money width


def transfer_head(data: bytes) -> TransferHead | None:
    """A ledger change's event, transfer id, action, status and target, and the bytes of its
    transfer but for the status, read without decoding the rest (None: not a ledger change's
    leaf). A fraction of `parse`'s cost: verify reads it for every leaf, and decodes a leaf in
    full only where its transfer's bytes differ from the row's. Inline, for speed: each string
    is a 2-byte length (0xFFFF: null) and its bytes."""
    if len(data) < 3 or data[0] not in VERSIONS or data[1] != KIND_LEDGER:
        return None
    try:
        event = EVENTS[data[2]]
        n = (data[3] << 8) | data[4]
        if n == _NULL:
            raise LeafError("a required string is null")
        o = 5 + n
        tid = data[5:o].decode()
        n = (data[o] << 8) | data[o + 1]  # the ledger id
        o += 2 + (0 if n == _NULL else n)
        width = WIDTH_NARROW
        if data[0] >= 2:
            width = data[o]
            if width not in (WIDTH_NARROW, WIDTH_WIDE):
                raise LeafError(f"a bad money width {width}")
            o += 1
        action = _ACTIONS[data[o]]
        status_at = o + 1
        status = _STATUS_VALUES[data[status_at]]
        o = status_at + 1
        for _ in range(2):  # the debit and credit accounts
            n = (data[o] << 8) | data[o + 1]
            o += 2 + (0 if n == _NULL else n)
        o += width  # the amount
        n = (data[o] << 8) | data[o + 1]  # legs
        o += 2 + (0 if n == _NULL else n)
        n = (data[o] << 8) | data[o + 1]
        target = None if n == _NULL else data[o + 2 : o + 2 + n].decode()
        o += 2 + (0 if n == _NULL else n)
        o += 1 + 8  # pending, timeout_s
        o += 9 if data[o] else 1  # expires_at
        o += 9 if data[o] else 1  # effective_at
        n = (data[o] << 8) | data[o + 1]  # metadata
        end = o + 2 + (0 if n == _NULL else n) + 8  # created_at
    except IndexError:
        raise LeafError("the leaf ends too soon or holds an unknown code") from None
    except UnicodeDecodeError:
        raise LeafError("a leaf string is not UTF-8") from None
    if end > len(data):
        raise LeafError("the leaf ends too soon")
    body = data[3:status_at] + data[status_at + 1 : end]
    return TransferHead(event, tid, action, status, target, body, end, width)


def leaf_actor(data: bytes, head: TransferHead) -> tuple[bool, str | None]:
    """Whether a ledger change's leaf records who asked (version 2 on), and who: read by
    stepping over its entries from `head` (its transfer_head), without decoding them."""
    if data[0] < 2:
        return False, None
    try:
        o = head.end
        count = (data[o] << 8) | data[o + 1]
        o += 2
        numbers = (
            _ENTRY_NUMBERS.size
            if head.width == WIDTH_NARROW
            else (_ENTRY_HEAD.size + 6 * head.width + 8)
        )
        for _ in range(count):
            n = (data[o] << 8) | data[o + 1]
            o += 2 + (0 if n in (_DEBIT_REF, _CREDIT_REF) else n) + numbers
        n = (data[o] << 8) | data[o + 1]
        if n == _NULL:
            return True, None
        if o + 2 + n > len(data):
            raise IndexError
        return True, data[o + 2 : o + 2 + n].decode()
    except IndexError:
        raise LeafError("the leaf ends too soon") from None
    except UnicodeDecodeError:
        raise LeafError("a leaf string is not UTF-8") from None


def leaf_type(data: bytes) -> str:
    """A leaf's type from its first bytes, without decoding the rest; 'unknown' if unreadable."""
    try:
        if len(data) >= 3 and data[0] in VERSIONS and data[1] == KIND_LEDGER:
            return EVENTS[data[2]]
        if len(data) >= 4 and data[0] in VERSIONS and data[1] == KIND_RECORD:
            return _Reader(bytes(data[2:])).need_str()
    except (IndexError, LeafError):
        pass
    return "unknown"


def transfer_id_prefix(transfer_id: str) -> bytes:
    """What a ledger change's leaf holds from byte 3 (every version): its transfer's id,
    length-prefixed."""
    return _str(transfer_id)


def is_ledger_change(data: bytes) -> bool:
    """Whether a leaf is a ledger change's (of any version), from its first two bytes."""
    return len(data) >= 2 and data[0] in VERSIONS and data[1] == KIND_LEDGER
