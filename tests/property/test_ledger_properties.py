"""Random operation sequences against the real service, checked against a reference model.

The reference model (`Model`) is a plain-Python ledger written from the rules, not from the
engine's code: it predicts every result code and every balance. After each step the database
must agree with it exactly, and the invariants are checked twice: by `ledger.verify()` and by
independent SQL over the rows, so a wrong `verify` cannot hide a wrong ledger.
"""

from __future__ import annotations

import copy
import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.engine import Engine as SAEngine

from strongroom.core.clock import MonotonicClock
from strongroom.core.errors import Conflict, InvalidRequest
from strongroom.core.limits import AMOUNT_MAX
from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.ledger.model import (
    AccountFlag,
    Action,
    Direction,
    Leg,
    NewTransfer,
    Status,
)
from strongroom.ledger.model import TransferResult as R
from strongroom.ledger.service import AccountSpec, LedgerService

D, C = Direction.DEBIT, Direction.CREDIT
NO_DEBIT_OVERDRAFT = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
NO_CREDIT_OVERDRAFT = AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS
MISSING_ACCOUNT = "acc_missing"
MISSING_TRANSFER = "tr_missing"
AMOUNT_STEP_MAX = 60  # small amounts: refusals come from limits, not from int64 overflow
FUNDING = 500  # what the customer accounts start with: a few dozen transfers' worth
CLOCK_BASE_US = 1_900_000_000_000_000
# Each run on a shared database starts its clock this much earlier than the run before, so
# expire_due in one run never reaches the pending transfers left by another.
RUN_CLOCK_SPACING_US = 10**12
_runs = itertools.count()


class ManualClock(MonotonicClock):
    def __init__(self, start_us: int) -> None:
        super().__init__()
        self.t = start_us

    def now_us(self) -> int:
        return self.t


# -- the reference model -------------------------------------------------------------------

# The accounts of every run: name -> (ledger, asset, normal side, flags).
ACCOUNTS: dict[str, tuple[str, str, Direction, AccountFlag]] = {
    "bank": ("main", "USD", D, AccountFlag.NONE),
    "alice": ("main", "USD", C, NO_DEBIT_OVERDRAFT),
    "bob": ("main", "USD", C, NO_DEBIT_OVERDRAFT),
    "vault": ("main", "USD", D, NO_CREDIT_OVERDRAFT),
    "carol": ("main", "USD", C, AccountFlag.NONE),
    "bank_eur": ("main", "EUR", D, AccountFlag.NONE),
    "alice_eur": ("main", "EUR", C, NO_DEBIT_OVERDRAFT),
    "stranger": ("other", "USD", C, AccountFlag.NONE),
}


@dataclass
class MAccount:
    id: str
    ledger_id: str
    asset: str
    flags: AccountFlag
    closed: bool = False
    dp: int = 0
    cp: int = 0
    dpend: int = 0
    cpend: int = 0
    version: int = 0

    def counters(self) -> tuple[int, int, int, int]:
        return (self.dp, self.cp, self.dpend, self.cpend)


@dataclass
class MTransfer:
    """A created transfer as the model remembers it."""

    request: NewTransfer  # what was submitted (linked flag cleared)
    action: Action
    status: Status
    amount: int
    legs: tuple[tuple[str, Direction, int], ...]  # the legs it moved or reserved, in full
    pending: bool
    expires_at: int | None
    debit_account_id: str | None
    credit_account_id: str | None
    stored_legs: tuple[Leg, ...] | None  # the legs as stored (compared for idempotency)


@dataclass
class ModelState:
    accounts: dict[str, MAccount]
    transfers: dict[str, MTransfer] = field(default_factory=dict)
    reversed: dict[str, int] = field(default_factory=dict)


