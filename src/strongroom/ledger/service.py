"""The ledger's use cases: each one a unit of work over the store and the pure engine.

Split by concern: this module holds ledgers, assets, the transfer pipeline and the verifier;
accounts.py the accounts, history.py the reads of what happened, views.py what callers get,
base.py the shared state and units of work."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import sqlite3
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, Final

from strongroom.core import ids
from strongroom.core.errors import InvalidRequest, NotFound, StrongroomError
from strongroom.core.limits import (
    BATCH_TRANSFERS_MAX,
    PAGE_SIZE_DEFAULT,
)
from strongroom.core.pagination import check_limit
from strongroom.db.query import undecodable_problem
from strongroom.db.uow import UnitOfWork
from strongroom.ledger import store
from strongroom.ledger.accounts import (
    AccountExists,
    AccountOutcome,
    AccountSpec,
    AccountUseCases,
)
from strongroom.ledger.base import BatchObserver, CustomerCheck, LedgerBase, Recorder
from strongroom.ledger.engine import BatchState, Engine
from strongroom.ledger.errors import PaymentCustomerMismatch
from strongroom.ledger.history import HistoryUseCases
from strongroom.ledger.limits import run_limits
from strongroom.ledger.listing import Page
from strongroom.ledger.model import (
    Action,
    Direction,
    GateDecision,
    Leg,
    NewTransfer,
    Payment,
    Status,
    TransferOutcome,
    TransferResult,
    Verdict,
    canonical_metadata,
    record_to_row,
    simple_transfer_ok,
    validate_name,
    validate_transfer,
)
from strongroom.ledger.pipeline import (
    HELD_FOR_REVIEW,
    REVIEW_IN_CHAIN,
    TR_ACTION,
    CommittedBatch,
    GateOutcome,
)
from strongroom.ledger.verify import Progress, VerifyReport
from strongroom.ledger.verify import verify as verify_ledger
from strongroom.ledger.views import (
    DEFAULT_TENANT_ID,
    Account,
    Entry,
    Ledger,
    ledger_from_row,
    page_of,
    transfer_to_dict,
)

_EVENT_BY_ACTION: Final = (
    "transfer.created",
    "transfer.posted",
    "transfer.voided",
    "transfer.reversed",
)


EXPIRED_EVENT: Final = "transfer.expired"
KNOWN_PAYERS_MAX: Final = 65_536  # (ledger, customer) pairs of payments kept as found
ACCOUNT_OWNERS_MAX: Final = 65_536  # debit accounts of payments kept with their owners


EXPIRY_ACTOR: Final = "system:expiry"  # the actor of expiries (CommittedBatch.actor)


TRANSFER_EVENT_TYPES: Final = (*_EVENT_BY_ACTION, EXPIRED_EVENT)


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


class LedgerService(AccountUseCases, HistoryUseCases, LedgerBase):
    """The ledger's use cases, each one a unit of work over the store and the pure engine:
    ledgers and assets, the transfer pipeline (post_transfers, expiries) and the verifier here;
    accounts in ledger/accounts.py; history in ledger/history.py."""

    def create_ledger(
        self,
        name: str,
        metadata: dict[str, Any] | None = None,
        *,
        tenant_id: str = DEFAULT_TENANT_ID,
        id: str | None = None,
        actor: str = "ledger",
    ) -> Ledger:
        """With `id` (an idempotent request's, core.idempotency), a ledger of this tenant that
        already has it is the answer: the request ran before. `actor`: who asks (on the row,
        `created_by`, and in its audit leaf)."""
        validate_name(name)
        meta = canonical_metadata(metadata)
        if id is not None:
            with contextlib.suppress(NotFound):
                return self.get_ledger(id, tenant_id=tenant_id)
        ledger = Ledger(
            id or ids.new_id("ldg"),
            name,
            json.loads(meta) if meta else None,
            self.clock.now_us(),
            tenant_id,
        )
        with self._uow() as uow:
            row = (ledger.id, name, meta, ledger.created_at, tenant_id)
            store.insert_ledger(uow, row, actor)
            if self._audit_sink is not None:
                item = ("ledger.created", ledger.id, {"ledger_id": ledger.id})
                self._audit_sink.record_all(uow, tenant_id, actor, [item])
            uow.commit()
        return ledger

    def get_ledger(self, ledger_id: str, *, tenant_id: str | None = None) -> Ledger:
        """With tenant_id, another tenant's ledger is not found, as one that does not exist."""
        with self._uow(write=False) as uow:
            row = store.get_ledger(uow, ledger_id)
        if row is None or (tenant_id is not None and row[4] != tenant_id):
            raise NotFound(f"no ledger {ledger_id}", param="ledger_id")
        return ledger_from_row(row)

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
        return page_of(rows, limit, backwards=ending_before is not None, convert=ledger_from_row)

    def ledger_tenants(
        self, ledger_ids: Sequence[str], *, uow: UnitOfWork | None = None
    ) -> dict[str, str]:
        """ledger id -> tenant id, for the ledgers that exist; through `uow` when given (a
        sink inside a write transaction need not take a second connection)."""
        if uow is not None:
            return store.ledger_tenants(uow, sorted(set(ledger_ids)))
        with self._uow(write=False) as own:
            return store.ledger_tenants(own, sorted(set(ledger_ids)))

    def post_transfers(
        self,
        batch: Sequence[NewTransfer],
        *,
        atomic: bool = False,
        validated: bool = False,
        actor: str | None = None,
        actors: Sequence[str | None] | None = None,
    ) -> list[TransferOutcome]:
        """Apply a batch in one transaction, through the pipeline: validate, gates, post,
        sinks. Every transfer gets its own result; a linked chain (or the whole batch with
        atomic=True) succeeds or fails together. Bad input raises InvalidRequest before
        anything is written. `actor` (`api_key:<id>`, `cli`, ...) is handed to the gates and
        the sinks and recorded on each transfer row it creates (transfers.actor_ref); a
        transfer's payment names a customer of its ledger's tenant (checked here, before the
        gates, unless `validated`: the caller checked them, check_payment_customers);
        `actors`, one per transfer, instead, for a batch gathered from several (the group-
        commit coalescer's): each gate is asked once per actor, each row and leaf records its
        own, and the batch is still one transaction."""
        if not 1 <= len(batch) <= BATCH_TRANSFERS_MAX:
            raise InvalidRequest(
                f"a batch has 1 to {BATCH_TRANSFERS_MAX} transfers",
                param="transfers",
                code="batch_too_large",
            )
        # The payments, by transfer id: None (nothing built) when no transfer carries one.
        payments: dict[str, Payment] | None = None
        if not validated:
            for i, t in enumerate(batch):
                if not simple_transfer_ok(t):  # the bulk case, without building names
                    validate_transfer(t, f"transfers[{i}].")
                    # A payment fails the bulk check: only this slow path can meet one.
                    if t.payment is not None:
                        payments = payments or {}
                        payments[t.id] = t.payment
            if payments is not None:
                self.check_payment_customers(batch, "transfers[{}].")
        else:
            payments = {t.id: t.payment for t in batch if t.payment is not None} or None

        by_id: dict[str, str | None] | None = None
        refs: store.ActorRefs = None
        if actors is not None:  # mixed actors still share this one transaction
            assert len(actors) == len(batch)
            if len(set(actors)) == 1:
                actor, actors = actors[0], None
            else:
                by_id = {t.id: a for t, a in zip(batch, actors, strict=True)}
                known = {a: self.actor_ref(a) for a in set(actors) if a is not None}
                refs = {tid: None if a is None else known[a] for tid, a in by_id.items()}
        if by_id is None and actor is not None:
            refs = self.actor_ref(actor)

        gated = self._gates.run(batch, actor, actors) if self._gates is not None else None
        if gated:
            batch = _hold_for_review(batch, gated, atomic)
        blocked = {batch[i].id: d for i, d in gated.blocked.items()} if gated else None
        # A gate whose blocks must not race another batch's commit (the review hold) is asked
        # again inside the transaction, once the batch's targets are read (locked on PostgreSQL).
        rechecked = self._gates is not None and self._gates.rechecks(batch)

        def work() -> list[TransferOutcome]:
            with self._ledger_write() as (uow, cache):
                state = store.load_batch_state(uow, batch, self.clock.now_us, cache)
                refused = blocked
                if rechecked:
                    assert self._gates is not None
                    refused = self._gates.recheck(uow, batch, blocked)
                limited = (
                    run_limits(uow, self._limits, batch, state, refused) if self._limits else None
                )
                engine = Engine(state, refused if limited is None else limited.blocked)
                outcomes = engine.apply(batch, atomic=atomic)
                if limited is not None:
                    limited.record(uow, outcomes)
                store.write_batch(uow, state, engine.writes, refs)
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
                        actors=by_id,
                        decisions=gated.decisions if gated else {},
                        allowed=gated.allowed if gated is not None else {},
                        payments=payments,
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

    def check_payment_customers(self, batch: Sequence[NewTransfer], prefix: str = "") -> None:
        """Every payment of `batch` names a customer of its ledger's tenant; raises NotFound
        naming the first that does not (another tenant's answers as one that does not exist),
        before anything is written. Then a payment's customer must own every account of the
        transfer's ledger that it debits and that a customer owns: a customer's account pays
        as that customer, so a payment naming another is refused (PaymentCustomerMismatch,
        422), or the KYC caps and the risk gate would count it as someone else's. A transfer
        whose ledger or debit account does not exist is left to the engine. `prefix` names a
        transfer inside a batch (`transfers[{}].`, formatted with its index)."""
        missing, mismatched = self._payment_refusals(batch, prefix)
        if missing:
            raise missing[min(missing)]
        if mismatched:
            raise mismatched[min(mismatched)]

    def payment_refusals(
        self, batch: Sequence[NewTransfer], prefix: str = ""
    ) -> dict[int, StrongroomError]:
        """What `check_payment_customers` would refuse, for each payment of `batch` on its own
        (by index; none when all pass): the group committer's check of the requests it gathered,
        so one that names no customer is refused alone. What earlier checks kept settles most;
        the rest is read in one short read transaction for the whole batch."""
        missing, mismatched = self._payment_refusals(batch, prefix)
        return {**mismatched, **missing}

    def _payment_refusals(
        self, batch: Sequence[NewTransfer], prefix: str
    ) -> tuple[dict[int, StrongroomError], dict[int, StrongroomError]]:
        """(payments naming no customer of their ledger's tenant, payments debiting another
        customer's account), each by index; a payment in the first is not in the second.

        A (ledger, customer) pair found once is never looked up again: a ledger's tenant never
        changes, and a customer's row is never deleted (erasure shreds its key, not the row).
        An account's ledger and owner never change either: kept once read, as the payers are."""
        known = self._known_payers
        cached = self._account_owners
        wanted = [
            (i, t)
            for i, t in enumerate(batch)
            if t.payment is not None and (t.ledger_id, t.payment.customer_id) not in known
        ]
        debits = {a for t in batch if t.payment is not None for a in _debit_ids(t)}
        if not wanted and not debits:
            return {}, {}
        # Matched against a copy taken here: another thread may clear the cache meanwhile.
        owners: dict[str, tuple[str, str | None]] = {}
        for account_id in debits:
            found = cached.get(account_id)
            if found is not None:
                owners[account_id] = found
        unseen = sorted(debits - owners.keys())
        missing: dict[int, StrongroomError] = {}
        if wanted or unseen:
            with self._uow(write=False) as uow:
                if wanted:
                    missing = self._missing_payers(uow, wanted, prefix)
                if unseen:
                    read = store.account_owners(uow, unseen)
                    owners.update(read)
                    if len(cached) + len(read) > ACCOUNT_OWNERS_MAX:
                        cached.clear()
                    cached.update(read)
        return missing, self._owners_match(batch, owners, prefix, missing.keys())

    def _missing_payers(
        self, uow: UnitOfWork, wanted: Sequence[tuple[int, NewTransfer]], prefix: str
    ) -> dict[int, StrongroomError]:
        """The payments of `wanted` whose customer is no customer of their ledger's tenant
        (NotFound), by index; remembers the pairs found."""
        known = self._known_payers
        tenants = store.ledger_tenants(uow, sorted({t.ledger_id for _, t in wanted}))
        by_tenant: dict[str, set[str]] = {}
        for _, t in wanted:
            assert t.payment is not None
            tenant = tenants.get(t.ledger_id)
            if tenant is not None:
                by_tenant.setdefault(tenant, set()).add(t.payment.customer_id)
        found: dict[str, set[str]] = {
            tenant: (
                self._customers(uow, tenant, sorted(customer_ids))
                if self._customers is not None
                else set()
            )
            for tenant, customer_ids in sorted(by_tenant.items())
        }
        missing: dict[int, StrongroomError] = {}
        for i, t in wanted:
            assert t.payment is not None
            tenant = tenants.get(t.ledger_id)
            if tenant is None:
                continue  # no such ledger: the engine refuses it
            if t.payment.customer_id not in found[tenant]:
                missing[i] = NotFound(
                    f"no customer {t.payment.customer_id}",
                    param=f"{prefix.format(i)}payment.customer_id",
                )
        if len(known) + len(wanted) > KNOWN_PAYERS_MAX:
            known.clear()
        for i, t in wanted:
            if tenants.get(t.ledger_id) is not None and i not in missing:
                assert t.payment is not None
                known[(t.ledger_id, t.payment.customer_id)] = True
        return missing

    @staticmethod
    def _owners_match(
        batch: Sequence[NewTransfer],
        owners: Mapping[str, tuple[str, str | None]],
        prefix: str,
        skip: Collection[int],
    ) -> dict[int, StrongroomError]:
        """The payments of `batch` (but those of `skip`) that debit an account of their ledger
        owned by another customer, by index."""
        out: dict[int, StrongroomError] = {}
        for i, t in enumerate(batch):
            if t.payment is None or i in skip:
                continue
            for account_id in _debit_ids(t):
                ledger_id, owner = owners.get(account_id, (None, None))
                # Another ledger's account is refused by the engine, and says nothing here.
                if ledger_id == t.ledger_id and owner not in (None, t.payment.customer_id):
                    out[i] = PaymentCustomerMismatch(
                        f"account {account_id} is another customer's: a payment from it names "
                        "its owner, or none",
                        param=f"{prefix.format(i)}payment.customer_id",
                    )
                    break
        return out

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

    def verify(self, progress: Progress | None = None) -> VerifyReport:
        """Check every invariant of the ledger on the database, in one read transaction
        (ledger/verify.py); `progress` is told of the report every VERIFY_PROGRESS_ROWS rows."""
        with self._uow(write=False) as uow:
            try:
                return verify_ledger(uow, progress)
            except sqlite3.OperationalError as exc:
                problem = undecodable_problem(exc)
                if problem is None:
                    raise
                return VerifyReport(problems=[problem])


def _hold_for_review(
    batch: Sequence[NewTransfer], gated: GateOutcome, atomic: bool
) -> list[NewTransfer]:
    """A transfer a gate sends to review is posted as pending, without a timeout: a later
    decision posts or voids it. Only a transfer can be held; a post, void or reversal sent to
    review is blocked with the review's code. Nor can a member of a linked chain (or of an
    atomic batch of more than one) be held: the rest of its chain would post while it waits,
    and a decline would void it alone. It is refused (`review_in_chain`), so the whole chain
    fails and nothing of it posts; sent alone, it is held."""
    out = list(batch)
    chained = atomic and len(batch) > 1
    held: dict[str, GateDecision] = {}
    for index, decision in list(gated.held.items()):
        t = out[index]
        in_chain = chained or t.linked or (index > 0 and batch[index - 1].linked)
        if t.action is Action.TRANSFER and not in_chain:
            out[index] = dataclasses.replace(t, pending=True, timeout_s=0)
            held[t.id] = decision
        else:
            del gated.held[index]
            gated.blocked[index] = (
                dataclasses.replace(decision, verdict=Verdict.BLOCK, code=REVIEW_IN_CHAIN)
                if t.action is Action.TRANSFER
                else decision
            )
    if held:
        # A post of a transfer held in this same batch: its case does not exist yet for the
        # review hold to find, and only the case posts it.
        for index, t in enumerate(out):
            if t.action is Action.POST and t.target_id in held and index not in gated.blocked:
                decision = held[t.target_id]
                gated.held.pop(index, None)
                gated.blocked[index] = GateDecision(decision.gate, Verdict.BLOCK, HELD_FOR_REVIEW)
    return out


def legs_from_spec(entries: Sequence[tuple[str, str | Direction, int]]) -> tuple[Leg, ...]:
    return tuple(Leg(a, Direction.parse(d, "entries"), n) for a, d, n in entries)


__all__ = [
    "DEFAULT_TENANT_ID",
    "EXPIRED_EVENT",
    "TRANSFER_EVENT_TYPES",
    "Account",
    "AccountExists",
    "AccountOutcome",
    "AccountSpec",
    "Action",
    "BatchObserver",
    "CustomerCheck",
    "Entry",
    "Ledger",
    "LedgerService",
    "NewTransfer",
    "Page",
    "Recorder",
    "VerifyReport",
    "canonical_metadata",
    "legs_from_spec",
    "transfer_to_dict",
]


def _debit_ids(t: NewTransfer) -> list[str]:
    """The accounts a payment debits (none for a post, void or reversal)."""
    if t.action is not Action.TRANSFER:
        return []
    if t.legs is None:
        return [t.debit_account_id] if t.debit_account_id is not None else []
    return [g.account_id for g in t.legs if g.direction is Direction.DEBIT]
