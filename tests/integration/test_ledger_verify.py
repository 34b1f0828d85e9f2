"""`ledger verify` catches forgeries made directly in the database, naming the row.

A small but varied history (simple and multi-leg transfers, two assets, a second ledger,
pending transfers posted in full and in part, voided and expired, reversals full and partial,
of a transfer and of a post, amounts past 2^64, a batch with a failed linked chain) verifies ok;
then each test edits the database with SQL, as someone with access to it could, and checks
that verify reports the edit against the row it changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine as SAEngine
from typer.testing import CliRunner

from strongroom.cli import app as cli_app
from strongroom.core.clock import MonotonicClock
from strongroom.core.limits import NATIVE_INT_MAX, VERIFY_PROBLEMS_MAX
from strongroom.ledger import verify as verify_module
from strongroom.ledger.model import AccountFlag, Action, Direction, Leg, NewTransfer, Status
from strongroom.ledger.model import TransferResult as R
from strongroom.ledger.service import Account, AccountSpec, LedgerService
from strongroom.ledger.verify import VerifyReport

D, C = Direction.DEBIT, Direction.CREDIT
NO_OVERDRAFT = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
BIG = 2**70  # past 64 bits: stored as a 17-byte blob on SQLite


class ManualClock(MonotonicClock):
    def __init__(self) -> None:
        super().__init__()
        self.t = 1_800_000_000_000_000

    def now_us(self) -> int:
        self.t += 1_000
        return self.t


@dataclass
class History:
    svc: LedgerService
    engine: SAEngine
    ledger_id: str
    bank: Account
    alice: Account
    bob: Account
    carol: Account
    bank_eur: Account
    alice_eur: Account
    whale_src: Account
    whale_dst: Account

    def ok(self, t: NewTransfer) -> None:
        [outcome] = self.svc.post_transfers([t])
        assert outcome.result is R.CREATED, outcome

    def move(self, id: str, debit: Account, credit: Account, amount: int, **kw: Any) -> None:
        self.ok(NewTransfer(id, self.ledger_id, debit.id, credit.id, amount, **kw))

    def act(self, id: str, action: Action, target: str, amount: int = 0) -> None:
        self.ok(NewTransfer(id, self.ledger_id, action=action, target_id=target, amount=amount))

    def entries(self, transfer_id: str) -> list[tuple[int, str]]:
        """(id, account_id) of a transfer's entries, in the order written."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT id, account_id FROM entries WHERE transfer_id = :t ORDER BY id"),
                {"t": transfer_id},
            ).all()
        return [(int(r[0]), str(r[1])) for r in rows]

    def tamper(self, *statements: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement), params)

    def problems(self) -> list[str]:
        report = self.svc.verify()
        assert not report.ok
        return report.problems