class Model:
    def __init__(self, accounts: dict[str, MAccount], ledgers: set[str]) -> None:
        self.s = ModelState(accounts)
        self.ledgers = ledgers
        self.now_us = 0

    # -- batches

    def apply(self, batch: list[NewTransfer], atomic: bool) -> list[R]:
        out: list[R] = []
        i = 0
        while i < len(batch):
            if atomic and len(batch) > 1:
                end, open_chain = len(batch) - 1, False
            elif not atomic and batch[i].linked:
                end = i
                while end < len(batch) - 1 and batch[end].linked:
                    end += 1
                open_chain = batch[end].linked
            else:
                out.append(self.one(batch[i]))
                i += 1
                continue
            out.extend(self.chain(batch[i : end + 1], open_chain))
            i = end + 1
        return out

    def chain(self, members: list[NewTransfer], open_chain: bool) -> list[R]:
        saved = copy.deepcopy(self.s)
        got: list[R] = []
        for k, t in enumerate(members):
            r = R.LINKED_EVENT_CHAIN_OPEN if open_chain and k == len(members) - 1 else self.one(t)
            got.append(r)
            if not r.ok:
                self.s = saved
                failed = [
                    *(R.LINKED_EVENT_FAILED for _ in range(k)),
                    r,
                    *(R.LINKED_EVENT_FAILED for _ in range(len(members) - k - 1)),
                ]
                if open_chain:  # the last member of an open chain says so, whatever failed
                    failed[-1] = R.LINKED_EVENT_CHAIN_OPEN
                return failed
        return got

    # -- one request

    def one(self, t: NewTransfer) -> R:
        existing = self.s.transfers.get(t.id)
        if existing is not None:
            return self.compare(t, existing)
        if t.ledger_id not in self.ledgers:
            return R.LEDGER_NOT_FOUND
        if t.action is Action.TRANSFER:
            return self.transfer(t)
        if t.action is Action.REVERSE:
            return self.reverse(t)
        return self.resolve(t)

    def compare(self, t: NewTransfer, e: MTransfer) -> R:
        o = e.request
        checks: list[tuple[bool, R]] = [
            (t.ledger_id != o.ledger_id, R.EXISTS_WITH_DIFFERENT_LEDGER_ID),
            (t.action is not o.action, R.EXISTS_WITH_DIFFERENT_ACTION),
            (t.target_id != o.target_id, R.EXISTS_WITH_DIFFERENT_TARGET_ID),
        ]
        if t.action is Action.TRANSFER:
            checks += [
                (
                    t.debit_account_id != o.debit_account_id,
                    R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID,
                ),
                (
                    t.credit_account_id != o.credit_account_id,
                    R.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID,
                ),
                (t.legs is None and t.amount != e.amount, R.EXISTS_WITH_DIFFERENT_AMOUNT),
                (t.legs != e.stored_legs, R.EXISTS_WITH_DIFFERENT_LEGS),
                (t.pending != o.pending, R.EXISTS_WITH_DIFFERENT_PENDING),
                (t.timeout_s != o.timeout_s, R.EXISTS_WITH_DIFFERENT_TIMEOUT),
            ]
        else:
            # An amount of 0 on a post means the whole reservation, fixed; on a reversal, the
            # remainder, which moves as reversals happen: it matches what was done.
            asked = t.amount
            if not asked and t.action is Action.POST and t.target_id in self.s.transfers:
                asked = self.s.transfers[t.target_id].amount
            checks.append((asked != 0 and asked != e.amount, R.EXISTS_WITH_DIFFERENT_AMOUNT))
        checks.append((t.metadata != o.metadata, R.EXISTS_WITH_DIFFERENT_METADATA))
        return next((r for failed, r in checks if failed), R.EXISTS)

    def transfer(self, t: NewTransfer) -> R:
        accounts = self.s.accounts
        if t.legs is None:
            assert t.debit_account_id is not None
            assert t.credit_account_id is not None
            dr, cr = accounts.get(t.debit_account_id), accounts.get(t.credit_account_id)
            if dr is None or cr is None:
                return R.ACCOUNT_NOT_FOUND
            if dr is cr:
                return R.ACCOUNTS_MUST_BE_DIFFERENT
            if dr.ledger_id != t.ledger_id or cr.ledger_id != t.ledger_id:
                return R.LEDGER_MISMATCH
            if dr.asset != cr.asset:
                return R.ASSET_MISMATCH
            if dr.closed or cr.closed:
                return R.ACCOUNT_CLOSED
            legs: tuple[tuple[str, Direction, int], ...] = (
                (dr.id, D, t.amount),
                (cr.id, C, t.amount),
            )
        else:
            for leg in t.legs:
                acc = accounts.get(leg.account_id)
                if acc is None:
                    return R.ACCOUNT_NOT_FOUND
                if acc.ledger_id != t.ledger_id:
                    return R.LEDGER_MISMATCH
                if acc.closed:
                    return R.ACCOUNT_CLOSED
            net: dict[str, int] = {}
            for leg in t.legs:
                asset = accounts[leg.account_id].asset
                net[asset] = net.get(asset, 0) + (leg.amount if leg.direction is D else -leg.amount)
            if any(net.values()):
                return R.LEGS_UNBALANCED_PER_ASSET
            legs = tuple((leg.account_id, leg.direction, leg.amount) for leg in t.legs)
        moves = [(a, d, 0 if t.pending else n, n if t.pending else 0) for a, d, n in legs]
        r = self.move(moves)
        if r is not R.CREATED:
            return r
        self.s.transfers[t.id] = MTransfer(
            request=replace(t, linked=False),
            action=Action.TRANSFER,
            status=Status.PENDING if t.pending else Status.POSTED,
            amount=sum(n for _, d, n in legs if d is D),
            legs=legs,
            pending=t.pending,
            expires_at=self.now_us + t.timeout_s * 1_000_000 if t.timeout_s else None,
            debit_account_id=t.debit_account_id,
            credit_account_id=t.credit_account_id,
            stored_legs=t.legs,
        )
        return R.CREATED

    def resolve(self, t: NewTransfer) -> R:
        assert t.target_id is not None
        target = self.s.transfers.get(t.target_id)
        if target is None:
            return R.PENDING_TRANSFER_NOT_FOUND
        if target.request.ledger_id != t.ledger_id:
            return R.LEDGER_MISMATCH
        if not target.pending:
            return R.PENDING_TRANSFER_NOT_PENDING
        if target.status is Status.POSTED:
            return R.PENDING_TRANSFER_ALREADY_POSTED
        if target.status is Status.VOIDED:
            return R.PENDING_TRANSFER_ALREADY_VOIDED
        if target.status is Status.EXPIRED or (
            target.expires_at is not None and self.now_us >= target.expires_at
        ):
            return R.PENDING_TRANSFER_EXPIRED
        full = target.amount
        posted = (t.amount or full) if t.action is Action.POST else 0
        if posted > full:
            return R.EXCEEDS_PENDING_TRANSFER_AMOUNT
        if posted not in (0, full) and len(target.legs) != 2:
            return R.PARTIAL_AMOUNT_NEEDS_TWO_LEGS
        moves = [(a, d, n if posted == full else posted, -n) for a, d, n in target.legs]
        r = self.move(moves)
        if r is not R.CREATED:
            return r
        target.status = Status.POSTED if t.action is Action.POST else Status.VOIDED
        self.s.transfers[t.id] = MTransfer(
            request=replace(t, linked=False),
            action=t.action,
            status=target.status,
            amount=posted if t.action is Action.POST else full,
            legs=target.legs,
            pending=False,
            expires_at=None,
            debit_account_id=target.debit_account_id,
            credit_account_id=target.credit_account_id,
            stored_legs=target.stored_legs,
        )
        return R.CREATED

    def reverse(self, t: NewTransfer) -> R:
        assert t.target_id is not None
        target = self.s.transfers.get(t.target_id)
        if target is None:
            return R.REVERSAL_TARGET_NOT_FOUND
        if target.request.ledger_id != t.ledger_id:
            return R.LEDGER_MISMATCH
        if target.status is not Status.POSTED or target.pending:
            return R.REVERSAL_TARGET_NOT_POSTED
        remaining = target.amount - self.s.reversed.get(target.request.id, 0)
        amount = t.amount or remaining
        if amount == 0 or amount > remaining:
            return R.EXCEEDS_REVERSIBLE_AMOUNT
        if amount != target.amount and len(target.legs) != 2:
            return R.PARTIAL_AMOUNT_NEEDS_TWO_LEGS
        if any(self.s.accounts[a].closed for a, _, _ in target.legs):
            return R.ACCOUNT_CLOSED
        two = len(target.legs) == 2
        back = tuple((a, C if d is D else D, amount if two else n) for a, d, n in target.legs)
        r = self.move([(a, d, n, 0) for a, d, n in back])
        if r is not R.CREATED:
            return r
        self.s.reversed[target.request.id] = self.s.reversed.get(target.request.id, 0) + amount
        self.s.transfers[t.id] = MTransfer(
            request=replace(t, linked=False),
            action=Action.REVERSE,
            status=Status.POSTED,
            amount=amount,
            # The reversal is stored with the target's legs swapped, in full.
            legs=tuple((a, C if d is D else D, n) for a, d, n in target.legs),
            pending=False,
            expires_at=None,
            debit_account_id=target.credit_account_id,
            credit_account_id=target.debit_account_id,
            stored_legs=None,
        )
        return R.CREATED

    def move(self, moves: list[tuple[str, Direction, int, int]]) -> R:
        """(account, side, posted, pending delta): check every limit, then apply all."""
        after = []
        for account_id, side, posted, pending in moves:
            a = self.s.accounts[account_id]
            dp, cp, dpend, cpend = a.counters()
            if side is D:
                dp, dpend = dp + posted, dpend + pending
            else:
                cp, cpend = cp + posted, cpend + pending
            assert max(dp, cp, dpend + dp, cpend + cp) <= AMOUNT_MAX, "amounts stay small"
            if NO_DEBIT_OVERDRAFT in a.flags and dp + dpend > cp:
                return R.INSUFFICIENT_FUNDS
            if NO_CREDIT_OVERDRAFT in a.flags and cp + cpend > dp:
                return R.INSUFFICIENT_FUNDS
            after.append((a, dp, cp, dpend, cpend))
        for a, dp, cp, dpend, cpend in after:
            a.dp, a.cp, a.dpend, a.cpend = dp, cp, dpend, cpend
            a.version += 1
        return R.CREATED

    # -- other operations

    def expire_due(self) -> int:
        count = 0
        for rec in self.s.transfers.values():
            if (
                rec.status is Status.PENDING
                and rec.expires_at is not None
                and rec.expires_at <= self.now_us
            ):
                r = self.move([(a, d, 0, -n) for a, d, n in rec.legs])
                assert r is R.CREATED
                rec.status = Status.EXPIRED
                count += 1
        return count

    def open_pending_totals(self) -> dict[str, tuple[int, int]]:
        totals = dict.fromkeys(self.s.accounts, (0, 0))
        for rec in self.s.transfers.values():
            if rec.status is Status.PENDING:
                for a, d, n in rec.legs:
                    dpend, cpend = totals[a]
                    totals[a] = (dpend + n, cpend) if d is D else (dpend, cpend + n)
        return totals


