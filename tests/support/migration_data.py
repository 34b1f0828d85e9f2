"""A populated database as it looked at each schema revision, for tests/integration/
test_migrations.py.

The history is computed here, independently of the ledger's engine (`Book`), and written with
plain SQL against the tables of one revision (`POPULATE`): today's code writes today's schema
only, so it cannot stand in for a database created by an older Strongroom. Anything whose
layout is a storage format of its revision (the entry index stride, the audit leaf encoding)
is frozen here as it was, not imported.

The audit rows of revision 0005 are written here too (see `populate_0005`): the leaves in the
version-1 encoding of that revision, frozen below; the tiles, checkpoint and signing key with
today's pure code (audit/tiles.py, audit/note.py, audit/checkpoint.py), which needs no database
and whose formats no migration has ever changed.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from strongroom.audit import note as notes
from strongroom.audit.checkpoint import Checkpoint
from strongroom.audit.tiles import TileLayout

AMOUNT_64_MAX: Final = 2**63 - 1  # what every revision before the 128-bit one could hold
# Storage formats of the revisions below, frozen as they were written (not today's values).
ENTRY_INDEX_STRIDE_0001: Final = 64
ID_BLOCK_BITS_0001: Final = 20
AUDIT_TILE_HEIGHT_0005: Final = 4
AUDIT_ORIGIN: Final = "strongroom.localhost/audit"  # AuditLog's default origin

T0_US: Final = int(datetime(2026, 11, 28, 9, 0, tzinfo=UTC).timestamp()) * 1_000_000
DEFAULT_TENANT_ID: Final = "ten_default"  # made by migration 0002
TENANT_ID: Final = "ten_mig_acme"
PEPPER: Final = base64.b64encode(b"migration-test-pepper-32-bytes!!").decode()
API_KEY_SECRET: Final = "sk_migration_live_key_0001"
REVOKED_KEY_SECRET: Final = "sk_migration_revoked_key_02"


def revisions() -> list[str]:
    """Every shipped revision, from the first to head."""
    ini = resources.files("strongroom.db").joinpath("alembic.ini")
    script = ScriptDirectory.from_config(Config(str(ini)))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


# -- the schema features of a revision -----------------------------------------------------


@dataclass(frozen=True)
class Schema:
    """What a revision's tables hold, cumulative: each revision has its predecessors' too."""

    tenancy: bool = False  # 0002: tenants, api keys, idempotency, server secrets
    events: bool = False  # 0003: the outbox and webhooks
    effective_at: bool = False  # 0004: transfers.effective_at
    audit: bool = False  # 0005: the audit log; events name their transfer, data NULL
    idempotency_records: bool = False  # 0009: idempotency records by tenant, answers compressed


# -- the history, computed -----------------------------------------------------------------

# (seq, id, ledger_id, action, status, debit, credit, amount, legs, target_id, pending,
#  timeout_s, expires_at, metadata, created_at, effective_at): as ledger.model.TransferRow.
Row = list[Any]
# (id, account_id, version, prev_id, transfer_id, direction, amount, pending_delta,
#  debits_posted, credits_posted, debits_pending, credits_pending, created_at)
EntryRow = tuple[int, str, int, int | None, str, int, int, int, int, int, int, int, int]

TRANSFER, POST, VOID, REVERSE = 0, 1, 2, 3
POSTED, PENDING, VOIDED, EXPIRED = 0, 1, 2, 3
DEBIT, CREDIT = 0, 1
NO_OVERDRAFT_DEBITS = 1  # AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
_EVENT_BY_ACTION = ("transfer.created", "transfer.posted", "transfer.voided", "transfer.reversed")
EXPIRED_EVENT = "transfer.expired"


@dataclass
class Acct:
    id: str
    ledger_id: str
    name: str | None
    asset: str
    normal: int
    flags: int
    created_at: int
    metadata: str | None = None
    closed: bool = False
    dp: int = 0
    cp: int = 0
    dpend: int = 0
    cpend: int = 0
    version: int = 0
    last_entry_id: int | None = None
    updated_at: int = 0
    entries: list[EntryRow] = field(default_factory=list)

    @property
    def balances(self) -> tuple[int, int, int, int]:
        return (self.dp, self.cp, self.dpend, self.cpend)


@dataclass
class LedgerRow:
    id: str
    name: str
    tenant_id: str
    created_at: int
    metadata: str | None = None


@dataclass
class Event:
    seq: int
    id: str
    ledger_id: str
    type: str
    data: str | None
    created_at: int
    transfer_id: str


@dataclass
class Leaf:
    log_id: str
    data: bytes
    ref: str | None
    at: int  # the bundle's time
    bundle: int  # the leaves of one transaction (of one log) are one bundle row
    transfer_id: str | None = None  # of a ledger change's leaf


class Book:
    """A ledger's history as the engine writes it: each write transaction takes one id block
    whose ids number its transfers (seq) and its entries; every account's entries are
    gap-free versions chained by prev_id, each with the running totals after it."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.now = T0_US
        self.block = 0
        self._seq = self._entry = 0
        self.ledgers: dict[str, LedgerRow] = {}
        self.accounts: dict[str, Acct] = {}
        self.assets: list[tuple[str, int, int]] = []
        self.transfers: dict[str, Row] = {}
        self.index_rows: list[tuple[str, int, int, int]] = []
        self.events: list[Event] = []
        self.leaves: list[Leaf] = []
        self._bundles = 0
        self._tx_changes: list[tuple[str, tuple[Any, ...], list[EntryRow]]] = []

    # -- time and transactions -------------------------------------------------------------

    def tick(self, us: int = 1_000_000) -> int:
        self.now += us
        return self.now

    def begin(self, us: int = 1_000_000) -> None:
        """A write transaction of the ledger: the next id block, a later time."""
        self.tick(us)
        self.block += 1
        base = self.block << ID_BLOCK_BITS_0001
        self._seq = self._entry = base + 1
        self._tx_changes = []

    def commit(self) -> None:
        """The transaction's events and (0005) its audit leaves, one bundle per log."""
        if not self._tx_changes:
            return
        at = self._tx_changes[0][1][14]
        self._bundles += 1
        for event_type, row, entries in self._tx_changes:
            self._event(event_type, row)
            if self.schema.audit:
                log_id = self.ledgers[row[2]].tenant_id
                ref = row[1] if event_type == EXPIRED_EVENT or row[14] != at else None
                data = leaf_v1_transfer(event_type, row, entries)
                self.leaves.append(Leaf(log_id, data, ref, at, self._bundles, row[1]))
        self._tx_changes = []

    def _event(self, event_type: str, row: tuple[Any, ...]) -> None:
        if not self.schema.events:
            return
        seq = len(self.events) + 1
        data = None if self.schema.audit else _rendered(row)
        self.events.append(
            Event(seq, f"evt_mig_{seq:05d}", row[2], event_type, data, self.now, row[1])
        )

    # -- ledgers and accounts --------------------------------------------------------------

    def ledger(self, ledger_id: str, name: str, tenant_id: str) -> None:
        self.tick()
        tenant = tenant_id if self.schema.tenancy else DEFAULT_TENANT_ID
        self.ledgers[ledger_id] = LedgerRow(ledger_id, name, tenant, self.now, '{"region":"eu"}')
        self.record(tenant, "ledger.created", "ledger", ledger_id, {"ledger_id": ledger_id})

    def account(
        self,
        account_id: str,
        ledger_id: str,
        asset: str,
        normal: int,
        *,
        flags: int = 0,
        name: str | None = None,
        metadata: str | None = None,
    ) -> Acct:
        self.tick(1_000)
        acc = Acct(account_id, ledger_id, name, asset, normal, flags, self.now, metadata)
        acc.updated_at = self.now
        self.accounts[account_id] = acc
        data = {
            "account_id": account_id,
            "ledger_id": ledger_id,
            "asset": asset,
            "normal_balance": "debit" if normal == DEBIT else "credit",
            "flags": ["debits_must_not_exceed_credits"] if flags & NO_OVERDRAFT_DEBITS else [],
        }
        self.record(
            self.ledgers[ledger_id].tenant_id, "account.created", "ledger", account_id, data
        )
        return acc

    def close(self, account_id: str) -> None:
        self.begin()  # closing an account takes an id block (it tells every cache)
        acc = self.accounts[account_id]
        assert not acc.dpend
        assert not acc.cpend
        acc.closed = True
        acc.updated_at = self.now
        tenant = self.ledgers[acc.ledger_id].tenant_id
        self.record(tenant, "account.closed", "ledger", account_id, {"account_id": account_id})

    def record(self, log_id: str, kind: str, actor: str, ref: str, data: dict[str, Any]) -> None:
        if self.schema.audit:
            self._bundles += 1
            leaf = leaf_v1_record(kind, self.now, actor, data)
            self.leaves.append(Leaf(log_id, leaf, ref, self.now, self._bundles))

    # -- transfers -------------------------------------------------------------------------

    def _entry_of(self, acc: Acct, direction: int, posted: int, pend: int, tid: str) -> EntryRow:
        if direction == DEBIT:
            acc.dp += posted
            acc.dpend += pend
        else:
            acc.cp += posted
            acc.cpend += pend
        for total in (*acc.balances, acc.dp + acc.dpend, acc.cp + acc.cpend):
            assert 0 <= total <= AMOUNT_64_MAX, "the data must be valid at 64 bits"
        acc.version += 1
        at = max(self.now, acc.updated_at)
        entry = (
            self._entry,
            acc.id,
            acc.version,
            acc.last_entry_id,
            tid,
            direction,
            posted,
            pend,
            acc.dp,
            acc.cp,
            acc.dpend,
            acc.cpend,
            at,
        )
        if acc.version % ENTRY_INDEX_STRIDE_0001 == 0:
            self.index_rows.append((acc.id, acc.version, self._entry, at))
        self._entry += 1
        acc.last_entry_id = entry[0]
        acc.updated_at = at
        acc.entries.append(entry)
        return entry

    def _row(self, tid: str, ledger_id: str, action: int, status: int, **kw: Any) -> Row:
        row: Row = [
            self._seq,
            tid,
            ledger_id,
            action,
            status,
            kw.get("debit"),
            kw.get("credit"),
            kw["amount"],
            kw.get("legs"),
            kw.get("target"),
            kw.get("pending", False),
            kw.get("timeout_s", 0),
            None,
            kw.get("metadata"),
            self.now,
            kw.get("effective_at") if self.schema.effective_at else None,
        ]
        if row[11]:
            row[12] = self.now + row[11] * 1_000_000
        self._seq += 1
        assert tid not in self.transfers
        self.transfers[tid] = row
        return row

    def _changed(self, event_type: str, row: Row, entries: list[EntryRow]) -> None:
        self._tx_changes.append((event_type, tuple(row), entries))

    def transfer(
        self,
        tid: str,
        ledger_id: str,
        debit: str,
        credit: str,
        amount: int,
        *,
        pending: bool = False,
        timeout_s: int = 0,
        metadata: str | None = None,
        effective_at: int | None = None,
    ) -> None:
        posted, pend = (0, amount) if pending else (amount, 0)
        entries = [
            self._entry_of(self.accounts[debit], DEBIT, posted, pend, tid),
            self._entry_of(self.accounts[credit], CREDIT, posted, pend, tid),
        ]
        row = self._row(
            tid,
            ledger_id,
            TRANSFER,
            PENDING if pending else POSTED,
            debit=debit,
            credit=credit,
            amount=amount,
            pending=pending,
            timeout_s=timeout_s,
            metadata=metadata,
            effective_at=effective_at,
        )
        self._changed("transfer.created", row, entries)

    def transfer_legs(
        self, tid: str, ledger_id: str, legs: Sequence[tuple[str, int, int]], *, pending: bool
    ) -> None:
        entries = [
            self._entry_of(self.accounts[a], d, 0 if pending else n, n if pending else 0, tid)
            for a, d, n in legs
        ]
        total = sum(n for _, d, n in legs if d == DEBIT)
        assert total == sum(n for _, d, n in legs if d == CREDIT)
        row = self._row(
            tid,
            ledger_id,
            TRANSFER,
            PENDING if pending else POSTED,
            amount=total,
            legs=json.dumps([list(leg) for leg in legs]),
            pending=pending,
        )
        self._changed("transfer.created", row, entries)

    def _legs(self, target: Row) -> list[tuple[str, int, int]]:
        if target[8] is not None:
            return [(a, d, n) for a, d, n in json.loads(target[8])]
        return [(target[5], DEBIT, target[7]), (target[6], CREDIT, target[7])]

    def resolve(self, tid: str, target_id: str, *, post: bool, amount: int = 0) -> None:
        """POST (of `amount`, 0 for all) or VOID a pending transfer."""
        target = self.transfers[target_id]
        assert target[4] == PENDING
        full = target[7]
        posted = (amount or full) if post else 0
        legs = self._legs(target)
        assert posted in (0, full) or len(legs) == 2
        moved = [(a, d, n if posted == full else posted) for a, d, n in legs]
        entries = [
            self._entry_of(self.accounts[a], d, p, -n, tid)
            for (a, d, n), (_, _, p) in zip(legs, moved, strict=True)
        ]
        target[4] = POSTED if post else VOIDED
        row = self._row(
            tid,
            target[2],
            POST if post else VOID,
            POSTED if post else VOIDED,
            debit=target[5],
            credit=target[6],
            amount=posted if post else full,
            legs=(json.dumps([list(m) for m in (moved if post else legs)]) if target[8] else None),
            target=target_id,
        )
        self._changed(_EVENT_BY_ACTION[POST if post else VOID], row, entries)

    def reverse(self, tid: str, target_id: str, amount: int) -> None:
        target = self.transfers[target_id]
        legs = self._legs(target)
        assert target[4] == POSTED
        assert not target[10]
        assert amount == target[7] or len(legs) == 2
        swapped = [(a, 1 - d, amount if len(legs) == 2 else n) for a, d, n in legs]
        entries = [self._entry_of(self.accounts[a], d, n, 0, tid) for a, d, n in swapped]
        row = self._row(
            tid,
            target[2],
            REVERSE,
            POSTED,
            debit=target[6],
            credit=target[5],
            amount=amount,
            legs=json.dumps([list(s) for s in swapped]) if target[8] else None,
            target=target_id,
        )
        self._changed("transfer.reversed", row, entries)

    def expire(self, target_id: str) -> None:
        """The release of a reservation whose timeout passed: entries of the pending transfer
        itself, which keeps its row (and its creation time) with the status EXPIRED."""
        target = self.transfers[target_id]
        assert target[4] == PENDING
        assert target[12] is not None
        assert self.now >= target[12]
        entries = [
            self._entry_of(self.accounts[a], d, 0, -n, target_id) for a, d, n in self._legs(target)
        ]
        target[4] = EXPIRED
        self._changed(EXPIRED_EVENT, target, entries)

    # -- what the tests read back ----------------------------------------------------------

    def open_pending(self) -> int:
        return sum(1 for row in self.transfers.values() if row[4] == PENDING)

    def entry_count(self) -> int:
        return sum(len(a.entries) for a in self.accounts.values())


