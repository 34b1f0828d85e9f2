"""The ledger's use cases: each one a unit of work over the store and the pure engine."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeVar

from sqlalchemy.engine import Engine as SAEngine

from strongroom.core import clock, ids
from strongroom.core.errors import Conflict, InvalidRequest, NotFound
from strongroom.core.limits import (
    BATCH_TRANSFERS_MAX,
    COMMIT_RETRIES_MAX,
    ENTRY_INDEX_STRIDE,
    LIST_SCAN_ROWS_MAX,
    PAGE_SIZE_DEFAULT,
    STATEMENT_PAGE_ENTRIES_MAX,
)
from strongroom.core.money import Asset, from_stored_int, iso_asset, validate_custom_asset
from strongroom.core.pagination import check_limit
from strongroom.db.uow import UnitOfWork
from strongroom.ledger import listing, store
from strongroom.ledger.engine import BatchState, Engine
from strongroom.ledger.listing import Page
from strongroom.ledger.model import (
    AccountFlag,
    AccountResult,
    Action,
    Balances,
    Direction,
    Leg,
    NewTransfer,
    Status,
    TransferOutcome,
    TransferRecord,
    TransferResult,
    canonical_metadata,
    derived_balances,
    record_from_row,
    record_to_row,
    simple_transfer_ok,
    validate_id,
    validate_name,
    validate_transfer,
)
from strongroom.ledger.pipeline import (
    TR_ACTION,
    CommittedBatch,
    Gate,
    GateOutcome,
    GateRunner,
    Sink,
)

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
EXPIRY_ACTOR: Final = "system:expiry"  # the actor of expiries (CommittedBatch.actor)
TRANSFER_EVENT_TYPES: Final = (*_EVENT_BY_ACTION, EXPIRED_EVENT)
assert len(_EVENT_BY_ACTION) == len(Action)


class Recorder(Protocol):
    """Told, inside their transactions, of the ledger's changes other than transfers (ledgers
    and accounts created, accounts closed and reopened): the audit log."""

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
class AccountSpec:
    ledger_id: str
    asset: str
    normal_balance: Direction
    flags: AccountFlag = AccountFlag.NONE
    name: str | None = None
    metadata: dict[str, Any] | None = None
    id: str | None = None


@dataclass(slots=True)
class AccountOutcome:
    index: int
    result: AccountResult
    account_id: str
    account: Account | None  # the account as stored, when result.ok and nothing differed


class AccountExists(Conflict):
    """An account with the id exists with other fields: `code` names the first that differs."""

    status = 422

    def __init__(self, result: AccountResult, index: int | None = None) -> None:
        field_name = result.value.removeprefix("exists_with_different_")
        super().__init__(
            f"an account with this id exists with a different {field_name.replace('_', ' ')}",
            param=field_name if index is None else f"accounts[{index}].{field_name}",
        )
        self.code = result.value


# Stored account columns (store.ACCOUNT_COLS) compared by _compare_account, in result order.
_ACCOUNT_FIELDS: Final = (
    (1, AccountResult.EXISTS_WITH_DIFFERENT_LEDGER_ID),
    (3, AccountResult.EXISTS_WITH_DIFFERENT_ASSET),
    (4, AccountResult.EXISTS_WITH_DIFFERENT_NORMAL_BALANCE),
    (5, AccountResult.EXISTS_WITH_DIFFERENT_FLAGS),
    (2, AccountResult.EXISTS_WITH_DIFFERENT_NAME),
    (7, AccountResult.EXISTS_WITH_DIFFERENT_METADATA),
)


def _compare_account(new: Sequence[Any], stored: Sequence[Any]) -> AccountResult:
    for column, result in _ACCOUNT_FIELDS:
        if new[column] != stored[column]:
            return result
    return AccountResult.EXISTS


@dataclass(slots=True)
class VerifyReport:
    accounts: int = 0
    entries: int = 0
    transfers_pending: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


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
        sinks: Sequence[Sink] = (),
        recorder: Recorder | None = None,
        gates: Sequence[Gate] = (),
    ) -> None:
        """The transfer pipeline's ports (ledger/pipeline.py): `gates` decide on each batch
        before its write transaction; `sinks`, in their order (the audit log last: it locks
        the tenant's log), are handed each write transaction's CommittedBatch inside it;
        `recorder` is told of the ledger's other changes. `on_batch(size, seconds, outcomes)`
        is told of every committed batch (metrics)."""
        self.engine = engine
        self._on_batch = on_batch
        self._sinks = tuple(sinks)
        self._audit_sink = recorder
        self._gates = GateRunner(gates) if gates else None
        self.clock = clock_ or clock.MonotonicClock()
        self.sqlite = engine.dialect.name == "sqlite"
        # SQLite has one writer at a time anyway; holding this lock across a write
        # transaction lets this process keep its account states between batches.
        self._write_lock = threading.Lock()
        self._cache = store.AccountCache() if self.sqlite else None
        # Rows a filtered listing examines per request (ledger/listing.py); tests lower it.
        self.scan_rows_max = LIST_SCAN_ROWS_MAX

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
        """All or nothing: any invalid spec raises and nothing is written. A spec whose
        client-chosen id exists with the same fields is `exists` (the stored account comes
        back, nothing is written for it); with a field that differs, AccountExists names it
        (`exists_with_different_<field>`) and nothing is written."""
        outcomes = self.create_accounts_results(specs)
        for i, outcome in enumerate(outcomes):
            if not outcome.result.ok:
                raise AccountExists(outcome.result, i)
        return [o.account for o in outcomes if o.account is not None]

    def create_accounts_results(self, specs: Sequence[AccountSpec]) -> list[AccountOutcome]:
        """Like create_accounts, a result per spec (TransferOutcome's shape): created, exists
        or exists_with_different_<field>. Bad input still raises; when any spec differs from
        the account its id names, nothing is written."""
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
            stored = {r[0]: r for r in store.get_account_rows(uow, sorted({r[0] for r in rows}))}
            outcomes: list[AccountOutcome] = []
            new_rows = []
            for i, row in enumerate(rows):
                existing = stored.get(row[0])
                if existing is None:
                    stored[row[0]] = row  # a later spec of this batch with its id compares
                    new_rows.append(row)
                    outcomes.append(AccountOutcome(i, AccountResult.CREATED, row[0], None))
                    continue
                result = _compare_account(row, existing)
                outcomes.append(AccountOutcome(i, result, row[0], None))
            if all(o.result.ok for o in outcomes):
                if new_rows:
                    store.insert_accounts(uow, new_rows)
                    if self._audit_sink is not None:
                        self._audit_accounts(uow, tenants, new_rows)
                    uow.commit()
                for o in outcomes:
                    o.account = _account_from_row(stored[o.account_id])
        return outcomes

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
        self,
        batch: Sequence[NewTransfer],
        *,
        atomic: bool = False,
        validated: bool = False,
        actor: str | None = None,
    ) -> list[TransferOutcome]:
        """Apply a batch in one transaction, through the pipeline: validate, gates, post,
        sinks. Every transfer gets its own result; a linked chain (or the whole batch with
        atomic=True) succeeds or fails together. Bad input raises InvalidRequest before
        anything is written. `actor` (`api_key:<id>`, `cli`, ...) is handed to the gates and
        the sinks."""
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

        gated = self._gates.run(batch, actor) if self._gates is not None else None
        if gated:
            batch = _hold_for_review(batch, gated)
        blocked = {batch[i].id: d for i, d in gated.blocked.items()} if gated else None

        def work() -> list[TransferOutcome]:
            with self._ledger_write() as (uow, cache):
                state = store.load_batch_state(uow, batch, self.clock.now_us(), cache)
                engine = Engine(state, blocked)
                outcomes = engine.apply(batch, atomic=atomic)
                store.write_batch(uow, state, engine.writes)
                rows = engine.writes.transfers
                if rows and self._sinks:
                    by_action = _EVENT_BY_ACTION
                    committed = CommittedBatch(
                        kinds=[by_action[row[TR_ACTION]] for row in rows],
                        transfers=rows,
                        entries=engine.writes.entries,
                        at_us=state.now_us,
                        wide=engine.writes.wide,
                        actor=actor,
                        decisions=gated.decisions if gated else {},
                    )
                    for sink in self._sinks:
                        sink(uow, committed)
                uow.commit()
                if cache is not None:
                    cache.committed(state.block, engine.writes.dirty)
            if gated and gated.held:
                for index, decision in gated.held.items():
                    if outcomes[index].result is TransferResult.CREATED:
                        outcomes[index].decision = decision
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
                if count and self._sinks:
                    expired = [record_to_row(r) for r in due if r.status is Status.EXPIRED]
                    committed = CommittedBatch(
                        kinds=[EXPIRED_EVENT] * len(expired),
                        transfers=expired,
                        entries=engine.writes.entries,
                        at_us=now,
                        wide=engine.writes.wide,
                        actor=EXPIRY_ACTOR,
                    )
                    for sink in self._sinks:
                        sink(uow, committed)
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
        cursor: str | None = None,
    ) -> Page[TransferRecord]:
        """Newest first (an account's: in the order they touched it), with a cursor:
        `starting_after` = the last id of the previous page, or its `next_cursor`. A filtered
        page examines a bounded number of rows (ledger/listing.py), so it may hold fewer than
        `limit` items while `has_more` is true."""
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
        listing.check_one_cursor(starting_after, ending_before, cursor)
        keep = store.TransferFilter(ledger_id, status, created_after, created_before, metadata)
        with self._uow(write=False) as uow:
            if account_id is None:
                return listing.transfers_by_seq(
                    uow,
                    keep,
                    starting_after=starting_after,
                    ending_before=ending_before,
                    cursor=cursor,
                    limit=limit,
                    scan_rows_max=self.scan_rows_max,
                )
            return listing.account_transfers(
                uow,
                account_id,
                keep,
                starting_after=starting_after,
                ending_before=ending_before,
                cursor=cursor,
                limit=limit,
                scan_rows_max=self.scan_rows_max,
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

    def entry_transfers(self, account_id: str, first: int, last: int) -> dict[int, str]:
        """version -> transfer id of the account's entries `first` to `last` (a bounded range:
        audit statements take it a page at a time), from the nearest indexed entry."""
        assert first >= 1, first
        assert last - first < STATEMENT_PAGE_ENTRIES_MAX, (first, last)
        with self._uow(write=False) as uow:
            row = store.get_account_row(uow, account_id)
            if row is None:
                raise NotFound(f"no account {account_id}", param="account_id")
            chain = listing.AccountChain(account_id, int(row[12]), row[13])
            rows, _ = listing.entries_down(uow, chain, last, last - first + 1)
        found = {int(r[2]): str(r[4]) for r in rows}
        assert set(found) == set(range(first, min(last, chain.version) + 1)), (first, last)
        return found

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

    def verify(self) -> VerifyReport:
        """Check every invariant of the ledger on the database, in one read transaction."""
        report = VerifyReport()
        with self._uow(write=False) as uow:
            for ledger_id, asset, posted, pending in store.sums_by_asset(uow):
                if posted or pending:
                    report.problems.append(
                        f"ledger {ledger_id} asset {asset}: debits - credits = {posted} posted, "
                        f"{pending} pending (must be 0)"
                    )
            sums = store.entry_sums_by_account(uow)
            last = store.last_entries(uow)
            open_pending: dict[tuple[str, int], int] = {}
            for debit_id, credit_id, amount, legs_json in store.open_pending_sums(uow):
                report.transfers_pending += 1
                if legs_json is None:
                    legs = [(debit_id, 0, amount), (credit_id, 1, amount)]
                else:
                    legs = [tuple(x) for x in json.loads(legs_json)]
                for acc_id, direction, leg_amount in legs:
                    key = (str(acc_id), int(direction))
                    open_pending[key] = open_pending.get(key, 0) + int(leg_amount)
            for acc in store.all_account_state(uow):
                report.accounts += 1
                dp, cp, dpend, cpend, count, max_version = sums.get(acc.id, (0, 0, 0, 0, 0, 0))
                report.entries += count
                if (acc.dp, acc.cp, acc.dpend, acc.cpend) != (dp, cp, dpend, cpend):
                    report.problems.append(
                        f"account {acc.id}: balances differ from the sum of its entries"
                    )
                if count != acc.version or max_version != acc.version:
                    report.problems.append(
                        f"account {acc.id}: version {acc.version} but {count} entries "
                        f"up to version {max_version}"
                    )
                entry = last.get(acc.id)
                if acc.version and (
                    entry is None
                    or (entry[8], entry[9], entry[10], entry[11])
                    != (acc.dp, acc.cp, acc.dpend, acc.cpend)
                ):
                    report.problems.append(
                        f"account {acc.id}: last entry's running balance differs"
                    )
                if (
                    acc.flags & AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
                    and acc.dp + acc.dpend > acc.cp
                ):
                    report.problems.append(f"account {acc.id}: debits exceed credits")
                if (
                    acc.flags & AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS
                    and acc.cp + acc.cpend > acc.dp
                ):
                    report.problems.append(f"account {acc.id}: credits exceed debits")
                if (acc.dpend, acc.cpend) != (
                    open_pending.get((acc.id, 0), 0),
                    open_pending.get((acc.id, 1), 0),
                ):
                    report.problems.append(
                        f"account {acc.id}: pending totals differ from the open pending transfers"
                    )
            # Every transfer has one entry per leg (twice that once a reservation expired, the
            # release being entries of the pending transfer itself), and every entry a transfer.
            counts = store.entry_counts_by_transfer(uow)
            for transfer_id, status, legs_json in store.transfer_shapes(uow):
                leg_count = 2 if legs_json is None else len(json.loads(legs_json))
                expected = leg_count * (2 if status == Status.EXPIRED else 1)
                found = counts.pop(transfer_id, 0)
                if found != expected:
                    report.problems.append(
                        f"transfer {transfer_id}: {found} entries, expected {expected}"
                    )
            for transfer_id in sorted(counts):
                report.problems.append(f"entries of transfer {transfer_id}, which is not stored")
            for account_id, version, prev_version, entry_id in store.entry_chain_links(uow):
                expected_prev = version - 1 if version > 1 else None
                if prev_version != expected_prev:
                    report.problems.append(
                        f"account {account_id}: entry {entry_id} (version {version}) follows "
                        f"version {prev_version}, not {expected_prev}"
                    )
        return report


def _hold_for_review(batch: Sequence[NewTransfer], gated: GateOutcome) -> list[NewTransfer]:
    """A transfer a gate sends to review is posted as pending, without a timeout: a later
    decision posts or voids it. Only a transfer can be held; a post, void or reversal sent to
    review is blocked with the review's code."""
    out = list(batch)
    for index, decision in list(gated.held.items()):
        t = out[index]
        if t.action is Action.TRANSFER:
            out[index] = dataclasses.replace(t, pending=True, timeout_s=0)
        else:
            del gated.held[index]
            gated.blocked[index] = decision
    return out


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
