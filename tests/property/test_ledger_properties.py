"""Random operation sequences against the real service, checked against a reference model.

The reference model (`Model`) is a plain-Python ledger written from the specification
(docs/errors.md, TransferResult), not from the engine's code. It does not follow the engine's
order of checks: for each request it gathers the set of every check that fails, each written
on its own, and reports the earliest of them in TransferResult's order of precedence ("the
first failing check is the one reported", whichever leg it comes from). It predicts every
result code, every refusal of malformed input and every balance. After each step the database
must agree with it exactly, and the invariants are checked twice: by `ledger.verify()` and by
independent reads of the rows (sums in Python: a total past 64 bits is stored in a wider form
on SQLite), so a wrong `verify` cannot hide a wrong ledger.

Amounts range over all of 1 .. 2^128-1, some accounts start near AMOUNT_MAX and some transfers
take a total exactly to the limit or one past it, so every `overflows_*` refusal is reached.
Each result is recorded with hypothesis.event, so a coverage count can be taken by replacing
`event` in this module.
"""

from __future__ import annotations

import copy
import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
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
from strongroom.core.limits import (
    AMOUNT_MAX,
    ID_LENGTH_MAX,
    LEGS_PER_TRANSFER_MAX,
    NATIVE_INT_MAX,
    PENDING_TIMEOUT_S_MAX,
)
from strongroom.core.money import from_stored_int
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
MISSING_LEDGER = "ldg_missing"
AMOUNT_STEP_MAX = 60  # the small amounts, most of those drawn
FUNDING = 500  # what a customer account starts with when it does not start near AMOUNT_MAX
CLOCK_BASE_US = 1_900_000_000_000_000
# Each run on a shared database starts its clock this much earlier than the run before, so
# expire_due in one run never reaches the pending transfers left by another.
RUN_CLOCK_SPACING_US = 10**12
# Examples and steps of the state machine, the same on SQLite and on PostgreSQL.
EXAMPLES = 100
STEPS = 30
# What model.validate_id accepts: printable ASCII without the space.
ID_ALPHABET = "".join(chr(c) for c in range(0x21, 0x7F))
_runs = itertools.count()


class ManualClock(MonotonicClock):
    def __init__(self, start_us: int) -> None:
        super().__init__()
        self.t = start_us

    def now_us(self) -> int:
        return self.t


def amounts(cap: int = AMOUNT_MAX) -> st.SearchStrategy[int]:
    """Amounts over the whole range 1 .. cap: half of them small (so that most transfers
    succeed), the rest at the edges that matter (64 bits, half and all of the range) or
    anywhere up to the top."""
    edges = [NATIVE_INT_MAX, NATIVE_INT_MAX + 1, 2**64, cap // 2, cap // 2 + 1, cap - 1, cap]
    small = st.integers(1, AMOUNT_STEP_MAX)
    return st.one_of(
        small,
        small,
        small,
        st.sampled_from([n for n in edges if 1 <= n <= cap]),
        st.integers(1, cap),
        st.integers(max(1, cap - 2**64), cap),
    )


# -- the reference model -------------------------------------------------------------------

# TransferResult's order is the specification's order of precedence: of all the checks that
# fail, the earliest in this order is the one reported.
PRECEDENCE = {r: k for k, r in enumerate(R)}


def reported(failing: set[R]) -> R:
    assert failing
    return min(failing, key=PRECEDENCE.__getitem__)


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
    "stranger_b": ("other", "USD", D, AccountFlag.NONE),
}

# (account, side, posted, pending delta): one entry of one account.
Move = tuple[str, Direction, int, int]
# (account, side, amount): a leg as it moved or reserved money.
MLeg = tuple[str, Direction, int]


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
    status: Status
    amount: int
    legs: tuple[MLeg, ...]  # what it moved (or, pending, reserved), leg by leg
    expires_at: int | None


@dataclass
class ModelState:
    accounts: dict[str, MAccount]
    transfers: dict[str, MTransfer] = field(default_factory=dict)
    reversed: dict[str, int] = field(default_factory=dict)


def _id_ok(value: object) -> bool:
    return (
        isinstance(value, str)
        and 1 <= len(value) <= ID_LENGTH_MAX
        and all(c in ID_ALPHABET for c in value)
    )


def _amount_faults(value: object) -> set[str]:
    if isinstance(value, bool) or not isinstance(value, int):
        return {"amount_not_integer"}
    if value <= 0:
        return {"amount_not_positive"}
    return {"amount_too_large"} if value > AMOUNT_MAX else set()


