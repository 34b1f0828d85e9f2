"""The ledger service end to end on a real database: SQLite and PostgreSQL (the `ledger`
fixture runs every test on both)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine as SAEngine

from strongroom.core.clock import MonotonicClock
from strongroom.core.errors import Conflict, InvalidRequest, NotFound
from strongroom.core.limits import (
    AMOUNT_MAX,
    BATCH_TRANSFERS_MAX,
    ENTRY_INDEX_STRIDE,
    METADATA_BYTES_MAX,
)
from strongroom.ledger.coalescer import GroupCommitter
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
    canonical_metadata,
)
from strongroom.ledger.model import TransferResult as R
from strongroom.ledger.service import (
    Account,
    AccountExists,
    AccountSpec,
    LedgerService,
    transfer_to_dict,
)

D, C = Direction.DEBIT, Direction.CREDIT
NO_OVERDRAFT = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
START_US = 1_800_000_000_000_000  # a fixed, known "now" for tests that drive the clock


class ManualClock(MonotonicClock):
    """A clock the test moves by hand; each reading optionally ticks it forward by `step_us`."""

    def __init__(self, start_us: int = START_US, step_us: int = 0) -> None:
        super().__init__()
        self.t = start_us
        self.step_us = step_us

    def now_us(self) -> int:
        value = self.t
        self.t += self.step_us
        return value

    def advance(self, us: int) -> None:
        self.t += us


@dataclass
class Book:
    """One ledger with a funding account (debit-normal, unrestricted) and customer accounts
    (credit-normal, may not be overdrawn), plus a EUR pair and a second ledger."""

    svc: LedgerService
    ledger_id: str
    bank: Account
    alice: Account
    bob: Account
    carol: Account  # credit-normal, no flags
    bank_eur: Account
    alice_eur: Account
    other_ledger_id: str
    other: Account  # USD, in the other ledger

    def fund(self, account: Account, amount: int, **kw: Any) -> TransferOutcome:
        out = self.svc.transfer(self.ledger_id, self.bank.id, account.id, amount, **kw)
        assert out.result is R.CREATED, out
        return out

    def transfer(self, debit: Account, credit: Account, amount: int, **kw: Any) -> R:
        return self.svc.transfer(self.ledger_id, debit.id, credit.id, amount, **kw).result

    def post(self, batch: list[NewTransfer], **kw: Any) -> list[R]:
        return [o.result for o in self.svc.post_transfers(batch, **kw)]

    def one(self, t: NewTransfer) -> R:
        [result] = self.post([t])
        return result

    def balances(self, account: Account) -> dict[str, int]:
        return self.svc.get_account(account.id).balance_view()


@pytest.fixture
def book(ledger: LedgerService) -> Book:
    svc = ledger
    main = svc.create_ledger("main")
    other = svc.create_ledger("other")
    accounts = svc.create_accounts(
        [
            AccountSpec(main.id, "USD", D, name="bank"),
            AccountSpec(main.id, "USD", C, NO_OVERDRAFT, name="alice"),
            AccountSpec(main.id, "USD", C, NO_OVERDRAFT, name="bob"),
            AccountSpec(main.id, "USD", C, name="carol"),
            AccountSpec(main.id, "EUR", D, name="bank eur"),
            AccountSpec(main.id, "EUR", C, NO_OVERDRAFT, name="alice eur"),
            AccountSpec(other.id, "USD", C, name="other"),
        ]
    )
    bank, alice, bob, carol, bank_eur, alice_eur, stranger = accounts
    return Book(svc, main.id, bank, alice, bob, carol, bank_eur, alice_eur, other.id, stranger)


def snapshot(svc: LedgerService) -> dict[str, Any]:
    """Everything a refused request must leave as it was."""
    with svc.engine.connect() as conn:
        return {
            "transfers": conn.execute(
                sa.text("SELECT id, status FROM transfers ORDER BY id")
            ).all(),
            "entries": conn.execute(sa.text("SELECT COUNT(*) FROM entries")).scalar_one(),
            "index": conn.execute(sa.text("SELECT COUNT(*) FROM entry_index")).scalar_one(),
            "accounts": conn.execute(
                sa.text(
                    "SELECT id, version, debits_posted, credits_posted, debits_pending, "
                    "credits_pending, closed, last_entry_id FROM accounts ORDER BY id"
                )
            ).all(),
            "ledgers": conn.execute(sa.text("SELECT COUNT(*) FROM ledgers")).scalar_one(),
        }


def assert_nothing_written(svc: LedgerService, action: Callable[[], object]) -> object:
    before = snapshot(svc)
    value = action()
    assert snapshot(svc) == before
    return value


def assert_refused(svc: LedgerService, code: str, action: Callable[[], object]) -> None:
    def run() -> None:
        with pytest.raises(InvalidRequest) as exc:
            action()
        assert exc.value.code == code, exc.value

    assert_nothing_written(svc, run)


def tr(book: Book, id: str, debit: Account, credit: Account, amount: int, **kw: Any) -> NewTransfer:
    return NewTransfer(
        id=id,
        ledger_id=kw.pop("ledger_id", book.ledger_id),
        debit_account_id=debit.id,
        credit_account_id=credit.id,
        amount=amount,
        **kw,
    )


def act(
    book: Book, id: str, action: Action, target: str, amount: int = 0, **kw: Any
) -> NewTransfer:
    return NewTransfer(
        id=id, ledger_id=book.ledger_id, action=action, target_id=target, amount=amount, **kw
    )


# -- transfers -----------------------------------------------------------------------------


def test_a_simple_transfer_moves_money_and_writes_two_entries(book: Book) -> None:
    svc = book.svc
    out = svc.transfer(
        book.ledger_id, book.bank.id, book.alice.id, 1_000, id="fund-1", metadata={"k": "v"}
    )
    assert out.result is R.CREATED
    assert out.transfer_id == "fund-1"
    assert book.balances(book.alice)["posted"] == 1_000
    assert book.balances(book.bank)["posted"] == 1_000  # debit-normal: debits count up
    rec = svc.get_transfer("fund-1")
    assert (rec.action, rec.status, rec.amount, rec.pending) == (
        Action.TRANSFER,
        Status.POSTED,
        1_000,
        False,
    )
    assert (rec.debit_account_id, rec.credit_account_id) == (book.bank.id, book.alice.id)
    assert rec.metadata == '{"k":"v"}'
    [entry] = svc.list_entries(book.alice.id).data
    assert (entry.version, entry.transfer_id, entry.direction, entry.amount) == (
        1,
        "fund-1",
        C,
        1_000,
    )
    assert entry.balances_after == Balances(0, 1_000, 0, 0)
    assert svc.verify().ok


def test_an_overdraft_is_refused_and_nothing_is_written(book: Book) -> None:
    book.fund(book.alice, 100)
    assert book.transfer(book.alice, book.bob, 100) is R.CREATED
    result = assert_nothing_written(book.svc, lambda: book.transfer(book.alice, book.bob, 1))
    assert result is R.INSUFFICIENT_FUNDS
    assert book.balances(book.alice)["posted"] == 0


def test_a_multi_leg_transfer_splits_one_debit_over_several_credits(book: Book) -> None:
    legs = (Leg(book.bank.id, D, 100), Leg(book.alice.id, C, 60), Leg(book.bob.id, C, 40))
    assert book.one(NewTransfer("split", book.ledger_id, legs=legs)) is R.CREATED
    assert book.balances(book.bank)["posted"] == 100
    assert book.balances(book.alice)["posted"] == 60
    assert book.balances(book.bob)["posted"] == 40
    rec = book.svc.get_transfer("split")
    assert rec.legs == legs
    assert rec.amount == 100
    assert (rec.debit_account_id, rec.credit_account_id) == (None, None)
    assert book.svc.verify().ok


def test_multi_leg_balance_is_per_asset(book: Book) -> None:
    # 100 USD against 100 EUR: balanced in total, unbalanced in each asset.
    mixed = (
        Leg(book.bank.id, D, 100),
        Leg(book.alice_eur.id, C, 100),
    )
    result = assert_nothing_written(
        book.svc, lambda: book.one(NewTransfer("fx-bad", book.ledger_id, legs=mixed))
    )
    assert result is R.LEGS_UNBALANCED_PER_ASSET
    both = (
        Leg(book.bank.id, D, 100),
        Leg(book.alice.id, C, 100),
        Leg(book.bank_eur.id, D, 90),
        Leg(book.alice_eur.id, C, 90),
    )
    assert book.one(NewTransfer("fx-ok", book.ledger_id, legs=both)) is R.CREATED
    assert book.balances(book.alice)["posted"] == 100
    assert book.balances(book.alice_eur)["posted"] == 90
    assert book.svc.verify().ok


def test_a_batch_gives_every_transfer_its_own_result(book: Book) -> None:
    book.fund(book.alice, 50)
    results = book.post(
        [
            tr(book, "b1", book.alice, book.bob, 30),
            tr(book, "b2", book.alice, book.bob, 30),  # 60 > 50
            tr(book, "b3", book.bob, book.carol, 10),
            tr(book, "b4", book.alice, book.alice_eur, 1),
        ]
    )
    assert results == [R.CREATED, R.INSUFFICIENT_FUNDS, R.CREATED, R.ASSET_MISMATCH]
    assert {t.id for t in book.svc.list_transfers(ledger_id=book.ledger_id).data} >= {"b1", "b3"}
    with pytest.raises(NotFound):
        book.svc.get_transfer("b2")


def test_a_batch_of_the_maximum_size_is_accepted(book: Book) -> None:
    batch = [tr(book, f"max-{i}", book.bank, book.carol, 1) for i in range(BATCH_TRANSFERS_MAX)]
    results = book.post(batch)
    assert results == [R.CREATED] * BATCH_TRANSFERS_MAX
    carol = book.svc.get_account(book.carol.id)
    assert carol.version == BATCH_TRANSFERS_MAX
    assert carol.balance_view()["posted"] == BATCH_TRANSFERS_MAX
    assert book.svc.verify().ok


def test_linked_chain_and_atomic_batch_through_the_service(book: Book) -> None:
    book.fund(book.alice, 100)
    before = snapshot(book.svc)
    chain = [
        tr(book, "c1", book.alice, book.bob, 60, linked=True),
        tr(book, "c2", book.bob, book.carol, 60, linked=True),
        tr(book, "c3", book.alice, book.carol, 60),  # 120 > 100: the chain fails
    ]
    assert book.post(chain) == [R.LINKED_EVENT_FAILED, R.LINKED_EVENT_FAILED, R.INSUFFICIENT_FUNDS]
    assert snapshot(book.svc) == before
    atomic = [
        tr(book, "a1", book.alice, book.bob, 60),
        tr(book, "a2", book.bob, book.carol, 61),  # bob has 60
    ]
    assert book.post(atomic, atomic=True) == [R.LINKED_EVENT_FAILED, R.INSUFFICIENT_FUNDS]
    assert snapshot(book.svc) == before
    atomic[1].amount = 60
    assert book.post(atomic, atomic=True) == [R.CREATED, R.CREATED]
    assert book.balances(book.carol)["posted"] == 60


# -- bad input: its own error, and nothing written -----------------------------------------


def test_unknown_account_is_refused(book: Book) -> None:
    def run() -> R:
        return book.svc.transfer(book.ledger_id, book.bank.id, "acc_nope", 10).result

    assert assert_nothing_written(book.svc, run) is R.ACCOUNT_NOT_FOUND
    legs = (Leg(book.bank.id, D, 10), Leg("acc_nope", C, 10))
    result = assert_nothing_written(
        book.svc, lambda: book.one(NewTransfer("x", book.ledger_id, legs=legs))
    )
    assert result is R.ACCOUNT_NOT_FOUND


def test_asset_mismatch_is_refused(book: Book) -> None:
    result = assert_nothing_written(book.svc, lambda: book.transfer(book.bank, book.alice_eur, 10))
    assert result is R.ASSET_MISMATCH


def test_accounts_of_another_ledger_are_refused(book: Book) -> None:
    result = assert_nothing_written(book.svc, lambda: book.transfer(book.bank, book.other, 10))
    assert result is R.LEDGER_MISMATCH


def test_same_account_on_both_sides_is_refused(book: Book) -> None:
    result = assert_nothing_written(book.svc, lambda: book.transfer(book.bank, book.bank, 10))
    assert result is R.ACCOUNTS_MUST_BE_DIFFERENT


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (0, "amount_not_positive"),
        (-5, "amount_not_positive"),
        (1.5, "amount_not_integer"),
        (10.0, "amount_not_integer"),
        ("10", "amount_not_integer"),
        (True, "amount_not_integer"),
        (AMOUNT_MAX + 1, "amount_too_large"),
    ],
)
def test_bad_amounts_are_refused(book: Book, amount: Any, code: str) -> None:
    assert_refused(book.svc, code, lambda: book.transfer(book.bank, book.alice, amount))
    batch = [tr(book, "ok", book.bank, book.alice, 1), tr(book, "bad", book.bank, book.bob, amount)]
    assert_refused(book.svc, code, lambda: book.post(batch))


def test_an_amount_of_int64_max_is_accepted_and_one_more_overflows(book: Book) -> None:
    assert book.transfer(book.bank, book.carol, AMOUNT_MAX) is R.CREATED
    assert book.balances(book.carol)["posted"] == AMOUNT_MAX
    result = assert_nothing_written(book.svc, lambda: book.transfer(book.bank, book.carol, 1))
    assert result is R.OVERFLOWS_DEBITS_POSTED
    assert book.svc.verify().ok


def test_unbalanced_legs_are_refused(book: Book) -> None:
    legs = (Leg(book.bank.id, D, 100), Leg(book.alice.id, C, 60), Leg(book.bob.id, C, 39))
    assert_refused(
        book.svc,
        "unbalanced_legs",
        lambda: book.post([NewTransfer("u", book.ledger_id, legs=legs)]),
    )
    dup = (Leg(book.bank.id, D, 100), Leg(book.alice.id, C, 50), Leg(book.alice.id, C, 50))
    assert_refused(
        book.svc,
        "duplicate_leg_account",
        lambda: book.post([NewTransfer("u", book.ledger_id, legs=dup)]),
    )
    single = (Leg(book.bank.id, D, 100),)
    assert_refused(
        book.svc, "invalid_legs", lambda: book.post([NewTransfer("u", book.ledger_id, legs=single)])
    )


def test_a_closed_account_refuses_transfers_until_reopened(book: Book) -> None:
    book.fund(book.alice, 100)
    closed = book.svc.close_account(book.bob.id)
    assert closed.closed
    for debit, credit in ((book.alice, book.bob), (book.bob, book.alice)):
        result = assert_nothing_written(book.svc, partial(book.transfer, debit, credit, 1))
        assert result is R.ACCOUNT_CLOSED
    legs = (Leg(book.bank.id, D, 2), Leg(book.alice.id, C, 1), Leg(book.bob.id, C, 1))
    result = assert_nothing_written(
        book.svc, lambda: book.one(NewTransfer("l", book.ledger_id, legs=legs))
    )
    assert result is R.ACCOUNT_CLOSED
    assert not book.svc.close_account(book.bob.id, closed=False).closed
    assert book.transfer(book.alice, book.bob, 1) is R.CREATED


def test_a_reversal_touching_a_closed_account_is_refused(book: Book) -> None:
    book.fund(book.alice, 100, id="f")
    book.svc.close_account(book.alice.id)
    result = assert_nothing_written(book.svc, lambda: book.one(act(book, "r", Action.REVERSE, "f")))
    assert result is R.ACCOUNT_CLOSED


def test_a_batch_one_over_the_limit_is_refused(book: Book) -> None:
    batch = [tr(book, f"big-{i}", book.bank, book.carol, 1) for i in range(BATCH_TRANSFERS_MAX + 1)]
    assert_refused(book.svc, "batch_too_large", lambda: book.post(batch))
    assert_refused(book.svc, "batch_too_large", lambda: book.post([]))


def test_metadata_too_large_is_refused(book: Book) -> None:
    big = {"note": "x" * METADATA_BYTES_MAX}
    assert_refused(
        book.svc,
        "metadata_too_large",
        lambda: book.svc.transfer(book.ledger_id, book.bank.id, book.alice.id, 1, metadata=big),
    )
    many = {f"k{i}": i for i in range(51)}
    assert_refused(
        book.svc,
        "metadata_too_large",
        lambda: book.svc.create_account(book.ledger_id, "USD", C, metadata=many),
    )
    assert_refused(
        book.svc,
        "invalid_metadata",
        lambda: book.svc.transfer(
            book.ledger_id, book.bank.id, book.alice.id, 1, metadata={"rate": 1.5}
        ),
    )


def test_batch_metadata_over_the_limit_is_refused(book: Book) -> None:
    big = '{"note":"' + "x" * METADATA_BYTES_MAX + '"}'
    t = tr(book, "big", book.bank, book.alice, 1, metadata=big)
    assert_refused(book.svc, "metadata_too_large", lambda: book.post([t]))


def test_batch_metadata_that_is_not_json_is_refused(book: Book) -> None:
    t = tr(book, "bad", book.bank, book.alice, 1, metadata="not json")
    assert_refused(book.svc, "invalid_metadata", lambda: book.post([t]))
    assert book.svc.list_transfers(metadata=("k", "v")).data == []


def test_an_unknown_ledger_is_refused(book: Book) -> None:
    result = assert_nothing_written(
        book.svc, lambda: book.one(tr(book, "x", book.bank, book.alice, 1, ledger_id="ldg_nope"))
    )
    assert result is R.LEDGER_NOT_FOUND

    def create() -> None:
        with pytest.raises(NotFound):
            book.svc.create_account("ldg_nope", "USD", C)

    assert_nothing_written(book.svc, create)


def test_account_creation_is_all_or_nothing(book: Book) -> None:
    def create(specs: list[AccountSpec], error: type[Exception], code: str) -> None:
        with pytest.raises(error) as exc:
            book.svc.create_accounts(specs)
        assert getattr(exc.value, "code", None) == code

    good = AccountSpec(book.ledger_id, "USD", C)
    cases: list[tuple[list[AccountSpec], type[Exception], str]] = [
        ([good, AccountSpec(book.ledger_id, "ZZZ", C)], InvalidRequest, "unknown_asset"),
        (
            [good, AccountSpec(book.ledger_id, "USD", C, AccountFlag(3))],
            InvalidRequest,
            "flags_are_mutually_exclusive",
        ),
        (
            [good, AccountSpec(book.ledger_id, "USD", C, id=book.bank.id)],
            AccountExists,
            "exists_with_different_normal_balance",
        ),
        ([good, AccountSpec("ldg_nope", "USD", C)], NotFound, "not_found"),
        (
            [
                AccountSpec(book.ledger_id, "USD", C, id="acc_twice"),
                AccountSpec(book.ledger_id, "USD", D, id="acc_twice"),
            ],
            AccountExists,
            "exists_with_different_normal_balance",
        ),
        (
            [good, AccountSpec(book.ledger_id, "USD", C, id="has space")],
            InvalidRequest,
            "invalid_id",
        ),
        ([], InvalidRequest, "batch_too_large"),
    ]
    for specs, error, code in cases:
        assert_nothing_written(book.svc, partial(create, specs, error, code))


def test_creating_an_account_again_is_exists_and_a_difference_is_named(book: Book) -> None:
    """As transfers do: the same client-chosen id with the same fields answers `exists` (the
    stored account, nothing written); a field that differs names itself, in result order."""
    spec = AccountSpec(
        book.ledger_id, "USD", C, NO_OVERDRAFT, name="dana", metadata={"k": 1}, id="acc_dana"
    )
    [created] = book.svc.create_accounts([spec])
    book.fund(created, 50)
    [again] = assert_nothing_written(book.svc, lambda: book.svc.create_accounts([spec]))  # type: ignore[misc]
    assert again == book.svc.get_account("acc_dana")
    [outcome] = book.svc.create_accounts_results([spec])
    assert (outcome.result, outcome.account) == (AccountResult.EXISTS, again)
    # Identical twice in one batch: created, then exists.
    twin = replace(spec, id="acc_twin")
    outcomes = book.svc.create_accounts_results([twin, twin])
    assert [o.result for o in outcomes] == [AccountResult.CREATED, AccountResult.EXISTS]
    differences = [
        (replace(spec, ledger_id=book.other_ledger_id), "exists_with_different_ledger_id"),
        (replace(spec, asset="EUR"), "exists_with_different_asset"),
        (replace(spec, normal_balance=D), "exists_with_different_normal_balance"),
        (replace(spec, flags=AccountFlag.NONE), "exists_with_different_flags"),
        (replace(spec, name="eve"), "exists_with_different_name"),
        (replace(spec, name=None), "exists_with_different_name"),
        (replace(spec, metadata={"k": 2}), "exists_with_different_metadata"),
        (replace(spec, asset="EUR", name="eve"), "exists_with_different_asset"),
    ]
    fresh = AccountSpec(book.ledger_id, "USD", C, id="acc_fresh")
    for changed, code in differences:

        def create(changed: AccountSpec, code: str) -> None:
            with pytest.raises(AccountExists) as exc:
                book.svc.create_accounts([fresh, changed])
            assert exc.value.code == code
            field_name = code.removeprefix("exists_with_different_")
            assert exc.value.param == f"accounts[1].{field_name}"

        assert_nothing_written(book.svc, partial(create, changed, code))
        [outcome] = book.svc.create_accounts_results([changed])
        assert (outcome.result.value, outcome.account) == (code, None)


def test_custom_assets(book: Book) -> None:
    asset = book.svc.create_asset("POINTS", 0)
    assert book.svc.get_asset("POINTS") == asset
    assert book.svc.get_asset("KWD").scale == 3
    with pytest.raises(Conflict):
        book.svc.create_asset("POINTS", 2)
    with pytest.raises(InvalidRequest) as exc:
        book.svc.create_asset("USD", 2)
    assert exc.value.code == "asset_exists"
    a, b = (book.svc.create_account(book.ledger_id, "POINTS", n) for n in (D, C))
    assert book.svc.transfer(book.ledger_id, a.id, b.id, 7).result is R.CREATED
    assert book.transfer(book.bank, b, 7) is R.ASSET_MISMATCH


# -- idempotency ---------------------------------------------------------------------------


def test_resubmitting_identical_content_is_exists_and_changes_nothing(book: Book) -> None:
    book.fund(book.alice, 100)
    first = [
        tr(book, "i1", book.alice, book.bob, 10, metadata='{"a":1,"b":"x"}'),
        tr(book, "i2", book.alice, book.bob, 20, pending=True, timeout_s=60),
        NewTransfer("i3", book.ledger_id, legs=(Leg(book.bank.id, D, 5), Leg(book.carol.id, C, 5))),
    ]
    assert book.post(first) == [R.CREATED] * 3
    assert book.post([act(book, "i4", Action.POST, "i2", 15)]) == [R.CREATED]
    assert book.post([act(book, "i5", Action.REVERSE, "i1", 4)]) == [R.CREATED]
    again = [
        *first,
        act(book, "i4", Action.POST, "i2", 15),
        act(book, "i5", Action.REVERSE, "i1", 4),
    ]
    results = assert_nothing_written(book.svc, lambda: book.post(again))
    assert results == [R.EXISTS] * 5
    # Metadata is compared canonically: key order does not matter.
    meta = canonical_metadata({"b": "x", "a": 1})
    resubmitted = tr(book, "i1", book.alice, book.bob, 10, metadata=meta)
    assert assert_nothing_written(book.svc, lambda: book.one(resubmitted)) is R.EXISTS


def _variants(book: Book) -> list[tuple[NewTransfer, R]]:
    base: dict[str, Any] = {
        "id": "idem",
        "ledger_id": book.ledger_id,
        "debit_account_id": book.alice.id,
        "credit_account_id": book.bob.id,
        "amount": 10,
        "pending": True,
        "timeout_s": 60,
        "metadata": '{"k":"v"}',
    }

    def v(**changes: Any) -> NewTransfer:
        return NewTransfer(**{**base, **changes})

    return [
        (v(ledger_id=book.other_ledger_id), R.EXISTS_WITH_DIFFERENT_LEDGER_ID),
        (
            NewTransfer("idem", book.ledger_id, action=Action.VOID, target_id="x"),
            R.EXISTS_WITH_DIFFERENT_ACTION,
        ),
        (v(debit_account_id=book.carol.id), R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID),
        (v(credit_account_id=book.carol.id), R.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID),
        (v(amount=11), R.EXISTS_WITH_DIFFERENT_AMOUNT),
        (v(pending=False, timeout_s=0), R.EXISTS_WITH_DIFFERENT_PENDING),
        (v(timeout_s=61), R.EXISTS_WITH_DIFFERENT_TIMEOUT),
        (v(effective_at=1_700_000_000_000_000), R.EXISTS_WITH_DIFFERENT_EFFECTIVE_AT),
        (v(metadata='{"k":"w"}'), R.EXISTS_WITH_DIFFERENT_METADATA),
        (v(metadata=None), R.EXISTS_WITH_DIFFERENT_METADATA),
        (v(), R.EXISTS),
    ]


def test_different_content_under_the_same_id_names_the_difference(book: Book) -> None:
    book.fund(book.alice, 100)
    variants = _variants(book)
    assert book.one(variants[-1][0]) is R.CREATED
    for request, expected in variants:
        assert assert_nothing_written(book.svc, partial(book.one, request)) is expected


def test_idempotency_of_legs_and_of_post_void_reverse(book: Book) -> None:
    legs = (Leg(book.bank.id, D, 10), Leg(book.alice.id, C, 6), Leg(book.bob.id, C, 4))
    other = (Leg(book.bank.id, D, 10), Leg(book.alice.id, C, 5), Leg(book.bob.id, C, 5))
    assert book.one(NewTransfer("legs", book.ledger_id, legs=legs)) is R.CREATED
    book.fund(book.carol, 100, id="f")
    assert book.one(tr(book, "p", book.carol, book.bob, 30, pending=True)) is R.CREATED
    assert book.one(tr(book, "p2", book.carol, book.bob, 30, pending=True)) is R.CREATED
    assert book.one(act(book, "post", Action.POST, "p", 20)) is R.CREATED
    assert book.one(act(book, "void", Action.VOID, "p2")) is R.CREATED
    assert book.one(act(book, "rev", Action.REVERSE, "f", 10)) is R.CREATED
    cases = [
        (NewTransfer("legs", book.ledger_id, legs=other), R.EXISTS_WITH_DIFFERENT_LEGS),
        (act(book, "post", Action.POST, "p", 21), R.EXISTS_WITH_DIFFERENT_AMOUNT),
        (act(book, "post", Action.POST, "p2", 20), R.EXISTS_WITH_DIFFERENT_TARGET_ID),
        (act(book, "post", Action.VOID, "p"), R.EXISTS_WITH_DIFFERENT_ACTION),
        (
            act(book, "post", Action.POST, "p", 20, metadata='{"a":1}'),
            R.EXISTS_WITH_DIFFERENT_METADATA,
        ),
        (act(book, "void", Action.VOID, "p2"), R.EXISTS),
        (act(book, "void", Action.VOID, "p"), R.EXISTS_WITH_DIFFERENT_TARGET_ID),
        (act(book, "rev", Action.REVERSE, "f", 10), R.EXISTS),
        (act(book, "rev", Action.REVERSE, "f", 11), R.EXISTS_WITH_DIFFERENT_AMOUNT),
        (act(book, "rev", Action.REVERSE, "legs", 10), R.EXISTS_WITH_DIFFERENT_TARGET_ID),
        (tr(book, "rev", book.carol, book.bank, 10), R.EXISTS_WITH_DIFFERENT_ACTION),
    ]
    for request, expected in cases:
        assert assert_nothing_written(book.svc, partial(book.one, request)) is expected


def test_a_refused_transfer_is_not_remembered(book: Book) -> None:
    """Only created transfers hold their id: a refused one may be retried once it can pass."""
    assert book.transfer(book.alice, book.bob, 50, id="later") is R.INSUFFICIENT_FUNDS
    book.fund(book.alice, 50)
    assert book.transfer(book.alice, book.bob, 50, id="later") is R.CREATED
    assert book.transfer(book.alice, book.bob, 50, id="later") is R.EXISTS


# -- two-phase -----------------------------------------------------------------------------


def test_a_pending_transfer_reserves_funds(book: Book) -> None:
    book.fund(book.alice, 100)
    assert book.transfer(book.alice, book.bob, 70, id="p", pending=True) is R.CREATED
    alice = book.balances(book.alice)
    assert (alice["posted"], alice["available"], alice["pending"]) == (100, 30, 30)
    assert (alice["debits_pending"], alice["credits_pending"]) == (70, 0)
    bob = book.balances(book.bob)
    assert (bob["posted"], bob["available"], bob["pending"]) == (0, 0, 70)
    assert book.svc.get_transfer("p").status is Status.PENDING
    # The reservation counts against the limit.
    assert book.transfer(book.alice, book.carol, 31) is R.INSUFFICIENT_FUNDS
    assert book.transfer(book.alice, book.carol, 30) is R.CREATED
    report = book.svc.verify()
    assert report.ok
    assert report.transfers_pending == 1


def test_a_full_post_moves_the_reserved_amount(book: Book) -> None:
    book.fund(book.alice, 100)
    book.transfer(book.alice, book.bob, 70, id="p", pending=True)
    assert book.one(act(book, "p-post", Action.POST, "p")) is R.CREATED
    alice = book.balances(book.alice)
    assert (alice["posted"], alice["available"], alice["debits_pending"]) == (30, 30, 0)
    assert book.balances(book.bob)["posted"] == 70
    assert book.svc.get_transfer("p").status is Status.POSTED
    post = book.svc.get_transfer("p-post")
    assert (post.action, post.status, post.amount, post.target_id) == (
        Action.POST,
        Status.POSTED,
        70,
        "p",
    )
    assert book.svc.verify().ok


def test_a_partial_post_releases_the_rest(book: Book) -> None:
    book.fund(book.alice, 100)
    book.transfer(book.alice, book.bob, 70, id="p", pending=True)
    assert book.one(act(book, "p-post", Action.POST, "p", 25)) is R.CREATED
    alice = book.balances(book.alice)
    assert (alice["posted"], alice["available"], alice["debits_pending"]) == (75, 75, 0)
    bob = book.balances(book.bob)
    assert (bob["posted"], bob["credits_pending"]) == (25, 0)
    assert book.svc.get_transfer("p-post").amount == 25
    assert book.svc.verify().ok


def test_a_void_releases_the_reservation(book: Book) -> None:
    book.fund(book.alice, 100)
    book.transfer(book.alice, book.bob, 70, id="p", pending=True)
    assert book.one(act(book, "p-void", Action.VOID, "p")) is R.CREATED
    alice = book.balances(book.alice)
    assert (alice["posted"], alice["available"], alice["debits_pending"]) == (100, 100, 0)
    assert book.balances(book.bob)["pending"] == 0
    assert book.svc.get_transfer("p").status is Status.VOIDED
    assert book.svc.verify().ok


def test_a_pending_multi_leg_transfer_posts_and_voids_whole(book: Book) -> None:
    legs = (Leg(book.bank.id, D, 100), Leg(book.alice.id, C, 60), Leg(book.bob.id, C, 40))
    assert book.one(NewTransfer("pl", book.ledger_id, legs=legs, pending=True)) is R.CREATED
    assert book.balances(book.alice)["credits_pending"] == 60
    result = assert_nothing_written(
        book.svc, lambda: book.one(act(book, "pl-post", Action.POST, "pl", 50))
    )
    assert result is R.PARTIAL_AMOUNT_NEEDS_TWO_LEGS
    assert book.one(act(book, "pl-post", Action.POST, "pl")) is R.CREATED
    assert book.balances(book.alice)["posted"] == 60
    assert book.balances(book.bob)["posted"] == 40
    assert book.svc.verify().ok


def test_a_partial_post_and_reversal_of_legs_record_what_moved(book: Book) -> None:
    legs = (Leg(book.bank.id, D, 100), Leg(book.carol.id, C, 100))
    assert book.one(NewTransfer("p", book.ledger_id, legs=legs, pending=True)) is R.CREATED
    assert book.one(act(book, "q", Action.POST, "p", 30)) is R.CREATED
    assert book.one(act(book, "r", Action.REVERSE, "q", 10)) is R.CREATED
    assert book.balances(book.carol)["posted"] == 20
    for transfer_id, amount in (("q", 30), ("r", 10)):
        shown = transfer_to_dict(book.svc.get_transfer(transfer_id))
        assert shown["amount"] == amount
        assert [e["amount"] for e in shown["entries"]] == [amount, amount]


def test_a_pending_transfer_resolves_once(book: Book) -> None:
    book.fund(book.alice, 100)
    book.transfer(book.alice, book.bob, 10, id="p1", pending=True)
    book.transfer(book.alice, book.bob, 10, id="p2", pending=True)
    assert book.one(act(book, "p1-post", Action.POST, "p1")) is R.CREATED
    assert book.one(act(book, "p2-void", Action.VOID, "p2")) is R.CREATED
    book.fund(book.carol, 10, id="posted")
    cases = [
        (act(book, "again", Action.POST, "p1"), R.PENDING_TRANSFER_ALREADY_POSTED),
        (act(book, "again", Action.VOID, "p1"), R.PENDING_TRANSFER_ALREADY_POSTED),
        (act(book, "again", Action.POST, "p2"), R.PENDING_TRANSFER_ALREADY_VOIDED),
        (act(book, "again", Action.VOID, "p2"), R.PENDING_TRANSFER_ALREADY_VOIDED),
        (act(book, "again", Action.POST, "posted"), R.PENDING_TRANSFER_NOT_PENDING),
        (act(book, "again", Action.POST, "nope"), R.PENDING_TRANSFER_NOT_FOUND),
    ]
    for request, expected in cases:
        assert assert_nothing_written(book.svc, partial(book.one, request)) is expected


def test_posting_more_than_reserved_is_refused(book: Book) -> None:
    book.fund(book.alice, 100)
    book.transfer(book.alice, book.bob, 10, id="p", pending=True)
    result = assert_nothing_written(
        book.svc, lambda: book.one(act(book, "x", Action.POST, "p", 11))
    )
    assert result is R.EXCEEDS_PENDING_TRANSFER_AMOUNT


def test_post_after_expiry_is_refused(book: Book) -> None:
    clock = ManualClock()
    book.svc.clock = clock
    book.fund(book.alice, 100)
    book.transfer(book.alice, book.bob, 10, id="p1", pending=True, timeout_s=1)
    book.transfer(book.alice, book.bob, 10, id="p2", pending=True, timeout_s=1)
    clock.advance(999_999)
    assert book.one(act(book, "p1-post", Action.POST, "p1")) is R.CREATED
    clock.advance(1)
    result = assert_nothing_written(
        book.svc, lambda: book.one(act(book, "p2-post", Action.POST, "p2"))
    )
    assert result is R.PENDING_TRANSFER_EXPIRED
    result = assert_nothing_written(
        book.svc, lambda: book.one(act(book, "p2-void", Action.VOID, "p2"))
    )
    assert result is R.PENDING_TRANSFER_EXPIRED
    # Until expire_due runs, the reservation is still held.
    assert book.balances(book.alice)["debits_pending"] == 10


def test_a_post_waiting_on_a_lock_past_its_deadline_finds_the_transfer_expired(
    book: Book,
) -> None:
    """Found in review (PostgreSQL): a batch's time was read before its rows were locked, so a
    post that waited on a lock held by another batch past its pending transfer's deadline
    posted it after the deadline, while the expiry job skipped the locked row. The time is now
    read once every lock is held (on SQLite, once the write lock is)."""
    clock = ManualClock()
    book.svc.clock = clock
    book.fund(book.alice, 100)
    book.transfer(book.alice, book.bob, 10, id="p", pending=True, timeout_s=1)
    engine = book.svc.engine
    sqlite = engine.dialect.name == "sqlite"
    blocker = engine.raw_connection()
    cur = blocker.cursor()
    if sqlite:
        cur.execute("BEGIN IMMEDIATE")  # another writer holds the database's write lock
    else:  # another batch holds a lock on one of the post's accounts
        cur.execute("SELECT id FROM accounts WHERE id = %s FOR UPDATE", (book.bob.id,))
    results: list[R] = []
    poster = threading.Thread(
        target=lambda: results.append(book.one(act(book, "p-post", Action.POST, "p")))
    )
    poster.start()
    try:
        if sqlite:
            poster.join(0.3)
        else:  # until the post waits on the lock
            with engine.connect() as conn:
                for _ in range(1_000):
                    waiting = conn.execute(
                        sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                    ).scalar_one()
                    if waiting:
                        break
                    conn.rollback()
                    poster.join(0.01)
                assert waiting, "the post never waited on the lock"
        clock.advance(2_000_000)  # the deadline passes while it waits
    finally:
        if sqlite:
            cur.execute("ROLLBACK")
        else:
            blocker.rollback()
        blocker.close()
        poster.join(30)
    assert results == [R.PENDING_TRANSFER_EXPIRED]
    assert book.svc.get_transfer("p").status is Status.PENDING  # until expire_due runs


def test_expire_due_releases_reservations_and_marks_them_expired(book: Book) -> None:
    clock = ManualClock()
    book.svc.clock = clock
    book.fund(book.alice, 100)
    book.transfer(book.alice, book.bob, 10, id="short", pending=True, timeout_s=1)
    book.transfer(book.alice, book.bob, 20, id="long", pending=True, timeout_s=10)
    book.transfer(book.alice, book.bob, 30, id="never", pending=True)
    assert book.svc.expire_due() == 0
    clock.advance(1_000_000)
    assert book.svc.expire_due() == 1
    assert book.svc.get_transfer("short").status is Status.EXPIRED
    assert book.svc.get_transfer("long").status is Status.PENDING
    alice = book.balances(book.alice)
    assert (alice["debits_pending"], alice["available"]) == (50, 50)
    assert book.balances(book.bob)["credits_pending"] == 50
    assert book.svc.expire_due() == 0
    assert book.one(act(book, "x", Action.POST, "short")) is R.PENDING_TRANSFER_EXPIRED
    clock.advance(3600 * 1_000_000)
    assert book.svc.expire_due() == 1
    assert book.svc.get_transfer("never").status is Status.PENDING
    alice = book.balances(book.alice)
    assert (alice["posted"], alice["debits_pending"]) == (100, 30)
    # The expiry is in each account's history, under the pending transfer's id.
    entries = book.svc.list_entries(book.alice.id).data
    assert [(e.transfer_id, e.pending_delta) for e in entries[:2]] == [
        ("long", -20),
        ("short", -10),
    ]
    report = book.svc.verify()
    assert report.ok
    assert report.transfers_pending == 1


# -- reversals -----------------------------------------------------------------------------


def test_a_full_reversal_undoes_a_transfer_and_leaves_it_unchanged(book: Book) -> None:
    book.fund(book.alice, 100, id="f", metadata={"order": "o1"})
    original = book.svc.get_transfer("f")
    assert book.one(act(book, "r", Action.REVERSE, "f")) is R.CREATED
    assert book.balances(book.alice)["posted"] == 0
    assert book.balances(book.bank)["posted"] == 0
    assert book.svc.get_transfer("f") == original
    rev = book.svc.get_transfer("r")
    assert (rev.action, rev.amount, rev.target_id) == (Action.REVERSE, 100, "f")
    assert (rev.debit_account_id, rev.credit_account_id) == (book.alice.id, book.bank.id)
    result = assert_nothing_written(
        book.svc, lambda: book.one(act(book, "r2", Action.REVERSE, "f"))
    )
    assert result is R.EXCEEDS_REVERSIBLE_AMOUNT
    assert book.svc.verify().ok


def test_partial_reversals_up_to_the_original_amount(book: Book) -> None:
    book.fund(book.alice, 100, id="f")
    original = book.svc.get_transfer("f")
    assert book.one(act(book, "r1", Action.REVERSE, "f", 30)) is R.CREATED
    assert book.one(act(book, "r2", Action.REVERSE, "f", 50)) is R.CREATED
    result = assert_nothing_written(
        book.svc, lambda: book.one(act(book, "r3", Action.REVERSE, "f", 21))
    )
    assert result is R.EXCEEDS_REVERSIBLE_AMOUNT
    assert book.one(act(book, "r3", Action.REVERSE, "f")) is R.CREATED  # what is left: 20
    assert book.svc.get_transfer("r3").amount == 20
    assert book.balances(book.alice)["posted"] == 0
    assert book.svc.get_transfer("f") == original
    assert book.svc.verify().ok


def test_a_reversal_respects_the_reversed_accounts_limits(book: Book) -> None:
    book.fund(book.alice, 100, id="f")
    assert book.transfer(book.alice, book.bob, 80) is R.CREATED
    result = assert_nothing_written(
        book.svc, lambda: book.one(act(book, "r", Action.REVERSE, "f", 21))
    )
    assert result is R.INSUFFICIENT_FUNDS
    assert book.one(act(book, "r", Action.REVERSE, "f", 20)) is R.CREATED


def test_what_can_and_cannot_be_reversed(book: Book) -> None:
    book.fund(book.alice, 100)
    book.transfer(book.alice, book.bob, 40, id="p", pending=True)
    book.transfer(book.alice, book.bob, 10, id="v", pending=True)
    assert book.one(act(book, "v-void", Action.VOID, "v")) is R.CREATED
    cases = [
        (act(book, "r", Action.REVERSE, "p"), R.REVERSAL_TARGET_NOT_POSTED),
        (act(book, "r", Action.REVERSE, "v-void"), R.REVERSAL_TARGET_NOT_POSTED),
        (act(book, "r", Action.REVERSE, "nope"), R.REVERSAL_TARGET_NOT_FOUND),
    ]
    for request, expected in cases:
        assert assert_nothing_written(book.svc, partial(book.one, request)) is expected
    assert book.one(act(book, "p-post", Action.POST, "p", 30)) is R.CREATED
    # The pending transfer itself stays not reversible; its post is.
    assert book.one(act(book, "r", Action.REVERSE, "p")) is R.REVERSAL_TARGET_NOT_POSTED
    result = assert_nothing_written(
        book.svc, lambda: book.one(act(book, "r", Action.REVERSE, "p-post", 31))
    )
    assert result is R.EXCEEDS_REVERSIBLE_AMOUNT
    assert book.one(act(book, "r", Action.REVERSE, "p-post")) is R.CREATED
    assert book.balances(book.bob)["posted"] == 0
    assert book.balances(book.alice)["posted"] == 100
    assert book.svc.verify().ok


# -- closing accounts ----------------------------------------------------------------------


def test_close_is_refused_while_a_transfer_is_pending(book: Book) -> None:
    book.fund(book.alice, 100)
    book.transfer(book.alice, book.bob, 10, id="p", pending=True)
    for account in (book.alice, book.bob):

        def close(a: Account = account) -> None:
            with pytest.raises(Conflict):
                book.svc.close_account(a.id)

        assert_nothing_written(book.svc, close)
    assert book.one(act(book, "p-void", Action.VOID, "p")) is R.CREATED
    assert book.svc.close_account(book.bob.id).closed
    with pytest.raises(NotFound):
        book.svc.close_account("acc_nope")


# -- history -------------------------------------------------------------------------------


def _walk_entries(svc: LedgerService, account_id: str, limit: int) -> list[Any]:
    entries: list[Any] = []
    cursor: int | None = None
    while True:
        page = svc.list_entries(account_id, starting_after=cursor, limit=limit)
        entries.extend(page.data)
        if not page.has_more:
            return entries
        assert len(page.data) == limit
        cursor = page.data[-1].version


def test_history_over_many_entries_answers_every_version_and_time(book: Book) -> None:
    """~200 entries on one account, crossing the entry index stride three times: every
    version and every entry time reads back the balance the account had then."""
    svc = book.svc
    clock = ManualClock(step_us=1_000)
    svc.clock = clock
    live: dict[int, Balances] = {}
    for i in range(200):
        if i % 5 == 3:
            assert book.transfer(book.alice, book.bob, 1) is R.CREATED
        elif i % 10 == 9:
            assert book.transfer(book.alice, book.carol, 2, id=f"p{i}", pending=True) is R.CREATED
        elif i % 10 == 4 and i > 10:
            assert book.one(act(book, f"post{i}", Action.POST, f"p{i - 5}", 1)) is R.CREATED
        else:
            book.fund(book.alice, i + 1)
        if i % 7 == 0:
            book.fund(book.bob, 1)  # other accounts' entries interleave with alice's
        account = svc.get_account(book.alice.id)
        live[account.version] = account.balances
    last_version = svc.get_account(book.alice.id).version
    assert last_version >= 3 * ENTRY_INDEX_STRIDE
    assert sorted(live) == list(range(1, last_version + 1))

    entries = _walk_entries(svc, book.alice.id, limit=37)
    assert [e.version for e in entries] == list(range(last_version, 0, -1))
    times = [e.created_at for e in reversed(entries)]
    assert times == sorted(set(times)), "one entry per batch, with the clock ticking"
    for entry in entries:
        assert entry.balances_after == live[entry.version]
        v, balances, normal = svc.balance_at(book.alice.id, version=entry.version)
        assert (v, balances, normal) == (entry.version, live[entry.version], C)
        v, balances, _ = svc.balance_at(book.alice.id, as_of_us=entry.created_at)
        assert (v, balances) == (entry.version, live[entry.version])
        v, balances, _ = svc.balance_at(book.alice.id, as_of_us=entry.created_at - 1)
        assert (v, balances) == (entry.version - 1, live.get(entry.version - 1, Balances()))
    assert svc.balance_at(book.alice.id, version=0)[:2] == (0, Balances())
    assert svc.balance_at(book.alice.id, as_of_us=clock.t + 10**9)[:2] == (
        last_version,
        live[last_version],
    )
    for bad in (-1, last_version + 1):
        with pytest.raises(InvalidRequest) as exc:
            svc.balance_at(book.alice.id, version=bad)
        assert exc.value.code == "invalid_version"
    with pytest.raises(InvalidRequest):
        svc.balance_at(book.alice.id)
    with pytest.raises(InvalidRequest):
        svc.balance_at(book.alice.id, version=1, as_of_us=1)
    with pytest.raises(NotFound):
        svc.balance_at("acc_nope", version=1)
    assert svc.verify().ok


def test_history_of_an_account_filled_in_one_batch(book: Book) -> None:
    """One batch of 150 transfers on one account: the index rows come from a single commit."""
    count = 150
    results = book.post([tr(book, f"t{i}", book.bank, book.carol, i + 1) for i in range(count)])
    assert results == [R.CREATED] * count
    entries = _walk_entries(book.svc, book.carol.id, limit=100)
    assert [e.version for e in entries] == list(range(count, 0, -1))
    running = 0
    for entry in reversed(entries):
        running += entry.amount
        assert entry.transfer_id == f"t{entry.version - 1}"
        assert entry.balances_after == Balances(0, running, 0, 0)
        assert book.svc.balance_at(book.carol.id, version=entry.version)[1] == Balances(
            0, running, 0, 0
        )


def test_entries_carry_running_balances_and_gap_free_versions(book: Book) -> None:
    book.fund(book.alice, 100)
    book.transfer(book.alice, book.bob, 30, id="p", pending=True)
    book.one(act(book, "p-post", Action.POST, "p", 20))
    book.transfer(book.alice, book.bob, 5)
    entries = book.svc.list_entries(book.alice.id).data
    assert [e.version for e in entries] == [4, 3, 2, 1]
    assert [(e.transfer_id, e.direction, e.amount, e.pending_delta) for e in entries] == [
        (entries[0].transfer_id, D, 5, 0),
        ("p-post", D, 20, -30),
        ("p", D, 0, 30),
        (entries[3].transfer_id, C, 100, 0),
    ]
    assert [e.balances_after for e in entries] == [
        Balances(25, 100, 0, 0),
        Balances(20, 100, 0, 0),
        Balances(0, 100, 30, 0),
        Balances(0, 100, 0, 0),
    ]
    view = entries[2].to_dict(C)
    assert view["balance_after"]["available"] == 70


def test_list_entries_pages_with_a_cursor(book: Book) -> None:
    for i in range(7):
        book.fund(book.alice, i + 1)
    page = book.svc.list_entries(book.alice.id, limit=3)
    assert ([e.version for e in page.data], page.has_more) == ([7, 6, 5], True)
    page = book.svc.list_entries(book.alice.id, starting_after=5, limit=3)
    assert ([e.version for e in page.data], page.has_more) == ([4, 3, 2], True)
    page = book.svc.list_entries(book.alice.id, starting_after=2, limit=3)
    assert ([e.version for e in page.data], page.has_more) == ([1], False)
    page = book.svc.list_entries(book.alice.id, starting_after=1, limit=3)
    assert (page.data, page.has_more) == ([], False)
    assert book.svc.list_entries(book.carol.id).data == []
    for limit in (0, 101):
        with pytest.raises(InvalidRequest) as exc:
            book.svc.list_entries(book.alice.id, limit=limit)
        assert exc.value.code == "invalid_limit"
    with pytest.raises(NotFound):
        book.svc.list_entries("acc_nope")


# -- queries -------------------------------------------------------------------------------


def _ids(records: list[TransferRecord]) -> list[str]:
    return [r.id for r in records]


def _walk_transfers(svc: LedgerService, limit: int, **filters: Any) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = svc.list_transfers(starting_after=cursor, limit=limit, **filters)
        ids.extend(_ids(page.data))
        if not page.has_more:
            return ids
        assert len(page.data) == limit
        cursor = page.data[-1].id


def test_list_transfers_filters_and_pages(book: Book) -> None:
    svc = book.svc
    clock = ManualClock(step_us=1_000)
    svc.clock = clock
    created: list[tuple[str, int]] = []  # (id, created_at) in creation order

    def note(transfer_id: str) -> None:
        created.append((transfer_id, svc.get_transfer(transfer_id).created_at))

    for i in range(6):
        book.fund(book.alice, 10, id=f"f{i}", metadata={"order": f"o{i}", "n": i})
        note(f"f{i}")
    book.transfer(book.alice, book.bob, 5, id="p1", pending=True)
    note("p1")
    book.transfer(book.alice, book.bob, 5, id="p2", pending=True)
    note("p2")
    book.one(act(book, "p2-void", Action.VOID, "p2"))
    note("p2-void")
    assert book.transfer(book.carol, book.bob, 1, id="bc") is R.CREATED
    note("bc")
    other_bank = svc.create_account(book.other_ledger_id, "USD", D)
    svc.transfer(book.other_ledger_id, other_bank.id, book.other.id, 3, id="o1")
    note("o1")
    newest_first = [i for i, _ in reversed(created)]
    main = [i for i in newest_first if i != "o1"]

    assert _walk_transfers(svc, 100) == newest_first
    assert _walk_transfers(svc, 3, ledger_id=book.ledger_id) == main
    assert _walk_transfers(svc, 4, ledger_id=book.other_ledger_id) == ["o1"]
    assert _walk_transfers(svc, 2, account_id=book.bob.id) == ["bc", "p2-void", "p2", "p1"]
    assert _walk_transfers(svc, 2, account_id=book.carol.id) == ["bc"]
    assert _walk_transfers(svc, 5, status=Status.PENDING) == ["p1"]
    assert _walk_transfers(svc, 5, status=Status.VOIDED) == ["p2-void", "p2"]
    assert _walk_transfers(svc, 5, metadata=("order", "o3")) == ["f3"]
    assert _walk_transfers(svc, 5, metadata=("order", "o9")) == []
    assert _walk_transfers(svc, 5, ledger_id=book.ledger_id, account_id=book.alice.id) == [
        i for i in main if i != "bc"
    ]

    times = dict(created)
    # Bounds between two transfers' times: created_after and created_before select a window.
    after = (times["f1"] + times["f2"]) // 2
    before = (times["p2"] + times["p2-void"]) // 2
    window = _walk_transfers(svc, 2, created_after=after, created_before=before)
    assert window == ["p2", "p1", "f5", "f4", "f3", "f2"]
    assert _walk_transfers(svc, 2, created_after=after, status=Status.PENDING) == ["p1"]

    page = svc.list_transfers(limit=3)
    assert (_ids(page.data), page.has_more) == (newest_first[:3], True)
    page = svc.list_transfers(limit=len(newest_first))
    assert page.has_more is False
    with pytest.raises(InvalidRequest) as exc:
        svc.list_transfers(starting_after="tr_nope")
    assert exc.value.code == "invalid_cursor"
    with pytest.raises(InvalidRequest) as exc:
        svc.list_transfers(limit=101)
    assert exc.value.code == "invalid_limit"
    with pytest.raises(NotFound):
        svc.list_transfers(account_id="acc_nope")


def test_metadata_filter_matches_non_string_values_as_text(book: Book) -> None:
    book.fund(book.alice, 10, id="f", metadata={"n": 42, "flag": True})
    assert _ids(book.svc.list_transfers(metadata=("n", "42")).data) == ["f"]
    assert _ids(book.svc.list_transfers(metadata=("flag", "true")).data) == ["f"]
    assert _ids(book.svc.list_transfers(metadata=("n", "43")).data) == []
    for bad in (("k'", "v"), ("", "v"), ('a"b', "v"), ("k", 42)):
        with pytest.raises(InvalidRequest) as exc:
            book.svc.list_transfers(metadata=bad)  # type: ignore[arg-type]
        assert exc.value.code == "invalid_metadata_filter"


# -- verify --------------------------------------------------------------------------------


def _busy(book: Book) -> None:
    clock = ManualClock(step_us=1_000)
    book.svc.clock = clock
    book.fund(book.alice, 1_000, id="f")
    book.fund(book.bob, 500)
    legs = (Leg(book.bank.id, D, 90), Leg(book.alice.id, C, 50), Leg(book.carol.id, C, 40))
    book.post([NewTransfer("legs", book.ledger_id, legs=legs)])
    for i in range(20):
        book.transfer(book.alice, book.bob, 3 + i, id=f"a{i}")
        book.transfer(book.bob, book.carol, 2 + i, id=f"b{i}", pending=True, timeout_s=5)
    for i in range(0, 20, 3):
        book.one(act(book, f"b{i}-post", Action.POST, f"b{i}", 1))
    for i in range(1, 20, 3):
        book.one(act(book, f"b{i}-void", Action.VOID, f"b{i}"))
    book.one(act(book, "rev", Action.REVERSE, "f", 100))
    book.one(act(book, "rev-legs", Action.REVERSE, "legs"))
    book.svc.transfer(book.ledger_id, book.bank_eur.id, book.alice_eur.id, 77)
    clock.advance(6_000_000)
    assert book.svc.expire_due() == 6


def test_verify_is_ok_on_a_busy_ledger(book: Book) -> None:
    _busy(book)
    report = book.svc.verify()
    assert report.problems == []
    assert report.accounts == 7
    assert report.transfers_pending == 0
    with book.svc.engine.connect() as conn:
        assert report.entries == conn.execute(sa.text("SELECT COUNT(*) FROM entries")).scalar_one()


def _tamper(db_engine: SAEngine, statement: str, **params: Any) -> None:
    with db_engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def test_verify_detects_a_balance_changed_behind_its_back(book: Book, db_engine: SAEngine) -> None:
    _busy(book)
    assert book.svc.verify().ok
    _tamper(
        db_engine,
        "UPDATE accounts SET credits_posted = credits_posted + 1 WHERE id = :id",
        id=book.alice.id,
    )
    problems = book.svc.verify().problems
    assert any("must be 0" in p for p in problems), problems
    assert any(book.alice.id in p and "sum of its entries" in p for p in problems), problems
    assert any(book.alice.id in p and "running balance" in p for p in problems), problems


def test_verify_detects_a_balanced_edit_of_two_accounts(book: Book, db_engine: SAEngine) -> None:
    """Moving money between two accounts directly keeps the ledger summing to zero: the
    entries still give it away."""
    _busy(book)
    for account in (book.alice, book.bob):
        _tamper(
            db_engine,
            "UPDATE accounts SET credits_posted = credits_posted + 7 WHERE id = :id",
            id=account.id,
        )
    _tamper(
        db_engine,
        "UPDATE accounts SET debits_posted = debits_posted + 14 WHERE id = :id",
        id=book.bank.id,
    )
    problems = book.svc.verify().problems
    assert not any("must be 0" in p for p in problems)
    for account in (book.alice, book.bob, book.bank):
        assert any(account.id in p and "sum of its entries" in p for p in problems), problems


def test_verify_detects_a_missing_entry_and_a_broken_pending_total(
    book: Book, db_engine: SAEngine
) -> None:
    book.fund(book.alice, 100)
    book.transfer(book.alice, book.bob, 10, id="p", pending=True)
    book.fund(book.carol, 5)
    book.fund(book.carol, 6)
    book.fund(book.carol, 7)
    _tamper(db_engine, "UPDATE transfers SET status = :s WHERE id = 'p'", s=int(Status.VOIDED))
    problems = book.svc.verify().problems
    assert any(book.alice.id in p and "pending totals" in p for p in problems), problems
    assert any(book.bob.id in p and "pending totals" in p for p in problems), problems
    _tamper(
        db_engine,
        "DELETE FROM entries WHERE account_id = :id AND version = 2",
        id=book.carol.id,
    )
    problems = book.svc.verify().problems
    assert any(book.carol.id in p and "version 3" in p for p in problems), problems


def test_the_same_transfer_posted_concurrently_is_created_once(book: Book) -> None:
    threads_count = 6
    start = threading.Barrier(threads_count)
    results: list[R] = []
    errors: list[BaseException] = []

    def client() -> None:
        try:
            start.wait()
            [outcome] = book.svc.post_transfers([tr(book, "race", book.bank, book.carol, 5)])
            results.append(outcome.result)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=client) for _ in range(threads_count)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert sorted(results) == sorted([R.CREATED] + [R.EXISTS] * (threads_count - 1))
    assert book.balances(book.carol)["posted"] == 5
    assert book.svc.verify().ok


def test_two_services_on_one_database_see_each_others_writes(book: Book) -> None:
    """As two processes would: neither may act on account states the other has changed."""
    a = book.svc
    b = LedgerService(a.engine)
    book.fund(book.alice, 100)
    assert b.transfer(book.ledger_id, book.alice.id, book.bob.id, 30).result is R.CREATED
    assert a.transfer(book.ledger_id, book.alice.id, book.bob.id, 80).result is (
        R.INSUFFICIENT_FUNDS
    )
    assert a.transfer(book.ledger_id, book.alice.id, book.bob.id, 70).result is R.CREATED
    assert b.transfer(book.ledger_id, book.alice.id, book.bob.id, 1).result is (
        R.INSUFFICIENT_FUNDS
    )
    b.close_account(book.bob.id)
    assert a.transfer(book.ledger_id, book.bank.id, book.bob.id, 1).result is R.ACCOUNT_CLOSED
    b.close_account(book.bob.id, closed=False)
    assert a.transfer(book.ledger_id, book.bank.id, book.bob.id, 1).result is R.CREATED
    assert b.transfer(book.ledger_id, book.bob.id, book.carol.id, 101).result is R.CREATED
    assert a.get_account(book.bob.id).balance_view()["posted"] == 0
    assert a.get_account(book.alice.id).version == 3
    assert a.verify().ok


# -- group commit --------------------------------------------------------------------------


def test_group_committer_gives_every_thread_its_own_result(book: Book) -> None:
    svc = book.svc
    threads_count = 8
    per_thread = 12
    customers = svc.create_accounts(
        [AccountSpec(book.ledger_id, "USD", C, NO_OVERDRAFT) for _ in range(threads_count)]
    )
    for c in customers:
        book.fund(c, 100)
    outcomes: dict[int, list[TransferOutcome]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(threads_count)

    def client(k: int, committer: GroupCommitter) -> None:
        try:
            me = customers[k]
            futures: list[Future[TransferOutcome]] = []
            start.wait()
            for i in range(per_thread):
                if i == 5:
                    # An unknown account: refused for this transfer only.
                    t = tr(book, f"c{k}-{i}", me, book.bank, 15)
                    t.credit_account_id = "acc_nope"
                elif i == 9:
                    t = tr(book, f"c{k}-1", me, book.bank, 15)  # a duplicate of i == 1
                else:
                    t = tr(book, f"c{k}-{i}", me, book.bank, 15)
                futures.append(committer.submit(t))
            outcomes[k] = [f.result(timeout=60) for f in futures]
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    with GroupCommitter(svc, wait_us=2_000) as committer:
        workers = [
            threading.Thread(target=client, args=(k, committer)) for k in range(threads_count)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        stats = committer.stats
    assert errors == []
    # Per customer, in submission order: 15 each until the 100 runs out.
    expected = [
        R.CREATED,  # 15
        R.CREATED,  # 30
        R.CREATED,  # 45
        R.CREATED,  # 60
        R.CREATED,  # 75
        R.ACCOUNT_NOT_FOUND,
        R.CREATED,  # 90
        R.INSUFFICIENT_FUNDS,
        R.INSUFFICIENT_FUNDS,
        R.EXISTS,
        R.INSUFFICIENT_FUNDS,
        R.INSUFFICIENT_FUNDS,
    ]
    for k in range(threads_count):
        got = outcomes[k]
        assert [o.result for o in got] == expected, k
        assert [o.transfer_id for o in got] == [
            f"c{k}-1" if i == 9 else f"c{k}-{i}" for i in range(per_thread)
        ]
        assert svc.get_account(customers[k].id).balance_view()["posted"] == 10
    assert stats.transfers == threads_count * per_thread
    assert 1 <= stats.batches <= threads_count * per_thread
    assert svc.verify().ok


def test_group_committer_refuses_bad_input_at_submit_without_harming_others(book: Book) -> None:
    book.fund(book.alice, 100)
    with GroupCommitter(book.svc) as committer:
        good = committer.submit(tr(book, "g1", book.alice, book.bob, 10))
        with pytest.raises(InvalidRequest) as exc:
            committer.submit(tr(book, "bad", book.alice, book.bob, 0))
        assert exc.value.code == "amount_not_positive"
        also_good = committer.submit(tr(book, "g2", book.alice, book.bob, 10))
        assert good.result(timeout=60).result is R.CREATED
        assert also_good.result(timeout=60).result is R.CREATED
    with pytest.raises(RuntimeError):
        committer.submit(tr(book, "late", book.alice, book.bob, 10))
    assert book.balances(book.bob)["posted"] == 20


def test_group_committer_serves_asyncio_callers(book: Book) -> None:
    book.fund(book.alice, 50)

    async def main(committer: GroupCommitter) -> list[TransferOutcome]:
        return list(
            await asyncio.gather(
                *(
                    committer.submit_async(tr(book, f"as{i}", book.alice, book.bob, 10))
                    for i in range(8)
                )
            )
        )

    with GroupCommitter(book.svc) as committer:
        outcomes = asyncio.run(main(committer))
    results = [o.result for o in outcomes]
    assert [o.transfer_id for o in outcomes] == [f"as{i}" for i in range(8)]
    assert results.count(R.CREATED) == 5
    assert results.count(R.INSUFFICIENT_FUNDS) == 3
    assert book.balances(book.alice)["posted"] == 0
    assert book.svc.verify().ok
