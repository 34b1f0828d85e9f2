"""The ledger's use cases: each one a unit of work over the store and the pure engine."""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeVar

from sqlalchemy.engine import Engine as SAEngine

from strongroom.core import clock, ids
from strongroom.core.errors import Conflict, InvalidRequest, NotFound
from strongroom.core.limits import (
    BATCH_TRANSFERS_MAX,
    COMMIT_RETRIES_MAX,
    ENTRY_INDEX_STRIDE,
    PAGE_SIZE_DEFAULT,
)
from strongroom.core.money import Asset, from_stored_int, iso_asset, validate_custom_asset
from strongroom.core.pagination import check_limit
from strongroom.db.query import chunks
from strongroom.db.uow import UnitOfWork
from strongroom.ledger import store
from strongroom.ledger.engine import BatchState, Engine, EntryRow
from strongroom.ledger.model import (
    AccountFlag,
    Action,
    Balances,
    Direction,
    Leg,
    NewTransfer,
    Status,
    TransferOutcome,
    TransferRecord,
    TransferRow,
    canonical_metadata,
    derived_balances,
    record_from_row,
    record_to_row,
    simple_transfer_ok,
    validate_id,
    validate_name,
    validate_transfer,
)
from strongroom.ledger.verify import Progress, VerifyReport
from strongroom.ledger.verify import verify as verify_ledger

T = TypeVar("T")
BatchObserver = Callable[[int, float, "list[TransferOutcome]"], None]

# The event of each transfer row a transaction writes, by its action (Action's order).
_EVENT_BY_ACTION: Final = (
    "transfer.created",
    "transfer.posted",
    "transfer.voided",
    "transfer.reversed",
)
EXPIRED_EVENT: Final = "transfer.expired"
TRANSFER_EVENT_TYPES: Final = (*_EVENT_BY_ACTION, EXPIRED_EVENT)
assert len(_EVENT_BY_ACTION) == len(Action)


class EventSink(Protocol):
    """Told of a write transaction's ledger events inside that transaction, right before its
    commit: one (type, transfer row as stored) per transfer it created, posted, voided,
    reversed or expired. It writes through `uow`, so what it writes commits or rolls back
    with the ledger's rows (a transactional outbox); it is called again if the transaction
    is retried. Rows, not dicts: building 8,190 dicts per batch would cost more than the
    rest of the batch (events/outbox.py renders them)."""

    def __call__(self, uow: UnitOfWork, events: Sequence[tuple[str, TransferRow]]) -> None: ...


class AuditSink(Protocol):
    """Like EventSink, for the audit log: told of the same events inside the same transaction,
    with the account entries the transaction wrote (their versions and balances after); and,
    through `record_all`, of the ledger's other changes (ledgers and accounts created, accounts
    closed), also inside their transactions."""

    def __call__(
        self,
        uow: UnitOfWork,
        events: Sequence[tuple[str, TransferRow]],
        entries: Sequence[EntryRow],
        *,
        wide: bool = True,
    ) -> None:
        """`wide=False` promises that no money value of these rows is past 64 bits."""

    def record_all(
        self,
        uow: UnitOfWork,
        log_id: str,
        actor: str,
        items: Sequence[tuple[str, str | None, dict[str, Any]]],
    ) -> None:
        """(type, ref, data) leaves of one tenant's log; `data` holds no personal data."""


_METADATA_FILTER_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


DEFAULT_TENANT_ID = "ten_default"  # created by migration 0002; owns ledgers made without one