def input_faults(t: NewTransfer) -> set[str]:
    """The codes of docs/errors.md's malformed requests (400) that apply to `t`: every one
    that does, since the order of the shape checks is not specified. Covers what the
    generators produce (ids, amounts, legs, timeouts); accounts' ids are only looked up."""
    faults = set()
    if not _id_ok(t.id) or not _id_ok(t.ledger_id):
        faults.add("invalid_id")
    if t.action is Action.TRANSFER:
        if t.target_id is not None:
            faults.add("invalid_request")
        if t.legs is None:
            faults |= _amount_faults(t.amount)
        else:
            if t.debit_account_id is not None or t.credit_account_id is not None or t.amount:
                faults.add("invalid_request")
            if not 2 <= len(t.legs) <= LEGS_PER_TRANSFER_MAX:
                faults.add("invalid_legs")
            ids = [leg.account_id for leg in t.legs]
            if len(set(ids)) != len(ids):
                faults.add("duplicate_leg_account")
            for leg in t.legs:
                faults |= _amount_faults(leg.amount)
            debits = sum(leg.amount for leg in t.legs if leg.direction is D)
            credits = sum(leg.amount for leg in t.legs if leg.direction is C)
            if debits != credits:
                faults.add("unbalanced_legs")
            if debits > AMOUNT_MAX:
                faults.add("amount_too_large")
        if not 0 <= t.timeout_s <= PENDING_TIMEOUT_S_MAX or (t.timeout_s and not t.pending):
            faults.add("invalid_timeout")
    else:
        if not _id_ok(t.target_id):
            faults.add("invalid_id")
        accounts = (t.legs, t.debit_account_id, t.credit_account_id)
        if any(x is not None for x in accounts) or t.pending or t.timeout_s:
            faults.add("invalid_request")  # the target gives the accounts; not itself pending
        if t.action is Action.VOID and t.amount:
            faults.add("invalid_request")
        elif t.amount:
            faults |= _amount_faults(t.amount)
    return faults


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
            # The id is the idempotency key: an existing transfer is compared, never redone.
            differences = self.differences(t, existing)
            return reported(differences) if differences else R.EXISTS
        if t.action is Action.TRANSFER:
            failing, commit = self.transfer(t)
        elif t.action is Action.REVERSE:
            failing, commit = self.reverse(t)
        else:
            failing, commit = self.resolve(t)
        if t.ledger_id not in self.ledgers:
            failing.add(R.LEDGER_NOT_FOUND)
        if failing:
            return reported(failing)
        assert commit is not None
        commit()
        return R.CREATED

    def differences(self, t: NewTransfer, e: MTransfer) -> set[R]:
        o = e.request
        found: set[R] = set()
        if t.ledger_id != o.ledger_id:
            found.add(R.EXISTS_WITH_DIFFERENT_LEDGER_ID)
        if t.action is not o.action:
            found.add(R.EXISTS_WITH_DIFFERENT_ACTION)
        if t.target_id != o.target_id:
            found.add(R.EXISTS_WITH_DIFFERENT_TARGET_ID)
        if t.action is Action.TRANSFER and o.action is Action.TRANSFER:
            if t.debit_account_id != o.debit_account_id:
                found.add(R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID)
            if t.credit_account_id != o.credit_account_id:
                found.add(R.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID)
            if t.legs is None and o.legs is None and t.amount != o.amount:
                found.add(R.EXISTS_WITH_DIFFERENT_AMOUNT)
            if t.legs != o.legs:
                found.add(R.EXISTS_WITH_DIFFERENT_LEGS)
            if t.pending != o.pending:
                found.add(R.EXISTS_WITH_DIFFERENT_PENDING)
            if t.timeout_s != o.timeout_s:
                found.add(R.EXISTS_WITH_DIFFERENT_TIMEOUT)
        elif t.action is not Action.TRANSFER and t.action is o.action:
            # A post's 0 is the whole reservation, a fixed amount: a partial post resubmitted
            # as a full one differs. A reversal's 0 is the remainder, which moves as
            # reversals happen: it matches what was done. A void has no amount.
            asked = t.amount
            if not asked and t.action is Action.POST and t.target_id in self.s.transfers:
                asked = self.s.transfers[t.target_id].amount
            if asked and asked != e.amount:
                found.add(R.EXISTS_WITH_DIFFERENT_AMOUNT)
        if t.effective_at != o.effective_at:
            found.add(R.EXISTS_WITH_DIFFERENT_EFFECTIVE_AT)
        if t.metadata != o.metadata:
            found.add(R.EXISTS_WITH_DIFFERENT_METADATA)
        return found

    def transfer(self, t: NewTransfer) -> tuple[set[R], Callable[[], None] | None]:
        failing: set[R] = set()
        if t.legs is None:
            assert t.debit_account_id is not None
            assert t.credit_account_id is not None
            legs: tuple[MLeg, ...] = (
                (t.debit_account_id, D, t.amount),
                (t.credit_account_id, C, t.amount),
            )
        else:
            legs = tuple((leg.account_id, leg.direction, leg.amount) for leg in t.legs)
        found = [self.s.accounts.get(a) for a, _, _ in legs]
        present = [acc for acc in found if acc is not None]
        every_found = len(present) == len(found)
        distinct = len({a for a, _, _ in legs}) == len(legs)
        if not every_found:
            failing.add(R.ACCOUNT_NOT_FOUND)
        if not distinct:  # two-account transfers only: legs' duplicates are malformed input
            failing.add(R.ACCOUNTS_MUST_BE_DIFFERENT)
        if any(acc.ledger_id != t.ledger_id for acc in present):
            failing.add(R.LEDGER_MISMATCH)
        if t.legs is None and len({acc.asset for acc in present}) > 1:
            failing.add(R.ASSET_MISMATCH)
        if any(acc.closed for acc in present):
            failing.add(R.ACCOUNT_CLOSED)
        if t.legs is not None and every_found:
            net: dict[str, int] = {}
            for acc, (_, side, n) in zip(present, legs, strict=True):
                net[acc.asset] = net.get(acc.asset, 0) + (n if side is D else -n)
            if any(net.values()):
                failing.add(R.LEGS_UNBALANCED_PER_ASSET)
        if not (every_found and distinct):
            return failing, None
        moves = [(a, d, 0 if t.pending else n, n if t.pending else 0) for a, d, n in legs]
        failing |= self.limit_failures(moves)

        def commit() -> None:
            self.move(moves)
            self.s.transfers[t.id] = MTransfer(
                request=replace(t, linked=False),
                status=Status.PENDING if t.pending else Status.POSTED,
                amount=sum(n for _, d, n in legs if d is D),
                legs=legs,
                expires_at=self.now_us + t.timeout_s * 1_000_000 if t.timeout_s else None,
            )

        return failing, commit

    def resolve(self, t: NewTransfer) -> tuple[set[R], Callable[[], None] | None]:
        """POST or VOID of a pending transfer."""
        assert t.target_id is not None
        target = self.s.transfers.get(t.target_id)
        if target is None:
            return {R.PENDING_TRANSFER_NOT_FOUND}, None
        failing: set[R] = set()
        if target.request.ledger_id != t.ledger_id:
            failing.add(R.LEDGER_MISMATCH)
        if not target.request.pending:
            failing.add(R.PENDING_TRANSFER_NOT_PENDING)
        if target.status is Status.POSTED:
            failing.add(R.PENDING_TRANSFER_ALREADY_POSTED)
        if target.status is Status.VOIDED:
            failing.add(R.PENDING_TRANSFER_ALREADY_VOIDED)
        if target.status is Status.EXPIRED or (
            target.expires_at is not None and self.now_us >= target.expires_at
        ):
            failing.add(R.PENDING_TRANSFER_EXPIRED)
        full = target.amount
        posted = (t.amount or full) if t.action is Action.POST else 0
        if posted > full:
            failing.add(R.EXCEEDS_PENDING_TRANSFER_AMOUNT)
        if posted not in (0, full) and len(target.legs) != 2:
            failing.add(R.PARTIAL_AMOUNT_NEEDS_TWO_LEGS)
        # An account with pending amounts cannot be closed (close_account is a Conflict), so a
        # reservation still held never has a closed account: no account_closed check here.
        splits = posted in (0, full) or len(target.legs) == 2
        if target.status is not Status.PENDING or posted > full or not splits:
            return failing, None  # nothing to move: the limits cannot be checked
        moved = tuple((a, d, n if posted == full else posted) for a, d, n in target.legs)
        moves = [(a, d, m[2], -n) for (a, d, n), m in zip(target.legs, moved, strict=True)]
        failing |= self.limit_failures(moves)

        def commit() -> None:
            self.move(moves)
            target.status = Status.POSTED if t.action is Action.POST else Status.VOIDED
            self.s.transfers[t.id] = MTransfer(
                request=replace(t, linked=False),
                status=target.status,
                amount=posted if t.action is Action.POST else full,
                legs=moved if t.action is Action.POST else target.legs,
                expires_at=None,
            )

        return failing, commit

    def reverse(self, t: NewTransfer) -> tuple[set[R], Callable[[], None] | None]:
        assert t.target_id is not None
        target = self.s.transfers.get(t.target_id)
        if target is None:
            return {R.REVERSAL_TARGET_NOT_FOUND}, None
        failing: set[R] = set()
        if target.request.ledger_id != t.ledger_id:
            failing.add(R.LEDGER_MISMATCH)
        if any(self.s.accounts[a].closed for a, _, _ in target.legs):
            failing.add(R.ACCOUNT_CLOSED)
        if target.status is not Status.POSTED or target.request.pending:
            failing.add(R.REVERSAL_TARGET_NOT_POSTED)
        remaining = target.amount - self.s.reversed.get(t.target_id, 0)
        amount = t.amount or remaining
        if amount == 0 or amount > remaining:
            failing.add(R.EXCEEDS_REVERSIBLE_AMOUNT)
        two = len(target.legs) == 2
        if amount != target.amount and not two:
            failing.add(R.PARTIAL_AMOUNT_NEEDS_TWO_LEGS)
        posted = target.status is Status.POSTED and not target.request.pending
        if not (posted and 0 < amount <= remaining and (two or amount == target.amount)):
            return failing, None  # nothing to move: the limits cannot be checked
        back = tuple((a, C if d is D else D, amount if two else n) for a, d, n in target.legs)
        moves = [(a, d, n, 0) for a, d, n in back]
        failing |= self.limit_failures(moves)

        def commit() -> None:
            assert t.target_id is not None
            self.move(moves)
            self.s.reversed[t.target_id] = self.s.reversed.get(t.target_id, 0) + amount
            self.s.transfers[t.id] = MTransfer(
                request=replace(t, linked=False),
                status=Status.POSTED,
                amount=amount,
                legs=back,
                expires_at=None,
            )

        return failing, commit

    def after(self, m: Move) -> tuple[MAccount, int, int, int, int]:
        account_id, side, posted, pending = m
        a = self.s.accounts[account_id]
        dp, cp, dpend, cpend = a.counters()
        if side is D:
            dp, dpend = dp + posted, dpend + pending
        else:
            cp, cpend = cp + posted, cpend + pending
        assert min(dp, cp, dpend, cpend) >= 0, "the model releases only what it reserved"
        return a, dp, cp, dpend, cpend

    def limit_failures(self, moves: list[Move]) -> set[R]:
        """Every limit that any leg would break: each total within 2^128-1, each flag kept."""
        failing = set()
        for m in moves:
            a, dp, cp, dpend, cpend = self.after(m)
            for total, refusal in (
                (dpend, R.OVERFLOWS_DEBITS_PENDING),
                (cpend, R.OVERFLOWS_CREDITS_PENDING),
                (dp, R.OVERFLOWS_DEBITS_POSTED),
                (cp, R.OVERFLOWS_CREDITS_POSTED),
                (dp + dpend, R.OVERFLOWS_DEBITS),
                (cp + cpend, R.OVERFLOWS_CREDITS),
            ):
                if total > AMOUNT_MAX:
                    failing.add(refusal)
            if (NO_DEBIT_OVERDRAFT in a.flags and dp + dpend > cp) or (
                NO_CREDIT_OVERDRAFT in a.flags and cp + cpend > dp
            ):
                failing.add(R.INSUFFICIENT_FUNDS)
        return failing

    def move(self, moves: list[Move]) -> None:
        for m in moves:
            a, dp, cp, dpend, cpend = self.after(m)
            a.dp, a.cp, a.dpend, a.cpend = dp, cp, dpend, cpend
            a.version += 1

    # -- other operations

    def expire_due(self) -> int:
        count = 0
        for rec in self.s.transfers.values():
            if (
                rec.status is Status.PENDING
                and rec.expires_at is not None
                and rec.expires_at <= self.now_us
            ):
                moves = [(a, d, 0, -n) for a, d, n in rec.legs]
                assert not self.limit_failures(moves)
                self.move(moves)
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