def _format_us(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rendered(row: tuple[Any, ...]) -> str:
    """The event data an outbox of 0003/0004 stored: the transfer as the API rendered it."""
    out: dict[str, Any] = {
        "id": row[1],
        "object": "transfer",
        "ledger_id": row[2],
        "action": ("transfer", "post", "void", "reverse")[row[3]],
        "status": ("posted", "pending", "voided", "expired")[row[4]],
        "amount": row[7],
        "pending": bool(row[10]),
        "metadata": json.loads(row[13]) if row[13] else {},
        "created_at": _format_us(row[14]),
        "effective_at": _format_us(row[15] if row[15] is not None else row[14]),
    }
    if row[8] is None:
        out["debit_account_id"], out["credit_account_id"] = row[5], row[6]
    else:
        out["entries"] = [
            {"account_id": a, "direction": ("debit", "credit")[d], "amount": n}
            for a, d, n in json.loads(row[8])
        ]
    if row[9] is not None:
        out["target_id"] = row[9]
    return json.dumps(out, separators=(",", ":"))


# -- the audit leaf of revision 0005: version 1, frozen ------------------------------------

_U16 = struct.Struct(">H")
_I64 = struct.Struct(">q")
_ENTRY_V1 = struct.Struct(">qBqqqqqqq")
_EVENTS_V1 = (*_EVENT_BY_ACTION, EXPIRED_EVENT)


def _str_v1(value: str | None) -> bytes:
    if value is None:
        return _U16.pack(0xFFFF)
    data = value.encode()
    return _U16.pack(len(data)) + data


def _opt_v1(value: int | None) -> bytes:
    return b"\x00" if value is None else b"\x01" + _I64.pack(value)


def leaf_v1_transfer(event_type: str, row: tuple[Any, ...], entries: Sequence[EntryRow]) -> bytes:
    parts = [
        bytes((1, 1, _EVENTS_V1.index(event_type))),
        _str_v1(row[1]),
        _str_v1(row[2]),
        bytes((row[3], row[4])),
        _str_v1(row[5]),
        _str_v1(row[6]),
        _I64.pack(row[7]),
        _str_v1(row[8]),
        _str_v1(row[9]),
        bytes((1 if row[10] else 0,)),
        _I64.pack(row[11]),
        _opt_v1(row[12]),
        _opt_v1(row[15]),
        _str_v1(row[13]),
        _I64.pack(row[14]),
        _U16.pack(len(entries)),
    ]
    for e in entries:
        parts.append(_str_v1(e[1]))
        parts.append(_ENTRY_V1.pack(e[2], e[5], e[6], e[7], e[8], e[9], e[10], e[11], e[12]))
    return b"".join(parts)


def leaf_v1_record(kind: str, at_us: int, actor: str, data: dict[str, Any]) -> bytes:
    body = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return b"".join((bytes((1, 2)), _str_v1(kind), _I64.pack(at_us), _str_v1(actor), _str_v1(body)))


# -- the story every revision tells --------------------------------------------------------

LEDGER = "ldg_mig_main"
BIG_LEDGER = "ldg_mig_big"
BUSY_ENTRIES = 130  # past the entry index stride twice
BIG_AMOUNT = AMOUNT_64_MAX - 1_000


def story(schema: Schema) -> Book:
    """Every shape of transfer the ledger stores, and totals at the 64-bit edge."""
    b = Book(schema)
    b.ledger(LEDGER, "Main", TENANT_ID)
    b.ledger(BIG_LEDGER, "Big numbers", DEFAULT_TENANT_ID)
    b.assets.append(("PTS", 0, b.tick()))
    b.account("acc_mig_cash", LEDGER, "USD", DEBIT, name="Cash")
    b.account("acc_mig_revenue", LEDGER, "USD", CREDIT, name="Revenue")
    b.account("acc_mig_alice", LEDGER, "USD", CREDIT, flags=NO_OVERDRAFT_DEBITS, name="Alice")
    b.account(
        "acc_mig_bob", LEDGER, "USD", CREDIT, flags=NO_OVERDRAFT_DEBITS, metadata='{"tier":"gold"}'
    )
    b.account("acc_mig_fees", LEDGER, "USD", CREDIT)
    b.account("acc_mig_busy", LEDGER, "USD", CREDIT)
    b.account("acc_mig_closed", LEDGER, "USD", CREDIT)
    b.account("acc_mig_pts_issuer", LEDGER, "PTS", DEBIT)
    b.account("acc_mig_pts_holder", LEDGER, "PTS", CREDIT)
    b.account("acc_mig_big_src", BIG_LEDGER, "USD", DEBIT)
    b.account("acc_mig_big_dst", BIG_LEDGER, "USD", CREDIT)
    b.account("acc_mig_big_other", BIG_LEDGER, "USD", CREDIT)

    b.begin()
    b.transfer("tr_mig_deposit_alice", LEDGER, "acc_mig_cash", "acc_mig_alice", 1_000_000)
    b.transfer("tr_mig_deposit_bob", LEDGER, "acc_mig_cash", "acc_mig_bob", 500_000)
    b.commit()
    b.begin()
    b.transfer(
        "tr_mig_points",
        LEDGER,
        "acc_mig_pts_issuer",
        "acc_mig_pts_holder",
        42,
        metadata='{"campaign":"launch","n":7}',
        effective_at=T0_US - 86_400_000_000,  # backdated a day (0004 on)
    )
    b.commit()
    b.begin()
    legs = [("acc_mig_alice", DEBIT, 30_000), ("acc_mig_bob", CREDIT, 29_000)]
    b.transfer_legs("tr_mig_split", LEDGER, [*legs, ("acc_mig_fees", CREDIT, 1_000)], pending=False)
    b.commit()
    b.begin()
    b.transfer("tr_mig_hold", LEDGER, "acc_mig_alice", "acc_mig_bob", 10_000, pending=True)
    b.transfer("tr_mig_hold_void", LEDGER, "acc_mig_bob", "acc_mig_alice", 5_000, pending=True)
    b.transfer(
        "tr_mig_hold_expiring",
        LEDGER,
        "acc_mig_bob",
        "acc_mig_fees",
        500,
        pending=True,
        timeout_s=60,
    )
    b.commit()
    b.begin()
    b.resolve("tr_mig_hold_post", "tr_mig_hold", post=True, amount=6_000)  # partial
    b.resolve("tr_mig_hold_void_void", "tr_mig_hold_void", post=False)
    b.commit()
    b.begin(120_000_000)  # past the expiring hold's timeout
    b.expire("tr_mig_hold_expiring")
    b.commit()
    b.begin()
    b.reverse("tr_mig_refund", "tr_mig_deposit_bob", 150_000)  # partial reversal
    b.commit()
    b.begin()
    legs = [("acc_mig_alice", DEBIT, 3_000), ("acc_mig_bob", CREDIT, 2_000)]
    b.transfer_legs(
        "tr_mig_split_hold", LEDGER, [*legs, ("acc_mig_fees", CREDIT, 1_000)], pending=True
    )
    b.transfer("tr_mig_open_hold", LEDGER, "acc_mig_alice", "acc_mig_revenue", 2_000, pending=True)
    b.commit()
    for batch in range(2):  # two bulk batches: one block, one time, many transfers each
        b.begin()
        for k in range(BUSY_ENTRIES // 2):
            n = batch * (BUSY_ENTRIES // 2) + k + 1
            b.transfer(f"tr_mig_busy_{n:04d}", LEDGER, "acc_mig_cash", "acc_mig_busy", n)
        b.commit()
    b.close("acc_mig_closed")
    # The 64-bit edge: debits_posted + debits_pending of big_src end at exactly 2^63-1.
    b.begin()
    b.transfer("tr_mig_big_1", BIG_LEDGER, "acc_mig_big_src", "acc_mig_big_dst", BIG_AMOUNT)
    b.commit()
    b.begin()
    b.transfer("tr_mig_big_2", BIG_LEDGER, "acc_mig_big_src", "acc_mig_big_dst", 999)
    b.transfer(
        "tr_mig_big_hold", BIG_LEDGER, "acc_mig_big_src", "acc_mig_big_other", 1, pending=True
    )
    b.commit()
    src = b.accounts["acc_mig_big_src"]
    assert src.dp + src.dpend == AMOUNT_64_MAX
    return b


# -- writing one revision's rows -----------------------------------------------------------


def _insert(conn: sa.Connection, table: str, rows: Iterable[dict[str, Any]]) -> None:
    rows = list(rows)
    if rows:
        names = list(rows[0])
        conn.execute(
            sa.text(
                f"INSERT INTO {table} ({', '.join(names)}) "
                f"VALUES ({', '.join(':' + n for n in names)})"
            ),
            rows,
        )


def _set_sequence(conn: sa.Connection, name: str, value: int) -> None:
    """PostgreSQL hands out ids from a sequence: where the written history left it."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT setval(:name, :value)"), {"name": name, "value": value})


def write(conn: sa.Connection, b: Book) -> None:
    s = b.schema
    ledger_cols = ("id", "name", "metadata", "created_at")
    _insert(
        conn,
        "ledgers",
        [
            {
                **dict(zip(ledger_cols, (g.id, g.name, g.metadata, g.created_at), strict=True)),
                **({"tenant_id": g.tenant_id} if s.tenancy else {}),
            }
            for g in b.ledgers.values()
        ],
    )
    _insert(conn, "assets", [{"code": c, "scale": n, "created_at": t} for c, n, t in b.assets])
    _insert(
        conn,
        "accounts",
        [
            {
                "id": a.id,
                "ledger_id": a.ledger_id,
                "name": a.name,
                "asset": a.asset,
                "normal_balance": a.normal,
                "flags": a.flags,
                "closed": a.closed,
                "metadata": a.metadata,
                "debits_posted": a.dp,
                "credits_posted": a.cp,
                "debits_pending": a.dpend,
                "credits_pending": a.cpend,
                "version": a.version,
                "last_entry_id": a.last_entry_id,
                "created_at": a.created_at,
                "updated_at": a.updated_at,
            }
            for a in b.accounts.values()
        ],
    )
    transfer_cols = [
        "seq",
        "id",
        "ledger_id",
        "action",
        "status",
        "debit_account_id",
        "credit_account_id",
        "amount",
        "legs",
        "target_id",
        "pending",
        "timeout_s",
        "expires_at",
        "metadata",
        "created_at",
        "effective_at",
    ]
    if not s.effective_at:
        transfer_cols = transfer_cols[:-1]
    _insert(
        conn,
        "transfers",
        [
            {
                c: (bool(v) if c == "pending" else v)
                for c, v in zip(transfer_cols, row, strict=False)
            }
            for row in b.transfers.values()
        ],
    )
    entry_cols = [
        "id",
        "account_id",
        "version",
        "prev_id",
        "transfer_id",
        "direction",
        "amount",
        "pending_delta",
        "debits_posted",
        "credits_posted",
        "debits_pending",
        "credits_pending",
        "created_at",
    ]
    entries = sorted((e for a in b.accounts.values() for e in a.entries), key=lambda e: e[0])
    _insert(conn, "entries", [dict(zip(entry_cols, e, strict=True)) for e in entries])
    index_cols = ("account_id", "version", "entry_id", "created_at")
    _insert(conn, "entry_index", [dict(zip(index_cols, r, strict=True)) for r in b.index_rows])
    _insert(conn, "id_blocks", [{"name": "ledger", "value": b.block}])
    _set_sequence(conn, "id_block_seq", b.block)
    if s.tenancy:
        _write_tenancy(conn, b)
    if s.events:
        _write_events(conn, b)
    if s.audit:
        _write_audit(conn, b)


def api_key_hash(secret: str) -> str:
    return hmac.new(base64.b64decode(PEPPER), secret.encode(), hashlib.sha256).hexdigest()


def _write_tenancy(conn: sa.Connection, b: Book) -> None:
    _insert(conn, "tenants", [{"id": TENANT_ID, "name": "acme", "created_at": T0_US}])
    _insert(conn, "server_secrets", [{"name": "api_key_pepper", "value": PEPPER}])
    keys = [
        ("key_mig_live", API_KEY_SECRET, "ledger:read ledger:write", None),
        ("key_mig_revoked", REVOKED_KEY_SECRET, "admin", T0_US + 5_000_000),
    ]
    _insert(
        conn,
        "api_keys",
        [
            {
                "id": key_id,
                "tenant_id": TENANT_ID,
                "hash": api_key_hash(secret),
                "hint": secret[-4:],
                "scopes": scopes,
                "created_at": T0_US,
                "revoked_at": revoked,
            }
            for key_id, secret, scopes, revoked in keys
        ],
    )
    if b.schema.idempotency_records:
        record = {
            "tenant_id": TENANT_ID,
            "key": "order-1",
            "fingerprint": "0" * 64,
            "claimed_at": T0_US,
            "owner": None,
            "lease_until": 0,
            "status_code": 200,
            "body": zlib.compress(b'{"ok":true}'),
        }
        _insert(conn, "idempotency_records", [record])
        return
    _insert(
        conn,
        "idempotency_keys",
        [
            {
                "api_key_id": "key_mig_live",
                "key": "order-1",
                "fingerprint": "0" * 64,
                "status_code": 200,
                "body": '{"ok":true}',
                "created_at": T0_US,
            }
        ],
    )


ENDPOINT_ID = "we_mig_1"
ENDPOINT_URL = "https://hooks.example.com/strongroom"
UNROUTED_EVENTS = 3  # the newest events are not yet fanned out to the endpoint
PENDING_DELIVERIES = 2  # of the routed ones, the newest are still being delivered


def _write_events(conn: sa.Connection, b: Book) -> None:
    cols = ["seq", "id", "ledger_id", "type", "data", "created_at"]
    if b.schema.audit:
        cols.append("transfer_id")
    _insert(
        conn,
        "events",
        [
            dict(
                zip(
                    cols,
                    (e.seq, e.id, e.ledger_id, e.type, e.data, e.created_at, e.transfer_id),
                    strict=False,
                )
            )
            for e in b.events
        ],
    )
    routed, unrouted = b.events[:-UNROUTED_EVENTS], b.events[-UNROUTED_EVENTS:]
    _insert(conn, "events_unrouted", [{"seq": e.seq} for e in unrouted])
    _set_sequence(conn, "events_seq", len(b.events))
    secret = "whsec_" + base64.b64encode(bytes(range(24))).decode()
    _insert(
        conn,
        "webhook_endpoints",
        [
            {
                "id": ENDPOINT_ID,
                "tenant_id": TENANT_ID,
                "url": ENDPOINT_URL,
                "secret": secret,
                "enabled_events": "*",
                "status": "enabled",
                "failure_count": 0,
                "created_at": T0_US,
                "updated_at": T0_US,
            }
        ],
    )
    mine = [e for e in routed if b.ledgers[e.ledger_id].tenant_id == TENANT_ID]
    states, attempts = [], []
    for k, e in enumerate(mine):
        done = k < len(mine) - PENDING_DELIVERIES
        states.append(
            {
                "event_id": e.id,
                "endpoint_id": ENDPOINT_ID,
                "event_seq": e.seq,
                "status": "succeeded" if done else "pending",
                "attempts": 1 if done else 0,
                "next_attempt_at": e.created_at,
                "lease_until": 0,
                "lease_owner": None,
                "updated_at": e.created_at,
            }
        )
        if done:
            attempts.append(
                {
                    "event_id": e.id,
                    "endpoint_id": ENDPOINT_ID,
                    "attempt": 1,
                    "status": "succeeded",
                    "response_status": 204,
                    "error": None,
                    "duration_ms": 12,
                    "next_attempt_at": None,
                    "created_at": e.created_at + 1_000,
                }
            )
    _insert(conn, "webhook_delivery_state", states)
    _insert(conn, "webhook_deliveries", attempts)


def _write_audit(conn: sa.Connection, b: Book) -> None:
    signer = notes.generate_signer(AUDIT_ORIGIN)
    _insert(
        conn,
        "audit_keys",
        [
            {
                "key_id": f"{signer.key_id:08x}",
                "name": signer.name,
                "verifier_key": signer.verifier_key,
                "signer_key": signer.skey,
                "created_at": T0_US,
                "retired_at": None,
            }
        ],
    )
    layout = TileLayout(AUDIT_TILE_HEIGHT_0005)
    for log_id in sorted({leaf.log_id for leaf in b.leaves}):
        mine = [leaf for leaf in b.leaves if leaf.log_id == log_id]
        bundles: list[list[Leaf]] = []
        for leaf in mine:
            if bundles and bundles[-1][0].bundle == leaf.bundle:
                bundles[-1].append(leaf)
            else:
                bundles.append([leaf])
        rows, refs, first = [], [], 0
        for bundle in bundles:
            data = b"".join(len(x.data).to_bytes(4, "big") + x.data for x in bundle)
            rows.append(
                {
                    "log_id": log_id,
                    "first_idx": first,
                    "count": len(bundle),
                    "created_at": bundle[0].at,
                    "data": data,
                }
            )
            refs += [
                {"ref": x.ref, "log_id": log_id, "idx": first + k}
                for k, x in enumerate(bundle)
                if x.ref is not None
            ]
            first += len(bundle)
        _insert(conn, "audit_bundles", rows)
        _insert(conn, "audit_refs", refs)
        hashes = [hashlib.sha256(b"\x00" + x.data).digest() for x in mine]
        tiles = layout.append(0, {}, hashes)
        _insert(
            conn,
            "audit_tiles",
            [
                {"log_id": log_id, "level": level, "idx": idx, "hashes": data}
                for (level, idx), data in sorted(tiles.items())
            ],
        )
        # Checkpoints as `publish` made them: one part way, one at the end.
        checkpoints = []
        for size in sorted({len(mine) // 2, len(mine)} - {0}):
            part = layout.append(0, {}, hashes[:size])
            root = layout.root(size, part)
            text = Checkpoint(f"{AUDIT_ORIGIN}/{log_id}", size, root).to_text()
            checkpoints.append(
                {
                    "log_id": log_id,
                    "size": size,
                    "root": root,
                    "note": notes.sign(text, [signer]),
                    "created_at": b.now,
                }
            )
        _insert(conn, "audit_checkpoints", checkpoints)
        _insert(conn, "audit_logs", [{"log_id": log_id, "size": len(mine), "updated_at": b.now}])


def audit_checkpoint_count(b: Book) -> int:
    sizes = [sum(1 for x in b.leaves if x.log_id == log) for log in {x.log_id for x in b.leaves}]
    return sum(len({n // 2, n} - {0}) for n in sizes)


# -- one populate function per revision ----------------------------------------------------
#
# Each writes the story with that revision's tables, and returns the Book the tests check the
# upgraded database against. A new migration makes its predecessor need one here
# (test_migrations.py fails until it has one).

SCHEMA_0001 = Schema()
SCHEMA_0002 = Schema(tenancy=True)
SCHEMA_0003 = Schema(tenancy=True, events=True)
SCHEMA_0004 = Schema(tenancy=True, events=True, effective_at=True)
SCHEMA_0005 = Schema(tenancy=True, events=True, effective_at=True, audit=True)
# 0006 changed only PostgreSQL's money column types: its tables take the 0005 story as is (an
# 0006 server writes version-2 leaves; version-1 ones, as an 0005 server upgraded left them,
# are what a real 0006 database holds too).
SCHEMA_0006 = SCHEMA_0005


def _populate(schema: Schema) -> Callable[[sa.Connection], Book]:
    def populate(conn: sa.Connection) -> Book:
        book = story(schema)
        write(conn, book)
        return book

    return populate


populate_0001 = _populate(SCHEMA_0001)
populate_0002 = _populate(SCHEMA_0002)
populate_0003 = _populate(SCHEMA_0003)
populate_0004 = _populate(SCHEMA_0004)
# 0005: the audit rows are written here, by hand, rather than by running today's AuditLog at
# this revision: today's code writes today's schema (after 0006, amounts that 0005 cannot
# hold), so it would prove nothing about a database that an 0005 server wrote. Upgrading to
# head first and auditing there would not test that the audit rows survive the upgrade.
populate_0005 = _populate(SCHEMA_0005)
populate_0006 = _populate(SCHEMA_0006)
# 0007 wrote data only (audit baselines, for accounts older than the audit log: this story has
# none), so its tables take the 0005 story as is.
SCHEMA_0007 = SCHEMA_0006
populate_0007 = _populate(SCHEMA_0007)
# 0008 added an index only.
SCHEMA_0008 = SCHEMA_0007
populate_0008 = _populate(SCHEMA_0008)
# 0009 replaced idempotency_keys with idempotency_records.
SCHEMA_0009 = dataclasses.replace(SCHEMA_0008, idempotency_records=True)
populate_0009 = _populate(SCHEMA_0009)
# 0010 added job_leases (empty until a job runs).
SCHEMA_0010 = SCHEMA_0009
populate_0010 = _populate(SCHEMA_0010)
# 0011 added subject_keys (data keys of customers, counterparties and cards: none here).
SCHEMA_0011 = SCHEMA_0010
populate_0011 = _populate(SCHEMA_0011)
# 0013 added customers and counterparties (none here), accounts.customer_id and
# events.tenant_id (both nullable: the story's rows leave them NULL, as an 0011 server did).
SCHEMA_0013 = SCHEMA_0011
populate_0013 = _populate(SCHEMA_0013)
# 0014 added cards (none here).
SCHEMA_0014 = SCHEMA_0013
populate_0014 = _populate(SCHEMA_0014)
# 0015 added users, their passkeys, sessions and challenges (none here) and
# api_keys.transfer_ceiling (nullable: the story's keys leave it NULL, as an 0014 server did).
SCHEMA_0015 = SCHEMA_0014
populate_0015 = _populate(SCHEMA_0015)
# 0016 added actors, created_by on ledgers, assets, accounts and webhook endpoints,
# transfers.actor_ref, api_keys.role and tenants.suspended_at (all nullable: the story's rows
# leave them NULL, as an 0015 server did).
SCHEMA_0016 = SCHEMA_0015
populate_0016 = _populate(SCHEMA_0016)
# 0017 added idempotency_records.subject_id (nullable: the story's records leave it NULL, as an
# 0016 server did).
SCHEMA_0017 = SCHEMA_0016
populate_0017 = _populate(SCHEMA_0017)
# 0018 added the risk tables (risk/), empty on an upgrade.
SCHEMA_0018 = SCHEMA_0017
populate_0018 = _populate(SCHEMA_0018)
# 0019 added the case queue (cases/), empty on an upgrade.
SCHEMA_0019 = SCHEMA_0018
populate_0019 = _populate(SCHEMA_0019)
# 0020 added the fraud model registry (risk_models and their revisions), empty on an upgrade.
SCHEMA_0020 = SCHEMA_0019
populate_0020 = _populate(SCHEMA_0020)
# 0021 added sanctions screening (list versions and entries, subjects' screenings, dismissals,
# the blocking index), empty on an upgrade.
SCHEMA_0021 = SCHEMA_0020
populate_0021 = _populate(SCHEMA_0021)
# 0022 added KYC (kyc_customers, kyc_usage; empty on an upgrade) and accounts.frozen (not
# null, default 0: every account of the story is open as before).
SCHEMA_0022 = SCHEMA_0021
populate_0022 = _populate(SCHEMA_0022)
# 0023 added aml_alerts (compliance/aml: the alerts' dedupe), empty on an upgrade.
SCHEMA_0023 = SCHEMA_0022
populate_0023 = _populate(SCHEMA_0023)
# 0024 added compliance_reports (compliance/controls), empty on an upgrade.
SCHEMA_0024 = SCHEMA_0023
populate_0024 = _populate(SCHEMA_0024)
# 0025 added cases.assignee (nullable) and case_notes (none here): no case in the story.
SCHEMA_0025 = SCHEMA_0024
populate_0025 = _populate(SCHEMA_0025)
# 0026 added ob_clients (open banking's registered third parties), empty on an upgrade.
SCHEMA_0026 = SCHEMA_0025
populate_0026 = _populate(SCHEMA_0026)
# 0027 added aml_accounts (compliance/aml: accounts' AML profiles), empty on an upgrade.
SCHEMA_0027 = SCHEMA_0026
populate_0027 = _populate(SCHEMA_0027)
# 0028 added ob_consents (open banking's consents), empty on an upgrade.
SCHEMA_0028 = SCHEMA_0027
populate_0028 = _populate(SCHEMA_0028)
# 0029 added the authorization server's tables (ob_par_requests, ob_codes, ob_tokens,
# ob_dpop_jti), empty on an upgrade.
SCHEMA_0029 = SCHEMA_0028
populate_0029 = _populate(SCHEMA_0029)
# 0030 added sanctions_list_versions.rescreened_at (nullable; rows upgraded count as done).
SCHEMA_0030 = SCHEMA_0029
populate_0030 = _populate(SCHEMA_0030)
# 0031 added ob_payments and ob_signing_keys (open banking's payments), empty on an upgrade.
SCHEMA_0031 = SCHEMA_0030
populate_0031 = _populate(SCHEMA_0031)
# 0032 added kyc_limits_since (when the KYC limits were first on), empty on an upgrade: the
# story holds no kyc_usage bucket to date it from.
SCHEMA_0032 = SCHEMA_0031
populate_0032 = _populate(SCHEMA_0032)
# 0033 added payment_subjects (the subjects of payments created pending), empty on an upgrade.
SCHEMA_0033 = SCHEMA_0032
populate_0033 = _populate(SCHEMA_0033)

POPULATE: dict[str, Callable[[sa.Connection], Book]] = {
    "0001": populate_0001,
    "0002": populate_0002,
    "0003": populate_0003,
    "0004": populate_0004,
    "0005": populate_0005,
    "0006": populate_0006,
    "0007": populate_0007,
    "0008": populate_0008,
    "0009": populate_0009,
    "0010": populate_0010,
    "0011": populate_0011,
    "0013": populate_0013,
    "0014": populate_0014,
    "0015": populate_0015,
    "0016": populate_0016,
    "0017": populate_0017,
    "0018": populate_0018,
    "0019": populate_0019,
    "0020": populate_0020,
    "0021": populate_0021,
    "0022": populate_0022,
    "0023": populate_0023,
    "0024": populate_0024,
    "0025": populate_0025,
    "0026": populate_0026,
    "0027": populate_0027,
    "0028": populate_0028,
    "0029": populate_0029,
    "0030": populate_0030,
    "0031": populate_0031,
    "0032": populate_0032,
    "0033": populate_0033,
}