@dataclass(frozen=True, slots=True)
class Ledger:
    id: str
    name: str
    metadata: dict[str, Any] | None
    created_at: int
    tenant_id: str = DEFAULT_TENANT_ID

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "ledger",
            "name": self.name,
            "metadata": self.metadata or {},
            "created_at": clock.format_us(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    ledger_id: str
    name: str | None
    asset: str
    normal_balance: Direction
    flags: AccountFlag
    closed: bool
    metadata: dict[str, Any] | None
    balances: Balances
    version: int
    created_at: int
    updated_at: int

    def balance_view(self) -> dict[str, int]:
        return derived_balances(self.normal_balance, self.balances)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "account",
            "ledger_id": self.ledger_id,
            "name": self.name,
            "asset": self.asset,
            "normal_balance": self.normal_balance.label,
            "flags": self.flags.names(),
            "closed": self.closed,
            "metadata": self.metadata or {},
            "balances": self.balance_view(),
            "version": self.version,
            "created_at": clock.format_us(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    account_id: str
    version: int
    transfer_id: str
    direction: Direction
    amount: int
    pending_delta: int
    balances_after: Balances
    created_at: int

    def to_dict(self, normal: Direction) -> dict[str, Any]:
        return {
            "object": "entry",
            "account_id": self.account_id,
            "version": self.version,
            "transfer_id": self.transfer_id,
            "direction": self.direction.label,
            "amount": self.amount,
            "pending_amount": self.pending_delta,
            "balance_after": derived_balances(normal, self.balances_after),
            "created_at": clock.format_us(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    data: list[T]
    has_more: bool


@dataclass(frozen=True, slots=True)
class AccountSpec:
    ledger_id: str
    asset: str
    normal_balance: Direction
    flags: AccountFlag = AccountFlag.NONE
    name: str | None = None
    metadata: dict[str, Any] | None = None
    id: str | None = None


def transfer_to_dict(r: TransferRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.id,
        "object": "transfer",
        "ledger_id": r.ledger_id,
        "action": r.action.name.lower(),
        "status": r.status.label,
        "amount": r.amount,
        "pending": r.pending,
        "metadata": json.loads(r.metadata) if r.metadata else {},
        "created_at": clock.format_us(r.created_at),
        "effective_at": clock.format_us(
            r.effective_at if r.effective_at is not None else r.created_at
        ),
    }
    if r.legs is None:
        out["debit_account_id"] = r.debit_account_id
        out["credit_account_id"] = r.credit_account_id
    else:
        out["entries"] = [
            {"account_id": leg.account_id, "direction": leg.direction.label, "amount": leg.amount}
            for leg in r.legs
        ]
    if r.target_id is not None:
        out["target_id"] = r.target_id
    if r.expires_at is not None:
        out["expires_at"] = clock.format_us(r.expires_at)
    return out


class AssetExists(Conflict):
    code = "asset_exists"


def _ledger_from_row(row: Sequence[Any]) -> Ledger:
    return Ledger(row[0], row[1], json.loads(row[2]) if row[2] else None, row[3], row[4])


def _account_from_row(row: Sequence[Any]) -> Account:
    return Account(
        id=row[0],
        ledger_id=row[1],
        name=row[2],
        asset=row[3],
        normal_balance=Direction(row[4]),
        flags=AccountFlag(row[5]),
        closed=bool(row[6]),
        metadata=json.loads(row[7]) if row[7] else None,
        balances=_balances(row[8:12]),
        version=row[12],
        created_at=row[14],
        updated_at=row[15],
    )


def _entry_from_row(row: Sequence[Any]) -> Entry:
    return Entry(
        id=row[0],
        account_id=row[1],
        version=row[2],
        transfer_id=row[4],
        direction=Direction(row[5]),
        amount=from_stored_int(row[6]),
        pending_delta=from_stored_int(row[7]),
        balances_after=_balances(row[8:12]),
        created_at=row[12],
    )


def _balances(stored: Sequence[Any]) -> Balances:
    """The four counters of a stored row (any of them may be in core.money's stored form)."""
    dp, cp, dpend, cpend = (from_stored_int(v) for v in stored)
    return Balances(dp, cp, dpend, cpend)


def _page(
    rows: list[tuple[Any, ...]], limit: int, *, backwards: bool, convert: Callable[[Any], T]
) -> Page[T]:
    """rows holds up to limit+1 rows, nearest the cursor first; a backwards page is turned
    around so that every page reads in the same order."""
    data = [convert(r) for r in rows[:limit]]
    if backwards:
        data.reverse()
    return Page(data, len(rows) > limit)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """A batch allocates tens of thousands of short-lived tuples and no reference cycles; the
    cyclic collector would otherwise run many times per batch and walk them and every long-lived
    object (a third of the engine's time in measurements). Reference counting still frees
    everything; the collector resumes after the bounded batch, as timeit does."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class LedgerService:
    def __init__(
        self,
        engine: SAEngine,
        *,
        clock_: clock.MonotonicClock | None = None,
        on_batch: BatchObserver | None = None,
        event_sink: EventSink | None = None,
        audit_sink: AuditSink | None = None,
    ) -> None:
        """`on_batch(size, seconds, outcomes)` is told of every committed batch (metrics);
        `event_sink` of the events of every write transaction, inside it (see EventSink)."""
        self.engine = engine
        self._on_batch = on_batch
        self._event_sink = event_sink
        self._audit_sink = audit_sink
        self.clock = clock_ or clock.MonotonicClock()
        self.sqlite = engine.dialect.name == "sqlite"
        # SQLite has one writer at a time anyway; holding this lock across a write
        # transaction lets this process keep its account states between batches.
        self._write_lock = threading.Lock()
        self._cache = store.AccountCache() if self.sqlite else None

    @contextlib.contextmanager
    def _ledger_write(self) -> Iterator[tuple[UnitOfWork, store.AccountCache | None]]:
        """A write transaction that may change accounts. On SQLite it is serialized within
        the process and keeps the account cache coherent; any failure empties the cache."""
        with contextlib.ExitStack() as stack:
            if self.sqlite:
                stack.enter_context(self._write_lock)
            try:
                with self._uow() as uow:
                    yield uow, self._cache
            except BaseException:
                if self._cache is not None:
                    self._cache.invalidate()
                raise

    def _uow(self, write: bool = True) -> UnitOfWork:
        return UnitOfWork(self.engine, write=write)

    def _with_retries(self, work: Callable[[], T]) -> T:
        """Re-run a whole unit of work after a serialization failure, a deadlock or a busy
        database, at most COMMIT_RETRIES_MAX times with jittered backoff; callers never see
        a deadlock unless the bound is exhausted."""
        for attempt in range(COMMIT_RETRIES_MAX + 1):
            try:
                return work()
            except Exception as exc:
                if attempt == COMMIT_RETRIES_MAX or not store.is_retryable(exc):
                    raise
                time.sleep(random.uniform(0, 0.002 * 2**attempt))
        raise AssertionError("unreachable")

    # -- ledgers and assets ----------------------------------------------------------------

    def create_ledger(
        self,
        name: str,
        metadata: dict[str, Any] | None = None,
        *,
        tenant_id: str = DEFAULT_TENANT_ID,
    ) -> Ledger:
        validate_name(name)
        meta = canonical_metadata(metadata)
        ledger = Ledger(
            ids.new_id("ldg"),
            name,
            json.loads(meta) if meta else None,
            self.clock.now_us(),
            tenant_id,
        )
        with self._uow() as uow:
            store.insert_ledger(uow, (ledger.id, name, meta, ledger.created_at, tenant_id))
            if self._audit_sink is not None:
                item = ("ledger.created", ledger.id, {"ledger_id": ledger.id})
                self._audit_sink.record_all(uow, tenant_id, "ledger", [item])
            uow.commit()
        return ledger

    def get_ledger(self, ledger_id: str, *, tenant_id: str | None = None) -> Ledger:
        """With tenant_id, another tenant's ledger is not found, as one that does not exist."""
        with self._uow(write=False) as uow:
            row = store.get_ledger(uow, ledger_id)
        if row is None or (tenant_id is not None and row[4] != tenant_id):
            raise NotFound(f"no ledger {ledger_id}", param="ledger_id")
        return _ledger_from_row(row)

    def list_ledgers(
        self,
        *,
        tenant_id: str | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
    ) -> Page[Ledger]:
        """By id; `ending_before` gives the page before a cursor (in the same order)."""
        check_limit(limit)
        with self._uow(write=False) as uow:
            rows = store.list_ledgers(uow, tenant_id, starting_after, limit + 1, ending_before)
        return _page(rows, limit, backwards=ending_before is not None, convert=_ledger_from_row)

    def ledger_tenants(
        self, ledger_ids: Sequence[str], *, uow: UnitOfWork | None = None
    ) -> dict[str, str]:
        """ledger id -> tenant id, for the ledgers that exist; through `uow` when given (a
        sink inside a write transaction need not take a second connection)."""
        if uow is not None:
            return store.ledger_tenants(uow, sorted(set(ledger_ids)))
        with self._uow(write=False) as own:
            return store.ledger_tenants(own, sorted(set(ledger_ids)))

    def create_asset(self, code: object, scale: object) -> Asset:
        asset = validate_custom_asset(code, scale)
        with self._uow() as uow:
            # One statement decides, so two concurrent creations cannot both pass a check.
            created = store.insert_asset(uow, asset.code, asset.scale, self.clock.now_us())
            uow.commit()
        if not created:
            raise AssetExists(f"asset {asset.code} exists already", param="code")
        return asset

    def get_asset(self, code: str) -> Asset:
        found = iso_asset(code)
        if found is not None:
            return found
        with self._uow(write=False) as uow:
            scale = store.get_asset_scale(uow, code)
        if scale is None:
            raise InvalidRequest(f"unknown asset {code!r}", param="asset", code="unknown_asset")
        return Asset(code, scale)

    # -- accounts --------------------------------------------------------------------------

    def create_accounts(self, specs: Sequence[AccountSpec]) -> list[Account]:
        """All or nothing: any invalid spec raises and nothing is written."""
        if not 1 <= len(specs) <= BATCH_TRANSFERS_MAX:
            raise InvalidRequest(
                f"a batch has 1 to {BATCH_TRANSFERS_MAX} accounts",
                param="accounts",
                code="batch_too_large",
            )
        now = self.clock.now_us()
        rows = []
        assets: dict[str, Asset] = {}
        new_ids = ids.new_ids("acc", len(specs))
        for i, (spec, new) in enumerate(zip(specs, new_ids, strict=True)):
            if spec.asset not in assets:
                assets[spec.asset] = self.get_asset(spec.asset)
            if spec.name is not None:
                validate_name(spec.name, f"accounts[{i}].name")
            meta = canonical_metadata(spec.metadata, f"accounts[{i}].metadata")
            if (
                AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS in spec.flags
                and AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS in spec.flags
            ):
                raise InvalidRequest(
                    "an account cannot refuse both overdraft directions",
                    param=f"accounts[{i}].flags",
                    code="flags_are_mutually_exclusive",
                )
            account_id = validate_id(spec.id, f"accounts[{i}].id") if spec.id is not None else new
            rows.append(
                (
                    account_id,
                    spec.ledger_id,
                    spec.name,
                    spec.asset,
                    int(spec.normal_balance),
                    int(spec.flags),
                    False,
                    meta,
                    0,
                    0,
                    0,
                    0,
                    0,
                    None,
                    now,
                    now,
                )
            )
        with self._uow() as uow:
            tenants: dict[str, str] = {}
            for ledger_id in {s.ledger_id for s in specs}:
                found = store.get_ledger(uow, ledger_id)
                if found is None:
                    raise NotFound(f"no ledger {ledger_id}", param="ledger_id")
                tenants[ledger_id] = found[4]
            taken = store.existing_account_ids(uow, [r[0] for r in rows])
            if taken or len({r[0] for r in rows}) != len(rows):
                raise Conflict("an account with that id exists already", param="id")
            store.insert_accounts(uow, rows)
            if self._audit_sink is not None:
                self._audit_accounts(uow, tenants, rows)
            uow.commit()
        return [_account_from_row(r) for r in rows]

    def _audit_accounts(
        self, uow: UnitOfWork, tenants: dict[str, str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """One leaf per account created: what it is, not its name or metadata (which may be
        personal data, and the log cannot forget)."""
        assert self._audit_sink is not None
        by_log: dict[str, list[tuple[str, str | None, dict[str, Any]]]] = {}
        for r in rows:
            data = {
                "account_id": r[0],
                "ledger_id": r[1],
                "asset": r[3],
                "normal_balance": Direction(r[4]).label,
                "flags": AccountFlag(r[5]).names(),
            }
            by_log.setdefault(tenants[r[1]], []).append(("account.created", r[0], data))
        for log_id in sorted(by_log):
            self._audit_sink.record_all(uow, log_id, "ledger", by_log[log_id])

    def create_account(
        self,
        ledger_id: str,
        asset: str,
        normal_balance: Direction,
        *,
        flags: AccountFlag = AccountFlag.NONE,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Account:
        spec = AccountSpec(ledger_id, asset, normal_balance, flags, name, metadata)
        return self.create_accounts([spec])[0]

    def get_account(self, account_id: str) -> Account:
        with self._uow(write=False) as uow:
            row = store.get_account_row(uow, account_id)
        if row is None:
            raise NotFound(f"no account {account_id}", param="account_id")
        return _account_from_row(row)

    def list_accounts(
        self,
        ledger_id: str | None = None,
        starting_after: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
        ending_before: str | None = None,
    ) -> Page[Account]:
        """By id; `ending_before` gives the page before a cursor (in the same order)."""
        check_limit(limit)
        with self._uow(write=False) as uow:
            rows = store.list_account_rows(uow, ledger_id, starting_after, limit + 1, ending_before)
        return _page(rows, limit, backwards=ending_before is not None, convert=_account_from_row)

    def close_account(self, account_id: str, *, closed: bool = True) -> Account:
        with self._ledger_write() as (uow, _cache):
            # Taking a block tells every process's account cache that an account changed.
            store.allocate_id_block(uow)
            row = store.get_account_row(uow, account_id, lock=True)
            if row is None:
                raise NotFound(f"no account {account_id}", param="account_id")
            if closed and (row[10] or row[11]):
                raise Conflict(
                    "the account has pending transfers: post or void them first", param="account_id"
                )
            store.set_account_closed(uow, account_id, closed, self.clock.now_us())
            if self._audit_sink is not None:
                ledger_row = store.get_ledger(uow, row[1])
                assert ledger_row is not None
                kind = "account.closed" if closed else "account.reopened"
                item = (kind, account_id, {"account_id": account_id})
                self._audit_sink.record_all(uow, ledger_row[4], "ledger", [item])
            uow.commit()
        return self.get_account(account_id)

    # -- transfers -------------------------------------------------------------------------

    def post_transfers(
        self, batch: Sequence[NewTransfer], *, atomic: bool = False, validated: bool = False
    ) -> list[TransferOutcome]:
        """Apply a batch in one transaction. Every transfer gets its own result; a linked
        chain (or the whole batch with atomic=True) succeeds or fails together. Bad input
        raises InvalidRequest before anything is written."""
        if not 1 <= len(batch) <= BATCH_TRANSFERS_MAX:
            raise InvalidRequest(
                f"a batch has 1 to {BATCH_TRANSFERS_MAX} transfers",
                param="transfers",
                code="batch_too_large",
            )
        if not validated:
            for i, t in enumerate(batch):
                if not simple_transfer_ok(t):  # the bulk case, without building names
                    validate_transfer(t, f"transfers[{i}].")

        def work() -> list[TransferOutcome]:
            with self._ledger_write() as (uow, cache):
                state = store.load_batch_state(uow, batch, self.clock.now_us(), cache)
                engine = Engine(state)
                outcomes = engine.apply(batch, atomic=atomic)
                store.write_batch(uow, state, engine.writes)
                if engine.writes.transfers and (self._event_sink or self._audit_sink):
                    by_action = _EVENT_BY_ACTION
                    events = [(by_action[row[3]], row) for row in engine.writes.transfers]
                    if self._event_sink is not None:
                        self._event_sink(uow, events)
                    if self._audit_sink is not None:  # last: it locks the tenant's log
                        self._audit_sink(
                            uow, events, engine.writes.entries, wide=engine.writes.wide
                        )
                uow.commit()
                if cache is not None:
                    cache.committed(state.block, engine.writes.dirty)
            return outcomes

        # Paused until the batch's rows are freed, so the collector never walks them.
        started = time.perf_counter()
        with _collector_paused():
            outcomes = self._with_retries(work)
        if self._on_batch is not None:
            self._on_batch(len(batch), time.perf_counter() - started, outcomes)
        return outcomes

    def transfer(
        self,
        ledger_id: str,
        debit_account_id: str,
        credit_account_id: str,
        amount: int,
        *,
        id: str | None = None,
        pending: bool = False,
        timeout_s: int = 0,
        metadata: dict[str, Any] | None = None,
        effective_at: int | None = None,
    ) -> TransferOutcome:
        t = NewTransfer(
            id=id or ids.new_id("tr"),
            ledger_id=ledger_id,
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            amount=amount,
            pending=pending,
            timeout_s=timeout_s,
            metadata=canonical_metadata(metadata),
            effective_at=effective_at,
        )
        return self.post_transfers([t])[0]

    def expire_due(self, limit: int = BATCH_TRANSFERS_MAX) -> int:
        """Expire pending transfers whose timeout has passed; returns how many."""

        def work() -> int:
            with self._ledger_write() as (uow, cache):
                now = self.clock.now_us()
                due = store.load_due_pending(uow, now, limit)
                if not due:
                    return 0
                block = store.allocate_id_block(uow)
                if cache is not None:
                    cache.begin(block)
                accounts = store.load_accounts_for_update(
                    uow, (leg.account_id for rec in due for leg in rec.effective_legs()), cache
                )
                base = store.id_base(block)
                state = BatchState(
                    accounts, {r.id: r for r in due}, {}, set(), now, base + 1, base + 1, block
                )
                engine = Engine(state)
                count = engine.expire(due)
                store.write_batch(uow, state, engine.writes)
                if count and (self._event_sink or self._audit_sink):
                    expired = [r for r in due if r.status is Status.EXPIRED]
                    events = [(EXPIRED_EVENT, record_to_row(r)) for r in expired]
                    if self._event_sink is not None:
                        self._event_sink(uow, events)
                    if self._audit_sink is not None:
                        self._audit_sink(
                            uow, events, engine.writes.entries, wide=engine.writes.wide
                        )
                uow.commit()
                if cache is not None:
                    cache.committed(block, engine.writes.dirty)
                return count

        return self._with_retries(work)

    def get_transfer(self, transfer_id: str) -> TransferRecord:
        with self._uow(write=False) as uow:
            row = store.get_transfer_row(uow, transfer_id)
        if row is None:
            raise NotFound(f"no transfer {transfer_id}", param="transfer_id")
        return record_from_row(row)

    def list_transfers(
        self,
        *,
        ledger_id: str | None = None,
        account_id: str | None = None,
        status: Status | None = None,
        created_after: int | None = None,
        created_before: int | None = None,
        metadata: tuple[str, str] | None = None,
        starting_after: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
        ending_before: str | None = None,
    ) -> Page[TransferRecord]:
        """Newest first, with a cursor (`starting_after` = the last id of the previous page)."""
        check_limit(limit)
        if metadata is not None:
            key, value = metadata
            if not isinstance(value, str) or not _METADATA_FILTER_KEY.match(key):
                raise InvalidRequest(
                    "filter metadata[key]=value with a key of letters, digits, '_', '-' or '.'",
                    param="metadata",
                    code="invalid_metadata_filter",
                )
        if starting_after is not None and ending_before is not None:
            raise InvalidRequest(
                "give starting_after or ending_before, not both", param="ending_before"
            )
        with self._uow(write=False) as uow:
            before_seq = self._cursor_seq(uow, starting_after, "starting_after")
            after_seq = self._cursor_seq(uow, ending_before, "ending_before")
            query = functools.partial(
                store.list_transfer_rows,
                uow,
                ledger_id=ledger_id,
                status=status,
                created_after=created_after,
                created_before=created_before,
                metadata=metadata,
                before_seq=before_seq,
                after_seq=after_seq,
            )
            if account_id is None:
                rows = query(seqs=None, limit=limit + 1)
            else:
                # The account's transfers, from its entries, in slices of bounded size.
                seqs = self._account_transfer_seqs(uow, account_id, before_seq, after_seq)
                rows = []
                for part in chunks(seqs):
                    rows.extend(query(seqs=part, limit=limit + 1 - len(rows)))
                    if len(rows) > limit:
                        break
        return _page(rows, limit, backwards=after_seq is not None, convert=record_from_row)

    def _cursor_seq(self, uow: UnitOfWork, transfer_id: str | None, param: str) -> int | None:
        if transfer_id is None:
            return None
        seqs = store.transfer_seqs(uow, [transfer_id])
        if transfer_id not in seqs:
            raise InvalidRequest(f"no transfer {transfer_id}", param=param, code="invalid_cursor")
        return seqs[transfer_id]

    def _account_transfer_seqs(
        self, uow: UnitOfWork, account_id: str, before_seq: int | None, after_seq: int | None
    ) -> list[int]:
        """Newest first, or oldest first when paging backwards (after_seq)."""
        row = store.get_account_row(uow, account_id)
        if row is None:
            raise NotFound(f"no account {account_id}", param="account_id")
        # The account's entries name every transfer that touched it.
        entries = store.walk_entries(uow, row[13], 1 << 62)
        seqs = store.transfer_seqs(uow, sorted({e[4] for e in entries}))
        return sorted(
            (
                s
                for s in seqs.values()
                if (before_seq is None or s < before_seq) and (after_seq is None or s > after_seq)
            ),
            reverse=after_seq is None,
        )

    # -- entries and history ---------------------------------------------------------------

    def list_entries(
        self, account_id: str, *, starting_after: int | None = None, limit: int = PAGE_SIZE_DEFAULT
    ) -> Page[Entry]:
        """An account's entries, newest first; the cursor is the last entry's version."""
        check_limit(limit)
        with self._uow(write=False) as uow:
            row = store.get_account_row(uow, account_id)
            if row is None:
                raise NotFound(f"no account {account_id}", param="account_id")
            start = row[13]
            if starting_after is not None:
                found = self._entry_at_version(uow, account_id, row[12], row[13], starting_after)
                start = None if found is None else found[3]
            rows = store.walk_entries(uow, start, limit + 1)
        return Page([_entry_from_row(r) for r in rows[:limit]], len(rows) > limit)

    def _entry_at_version(
        self, uow: UnitOfWork, account_id: str, last_version: int, last_id: int | None, version: int
    ) -> tuple[Any, ...] | None:
        if version <= 0 or version > last_version:
            return None
        anchor = store.index_at_or_after_version(uow, account_id, version)
        start_version, start_id = anchor if anchor is not None else (last_version, last_id)
        assert start_version - version < ENTRY_INDEX_STRIDE
        rows = store.walk_entries(uow, start_id, start_version - version + 1)
        assert rows[-1][2] == version
        return rows[-1]

    def balance_at(
        self, account_id: str, *, version: int | None = None, as_of_us: int | None = None
    ) -> tuple[int, Balances, Direction]:
        """(version, balances) of the account after `version`, or as of a time."""
        if (version is None) == (as_of_us is None):
            raise InvalidRequest(
                "give exactly one of version and as_of", param="as_of", code="invalid_request"
            )
        with self._uow(write=False) as uow:
            row = store.get_account_row(uow, account_id)
            if row is None:
                raise NotFound(f"no account {account_id}", param="account_id")
            normal = Direction(row[4])
            last_version, last_id = row[12], row[13]
            if version is not None:
                if version < 0 or version > last_version:
                    raise InvalidRequest(
                        f"version must be from 0 to {last_version}",
                        param="version",
                        code="invalid_version",
                    )
                if version == 0:
                    return 0, Balances(), normal
                entry = self._entry_at_version(uow, account_id, last_version, last_id, version)
                assert entry is not None
                return version, _balances(entry[8:12]), normal
            assert as_of_us is not None
            anchor = store.index_first_after_time(uow, account_id, as_of_us)
            start_id = anchor[1] if anchor is not None else last_id
            for entry in store.walk_entries(uow, start_id, ENTRY_INDEX_STRIDE + 1):
                if entry[12] <= as_of_us:
                    return entry[2], _balances(entry[8:12]), normal
            return 0, Balances(), normal

    # -- invariants ------------------------------------------------------------------------

    def verify(self, progress: Progress | None = None) -> VerifyReport:
        """Check every invariant of the ledger on the database, in one read transaction
        (ledger/verify.py); `progress` is told of the report every VERIFY_PROGRESS_ROWS rows."""
        with self._uow(write=False) as uow:
            return verify_ledger(uow, progress)


def legs_from_spec(entries: Sequence[tuple[str, str | Direction, int]]) -> tuple[Leg, ...]:
    return tuple(Leg(a, Direction.parse(d, "entries"), n) for a, d, n in entries)


__all__ = [
    "Account",
    "AccountSpec",
    "Action",
    "Entry",
    "Ledger",
    "LedgerService",
    "NewTransfer",
    "Page",
    "VerifyReport",
    "legs_from_spec",
    "transfer_to_dict",
]