def money(value: object) -> int:
    """A money value as read: NUMERIC on PostgreSQL, an INTEGER or a wide BLOB on SQLite."""
    if isinstance(value, Decimal):
        assert value == value.to_integral_value()
        return int(value)
    return from_stored_int(value)


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
    *["legs"] * 3,
    *["post"] * 2,
    "void",
    "reverse",
    "resubmit",
    *["modified"] * 2,
]
# Where a customer account starts: FUNDING, past 64 bits, or near AMOUNT_MAX.
FUNDINGS = st.one_of(
    st.just(FUNDING),
    st.integers(NATIVE_INT_MAX - 10, 2**64 + 10),
    st.integers(AMOUNT_MAX - 2**64, AMOUNT_MAX),
    st.just(AMOUNT_MAX),
)
EFFECTIVE_AT = st.sampled_from([None, None, None, None, 0, 1, CLOCK_BASE_US, 2**63 - 1])
USD_NAMES = ["bank", "alice", "bob", "vault", "carol"]


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
        self.ledger_ids = {"main": main.id, "other": other.id}
        specs = [
            AccountSpec(self.ledger_ids[lg], asset, normal, flags, name=name)
            for name, (lg, asset, normal, flags) in ACCOUNTS.items()
        ]
        created = self.svc.create_accounts(specs)
        self.ids = {name: a.id for name, a in zip(ACCOUNTS, created, strict=True)}
        self.ledger_id = main.id
        self.model = Model(
            {a.id: MAccount(a.id, a.ledger_id, a.asset, a.flags) for a in created},
            set(self.ledger_ids.values()),
        )
        self.model.now_us = self.clock.t
        self.counter = itertools.count()
        self.requests: list[NewTransfer] = []  # everything submitted well formed

    def teardown(self) -> None:
        try:
            self.check_history()
        finally:
            self._close()

    # -- submission

    def submit(
        self, batch: list[NewTransfer], atomic: bool = False, via: int = 0
    ) -> list[R] | None:
        """Post a batch, with the model's prediction: every result, or (for a batch with a
        malformed transfer) InvalidRequest with a code of the first such transfer and
        nothing written. None when refused whole."""
        faults = next((f for f in map(input_faults, batch) if f), None)
        if faults is not None:
            before = self.rows()
            with pytest.raises(InvalidRequest) as refused:
                self.services[via].post_transfers(batch, atomic=atomic)
            assert refused.value.code in faults, (batch, refused.value, faults)
            assert self.rows() == before
            event(f"refused whole: {refused.value.code}")
            return None
        outcomes = self.services[via].post_transfers(batch, atomic=atomic)
        expected = self.model.apply(batch, atomic)
        got = [o.result for o in outcomes]
        assert [o.transfer_id for o in outcomes] == [t.id for t in batch]
        assert got == expected, (batch, got, expected)
        for r in got:
            event(f"result: {r}")
        seen = {t.id for t in self.requests}
        self.requests.extend(replace(t, linked=False) for t in batch if t.id not in seen)
        return got

    @initialize(
        amounts=st.tuples(FUNDINGS, FUNDINGS, FUNDINGS, FUNDINGS),
        reserved=st.tuples(*[st.integers(0, 3).map(lambda x: x == 0)] * 3),
    )
    def fund(self, amounts: tuple[int, ...], reserved: tuple[bool, ...]) -> None:
        """Alice and Bob start from different sources, so that both may start near
        AMOUNT_MAX (one source could not give both). Now and then a funding is only reserved;
        Carol always reserves something for the bank: pending totals start near AMOUNT_MAX
        too."""
        sources = [
            ("bank", "alice"),
            ("vault", "bob"),
            ("bank_eur", "alice_eur"),
            ("carol", "bank"),
        ]
        batch = [
            NewTransfer(
                self.new_id(),
                self.ledger_id,
                self.ids[debit],
                self.ids[credit],
                amount,
                pending=pending,
            )
            for (debit, credit), amount, pending in zip(
                sources, amounts, (*reserved, True), strict=True
            )
        ]
        assert self.submit(batch) == [R.CREATED] * len(batch)

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

    @rule(
        data=st.data(),
        pending=st.booleans(),
        aim=st.sampled_from(["pending", "posted", "total"]),
        side=st.sampled_from([D, C]),
        off=st.sampled_from([-1, 0, 1]),
    )
    def at_the_limit(
        self, data: st.DataObject, pending: bool, aim: str, side: Direction, off: int
    ) -> None:
        """A transfer whose amount takes one total of one of its accounts to AMOUNT_MAX
        exactly, or one under or one over it: the edge of every `overflows_*`."""
        t = replace(self.gen(data, "transfer"), pending=pending, timeout_s=0)
        account_id = t.debit_account_id if side is D else t.credit_account_id
        acc = self.model.s.accounts.get(account_id or "")
        if acc is None:
            return
        dp, cp, dpend, cpend = acc.counters()
        posted, held = (dp, dpend) if side is D else (cp, cpend)
        total = {"pending": held, "posted": posted, "total": posted + held}[aim]
        amount = min(max(AMOUNT_MAX - total + off, 1), AMOUNT_MAX)
        self.submit([replace(t, amount=amount)])

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
        usd = (self.ids["bank"], self.ids["carol"])
        bad = data.draw(
            st.sampled_from(
                [
                    replace(good, id=self.new_id(), amount=0),
                    replace(good, id=self.new_id(), amount=1.5),  # type: ignore[arg-type]
                    replace(good, id=self.new_id(), amount=True),
                    replace(good, id=self.new_id(), amount=AMOUNT_MAX + 1),
                    replace(good, id=self.new_id(), pending=False, timeout_s=5),
                    replace(good, id=""),
                    replace(good, id=self.new_id() + "x" * ID_LENGTH_MAX),
                    replace(good, id=self.new_id() + " x"),
                    replace(good, id=self.new_id() + "\u00e9"),
                    NewTransfer(
                        self.new_id(), self.ledger_id, legs=(Leg(usd[0], D, 5), Leg(usd[1], C, 4))
                    ),
                    NewTransfer(self.new_id(), self.ledger_id, legs=(Leg(usd[0], D, 5),)),
                    NewTransfer(
                        self.new_id(), self.ledger_id, legs=(Leg(usd[0], D, 5), Leg(usd[0], C, 5))
                    ),
                    NewTransfer(
                        self.new_id(),
                        self.ledger_id,
                        legs=(Leg(usd[0], D, AMOUNT_MAX), Leg(usd[1], C, AMOUNT_MAX)),
                        pending=True,
                        timeout_s=PENDING_TIMEOUT_S_MAX + 1,
                    ),
                    NewTransfer(
                        self.new_id(),
                        self.ledger_id,
                        legs=(
                            Leg(usd[0], D, AMOUNT_MAX),
                            Leg(self.ids["vault"], D, 1),
                            Leg(usd[1], C, AMOUNT_MAX),
                            Leg(self.ids["alice"], C, 1),
                        ),
                    ),
                    NewTransfer(
                        self.new_id(),
                        self.ledger_id,
                        action=Action.VOID,
                        target_id=MISSING_TRANSFER,
                        amount=1,
                    ),
                ]
            )
        )
        assert input_faults(bad)
        assert not input_faults(good)
        assert self.submit([good, bad]) is None

    @rule(seconds=st.sampled_from([1, 2, 3]))
    def advance_clock(self, seconds: int) -> None:
        self.clock.t += seconds * 1_000_000
        self.model.now_us = self.clock.t

    @rule(via=st.integers(0, 1))
    def expire_due(self, via: int) -> None:
        assert self.services[via].expire_due() == self.model.expire_due()

    @rule(
        name=st.sampled_from(["alice", "carol", "vault", "bank"]),
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

    # -- request generation

    def new_id(self, data: st.DataObject | None = None) -> str:
        """Unique ids of every allowed shape: any printable ASCII but the space, up to
        ID_LENGTH_MAX characters. The run's tag and a counter, then a drawn tail, are unique:
        the counter's digits end at the first '-' after the tag. (The tail is drawn the same
        way whatever the head's length, which depends on the run, then cut to fit.)"""
        head = f"{self.tag}-{next(self.counter)}"
        if data is None:
            return head
        tail = data.draw(
            st.one_of(
                st.just(""),
                st.text(ID_ALPHABET, max_size=ID_LENGTH_MAX),
                st.text(ID_ALPHABET, min_size=ID_LENGTH_MAX, max_size=ID_LENGTH_MAX),
            )
        )
        return f"{head}-{tail}"[:ID_LENGTH_MAX]

    def pick_ledger(self, data: st.DataObject, usual: str) -> str:
        """Mostly `usual`; now and then the other ledger or one that does not exist."""
        other = self.ledger_ids["other"] if usual == self.ledger_id else self.ledger_id
        return data.draw(st.sampled_from([usual] * 10 + [other, MISSING_LEDGER]))

    def accounts_pair(self, data: st.DataObject) -> tuple[str, str]:
        """Mostly two different usable USD accounts; now and then one the transfer cannot use
        (another asset or ledger, none, the same account twice) or two."""
        names = ["bank", "bank", "alice", "bob", "vault", "carol"]
        debit = data.draw(st.sampled_from(names))
        credit = data.draw(st.sampled_from([n for n in names if n != debit]))
        odd = ["bank_eur", "alice_eur", "stranger", "missing", debit]
        if data.draw(st.integers(0, 5)) == 0:
            if data.draw(st.booleans()):
                debit = data.draw(st.sampled_from(odd))
            else:
                credit = data.draw(st.sampled_from(odd))
        elif data.draw(st.integers(0, 9)) == 0:
            debit, credit = data.draw(st.sampled_from(odd)), data.draw(st.sampled_from(odd))
        ids = {**self.ids, "missing": MISSING_ACCOUNT}
        return ids[debit], ids[credit]

    def target(self, data: st.DataObject, prefer: Callable[[MTransfer], bool]) -> str:
        """Mostly a transfer `prefer` likes; else any created one, or any id submitted."""
        known = list(self.model.s.transfers.values())
        preferred = [r.request.id for r in known if prefer(r)]
        created = [r.request.id for r in known]
        every = [t.id for t in self.requests] + [MISSING_TRANSFER]
        which = data.draw(st.integers(0, 9))
        pool = preferred if preferred and which > 1 else created if created and which else every
        return data.draw(st.sampled_from(pool))

    def target_amount(self, data: st.DataObject, target_id: str, usual: list[int]) -> int:
        """One of `usual`, or close to what the target holds (just below, at, or over it)."""
        rec = self.model.s.transfers.get(target_id)
        near = [] if rec is None else [rec.amount - 1, rec.amount, rec.amount + 1]
        return data.draw(st.sampled_from(usual + [n for n in near if n >= 0]))

    def gen(self, data: st.DataObject, kind: str) -> NewTransfer:
        meta = data.draw(st.sampled_from([None, None, '{"k":"v"}', '{"n":1}']))
        effective_at = data.draw(EFFECTIVE_AT)
        if kind == "transfer":
            pending = data.draw(st.booleans())
            ledger_id = self.ledger_id
            if data.draw(st.integers(0, 9)) == 0:  # between the other ledger's accounts
                ledger_id = self.ledger_ids["other"]
                pair = [self.ids["stranger"], self.ids["stranger_b"]]
                debit, credit = data.draw(st.permutations(pair))
            else:
                debit, credit = self.accounts_pair(data)
            return NewTransfer(
                id=self.new_id(data),
                ledger_id=self.pick_ledger(data, ledger_id),
                debit_account_id=debit,
                credit_account_id=credit,
                amount=data.draw(amounts()),
                pending=pending,
                timeout_s=data.draw(st.sampled_from([0, 0, 1, 3])) if pending else 0,
                metadata=meta,
                effective_at=effective_at,
            )
        if kind == "legs":
            return self.gen_legs(data, meta, effective_at)
        if kind in ("post", "void", "reverse"):
            if kind == "reverse":
                target = self.target(
                    data, lambda r: r.status is Status.POSTED and not r.request.pending
                )
                amount = self.target_amount(data, target, [0, 0, 1, 7, 30])
            else:
                target = self.target(data, lambda r: r.status in (Status.PENDING, Status.EXPIRED))
                amount = self.target_amount(data, target, [0, 0, 1, 5, 20])
            rec = self.model.s.transfers.get(target)
            usual = rec.request.ledger_id if rec is not None else self.ledger_id
            return NewTransfer(
                self.new_id(data),
                self.pick_ledger(data, usual),
                action={"post": Action.POST, "void": Action.VOID, "reverse": Action.REVERSE}[kind],
                target_id=target,
                amount=0 if kind == "void" else amount,
                metadata=meta,
                effective_at=effective_at,
            )
        if kind in ("resubmit", "modified") and self.requests:
            created = [r.request for r in self.model.s.transfers.values()]
            often = data.draw(st.integers(0, 3)) > 0
            earlier = data.draw(st.sampled_from(created if created and often else self.requests))
            return self.modify(data, earlier) if kind == "modified" else earlier
        return self.gen(data, "transfer")

    def gen_legs(
        self, data: st.DataObject, meta: str | None, effective_at: int | None
    ) -> NewTransfer:
        """A multi-leg transfer: two to four USD legs, balanced, sometimes with a balanced EUR
        pair, and sometimes one fault: unbalanced per asset (balanced in total), another
        ledger's account, a missing one, both, the same account twice, unbalanced in total.
        Closed accounts come from close_or_reopen."""
        cap = AMOUNT_MAX // 8  # the debits of every leg, fixed up and skewed, stay in range
        chosen = data.draw(
            st.lists(st.sampled_from(USD_NAMES), min_size=2, max_size=4, unique=True)
        )
        sides = [D, C] + [data.draw(st.sampled_from([D, C])) for _ in chosen[2:]]
        # Mostly small, so that multi-leg transfers are often created (and then posted in
        # part, reversed, resubmitted with other legs).
        sizes = [
            data.draw(st.one_of(st.integers(1, AMOUNT_STEP_MAX), amounts(cap))) for _ in chosen
        ]
        debits = sum(n for n, s in zip(sizes, sides, strict=True) if s is D)
        credits = sum(n for n, s in zip(sizes, sides, strict=True) if s is C)
        sizes[sides.index(C) if debits > credits else sides.index(D)] += abs(debits - credits)
        legs = [
            Leg(self.ids[name], side, n) for name, side, n in zip(chosen, sides, sizes, strict=True)
        ]
        with_eur = data.draw(st.booleans())
        if with_eur:
            n = data.draw(st.one_of(st.integers(1, AMOUNT_STEP_MAX), amounts(cap)))
            eur_sides = data.draw(st.permutations([D, C]))
            legs += [Leg(self.ids["bank_eur"], eur_sides[0], n)]
            legs += [Leg(self.ids["alice_eur"], eur_sides[1], n)]
        fault = data.draw(
            st.sampled_from(
                [None] * 10
                + ["skew"] * 2
                + ["stranger", "missing", "both", "duplicate", "unbalanced"]
            )
        )

        def change(k: int, **kw: Any) -> None:
            legs[k] = replace(legs[k], **kw)

        if fault == "skew" and with_eur:  # USD debits and EUR credits up by the same amount
            skew = data.draw(amounts(cap))
            usd, eur = sides.index(D), len(chosen) + eur_sides.index(C)
            change(usd, amount=legs[usd].amount + skew)
            change(eur, amount=legs[eur].amount + skew)
        elif fault in ("stranger", "both"):
            change(0, account_id=self.ids["stranger"])
        if fault in ("missing", "both"):
            change(1, account_id=MISSING_ACCOUNT)
        elif fault == "duplicate":
            change(1, account_id=legs[0].account_id)
        elif fault == "unbalanced":
            change(0, amount=legs[0].amount + 1)
        order = data.draw(st.permutations(range(len(legs))))
        pending = data.draw(st.booleans())
        return NewTransfer(
            self.new_id(data),
            self.pick_ledger(data, self.ledger_id),
            legs=tuple(legs[k] for k in order),
            pending=pending,
            timeout_s=data.draw(st.sampled_from([0, 2])) if pending else 0,
            metadata=meta,
            effective_at=effective_at,
        )

    def modify(self, data: st.DataObject, t: NewTransfer) -> NewTransfer:
        """The same id with different content (a well-formed request): one or two changes,
        so that the difference reported is the first of several."""
        options = ["metadata", "effective_at", "ledger", "action"]
        if t.action is Action.TRANSFER and t.legs is None:
            options += ["amount", "debit", "credit", "pending"]
            if t.pending:
                options.append("timeout")
        elif t.action is Action.TRANSFER:
            options += ["legs", "pending"]
            if t.pending:
                options.append("timeout")
        else:
            options.append("target")
            if t.action is not Action.VOID:
                options += ["amount", "full"]
        size = data.draw(st.sampled_from([1, 1, 2]))
        changes = data.draw(
            st.lists(st.sampled_from(options), min_size=size, max_size=size, unique=True)
        )
        # In this order: a timeout before `pending` clears it, another action last (the other
        # changes are to the original action's fields).
        rank = ["timeout", "pending", "action"]
        for change in sorted(changes, key=lambda c: rank.index(c) if c in rank else -1):
            t = self._change(t, change)
        return t

    def _change(self, t: NewTransfer, change: str) -> NewTransfer:
        if change == "metadata":
            return replace(t, metadata='{"k":"other"}' if t.metadata != '{"k":"other"}' else None)
        if change == "effective_at":
            return replace(t, effective_at=1 if t.effective_at != 1 else None)
        if change == "ledger":
            ledger = self.ledger_ids["other"] if t.ledger_id == self.ledger_id else self.ledger_id
            return replace(t, ledger_id=ledger)
        if change == "action":
            if t.action is Action.TRANSFER:
                return NewTransfer(
                    t.id,
                    t.ledger_id,
                    action=Action.VOID,
                    target_id=MISSING_TRANSFER,
                    metadata=t.metadata,
                    effective_at=t.effective_at,
                )
            if t.action is Action.VOID:
                return replace(t, action=Action.POST)
            return replace(t, action=Action.VOID, amount=0)
        if change == "target":
            missing = MISSING_TRANSFER if t.target_id != MISSING_TRANSFER else "tr_missing_too"
            return replace(t, target_id=missing)
        if change == "amount":
            return replace(t, amount=t.amount + 1 if t.amount < AMOUNT_MAX else t.amount - 1)
        if change == "full":
            return replace(t, amount=0 if t.amount else 1)
        if change == "debit":
            carol = self.ids["carol"]
            return replace(t, debit_account_id=carol if t.debit_account_id != carol else "x")
        if change == "credit":
            bank = self.ids["bank"]
            return replace(t, credit_account_id=bank if t.credit_account_id != bank else "x")
        if change == "pending":
            return replace(t, pending=not t.pending, timeout_s=0)
        if change == "timeout":
            return replace(t, timeout_s=1 if t.timeout_s != 1 else 3)
        assert change == "legs"
        assert t.legs is not None
        # One more on the first leg of each side: still balanced, no longer the same.
        other = next(i for i, leg in enumerate(t.legs) if leg.direction is not t.legs[0].direction)
        legs = tuple(
            replace(leg, amount=leg.amount + 1) if i in (0, other) else leg
            for i, leg in enumerate(t.legs)
        )
        return replace(t, legs=legs)

    # -- checks

    def rows(self) -> dict[str, Any]:
        ids = sorted(self.ids.values())
        with self.engine.connect() as conn:
            accounts = conn.execute(
                sa.text(
                    "SELECT id, debits_posted, credits_posted, debits_pending, credits_pending, "
                    "version, closed, last_entry_id FROM accounts WHERE id IN :a"
                ).bindparams(sa.bindparam("a", expanding=True)),
                {"a": ids},
            ).all()
            transfers = conn.execute(
                sa.text(
                    "SELECT id, status, amount FROM transfers WHERE ledger_id IN :l"
                ).bindparams(sa.bindparam("l", expanding=True)),
                {"l": sorted(self.model.ledgers)},
            ).all()
            entries = conn.execute(
                sa.text(
                    "SELECT account_id, version, direction, amount, pending_delta "
                    "FROM entries WHERE account_id IN :a"
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
        # Per account: versions seen, then the sums of amounts and pending deltas by side,
        # added in Python (SQLite cannot add the wide form of a value past 64 bits).
        versions: dict[str, list[int]] = {}
        sums: dict[str, list[int]] = {}
        for account_id, version, direction, amount, pending_delta in entries:
            versions.setdefault(account_id, []).append(int(version))
            s = sums.setdefault(account_id, [0, 0, 0, 0])
            s[int(direction)] += money(amount)
            s[2 + int(direction)] += money(pending_delta)
        return {
            "accounts": {
                r[0]: (*(money(x) for x in r[1:5]), int(r[5]), bool(r[6]), r[7]) for r in accounts
            },
            "transfers": {r[0]: (Status(r[1]), money(r[2])) for r in transfers},
            "entries": {
                a: (len(v), len(set(v)), min(v), max(v), *sums[a]) for a, v in versions.items()
            },
            "last": {r[0]: (int(r[1]), *(money(x) for x in r[2:])) for r in last},
        }

    def database_agrees_with_the_model(self, rows: dict[str, Any]) -> None:
        model = self.model.s
        assert set(rows["accounts"]) == set(model.accounts)
        for account_id, acc in model.accounts.items():
            dp, cp, dpend, cpend, version, closed, _ = rows["accounts"][account_id]
            assert (dp, cp, dpend, cpend) == acc.counters(), account_id
            assert version == acc.version
            assert closed is acc.closed
        assert rows["transfers"] == {
            i: (rec.status, rec.amount) for i, rec in model.transfers.items()
        }

    def money_is_conserved_per_ledger_and_asset(self, rows: dict[str, Any]) -> None:
        totals: dict[tuple[str, str], list[int]] = {}
        for account_id, acc in self.model.s.accounts.items():
            dp, cp, dpend, cpend = rows["accounts"][account_id][:4]
            t = totals.setdefault((acc.ledger_id, acc.asset), [0, 0])
            t[0] += dp - cp
            t[1] += dpend - cpend
        assert all(t == [0, 0] for t in totals.values()), totals

    def balances_are_the_sum_of_entries_with_gap_free_versions(self, rows: dict[str, Any]) -> None:
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

    def no_account_violates_its_flags_or_limits(self, rows: dict[str, Any]) -> None:
        for account_id, row in rows["accounts"].items():
            dp, cp, dpend, cpend = row[:4]
            flags = self.model.s.accounts[account_id].flags
            assert min(dp, cp, dpend, cpend) >= 0
            assert max(dp + dpend, cp + cpend) <= AMOUNT_MAX, account_id
            if NO_DEBIT_OVERDRAFT in flags:
                assert dp + dpend <= cp, account_id
            if NO_CREDIT_OVERDRAFT in flags:
                assert cp + cpend <= dp, account_id

    def pending_totals_equal_the_open_pending_transfers(self, rows: dict[str, Any]) -> None:
        for account_id, (dpend, cpend) in self.model.open_pending_totals().items():
            assert rows["accounts"][account_id][2:4] == (dpend, cpend), account_id

    @invariant()
    def the_rows_keep_every_invariant(self) -> None:
        """One read of the rows after each step, checked five ways."""
        rows = self.rows()
        self.database_agrees_with_the_model(rows)
        self.money_is_conserved_per_ledger_and_asset(rows)
        self.balances_are_the_sum_of_entries_with_gap_free_versions(rows)
        self.no_account_violates_its_flags_or_limits(rows)
        self.pending_totals_equal_the_open_pending_transfers(rows)

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


MACHINE_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# -- tests ---------------------------------------------------------------------------------


def test_random_operations_keep_the_ledger_consistent_on_sqlite() -> None:
    run_state_machine_as_test(machine_for(Backend(sqlite_per_run)), settings=MACHINE_SETTINGS)


@pytest.mark.postgres
def test_random_operations_keep_the_ledger_consistent_on_postgresql(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    migrate.upgrade(engine)
    try:
        # One database for the test; each run has its own ledgers, accounts and ids.
        backend = Backend(lambda: (engine, lambda: None))
        run_state_machine_as_test(machine_for(backend), settings=MACHINE_SETTINGS)
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