# -- the machine ---------------------------------------------------------------------------


@dataclass
class Backend:
    """Where a run's ledger lives: `open` gives an engine and a function that releases it."""

    open: Callable[[], tuple[SAEngine, Callable[[], None]]]


def sqlite_per_run() -> tuple[SAEngine, Callable[[], None]]:
    directory = tempfile.mkdtemp(prefix="strongroom-prop-")
    engine = create_engine(f"sqlite:///{directory}/ledger.db", sqlite_cache_mib=2)
    migrate.upgrade(engine)

    def close() -> None:
        engine.dispose()
        shutil.rmtree(directory, ignore_errors=True)

    return engine, close


# Weighted by repetition.
KINDS = [
    *["transfer"] * 3,
    "legs",
    *["post"] * 2,
    "void",
    "reverse",
    "resubmit",
    "modified",
]


class LedgerMachine(RuleBasedStateMachine):
    backend: ClassVar[Backend]

    def __init__(self) -> None:
        super().__init__()
        self.engine, self._close = self.backend.open()
        run = next(_runs)
        self.tag = f"r{run}"
        self.clock = ManualClock(CLOCK_BASE_US - run * RUN_CLOCK_SPACING_US)
        self.svc = LedgerService(self.engine, clock_=self.clock)
        # A second service on the same database, as another process would have: whatever
        # either one keeps between transactions must stay right when the other one writes.
        self.services = (self.svc, LedgerService(self.engine, clock_=self.clock))
        main = self.svc.create_ledger("main")
        other = self.svc.create_ledger("other")
        ledger_ids = {"main": main.id, "other": other.id}
        specs = [
            AccountSpec(ledger_ids[lg], asset, normal, flags, name=name)
            for name, (lg, asset, normal, flags) in ACCOUNTS.items()
        ]
        created = self.svc.create_accounts(specs)
        self.ids = {name: a.id for name, a in zip(ACCOUNTS, created, strict=True)}
        self.ledger_id = main.id
        self.model = Model(
            {a.id: MAccount(a.id, a.ledger_id, a.asset, a.flags) for a in created},
            set(ledger_ids.values()),
        )
        self.model.now_us = self.clock.t
        self.counter = itertools.count()
        self.requests: list[NewTransfer] = []  # everything submitted, created or not

    def teardown(self) -> None:
        try:
            self.check_history()
        finally:
            self._close()

    # -- request generation

    def new_id(self) -> str:
        return f"{self.tag}-{next(self.counter)}"

    def accounts_pair(self, data: st.DataObject) -> tuple[str, str]:
        """Mostly two different usable USD accounts; now and then one the transfer cannot use
        (another asset or ledger, none, the same account twice)."""
        names = ["bank", "bank", "alice", "bob", "vault", "carol"]
        debit = data.draw(st.sampled_from(names))
        credit = data.draw(st.sampled_from([n for n in names if n != debit]))
        if data.draw(st.integers(0, 5)) == 0:
            odd = data.draw(
                st.sampled_from(["bank_eur", "alice_eur", "stranger", "missing", debit])
            )
            debit, credit = (odd, credit) if data.draw(st.booleans()) else (debit, odd)
        ids = {**self.ids, "missing": MISSING_ACCOUNT}
        return ids[debit], ids[credit]

    def target(self, data: st.DataObject, prefer: Callable[[Any], bool]) -> str:
        known = list(self.model.s.transfers.values())
        preferred = [r.request.id for r in known if prefer(r)]
        every = [t.id for t in self.requests] + [MISSING_TRANSFER]
        pool = preferred if preferred and data.draw(st.integers(0, 9)) > 0 else every
        return data.draw(st.sampled_from(pool))

    def metadata(self, data: st.DataObject) -> str | None:
        return data.draw(st.sampled_from([None, None, '{"k":"v"}', '{"n":1}']))

    def gen(self, data: st.DataObject, kind: str) -> NewTransfer:
        meta = self.metadata(data)
        if kind == "transfer":
            pending = data.draw(st.booleans())
            debit, credit = self.accounts_pair(data)
            return NewTransfer(
                id=self.new_id(),
                ledger_id=self.ledger_id,
                debit_account_id=debit,
                credit_account_id=credit,
                amount=data.draw(st.integers(1, AMOUNT_STEP_MAX)),
                pending=pending,
                timeout_s=data.draw(st.sampled_from([0, 0, 1, 3])) if pending else 0,
                metadata=meta,
            )
        if kind == "legs":
            return self.gen_legs(data, meta)
        if kind == "post":
            target = self.target(data, lambda r: r.status in (Status.PENDING, Status.EXPIRED))
            amount = data.draw(st.sampled_from([0, 0, 1, 5, 20, AMOUNT_STEP_MAX + 1]))
            return NewTransfer(
                self.new_id(),
                self.ledger_id,
                action=Action.POST,
                target_id=target,
                amount=amount,
                metadata=meta,
            )
        if kind == "void":
            target = self.target(data, lambda r: r.status in (Status.PENDING, Status.EXPIRED))
            return NewTransfer(
                self.new_id(), self.ledger_id, action=Action.VOID, target_id=target, metadata=meta
            )
        if kind == "reverse":
            target = self.target(data, lambda r: r.status is Status.POSTED and not r.pending)
            amount = data.draw(st.sampled_from([0, 0, 1, 7, 30]))
            return NewTransfer(
                self.new_id(),
                self.ledger_id,
                action=Action.REVERSE,
                target_id=target,
                amount=amount,
                metadata=meta,
            )
        if kind in ("resubmit", "modified") and self.requests:
            earlier = data.draw(st.sampled_from(self.requests))
            return self.modify(data, earlier) if kind == "modified" else earlier
        return self.gen(data, "transfer")

    def gen_legs(self, data: st.DataObject, meta: str | None) -> NewTransfer:
        mixed = data.draw(st.booleans()) and data.draw(st.booleans())  # a quarter of them
        names = ["bank", "alice", "bob", "vault", "carol"]
        if mixed:
            names += ["bank_eur", "alice_eur"]
        chosen = data.draw(st.lists(st.sampled_from(names), min_size=2, max_size=4, unique=True))
        sides = [D, C] + [data.draw(st.sampled_from([D, C])) for _ in chosen[2:]]
        amounts = [data.draw(st.integers(1, AMOUNT_STEP_MAX // 2)) for _ in chosen]
        debits = sum(n for n, s in zip(amounts, sides, strict=True) if s is D)
        credits = sum(n for n, s in zip(amounts, sides, strict=True) if s is C)
        fix = sides.index(C) if debits > credits else sides.index(D)
        amounts[fix] += abs(debits - credits)
        legs = tuple(
            Leg(self.ids[name], side, n)
            for name, side, n in zip(chosen, sides, amounts, strict=True)
        )
        pending = data.draw(st.booleans())
        return NewTransfer(
            self.new_id(),
            self.ledger_id,
            legs=legs,
            pending=pending,
            timeout_s=data.draw(st.sampled_from([0, 2])) if pending else 0,
            metadata=meta,
        )

    def modify(self, data: st.DataObject, t: NewTransfer) -> NewTransfer:
        """The same id with different content (always a valid request)."""
        options = ["metadata"]
        if t.action is Action.TRANSFER and t.legs is None:
            options += ["amount", "debit", "pending"]
        elif t.action is Action.TRANSFER:
            options += ["legs"]
        elif t.action is not Action.VOID:
            options += ["amount"]
        change = data.draw(st.sampled_from(options))
        if change == "metadata":
            return replace(t, metadata='{"k":"other"}' if t.metadata != '{"k":"other"}' else None)
        if change == "amount":
            return replace(t, amount=t.amount + 1)
        if change == "debit":
            return replace(t, debit_account_id=self.ids["carol"])
        if change == "pending":
            return replace(t, pending=not t.pending, timeout_s=0)
        assert t.legs is not None
        # One more on the first leg of each side: still balanced, no longer the same.
        other = next(i for i, leg in enumerate(t.legs) if leg.direction is not t.legs[0].direction)
        legs = tuple(
            replace(leg, amount=leg.amount + 1) if i in (0, other) else leg
            for i, leg in enumerate(t.legs)
        )
        return replace(t, legs=legs)

    # -- submission

    def submit(self, batch: list[NewTransfer], atomic: bool = False, via: int = 0) -> list[R]:
        outcomes = self.services[via].post_transfers(batch, atomic=atomic)
        expected = self.model.apply(batch, atomic)
        got = [o.result for o in outcomes]
        assert [o.transfer_id for o in outcomes] == [t.id for t in batch]
        assert got == expected, (batch, got, expected)
        seen = {t.id for t in self.requests}
        self.requests.extend(replace(t, linked=False) for t in batch if t.id not in seen)
        return got

    @initialize()
    def fund(self) -> None:
        batch = [
            NewTransfer(self.new_id(), self.ledger_id, self.ids["bank"], self.ids[name], FUNDING)
            for name in ("alice", "bob")
        ]
        batch.append(
            NewTransfer(
                self.new_id(), self.ledger_id, self.ids["bank_eur"], self.ids["alice_eur"], FUNDING
            )
        )
        assert self.submit(batch) == [R.CREATED] * 3

    @rule(data=st.data(), kind=st.sampled_from(KINDS), via=st.integers(0, 1))
    def single(self, data: st.DataObject, kind: str, via: int) -> None:
        self.submit([self.gen(data, kind)], via=via)

    @rule(
        data=st.data(),
        size=st.integers(2, 5),
        atomic=st.integers(0, 3).map(lambda x: x == 0),
        via=st.integers(0, 1),
    )
    def batch(self, data: st.DataObject, size: int, atomic: bool, via: int) -> None:
        batch = []
        for _ in range(size):
            t = self.gen(data, data.draw(st.sampled_from(KINDS)))
            batch.append(replace(t, linked=data.draw(st.integers(0, 3)) == 0))
        self.submit(batch, atomic=atomic, via=via)

    @rule(data=st.data(), via=st.integers(0, 1))
    def linked_chain(self, data: st.DataObject, via: int) -> None:
        size = data.draw(st.integers(2, 4))
        members = [self.gen(data, data.draw(st.sampled_from(KINDS))) for _ in range(size)]
        open_chain = data.draw(st.integers(0, 4)) == 0
        chain = [replace(t, linked=k < size - 1 or open_chain) for k, t in enumerate(members)]
        self.submit(chain, via=via)

    @precondition(lambda self: bool(self.model.s.transfers))
    @rule(data=st.data())
    def resubmit_created(self, data: st.DataObject) -> None:
        """Resubmitting anything created earlier is `exists` and changes nothing."""
        rec = data.draw(st.sampled_from(list(self.model.s.transfers.values())))
        before = self.rows()
        assert self.submit([rec.request]) == [R.EXISTS]
        assert self.rows() == before

    @rule(data=st.data())
    def bad_input(self, data: st.DataObject) -> None:
        """A batch with one malformed transfer is refused whole, before anything is written."""
        good = self.gen(data, "transfer")
        bad = data.draw(
            st.sampled_from(
                [
                    replace(good, id=self.new_id(), amount=0),
                    replace(good, id=self.new_id(), amount=1.5),  # type: ignore[arg-type]
                    replace(good, id=self.new_id(), amount=AMOUNT_MAX + 1),
                    replace(good, id=self.new_id(), pending=False, timeout_s=5),
                    NewTransfer(
                        self.new_id(),
                        self.ledger_id,
                        legs=(Leg(self.ids["bank"], D, 5), Leg(self.ids["carol"], C, 4)),
                    ),
                ]
            )
        )
        before = self.rows()
        with pytest.raises(InvalidRequest):
            self.svc.post_transfers([good, bad])
        assert self.rows() == before

    @rule(seconds=st.sampled_from([1, 2, 3]))
    def advance_clock(self, seconds: int) -> None:
        self.clock.t += seconds * 1_000_000
        self.model.now_us = self.clock.t

    @rule(via=st.integers(0, 1))
    def expire_due(self, via: int) -> None:
        assert self.services[via].expire_due() == self.model.expire_due()

    @rule(
        name=st.sampled_from(["alice", "carol", "vault"]),
        closed=st.integers(0, 2).map(lambda x: x == 0),
        via=st.integers(0, 1),
    )
    def close_or_reopen(self, name: str, closed: bool, via: int) -> None:
        acc = self.model.s.accounts[self.ids[name]]
        if closed and (acc.dpend or acc.cpend):
            with pytest.raises(Conflict):
                self.services[via].close_account(acc.id)
            return
        assert self.services[via].close_account(acc.id, closed=closed).closed is closed
        acc.closed = closed

    # -- checks

    def rows(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            accounts = conn.execute(
                sa.text(
                    "SELECT id, debits_posted, credits_posted, debits_pending, credits_pending, "
                    "version, closed, last_entry_id FROM accounts"
                )
            ).all()
            ids = list(self.ids.values())
            transfers = conn.execute(
                sa.text(
                    "SELECT id, status, amount FROM transfers WHERE ledger_id IN :l"
                ).bindparams(sa.bindparam("l", expanding=True)),
                {"l": sorted(self.model.ledgers)},
            ).all()
            entries = conn.execute(
                sa.text(
                    "SELECT account_id, COUNT(*), COUNT(DISTINCT version), MIN(version), "
                    "MAX(version), "
                    "SUM(CASE WHEN direction = 0 THEN amount ELSE 0 END), "
                    "SUM(CASE WHEN direction = 1 THEN amount ELSE 0 END), "
                    "SUM(CASE WHEN direction = 0 THEN pending_delta ELSE 0 END), "
                    "SUM(CASE WHEN direction = 1 THEN pending_delta ELSE 0 END) "
                    "FROM entries WHERE account_id IN :a GROUP BY account_id"
                ).bindparams(sa.bindparam("a", expanding=True)),
                {"a": ids},
            ).all()
            last = conn.execute(
                sa.text(
                    "SELECT a.id, e.version, e.debits_posted, e.credits_posted, "
                    "e.debits_pending, e.credits_pending FROM accounts a "
                    "JOIN entries e ON e.id = a.last_entry_id WHERE a.id IN :a"
                ).bindparams(sa.bindparam("a", expanding=True)),
                {"a": ids},
            ).all()
        mine = set(self.ids.values())
        return {
            "accounts": {r[0]: tuple(r[1:]) for r in accounts if r[0] in mine},
            "transfers": {r[0]: (Status(r[1]), int(r[2])) for r in transfers},
            "entries": {r[0]: tuple(int(x) for x in r[1:]) for r in entries},
            "last": {r[0]: tuple(int(x) for x in r[1:]) for r in last},
        }

    @invariant()
    def database_agrees_with_the_model(self) -> None:
        rows = self.rows()
        model = self.model.s
        for account_id, acc in model.accounts.items():
            dp, cp, dpend, cpend, version, closed, _ = rows["accounts"][account_id]
            assert (dp, cp, dpend, cpend) == acc.counters(), account_id
            assert version == acc.version
            assert bool(closed) is acc.closed
        assert rows["transfers"] == {
            i: (rec.status, rec.amount) for i, rec in model.transfers.items()
        }

    @invariant()
    def money_is_conserved_per_ledger_and_asset(self) -> None:
        totals: dict[tuple[str, str], list[int]] = {}
        rows = self.rows()["accounts"]
        for account_id, acc in self.model.s.accounts.items():
            dp, cp, dpend, cpend = rows[account_id][:4]
            t = totals.setdefault((acc.ledger_id, acc.asset), [0, 0])
            t[0] += dp - cp
            t[1] += dpend - cpend
        assert all(t == [0, 0] for t in totals.values()), totals

    @invariant()
    def balances_are_the_sum_of_entries_with_gap_free_versions(self) -> None:
        rows = self.rows()
        for account_id, (dp, cp, dpend, cpend, version, _, last_entry_id) in rows[
            "accounts"
        ].items():
            if version == 0:
                assert account_id not in rows["entries"]
                assert last_entry_id is None
                continue
            count, distinct, low, high, e_dp, e_cp, e_dpend, e_cpend = rows["entries"][account_id]
            assert (count, distinct, low, high) == (version, version, 1, version), account_id
            assert (e_dp, e_cp, e_dpend, e_cpend) == (dp, cp, dpend, cpend), account_id
            assert rows["last"][account_id] == (version, dp, cp, dpend, cpend), account_id

    @invariant()
    def no_account_violates_its_flags(self) -> None:
        for account_id, row in self.rows()["accounts"].items():
            dp, cp, dpend, cpend = row[:4]
            flags = self.model.s.accounts[account_id].flags
            assert min(dp, cp, dpend, cpend) >= 0
            if NO_DEBIT_OVERDRAFT in flags:
                assert dp + dpend <= cp, account_id
            if NO_CREDIT_OVERDRAFT in flags:
                assert cp + cpend <= dp, account_id

    @invariant()
    def pending_totals_equal_the_open_pending_transfers(self) -> None:
        rows = self.rows()["accounts"]
        for account_id, (dpend, cpend) in self.model.open_pending_totals().items():
            assert rows[account_id][2:4] == (dpend, cpend), account_id

    @invariant()
    def verify_agrees(self) -> None:
        report = self.svc.verify()
        assert report.problems == []

    def check_history(self) -> None:
        """At the end of a run: each account's entries, read through the public API, run
        from version 1 to its version with the right running balances."""
        for account_id, acc in self.model.s.accounts.items():
            entries = []
            cursor: int | None = None
            while True:
                page = self.svc.list_entries(account_id, starting_after=cursor, limit=100)
                entries.extend(page.data)
                if not page.has_more:
                    break
                cursor = page.data[-1].version
            assert [e.version for e in entries] == list(range(acc.version, 0, -1))
            running = [0, 0, 0, 0]
            for e in reversed(entries):
                side = 0 if e.direction is D else 1
                running[side] += e.amount
                running[2 + side] += e.pending_delta
                b = e.balances_after
                assert running == [
                    b.debits_posted,
                    b.credits_posted,
                    b.debits_pending,
                    b.credits_pending,
                ]
                _, balances_then, _ = self.svc.balance_at(account_id, version=e.version)
                assert balances_then == b
            assert tuple(running) == acc.counters()


def machine_for(backend: Backend) -> type[LedgerMachine]:
    return type("LedgerMachineRun", (LedgerMachine,), {"backend": backend})


# -- tests ---------------------------------------------------------------------------------


def test_random_operations_keep_the_ledger_consistent_on_sqlite() -> None:
    run_state_machine_as_test(
        machine_for(Backend(sqlite_per_run)),
        settings=settings(
            max_examples=100,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@pytest.mark.postgres
def test_random_operations_keep_the_ledger_consistent_on_postgresql(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    migrate.upgrade(engine)
    try:
        # One database for the test; each run has its own ledgers, accounts and ids.
        backend = Backend(lambda: (engine, lambda: None))
        run_state_machine_as_test(
            machine_for(backend),
            settings=settings(
                max_examples=15,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        engine.dispose()


@pytest.fixture
def shared_sqlite(sqlite_url: str) -> Iterator[LedgerService]:
    engine = create_engine(sqlite_url, sqlite_cache_mib=2)
    migrate.upgrade(engine)
    try:
        yield LedgerService(engine)
    finally:
        engine.dispose()


def test_any_batch_conserves_money_and_replays_as_exists(shared_sqlite: LedgerService) -> None:
    """One database for the whole test, unique ids per example: whatever a random batch of
    simple and multi-leg transfers does, every asset still sums to zero, the balances are what
    the model says, and replaying the batch returns `exists` for what was created."""
    svc = shared_sqlite
    ledger = svc.create_ledger("batches")
    names = ["src", "a", "b", "c"]
    accounts = svc.create_accounts(
        [AccountSpec(ledger.id, "USD", D, name="src")]
        + [AccountSpec(ledger.id, "USD", C, NO_DEBIT_OVERDRAFT, name=n) for n in names[1:]]
    )
    ids = [a.id for a in accounts]
    model = Model(
        {a.id: MAccount(a.id, a.ledger_id, a.asset, a.flags) for a in accounts}, {ledger.id}
    )
    examples = itertools.count()

    transfer = st.tuples(
        st.integers(0, 3), st.integers(0, 3), st.integers(1, 50), st.booleans(), st.booleans()
    )

    @settings(max_examples=60, deadline=None)
    @given(st.lists(transfer, min_size=1, max_size=40), st.booleans())
    def check(spec: list[tuple[int, int, int, bool, bool]], atomic: bool) -> None:
        n = next(examples)
        batch = []
        for k, (dr, cr, amount, split, linked) in enumerate(spec):
            tid = f"b{n}-{k}"
            if split and dr != cr:
                third = ids[({0, 1, 2, 3} - {dr, cr}).pop()]
                legs = (
                    Leg(ids[dr], D, amount + 1),
                    Leg(ids[cr], C, amount),
                    Leg(third, C, 1),
                )
                batch.append(NewTransfer(tid, ledger.id, legs=legs, linked=linked))
            else:
                batch.append(NewTransfer(tid, ledger.id, ids[dr], ids[cr], amount, linked=linked))
        expected = model.apply(batch, atomic)
        got = [o.result for o in svc.post_transfers(batch, atomic=atomic)]
        assert got == expected
        # Replayed one by one: what was created is `exists`; what was refused is tried afresh.
        replay = [replace(t, linked=False) for t in batch]
        expected = model.apply(replay, atomic=False)
        again = [o.result for o in svc.post_transfers(replay)]
        assert again == expected
        for first, second in zip(got, again, strict=True):
            assert second is R.EXISTS or first is not R.CREATED
        for account_id, acc in model.s.accounts.items():
            b = svc.get_account(account_id).balances
            counters = (b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending)
            assert counters == acc.counters()
        assert sum(a.dp - a.cp for a in model.s.accounts.values()) == 0
        assert svc.verify().ok

    check()