def _build(svc: LedgerService, engine: SAEngine) -> History:
    clock = ManualClock()
    svc.clock = clock
    svc.create_asset("WEI18", 18)
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
            AccountSpec(main.id, "WEI18", D, name="whale source"),
            AccountSpec(main.id, "WEI18", C, name="whale"),
            AccountSpec(other.id, "USD", D, name="other bank"),
            AccountSpec(other.id, "USD", C, name="other"),
        ]
    )
    h = History(svc, engine, main.id, *accounts[:8])
    other_bank, stranger = accounts[8:]
    h.move("f1", h.bank, h.alice, 1_000)
    h.move("f2", h.bank, h.bob, 500)
    h.ok(NewTransfer("o1", other.id, other_bank.id, stranger.id, 5))
    legs = (Leg(h.bank.id, D, 90), Leg(h.alice.id, C, 50), Leg(h.carol.id, C, 40))
    h.ok(NewTransfer("legs", h.ledger_id, legs=legs))
    fx = (
        Leg(h.alice.id, D, 100),
        Leg(h.bank.id, C, 100),
        Leg(h.bank_eur.id, D, 90),
        Leg(h.alice_eur.id, C, 90),
    )
    h.ok(NewTransfer("fx", h.ledger_id, legs=fx))
    # A batch: several transfers, then a linked chain that fails and is rolled back.
    batch = [NewTransfer(f"b{i}", h.ledger_id, h.alice.id, h.bob.id, 3 + i) for i in range(5)]
    batch += [
        NewTransfer("chain-1", h.ledger_id, h.bank.id, h.carol.id, 9, linked=True),
        NewTransfer("chain-2", h.ledger_id, h.bob.id, h.alice.id, 10**9),  # bob may not overdraw
        NewTransfer("b5", h.ledger_id, h.alice.id, h.bob.id, 8),
    ]
    outcomes = svc.post_transfers(batch)
    assert [o.result for o in outcomes[:5]] == [R.CREATED] * 5
    assert [o.result for o in outcomes[5:]] == [
        R.LINKED_EVENT_FAILED,
        R.INSUFFICIENT_FUNDS,
        R.CREATED,
    ]
    h.move("p-full", h.alice, h.bob, 70, pending=True)
    h.act("p-full-post", Action.POST, "p-full")
    h.move("p-part", h.alice, h.bob, 60, pending=True)
    h.act("p-part-post", Action.POST, "p-part", 25)
    h.move("p-void", h.bob, h.carol, 30, pending=True)
    h.act("p-void-void", Action.VOID, "p-void")
    h.move("p-exp", h.bob, h.carol, 20, pending=True, timeout_s=5)
    pending_legs = (Leg(h.bank.id, D, 30), Leg(h.alice.id, C, 20), Leg(h.carol.id, C, 10))
    h.ok(NewTransfer("p-legs", h.ledger_id, legs=pending_legs, pending=True))
    h.act("p-legs-post", Action.POST, "p-legs")
    h.move("t-carol", h.bank, h.carol, 100)
    h.act("r-carol", Action.REVERSE, "t-carol")
    h.move("t-carol2", h.bank, h.carol, 80)
    h.act("r-a1", Action.REVERSE, "t-carol2", 30)
    h.act("r-a2", Action.REVERSE, "t-carol2", 20)
    h.act("r-legs", Action.REVERSE, "legs")
    h.act("r-post", Action.REVERSE, "p-full-post", 10)
    h.move("big", h.whale_src, h.whale_dst, BIG)
    h.move("big-hold", h.whale_src, h.whale_dst, BIG + 1, pending=True)
    h.act("big-hold-post", Action.POST, "big-hold", BIG // 2)
    clock.t += 6_000_000
    assert svc.expire_due() == 1
    h.move("p-open", h.alice, h.carol, 15, pending=True)
    h.move("mid", h.bank, h.carol, 7)
    h.move("after-mid", h.bank, h.carol, 8)
    h.move("last", h.bank, h.carol, 5)
    return h


@pytest.fixture
def history(ledger: LedgerService, db_engine: SAEngine) -> History:
    h = _build(ledger, db_engine)
    report = h.svc.verify()
    assert report.problems == []
    return h


def _named(problems: list[str], *words: str) -> None:
    """Some problem names all of `words` (a transfer, an entry, an account)."""
    assert any(all(w in p for w in words) for p in problems), (words, problems)


def test_an_honest_busy_ledger_verifies(history: History) -> None:
    report = history.svc.verify()
    assert report.ok
    assert report.problems == []
    assert report.accounts == 10
    assert report.transfers_pending == 1  # p-open
    with history.engine.connect() as conn:
        entries = conn.execute(sa.text("SELECT COUNT(*) FROM entries")).scalar_one()
        transfers = conn.execute(sa.text("SELECT COUNT(*) FROM transfers")).scalar_one()
    assert (report.entries, report.transfers) == (entries, transfers)
    assert history.svc.get_transfer("p-exp").status is Status.EXPIRED


def test_entries_and_both_accounts_inflated_together(history: History) -> None:
    """The case found by hand: both entries of the newest transfer and both accounts' totals
    raised by 1,000,000, the transfer row left alone. Every sum and chain still agrees; only
    the transfer says what the entries must be."""
    (debit_entry, _), (credit_entry, _) = history.entries("last")
    history.tamper(
        "UPDATE entries SET amount = amount + 1000000, "
        "debits_posted = debits_posted + 1000000 WHERE id = :d",
        "UPDATE entries SET amount = amount + 1000000, "
        "credits_posted = credits_posted + 1000000 WHERE id = :c",
        "UPDATE accounts SET debits_posted = debits_posted + 1000000 WHERE id = :bank",
        "UPDATE accounts SET credits_posted = credits_posted + 1000000 WHERE id = :carol",
        d=debit_entry,
        c=credit_entry,
        bank=history.bank.id,
        carol=history.carol.id,
    )
    problems = history.problems()
    _named(problems, "transfer last", f"entry {debit_entry} ", "expected debit 5 ")
    assert len(problems) == 1, problems


def test_an_entry_moved_to_another_account(history: History) -> None:
    (entry, _), _ = history.entries("f2")
    history.tamper(
        "UPDATE entries SET account_id = :carol WHERE id = :e", carol=history.carol.id, e=entry
    )
    _named(history.problems(), "transfer f2", f"entry {entry} ", history.carol.id, history.bank.id)


def test_a_transfer_deleted_with_its_entries_and_the_totals_fixed(history: History) -> None:
    (debit_entry, _), (credit_entry, _) = history.entries("mid")
    (next_debit, _), (next_credit, _) = history.entries("after-mid")
    history.tamper(
        "DELETE FROM entries WHERE transfer_id = 'mid'",
        "DELETE FROM transfers WHERE id = 'mid'",
        "UPDATE accounts SET debits_posted = debits_posted - 7, version = version - 1 "
        "WHERE id = :bank",
        "UPDATE accounts SET credits_posted = credits_posted - 7, version = version - 1 "
        "WHERE id = :carol",
        bank=history.bank.id,
        carol=history.carol.id,
    )
    problems = history.problems()
    _named(problems, history.bank.id, f"entry {next_debit} ", f"missing entry {debit_entry}")
    _named(problems, history.carol.id, f"entry {next_credit} ", f"missing entry {credit_entry}")


def test_an_accounts_asset_changed(history: History) -> None:
    history.tamper("UPDATE accounts SET asset = 'EUR' WHERE id = :id", id=history.carol.id)
    problems = history.problems()
    # The first transfer that names carol with another USD account, and the sums per asset.
    _named(problems, "transfer p-void", history.carol.id, "different assets")
    _named(problems, "legs do not balance per asset", "transfer legs")
    _named(problems, f"ledger {history.ledger_id} asset EUR", "must be 0")


def test_a_transfers_amount_changed(history: History) -> None:
    history.tamper("UPDATE transfers SET amount = amount + 1 WHERE id = 'f1'")
    (entry, _), _ = history.entries("f1")
    problems = history.problems()
    _named(problems, "transfer f1", f"entry {entry} ", "debit 1000 ", "expected debit 1001 ")
    assert len(problems) == 1, problems


def test_an_entrys_pending_delta_changed(history: History) -> None:
    (entry, _), _ = history.entries("p-open")
    history.tamper(
        "UPDATE entries SET pending_delta = pending_delta + 1, "
        "debits_pending = debits_pending + 1 WHERE id = :e",
        "UPDATE accounts SET debits_pending = debits_pending + 1 WHERE id = :alice",
        e=entry,
        alice=history.alice.id,
    )
    problems = history.problems()
    _named(problems, "transfer p-open", f"entry {entry} ", "pending +16", "expected")
    _named(problems, history.alice.id, "pending totals")


def test_a_version_gap(history: History) -> None:
    _, (entry, _) = history.entries("last")
    history.tamper(
        "UPDATE entries SET version = version + 1 WHERE id = :e",
        "UPDATE accounts SET version = version + 1 WHERE id = :carol",
        e=entry,
        carol=history.carol.id,
    )
    _named(history.problems(), history.carol.id, f"entry {entry} ", "not version")


def test_an_expired_transfer_set_back_to_pending(history: History) -> None:
    history.tamper("UPDATE transfers SET status = 1 WHERE id = 'p-exp'")
    problems = history.problems()
    _named(problems, "transfer p-exp", "is extra", "not an expired pending transfer")
    _named(problems, history.bob.id, "pending totals")


def test_an_account_breaking_its_flags(history: History) -> None:
    history.tamper("UPDATE accounts SET flags = :f WHERE id = :bank", f=1, bank=history.bank.id)
    (entry, _), _ = history.entries("f1")
    problems = history.problems()
    _named(problems, f"account {history.bank.id}: entry {entry}:", "debits_must_not_exceed")
    _named(problems, f"account {history.bank.id}: debits", "debits_must_not_exceed")


@pytest.mark.parametrize("flags", [4, 5, 3])
def test_flags_no_account_can_have_are_named(history: History, flags: int) -> None:
    """An unknown flag bit, or both overdraft flags at once (refused at creation)."""
    history.tamper(
        "UPDATE accounts SET flags = :f WHERE id = :carol", f=flags, carol=history.carol.id
    )
    _named(history.problems(), f"account {history.carol.id}: flags {flags}", "not a valid")


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("entries", "amount", "12.5"),
        ("entries", "credits_posted", "'a thousand'"),
        ("transfers", "amount", "1000.5"),
        ("accounts", "debits_pending", "x'0000000000000000000000000000000001'"),  # fits 64 bits
        ("entries", "pending_delta", "x'00000000000000000000000000000000000001'"),  # 19 bytes
    ],
)
def test_a_money_value_that_does_not_decode_is_named(
    history: History, table: str, column: str, value: str
) -> None:
    if not history.svc.sqlite:
        pytest.skip("PostgreSQL's NUMERIC(39,0) holds nothing but integers")
    row = {
        "entries": str(history.entries("f1")[1][0]),
        "transfers": "'f1'",
        "accounts": f"'{history.alice.id}'",
    }[table]
    key = "id"
    history.tamper(f"UPDATE {table} SET {column} = {value} WHERE {key} = {row}")
    problems = history.problems()
    named = {"entries": f"entry {row}: {column}", "transfers": "transfer f1: amount"}
    _named(problems, named.get(table, f"account {history.alice.id}: {column}"), "not a stored")


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("UPDATE entries SET version = 'two' WHERE id = :entry", "entry {entry} (version two)"),
        ("UPDATE entries SET version = 'two' WHERE id = :later", "entry {later}: a column"),
        ("UPDATE entries SET direction = 0.5 WHERE id = :entry", "entry {entry}: direction"),
        ("UPDATE accounts SET flags = 1.5 WHERE id = :alice", "account {alice}: flags"),
        ("UPDATE transfers SET legs = '[[1, 2]]' WHERE id = 'legs'", "transfer legs: legs do"),
    ],
)
def test_a_column_of_another_type_is_named_not_a_crash(
    history: History, statement: str, named: str
) -> None:
    if not history.svc.sqlite:
        pytest.skip("PostgreSQL's columns are typed")
    params = {
        "entry": history.entries("f1")[1][0],  # alice's first
        "later": history.entries("last")[0][0],  # the bank's newest
        "alice": history.alice.id,
    }
    history.tamper(statement, **params)
    _named(history.problems(), named.format(**params))


