"""The state and the units of work every part of the ledger's service shares."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import Engine as SAEngine

from strongroom.core import clock
from strongroom.core.limits import (
    COMMIT_RETRIES_MAX,
    LIST_SCAN_ROWS_MAX,
)
from strongroom.db.uow import UnitOfWork
from strongroom.ledger import store
from strongroom.ledger.model import (
    TransferOutcome,
)
from strongroom.ledger.pipeline import (
    Gate,
    GateRunner,
    Limit,
    Sink,
)

T = TypeVar("T")


BatchObserver = Callable[[int, float, "list[TransferOutcome]"], None]

# (uow, tenant_id, customer ids) -> those that are customers of that tenant: how the ledger checks
# the owner an account names, in the account's write transaction, without knowing the customers
# domain (runtime.py wires customers.service.existing_customers).
CustomerCheck = Callable[[UnitOfWork, str, Sequence[str]], "set[str]"]

# (uow, tenant_id, customer ids): raises a StrongroomError (the answer; nothing is written) when
# one of them may not hold a live account (a confirmed sanctions match: compliance/sanctions/
# owners.py), in the write transaction that creates an account they own or unfreezes one,
# before it locks or writes any account row (runtime.py wires it; none wired: no refusal).
OwnerGuard = Callable[[UnitOfWork, str, Sequence[str]], None]


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


class LedgerBase:
    """The state every part of LedgerService shares: the engine, the pipeline's ports, the
    clock and SQLite's account cache; and its units of work, with retries."""

    def __init__(
        self,
        engine: SAEngine,
        *,
        clock_: clock.MonotonicClock | None = None,
        on_batch: BatchObserver | None = None,
        sinks: Sequence[Sink] = (),
        recorder: Recorder | None = None,
        gates: Sequence[Gate] = (),
        customers: CustomerCheck | None = None,
        limits: Sequence[Limit] = (),
        owners: OwnerGuard | None = None,
    ) -> None:
        """The transfer pipeline's ports (ledger/pipeline.py): `gates` decide on each batch
        before its write transaction; `sinks`, in their order (the audit log last: it locks
        the tenant's log), are handed each write transaction's CommittedBatch inside it;
        `recorder` is told of the ledger's other changes. `on_batch(size, seconds, outcomes)`
        is told of every committed batch (metrics). `customers` checks the customer an account
        names (none wired: no account may name one). `limits` are checked inside each write
        transaction of a batch that debits a customer's account or carries a payment
        (ledger/limits.py), after its accounts are locked. `owners` may refuse an account
        created for a customer, or unfrozen (OwnerGuard)."""
        self._customers = customers
        self._owner_guard = owners
        # (ledger, customer) pairs a payment named and the check found (check_payment_customers)
        self._known_payers: dict[tuple[str, str], bool] = {}
        # account id -> (ledger, owner) of debit accounts payments named (check_payment_customers)
        self._account_owners: dict[str, tuple[str, str | None]] = {}
        self.engine = engine
        self._on_batch = on_batch
        self._sinks = tuple(sinks)
        self._audit_sink = recorder
        self._gates = GateRunner(gates) if gates else None
        self._limits = tuple(limits)
        self.clock = clock_ or clock.MonotonicClock()
        self.sqlite = engine.dialect.name == "sqlite"
        # SQLite has one writer at a time anyway; holding this lock across a write
        # transaction lets this process keep its account states between batches.
        self._write_lock = threading.Lock()
        self._cache = store.AccountCache() if self.sqlite else None
        # Rows a filtered listing examines per request (ledger/listing.py); tests lower it.
        self.scan_rows_max = LIST_SCAN_ROWS_MAX
        # actor -> its id in `actors` (append-only, so a committed id never changes).
        self._actor_ids: dict[str, int] = {}

    @property
    def limits(self) -> tuple[Limit, ...]:
        """The installed limits (their codes are the transfer routes' too)."""
        return self._limits

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

    def actor_ref(self, actor: str) -> int:
        """The id of `actor` in `actors` (transfers.actor_ref), interned in a transaction of
        its own the first time this process meets it: a rolled-back batch never leaves a
        cached id behind that another actor could be given."""
        found = self._actor_ids.get(actor)
        if found is None:

            def intern() -> int:
                with self._uow() as uow:
                    ref = store.intern_actor(uow, actor, self.clock.now_us())
                    uow.commit()
                return ref

            found = self._actor_ids[actor] = self._with_retries(intern)
        return found

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
