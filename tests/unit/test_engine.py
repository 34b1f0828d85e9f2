"""The pure engine on hand-built state: chains, atomic batches, precedence, overflow and
idempotency inside one batch. No database."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from strongroom.core.limits import AMOUNT_MAX, ENTRY_INDEX_STRIDE
from strongroom.ledger.engine import AccountState, BatchState, Engine
from strongroom.ledger.model import (
    AccountFlag,
    Action,
    Direction,
    Leg,
    NewTransfer,
    Status,
    TransferRecord,
    record_from_row,
)
from strongroom.ledger.model import TransferResult as R

LEDGER = "ldg_main"
OTHER_LEDGER = "ldg_other"
NOW_US = 1_700_000_000_000_000
NO_DEBIT_OVERDRAFT = int(AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS)
NO_CREDIT_OVERDRAFT = int(AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS)
D, C = Direction.DEBIT, Direction.CREDIT


def account(
    id: str,
    *,
    flags: int = 0,
    dp: int = 0,
    cp: int = 0,
    dpend: int = 0,
    cpend: int = 0,
    asset: str = "USD",
    ledger_id: str = LEDGER,
    closed: bool = False,
    version: int = 0,
    last_entry_id: int | None = None,
) -> AccountState:
    return AccountState(
        id, ledger_id, asset, 0, flags, closed, dp, cp, dpend, cpend, version, last_entry_id, 0
    )


def state(
    *accounts: AccountState,
    transfers: list[TransferRecord] | None = None,
    reversed_amounts: dict[str, int] | None = None,
    now_us: int = NOW_US,
) -> BatchState:
    return BatchState(
        accounts={a.id: a for a in accounts},
        transfers={t.id: t for t in transfers or []},
        reversed_amounts=dict(reversed_amounts or {}),
        ledgers={LEDGER, OTHER_LEDGER},
        now_us=now_us,
        entry_id_next=1_000,
        seq_next=5_000,
    )


def record(
    id: str,
    *,
    debit: str = "a",
    credit: str = "b",
    amount: int = 100,
    status: Status = Status.POSTED,
    pending: bool = False,
    action: Action = Action.TRANSFER,
    legs: tuple[Leg, ...] | None = None,
    expires_at: int | None = None,
    ledger_id: str = LEDGER,
    metadata: str | None = None,
) -> TransferRecord:
    """A stored transfer as if loaded from the database."""
    return TransferRecord(
        id=id,
        ledger_id=ledger_id,
        action=action,
        status=status,
        debit_account_id=None if legs else debit,
        credit_account_id=None if legs else credit,
        amount=amount,
        legs=legs,
        target_id=None,
        pending=pending,
        timeout_s=0,
        expires_at=expires_at,
        metadata=metadata,
        created_at=NOW_US - 1_000_000,
    )


def tr(id: str, debit: str = "a", credit: str = "b", amount: int = 10, **kw: Any) -> NewTransfer:
    return NewTransfer(
        id=id,
        ledger_id=kw.pop("ledger_id", LEDGER),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        **kw,
    )


def post(id: str, target: str, amount: int = 0, **kw: Any) -> NewTransfer:
    return NewTransfer(
        id=id, ledger_id=LEDGER, action=Action.POST, target_id=target, amount=amount, **kw
    )


def void(id: str, target: str, **kw: Any) -> NewTransfer:
    return NewTransfer(id=id, ledger_id=LEDGER, action=Action.VOID, target_id=target, **kw)


def reverse(id: str, target: str, amount: int = 0, **kw: Any) -> NewTransfer:
    return NewTransfer(
        id=id, ledger_id=LEDGER, action=Action.REVERSE, target_id=target, amount=amount, **kw
    )


def legs_tr(id: str, *legs: tuple[str, Direction, int], **kw: Any) -> NewTransfer:
    return NewTransfer(id=id, ledger_id=LEDGER, legs=tuple(Leg(a, d, n) for a, d, n in legs), **kw)


def results(s: BatchState, batch: list[NewTransfer], *, atomic: bool = False) -> list[R]:
    engine = Engine(s)
    outcomes = engine.apply(batch, atomic=atomic)
    assert [o.index for o in outcomes] == list(range(len(batch)))
    assert [o.transfer_id for o in outcomes] == [t.id for t in batch]
    return [o.result for o in outcomes]


def run(s: BatchState, batch: list[NewTransfer], *, atomic: bool = False) -> tuple[list[R], Engine]:
    engine = Engine(s)
    outcomes = engine.apply(batch, atomic=atomic)
    return [o.result for o in outcomes], engine


def created(engine: Engine) -> list[TransferRecord]:
    """The transfers the batch will insert, whatever shape the engine keeps them in."""
    return [
        r if isinstance(r, TransferRecord) else record_from_row(r) for r in engine.writes.transfers
    ]


def counters(a: AccountState) -> tuple[int, int, int, int]:
    return (a.dp, a.cp, a.dpend, a.cpend)


def account_image(s: BatchState) -> dict[str, tuple[Any, ...]]:
    return {i: (*a.snapshot(), a.closed) for i, a in s.accounts.items()}


# -- basics --------------------------------------------------------------------------------


def test_a_transfer_writes_two_entries_with_running_balances() -> None:
    s = state(account("a"), account("b", version=3, last_entry_id=77))
    res, engine = run(s, [tr("t1", amount=25)])
    assert res == [R.CREATED]
    a, b = s.accounts["a"], s.accounts["b"]
    assert counters(a) == (25, 0, 0, 0)
    assert counters(b) == (0, 25, 0, 0)
    assert (a.version, b.version) == (1, 4)
    entries = engine.writes.entries
    assert [(e[1], e[2], e[3], e[5], e[6]) for e in entries] == [
        ("a", 1, None, 0, 25),
        ("b", 4, 77, 1, 25),
    ]
    assert entries[0][8:12] == (25, 0, 0, 0)
    assert entries[1][8:12] == (0, 25, 0, 0)
    assert a.last_entry_id == entries[0][0]
    assert b.last_entry_id == entries[1][0]
    assert a.dirty
    assert b.dirty
    [rec] = created(engine)
    assert (rec.id, rec.status, rec.amount, rec.seq) == ("t1", Status.POSTED, 25, 5_000)


def test_every_stride_th_version_is_indexed() -> None:
    s = state(account("a", version=ENTRY_INDEX_STRIDE - 2), account("b"))
    _, engine = run(s, [tr(f"t{i}", amount=1) for i in range(3)])
    assert [(r[0], r[1]) for r in engine.writes.index_rows] == [("a", ENTRY_INDEX_STRIDE)]


def test_entry_times_never_go_backwards_within_an_account() -> None:
    a = account("a")
    a.updated_at = NOW_US + 5_000_000  # another process with a clock ahead wrote last
    s = state(a, account("b"))
    _, engine = run(s, [tr("t1")])
    times = {e[1]: e[12] for e in engine.writes.entries}
    assert times == {"a": NOW_US + 5_000_000, "b": NOW_US}


# -- linked chains -------------------------------------------------------------------------


def test_a_failing_chain_rolls_back_balances_versions_entries_and_pending_status() -> None:
    pending = record("p1", debit="c", credit="d", amount=40, status=Status.PENDING, pending=True)
    posted = record("r1", debit="c", credit="d", amount=50)
    s = state(
        account("a", version=ENTRY_INDEX_STRIDE - 1, last_entry_id=9),
        account("b", version=2, last_entry_id=8),
        account("c", dp=50, dpend=40, version=2, last_entry_id=5),
        account("d", cp=50, cpend=40, version=2, last_entry_id=6),
        transfers=[pending, posted],
    )
    before = account_image(s)
    res, engine = run(
        s,
        [
            tr("t1", amount=10, linked=True),  # a reaches an indexed version
            post("t2", "p1", linked=True),  # p1 becomes posted
            reverse("t3", "r1", amount=20, linked=True),  # r1 is partly reversed
            tr("t4", debit="a", credit="nope"),  # fails: the whole chain goes
        ],
    )
    assert res == [R.LINKED_EVENT_FAILED] * 3 + [R.ACCOUNT_NOT_FOUND]
    assert account_image(s) == before
    assert pending.status is Status.PENDING
    assert s.reversed_amounts.get("r1", 0) == 0
    w = engine.writes
    assert (created(engine), w.entries, w.index_rows, w.status_changes) == ([], [], [], {})
    assert w.dirty_accounts(s) == []
    assert (s.entry_id_next, s.seq_next) == (1_000, 5_000)


def test_after_a_rolled_back_chain_the_batch_goes_on_and_ids_are_free_again() -> None:
    pending = record("p1", debit="a", credit="b", amount=40, status=Status.PENDING, pending=True)
    s = state(account("a", dpend=40), account("b", cpend=40), transfers=[pending])
    res, engine = run(
        s,
        [
            tr("t1", linked=True),
            post("t2", "p1", linked=True),
            tr("t3", amount=10, debit="a", credit="a"),  # fails
            tr("t1", amount=10),  # the rolled-back id is unused
            post("t2", "p1"),  # the pending transfer is still pending
        ],
    )
    assert res == [
        R.LINKED_EVENT_FAILED,
        R.LINKED_EVENT_FAILED,
        R.ACCOUNTS_MUST_BE_DIFFERENT,
        R.CREATED,
        R.CREATED,
    ]
    assert counters(s.accounts["a"]) == (50, 0, 0, 0)
    assert counters(s.accounts["b"]) == (0, 50, 0, 0)
    assert s.accounts["a"].version == 2
    # Entry ids and sequence numbers continue from where the rolled-back chain started.
    assert [e[0] for e in engine.writes.entries] == [1_000, 1_001, 1_002, 1_003]
    assert [t.seq for t in created(engine)] == [5_000, 5_001]
    assert engine.writes.status_changes == {"p1": Status.POSTED}


def test_a_failing_chain_undoes_a_pending_created_and_posted_inside_it() -> None:
    s = state(account("a"), account("b"))
    res, engine = run(
        s,
        [
            tr("p1", amount=30, pending=True, linked=True),
            post("p2", "p1", amount=10, linked=True),
            void("p3", "p1"),  # already posted: fails, so everything goes
        ],
    )
    assert res == [R.LINKED_EVENT_FAILED, R.LINKED_EVENT_FAILED, R.PENDING_TRANSFER_ALREADY_POSTED]
    assert counters(s.accounts["a"]) == (0, 0, 0, 0)
    assert s.accounts["a"].version == 0
    assert created(engine) == []
    assert engine.writes.entries == []


def test_a_failing_chain_restores_a_pending_created_earlier_in_the_batch() -> None:
    s = state(account("a"), account("b"))
    res, engine = run(
        s,
        [
            tr("p1", amount=30, pending=True),
            post("p2", "p1", linked=True),
            tr("t3", debit="zz"),  # fails: p1 must be pending again
            void("p4", "p1"),
        ],
    )
    assert res == [R.CREATED, R.LINKED_EVENT_FAILED, R.ACCOUNT_NOT_FOUND, R.CREATED]
    assert [(t.id, t.status) for t in created(engine)] == [
        ("p1", Status.VOIDED),
        ("p4", Status.VOIDED),
    ]
    assert counters(s.accounts["a"]) == (0, 0, 0, 0)
    assert s.accounts["a"].version == 2  # reserve, release


def test_multi_leg_overflow_after_insufficient_funds_in_a_chain_rolls_back() -> None:
    s = state(account("a", flags=NO_DEBIT_OVERDRAFT, cp=10), account("b"), account("c"))
    before = account_image(s)
    res, _ = run(
        s,
        [
            legs_tr("t1", ("a", D, 10), ("b", C, 6), ("c", C, 4), linked=True),
            legs_tr("t2", ("a", D, 1), ("b", C, 1)),  # 11 > 10
        ],
    )
    assert res == [R.LINKED_EVENT_FAILED, R.INSUFFICIENT_FUNDS]
    assert account_image(s) == before


def test_a_succeeding_chain_applies_every_member() -> None:
    s = state(account("a"), account("b"), account("c"))
    res, engine = run(
        s,
        [
            tr("t1", amount=10, linked=True),
            tr("t2", debit="b", credit="c", amount=4, linked=True),
            tr("t3", debit="c", credit="a", amount=1),
        ],
    )
    assert res == [R.CREATED] * 3
    assert [t.id for t in created(engine)] == ["t1", "t2", "t3"]
    assert counters(s.accounts["b"]) == (4, 10, 0, 0)


def test_a_chain_open_at_the_end_of_the_batch_fails_whole() -> None:
    s = state(account("a"), account("b"))
    before = account_image(s)
    res, engine = run(s, [tr("t1", linked=True), tr("t2", linked=True)])
    assert res == [R.LINKED_EVENT_FAILED, R.LINKED_EVENT_CHAIN_OPEN]
    assert account_image(s) == before
    assert created(engine) == []
    assert engine.writes.entries == []


def test_a_single_linked_transfer_at_the_end_is_an_open_chain() -> None:
    s = state(account("a"), account("b"))
    res, engine = run(s, [tr("t0"), tr("t1", linked=True)])
    assert res == [R.CREATED, R.LINKED_EVENT_CHAIN_OPEN]
    assert [t.id for t in created(engine)] == ["t0"]
    assert counters(s.accounts["a"]) == (10, 0, 0, 0)


def test_chains_are_independent_of_each_other_and_of_single_transfers() -> None:
    s = state(account("a", flags=NO_DEBIT_OVERDRAFT, cp=15), account("b"))
    res, _ = run(
        s,
        [
            tr("t1", debit="b", credit="a", amount=5),
            tr("t2", amount=10, linked=True),
            tr("t3", amount=11),  # 21 > 20: insufficient funds, chain 1 goes
            tr("t4", amount=20, linked=True),
            tr("t5", debit="b", credit="a", amount=1),  # chain 2 succeeds
            tr("t6", amount=2),  # 20 + 2 > 21: refused on its own
        ],
    )
    assert res == [
        R.CREATED,
        R.LINKED_EVENT_FAILED,
        R.INSUFFICIENT_FUNDS,
        R.CREATED,
        R.CREATED,
        R.INSUFFICIENT_FUNDS,
    ]
    assert counters(s.accounts["a"]) == (20, 21, 0, 0)


def test_members_after_the_failure_are_linked_event_failed_without_being_tried() -> None:
    s = state(account("a"), account("b"))
    res, engine = run(
        s,
        [
            tr("t1", debit="x", linked=True),  # fails first
            tr("t2", linked=True),
            tr("t2", amount=99),  # would differ from t2, but is never looked at
        ],
    )
    assert res == [R.ACCOUNT_NOT_FOUND, R.LINKED_EVENT_FAILED, R.LINKED_EVENT_FAILED]
    assert created(engine) == []


# -- atomic batches ------------------------------------------------------------------------


def test_an_atomic_batch_is_all_or_nothing() -> None:
    s = state(account("a", flags=NO_DEBIT_OVERDRAFT, cp=100), account("b"))
    before = account_image(s)
    res, engine = run(
        s, [tr("t1", amount=60), tr("t2", amount=50), tr("t3", amount=1)], atomic=True
    )
    assert res == [R.LINKED_EVENT_FAILED, R.INSUFFICIENT_FUNDS, R.LINKED_EVENT_FAILED]
    assert account_image(s) == before
    assert created(engine) == []


def test_an_atomic_batch_that_passes_applies_everything() -> None:
    s = state(account("a", flags=NO_DEBIT_OVERDRAFT, cp=100), account("b"))
    res, _ = run(s, [tr("t1", amount=60), tr("t2", amount=40)], atomic=True)
    assert res == [R.CREATED, R.CREATED]
    assert counters(s.accounts["a"]) == (100, 100, 0, 0)


def test_an_atomic_batch_ignores_linked_flags() -> None:
    s = state(account("a"), account("b"))
    res, _ = run(s, [tr("t1", linked=True), tr("t2", linked=True)], atomic=True)
    assert res == [R.CREATED, R.CREATED]


def test_an_atomic_batch_of_one() -> None:
    s = state(account("a"), account("b"))
    assert results(s, [tr("t1", debit="zz")], atomic=True) == [R.ACCOUNT_NOT_FOUND]
    assert results(s, [tr("t1", linked=True)], atomic=True) == [R.CREATED]


# -- precedence ----------------------------------------------------------------------------


def _closed(id: str, **kw: Any) -> AccountState:
    return account(id, closed=True, **kw)


@pytest.mark.parametrize(
    ("accounts", "transfer", "expected"),
    [
        # the ledger before the accounts
        (
            [account("a"), account("b")],
            tr("t", ledger_id="ldg_none", debit="zz"),
            R.LEDGER_NOT_FOUND,
        ),
        # unknown before same-account
        ([account("a")], tr("t", debit="zz", credit="zz"), R.ACCOUNT_NOT_FOUND),
        # same-account before ledger mismatch
        ([account("a", ledger_id=OTHER_LEDGER)], tr("t", credit="a"), R.ACCOUNTS_MUST_BE_DIFFERENT),
        # ledger mismatch before asset mismatch
        (
            [account("a", asset="EUR"), account("b", ledger_id=OTHER_LEDGER)],
            tr("t"),
            R.LEDGER_MISMATCH,
        ),
        # asset mismatch before closed
        ([_closed("a", asset="EUR"), account("b")], tr("t"), R.ASSET_MISMATCH),
        # closed before insufficient funds
        ([account("a", flags=NO_DEBIT_OVERDRAFT), _closed("b")], tr("t"), R.ACCOUNT_CLOSED),
        # overflow before insufficient funds on the same account
        (
            [account("a", flags=NO_DEBIT_OVERDRAFT, dp=AMOUNT_MAX), account("b")],
            tr("t", amount=1),
            R.OVERFLOWS_DEBITS_POSTED,
        ),
        # the credit side's own flag
        ([account("a"), account("b", flags=NO_CREDIT_OVERDRAFT)], tr("t"), R.INSUFFICIENT_FUNDS),
    ],
)
def test_transfer_checks_in_order(
    accounts: list[AccountState], transfer: NewTransfer, expected: R
) -> None:
    assert results(state(*accounts), [transfer]) == [expected]


def test_an_existing_id_is_compared_before_anything_else() -> None:
    old = record("t", amount=10)
    # The request now names an unknown ledger and unknown accounts: idempotency wins.
    s = state(transfers=[old])
    assert results(s, [tr("t", ledger_id="ldg_none", debit="x", credit="y")]) == [
        R.EXISTS_WITH_DIFFERENT_LEDGER_ID
    ]
    assert results(s, [tr("t", amount=10)]) == [R.EXISTS]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (tr("t", amount=10), R.EXISTS),
        (tr("t", amount=11), R.EXISTS_WITH_DIFFERENT_AMOUNT),
        (tr("t", debit="c"), R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID),
        (tr("t", credit="c"), R.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID),
        (tr("t", pending=True), R.EXISTS_WITH_DIFFERENT_PENDING),
        (tr("t", metadata='{"a":1}'), R.EXISTS_WITH_DIFFERENT_METADATA),
        (post("t", "p"), R.EXISTS_WITH_DIFFERENT_ACTION),
        (legs_tr("t", ("a", D, 10), ("b", C, 10)), R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID),
        # every difference at once: the first in precedence is reported
        (tr("t", debit="c", amount=99, pending=True), R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID),
    ],
)
def test_idempotency_names_the_first_difference(request_: NewTransfer, expected: R) -> None:
    s = state(account("a"), account("b"), account("c"), transfers=[record("t", amount=10)])
    assert results(s, [request_]) == [expected]


@pytest.mark.parametrize(
    ("target", "request_", "expected"),
    [
        (None, post("t", "p"), R.PENDING_TRANSFER_NOT_FOUND),
        (
            record("p", ledger_id=OTHER_LEDGER, pending=True, status=Status.PENDING),
            post("t", "p"),
            R.LEDGER_MISMATCH,
        ),
        (record("p"), post("t", "p"), R.PENDING_TRANSFER_NOT_PENDING),
        (
            record("p", pending=True, status=Status.POSTED),
            void("t", "p"),
            R.PENDING_TRANSFER_ALREADY_POSTED,
        ),
        (
            record("p", pending=True, status=Status.VOIDED),
            post("t", "p"),
            R.PENDING_TRANSFER_ALREADY_VOIDED,
        ),
        (
            record("p", pending=True, status=Status.EXPIRED),
            post("t", "p"),
            R.PENDING_TRANSFER_EXPIRED,
        ),
        (
            record("p", pending=True, status=Status.PENDING, expires_at=NOW_US),
            post("t", "p"),
            R.PENDING_TRANSFER_EXPIRED,
        ),
        (
            record("p", pending=True, status=Status.PENDING),
            post("t", "p", 101),
            R.EXCEEDS_PENDING_TRANSFER_AMOUNT,
        ),
        (
            record(
                "p",
                amount=100,
                pending=True,
                status=Status.PENDING,
                legs=(Leg("a", D, 100), Leg("b", C, 60), Leg("c", C, 40)),
            ),
            post("t", "p", 50),
            R.PARTIAL_AMOUNT_NEEDS_TWO_LEGS,
        ),
        (
            record("p", pending=True, status=Status.PENDING, expires_at=NOW_US + 1),
            post("t", "p", 100),
            R.CREATED,
        ),
    ],
)
def test_post_and_void_checks_in_order(
    target: TransferRecord | None, request_: NewTransfer, expected: R
) -> None:
    s = state(
        account("a", dpend=100),
        account("b", cpend=100),
        account("c"),
        transfers=[target] if target else [],
    )
    assert results(s, [request_]) == [expected]


@pytest.mark.parametrize(
    ("target", "already", "request_", "expected"),
    [
        (None, 0, reverse("t", "r"), R.REVERSAL_TARGET_NOT_FOUND),
        (record("r", ledger_id=OTHER_LEDGER), 0, reverse("t", "r"), R.LEDGER_MISMATCH),
        (
            record("r", pending=True, status=Status.PENDING),
            0,
            reverse("t", "r"),
            R.REVERSAL_TARGET_NOT_POSTED,
        ),
        (
            record("r", pending=True, status=Status.POSTED),
            0,
            reverse("t", "r"),
            R.REVERSAL_TARGET_NOT_POSTED,
        ),
        (
            record("r", status=Status.VOIDED, action=Action.VOID),
            0,
            reverse("t", "r"),
            R.REVERSAL_TARGET_NOT_POSTED,
        ),
        (record("r"), 0, reverse("t", "r", 101), R.EXCEEDS_REVERSIBLE_AMOUNT),
        (record("r"), 60, reverse("t", "r", 41), R.EXCEEDS_REVERSIBLE_AMOUNT),
        (record("r"), 100, reverse("t", "r"), R.EXCEEDS_REVERSIBLE_AMOUNT),
        (
            record("r", legs=(Leg("a", D, 100), Leg("b", C, 60), Leg("c", C, 40))),
            0,
            reverse("t", "r", 50),
            R.PARTIAL_AMOUNT_NEEDS_TWO_LEGS,
        ),
        (record("r"), 60, reverse("t", "r", 40), R.CREATED),
        (record("r"), 60, reverse("t", "r"), R.CREATED),
    ],
)
def test_reversal_checks_in_order(
    target: TransferRecord | None, already: int, request_: NewTransfer, expected: R
) -> None:
    s = state(
        account("a", dp=100),
        account("b", cp=60 if target and target.legs else 100),
        account("c", cp=40 if target and target.legs else 0),
        transfers=[target] if target else [],
        reversed_amounts={"r": already} if already else None,
    )
    assert results(s, [request_]) == [expected]


def test_a_reversal_on_a_closed_account_is_refused() -> None:
    s = state(account("a", dp=100), _closed("b", cp=100), transfers=[record("r")])
    assert results(s, [reverse("t", "r")]) == [R.ACCOUNT_CLOSED]


@pytest.mark.parametrize(
    ("target", "already", "request_"),
    [
        (record("r"), 0, reverse("t", "r", 101)),
        (record("r"), 100, reverse("t", "r")),
        (record("r", status=Status.VOIDED, action=Action.VOID), 0, reverse("t", "r")),
        (record("r", pending=True, status=Status.POSTED), 0, reverse("t", "r")),
        (
            record("r", legs=(Leg("a", D, 100), Leg("b", C, 60), Leg("c", C, 40))),
            0,
            reverse("t", "r", 50),
        ),
    ],
)
def test_a_closed_account_takes_precedence_over_the_reversal_checks(
    target: TransferRecord, already: int, request_: NewTransfer
) -> None:
    """account_closed is before reversal_target_not_posted, exceeds_reversible_amount and
    partial_amount_needs_two_legs in TransferResult's order: the first failing check is the
    one reported, whichever check the engine would reach first."""
    s = state(
        account("a", dp=100),
        _closed("b", cp=60 if target.legs else 100),
        account("c", cp=40 if target.legs else 0),
        transfers=[target],
        reversed_amounts={"r": already} if already else None,
    )
    before = account_image(s)
    assert results(s, [request_]) == [R.ACCOUNT_CLOSED]
    assert account_image(s) == before


def test_legs_unbalanced_per_asset_even_when_balanced_in_total() -> None:
    s = state(account("a"), account("b"), account("e1", asset="EUR"), account("e2", asset="EUR"))
    # USD: +10 -5, EUR: +5 -10: the totals balance, each asset does not.
    t = legs_tr("t", ("a", D, 10), ("b", C, 5), ("e1", D, 5), ("e2", C, 10))
    assert results(s, [t]) == [R.LEGS_UNBALANCED_PER_ASSET]
    balanced = legs_tr("u", ("a", D, 10), ("b", C, 10), ("e1", D, 5), ("e2", C, 5))
    assert results(s, [balanced]) == [R.CREATED]


def test_overflow_on_any_leg_takes_precedence_over_insufficient_funds() -> None:
    s = state(account("a", flags=NO_DEBIT_OVERDRAFT), account("b", cp=AMOUNT_MAX))
    assert results(s, [tr("t", amount=1)]) == [R.OVERFLOWS_CREDITS_POSTED]


def test_overflow_on_any_leg_takes_precedence_in_a_multi_leg_transfer() -> None:
    s = state(account("a", flags=NO_DEBIT_OVERDRAFT), account("b"), account("c", cpend=AMOUNT_MAX))
    before = account_image(s)
    t = legs_tr("t", ("a", D, 2), ("b", C, 1), ("c", C, 1), pending=True)
    assert results(s, [t]) == [R.OVERFLOWS_CREDITS_PENDING]
    assert account_image(s) == before


def test_pending_overflow_on_any_leg_takes_precedence() -> None:
    s = state(account("a", dp=AMOUNT_MAX), account("b", cpend=AMOUNT_MAX))
    assert results(s, [tr("t", amount=1, pending=True)]) == [R.OVERFLOWS_CREDITS_PENDING]


def test_account_not_found_in_any_leg_takes_precedence_over_closed() -> None:
    s = state(_closed("a"), account("b"))
    t = legs_tr("t", ("a", D, 10), ("b", C, 5), ("zz", C, 5))
    assert results(s, [t]) == [R.ACCOUNT_NOT_FOUND]


# -- overflow ------------------------------------------------------------------------------


def test_balances_reach_int64_max_exactly_and_never_wrap() -> None:
    s = state(account("a", dp=AMOUNT_MAX - 5), account("b", cp=AMOUNT_MAX - 5))
    assert results(s, [tr("t1", amount=5)]) == [R.CREATED]
    assert s.accounts["a"].dp == AMOUNT_MAX
    assert s.accounts["b"].cp == AMOUNT_MAX
    before = account_image(s)
    assert results(s, [tr("t2", amount=1)]) == [R.OVERFLOWS_DEBITS_POSTED]
    assert results(s, [tr("t3", debit="c", amount=1)]) == [R.ACCOUNT_NOT_FOUND]
    assert account_image(s) == before


def test_the_credit_side_overflows_too() -> None:
    s = state(account("a"), account("b", cp=AMOUNT_MAX))
    before = account_image(s)
    assert results(s, [tr("t", amount=1)]) == [R.OVERFLOWS_CREDITS_POSTED]
    assert account_image(s) == before


def test_an_amount_of_int64_max_from_zero_is_created() -> None:
    s = state(account("a"), account("b"))
    assert results(s, [tr("t", amount=AMOUNT_MAX)]) == [R.CREATED]
    assert results(s, [tr("u", amount=1)]) == [R.OVERFLOWS_DEBITS_POSTED]


@pytest.mark.parametrize(
    ("debit", "credit", "pending", "expected"),
    [
        (account("a", dpend=AMOUNT_MAX), account("b"), True, R.OVERFLOWS_DEBITS_PENDING),
        (account("a"), account("b", cpend=AMOUNT_MAX), True, R.OVERFLOWS_CREDITS_PENDING),
        (account("a", dp=AMOUNT_MAX), account("b"), True, R.OVERFLOWS_DEBITS),
        (account("a", dpend=AMOUNT_MAX), account("b"), False, R.OVERFLOWS_DEBITS),
        (account("a"), account("b", cp=AMOUNT_MAX), True, R.OVERFLOWS_CREDITS),
        (account("a"), account("b", cpend=AMOUNT_MAX), False, R.OVERFLOWS_CREDITS),
    ],
)
def test_pending_and_combined_overflows(
    debit: AccountState, credit: AccountState, pending: bool, expected: R
) -> None:
    s = state(copy.copy(debit), copy.copy(credit))
    before = account_image(s)
    assert results(s, [tr("t", amount=1, pending=pending)]) == [expected]
    assert account_image(s) == before


def test_overflow_is_refused_per_leg_in_a_multi_leg_transfer() -> None:
    s = state(account("a"), account("b"), account("c", cp=AMOUNT_MAX - 1))
    before = account_image(s)
    t = legs_tr("t", ("a", D, 4), ("b", C, 2), ("c", C, 2))
    assert results(s, [t]) == [R.OVERFLOWS_CREDITS_POSTED]
    assert account_image(s) == before


def test_a_reversal_cannot_overflow_the_other_side() -> None:
    s = state(account("a", dp=100, cp=AMOUNT_MAX), account("b", cp=100), transfers=[record("r")])
    before = account_image(s)
    assert results(s, [reverse("t", "r")]) == [R.OVERFLOWS_CREDITS_POSTED]
    assert account_image(s) == before


# -- idempotency inside one batch ----------------------------------------------------------


def test_a_resubmission_inside_the_batch_is_exists_and_writes_once() -> None:
    s = state(account("a"), account("b"))
    res, engine = run(s, [tr("t1", amount=5), tr("t1", amount=5), tr("t1", amount=6)])
    assert res == [R.CREATED, R.EXISTS, R.EXISTS_WITH_DIFFERENT_AMOUNT]
    assert [t.id for t in created(engine)] == ["t1"]
    assert len(engine.writes.entries) == 2
    assert counters(s.accounts["a"]) == (5, 0, 0, 0)


def test_resubmitted_post_and_reversal_inside_the_batch() -> None:
    s = state(account("a"), account("b"))
    res, engine = run(
        s,
        [
            tr("p", amount=30, pending=True),
            post("q", "p", 20),
            post("q", "p", 20),
            post("q", "p"),  # amount 0 means the whole reservation (30): not what was posted
            post("q", "p", 21),
            reverse("r", "q", 5),
            reverse("r", "q", 5),
            reverse("r", "q", 6),
        ],
    )
    assert res == [
        R.CREATED,
        R.CREATED,
        R.EXISTS,
        R.EXISTS_WITH_DIFFERENT_AMOUNT,
        R.EXISTS_WITH_DIFFERENT_AMOUNT,
        R.CREATED,
        R.EXISTS,
        R.EXISTS_WITH_DIFFERENT_AMOUNT,
    ]
    assert [t.id for t in created(engine)] == ["p", "q", "r"]
    # 20 posted, 10 released, 5 reversed.
    assert counters(s.accounts["a"]) == (20, 5, 0, 0)
    assert counters(s.accounts["b"]) == (5, 20, 0, 0)


def test_a_partial_post_resubmitted_as_a_full_post_differs_in_amount() -> None:
    """TigerBeetle's state-machine case: post 13 of a pending 15 as t101, then resubmit t101
    as a post of the full amount (amount 0). The full amount (15) is fixed: not what happened."""
    s = state(account("a"), account("b"))
    res, _ = run(s, [tr("p", amount=15, pending=True), post("t101", "p", 13), post("t101", "p")])
    assert res == [R.CREATED, R.CREATED, R.EXISTS_WITH_DIFFERENT_AMOUNT]
    # A full post resubmitted as a full post (0) or with its amount is the same request.
    res, _ = run(
        s,
        [tr("p2", amount=15, pending=True), post("f", "p2"), post("f", "p2"), post("f", "p2", 15)],
    )
    assert res == [R.CREATED, R.CREATED, R.EXISTS, R.EXISTS]


def test_an_open_chain_after_a_failure_still_says_it_is_open() -> None:
    """[t1 linked, t2 invalid linked, t3 linked] with t3 last: t3 answers that the chain is
    open (as docs/errors.md and TigerBeetle say), so a client that fixes t2 learns of it now."""
    s = state(account("a"), account("b"))
    before = account_image(s)
    res, engine = run(
        s, [tr("t1", linked=True), tr("t2", debit="zz", linked=True), tr("t3", linked=True)]
    )
    assert res == [R.LINKED_EVENT_FAILED, R.ACCOUNT_NOT_FOUND, R.LINKED_EVENT_CHAIN_OPEN]
    assert account_image(s) == before
    assert created(engine) == []


def test_a_resubmission_inside_a_failed_chain_does_not_survive_it() -> None:
    s = state(account("a"), account("b"))
    res, engine = run(
        s,
        [tr("t1", linked=True), tr("t1", linked=True), tr("t2", debit="zz"), tr("t1", amount=3)],
    )
    assert res == [R.LINKED_EVENT_FAILED, R.LINKED_EVENT_FAILED, R.ACCOUNT_NOT_FOUND, R.CREATED]
    assert [(t.id, t.amount) for t in created(engine)] == [("t1", 3)]


# -- two-phase and expiry in the engine ----------------------------------------------------


def test_partial_post_releases_the_rest_of_the_reservation() -> None:
    p = record("p", amount=100, status=Status.PENDING, pending=True)
    s = state(account("a", dpend=100), account("b", cpend=100), transfers=[p])
    res, engine = run(s, [post("q", "p", 30)])
    assert res == [R.CREATED]
    assert counters(s.accounts["a"]) == (30, 0, 0, 0)
    assert counters(s.accounts["b"]) == (0, 30, 0, 0)
    assert p.status is Status.POSTED
    assert engine.writes.status_changes == {"p": Status.POSTED}
    assert [(e[6], e[7]) for e in engine.writes.entries] == [(30, -100), (30, -100)]


def test_expire_releases_only_still_pending_transfers() -> None:
    p1 = record("p1", amount=10, status=Status.PENDING, pending=True, expires_at=NOW_US)
    p2 = record("p2", amount=5, status=Status.POSTED, pending=True, expires_at=NOW_US)
    s = state(account("a", dpend=10), account("b", cpend=10), transfers=[p1, p2])
    engine = Engine(s)
    assert engine.expire([p1, p2]) == 1
    assert p1.status is Status.EXPIRED
    assert counters(s.accounts["a"]) == (0, 0, 0, 0)
    assert engine.writes.status_changes == {"p1": Status.EXPIRED}
    assert created(engine) == []