def test_two_transfers_of_2_62_plus_1_verify(ledger: LedgerService) -> None:
    """Found by hand: these made verify crash with SQLite's integer overflow."""
    main = ledger.create_ledger("main")
    src, dst = ledger.create_accounts(
        [AccountSpec(main.id, "USD", D), AccountSpec(main.id, "USD", C)]
    )
    for i in range(2):
        out = ledger.transfer(main.id, src.id, dst.id, 2**62 + 1, id=f"t{i}")
        assert out.result is R.CREATED
    assert ledger.get_account(dst.id).balances.credits_posted == 2**63 + 2 > NATIVE_INT_MAX
    report = ledger.verify()
    assert report.problems == []
    assert (report.transfers, report.entries) == (2, 4)


def test_problems_are_capped_and_counted(history: History) -> None:
    history.tamper("UPDATE entries SET amount = amount + 1, version = version + 1 WHERE amount > 0")
    report: VerifyReport = history.svc.verify()
    assert len(report.problems) == VERIFY_PROBLEMS_MAX
    assert report.problems_more > 0
    assert not report.ok


def test_the_cli_names_violations_and_reports_progress(
    history: History, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not history.svc.sqlite:
        pytest.skip("the command is the same on both databases")
    monkeypatch.setattr(verify_module, "VERIFY_PROGRESS_ROWS", 20)
    runner = CliRunner()
    result = runner.invoke(cli_app, ["ledger", "verify", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert "invariants: ok" in result.stdout
    assert "entries checked" in result.stderr
    history.tamper("UPDATE transfers SET amount = 2 WHERE id = 'f1'")
    result = runner.invoke(cli_app, ["ledger", "verify", "--database-url", db_url])
    assert result.exit_code == 1
    assert "VIOLATION: transfer f1: entry" in result.stdout
    assert "invariants: 1 violated" in result.stdout
