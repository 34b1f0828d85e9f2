"""`audit verify` replays each tenant's leaves into balances and compares them with every
account row and every entry row (audit/replay.py), on SQLite and PostgreSQL.

Each forgery test publishes a checkpoint, edits the database directly as someone with write
access to it would (behind the ledger and the log alike), and checks that verify, against the
public key the operator holds, fails naming the row that was changed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from strongroom.audit.leaf import transfer_leaf
from strongroom.audit.replay import Baseline, Replay
from strongroom.audit.service import AuditLog
from strongroom.audit.store import pack_bundle
from strongroom.cli import app
from strongroom.core.money import to_stored_int
from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork
from strongroom.ledger import store as ledger_store
from strongroom.ledger.model import AccountFlag, Action, Direction, NewTransfer, TransferResult
from strongroom.ledger.service import LedgerService
from strongroom.runtime import build_ledger
from strongroom.settings import Settings

R = TransferResult
BIG = 2**100  # past 64 bits: a wide leaf, a 17-byte BLOB on SQLite
NO_OVERDRAFT = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS


@dataclass
class Book:
    url: str
    engine: Engine
    ledger: LedgerService
    audit: AuditLog
    ledger_id: str
    cash: str  # debit-normal, no flags
    alice: str  # credit-normal, may not go overdrawn
    bob: str  # credit-normal

    def move(self, debit: str, credit: str, amount: int, **extra: Any) -> str:
        outcome = self.ledger.transfer(self.ledger_id, debit, credit, amount, **extra)
        assert outcome.result is R.CREATED, outcome
        return outcome.transfer_id

    def sql(self, statement: str, *params: object) -> list[tuple[Any, ...]]:
        with UnitOfWork(self.engine) as uow:
            cur = uow.cursor()
            cur.execute(sql(uow, statement), params)
            rows = list(cur.fetchall()) if cur.description else []
            uow.commit()
        return rows

    def entries_of(self, transfer_id: str) -> list[tuple[int, str, int]]:
        """(entry id, account, version) of a transfer's entries."""
        rows = self.sql(
            "SELECT id, account_id, version FROM entries WHERE transfer_id = ? ORDER BY id",
            transfer_id,
        )
        return [(int(r[0]), r[1], int(r[2])) for r in rows]

    def key(self) -> str:
        """The public key the operator keeps (the log's first)."""
        self.audit.publish()
        return str(self.audit.verifier_keys()[0]["verifier_key"])

    def problems(self, key: str) -> list[str]:
        return self.audit.verify(trusted_keys=[key]).problems


def _book(url: str, engine: Engine, tenant: str = "ten_default") -> Book:
    ledger, audit = build_ledger(engine, Settings(database_url=url))
    ldg = ledger.create_ledger("books", tenant_id=tenant).id
    cash = ledger.create_account(ldg, "USD", Direction.DEBIT).id
    alice = ledger.create_account(ldg, "USD", Direction.CREDIT, flags=NO_OVERDRAFT).id
    bob = ledger.create_account(ldg, "USD", Direction.CREDIT).id
    return Book(url, engine, ledger, audit, ldg, cash, alice, bob)


@pytest.fixture
def book(db_url: str, db_engine: Engine) -> Book:
    b = _book(db_url, db_engine)
    b.move(b.cash, b.alice, 5_000)
    b.move(b.cash, b.bob, 7_000)
    b.move(b.alice, b.bob, 1_000)
    return b


def test_an_honest_ledger_verifies(db_url: str, db_engine: Engine) -> None:
    """128-bit amounts, pending then posted (partly), voided and expired, a reversal, a
    closed and reopened account, several tenants: every account and entry matches."""
    one = _book(db_url, db_engine, "ten_one")
    two = _book(db_url, db_engine, "ten_two")
    for b in (one, two):
        b.move(b.cash, b.alice, BIG)
        b.move(b.cash, b.bob, 10_000)
        held = b.move(b.cash, b.bob, 3_000, pending=True)
        b.ledger.post_transfers(
            [NewTransfer("tr_post_" + held, b.ledger_id, action=Action.POST, target_id=held,
                         amount=2_000)]
        )  # fmt: skip
        voided = b.move(b.alice, b.bob, BIG // 2, pending=True)
        b.ledger.post_transfers(
            [NewTransfer("tr_void_" + voided, b.ledger_id, action=Action.VOID, target_id=voided)]
        )
        paid = b.move(b.alice, b.bob, 4_000)
        b.ledger.post_transfers(
            [NewTransfer("tr_rev_" + paid, b.ledger_id, action=Action.REVERSE, target_id=paid,
                         amount=1_500)]
        )  # fmt: skip
        b.ledger.close_account(b.bob)
        b.ledger.close_account(b.bob, closed=False)
        b.move(b.cash, b.bob, 1)
    lapsing = one.move(one.cash, one.bob, 9, pending=True, timeout_s=1)
    time.sleep(1.05)  # the shortest timeout is a second
    assert one.ledger.expire_due() == 1
    assert one.ledger.get_transfer(lapsing).status.label == "expired"
    one.ledger.close_account(one.alice)  # closed at the end: the account row says so
    key = one.key()
    report = one.audit.verify(trusted_keys=[key])
    assert report.problems == []
    (entries,) = one.sql("SELECT COUNT(*) FROM entries")[0]
    assert (report.accounts, report.entries) == (6, entries)


def test_entries_and_both_accounts_inflated_together_are_caught(book: Book) -> None:
    """The forgery that passed before the replay: both entries of one transfer and both
    accounts' totals raised by 1,000,000, consistently. `strongroom audit verify
    --public-key KEY` names the first entry and each account."""
    key = book.key()
    tid = book.move(book.alice, book.bob, 250)
    book.key()
    (debit, _, dv), (credit, _, cv) = book.entries_of(tid)
    raise_by = 1_000_000
    book.sql(
        "UPDATE entries SET amount = amount + ?, debits_posted = debits_posted + ? WHERE id = ?",
        raise_by,
        raise_by,
        debit,
    )
    book.sql(
        "UPDATE entries SET amount = amount + ?, credits_posted = credits_posted + ? WHERE id = ?",
        raise_by,
        raise_by,
        credit,
    )
    book.sql(
        "UPDATE accounts SET debits_posted = debits_posted + ? WHERE id = ?", raise_by, book.alice
    )
    book.sql(
        "UPDATE accounts SET credits_posted = credits_posted + ? WHERE id = ?", raise_by, book.bob
    )
    result = CliRunner().invoke(
        app, ["audit", "verify", "--database-url", book.url, "--public-key", key]
    )
    assert result.exit_code == 1, result.output
    tampered = [line for line in result.output.splitlines() if line.startswith("TAMPERED: ")]
    assert tampered[0].startswith(
        f"TAMPERED: entry {debit} (account {book.alice} version {dv}) differs from leaf "
    )
    assert "amount 1000250 in the ledger, 250 in the leaf" in tampered[0]
    assert tampered[1].startswith(f"TAMPERED: entry {credit} (account {book.bob} version {cv})")
    assert f"TAMPERED: account {book.alice} differs from its leaves: debits_posted" in tampered[2]
    assert f"TAMPERED: account {book.bob} differs from its leaves: credits_posted" in tampered[3]
    assert len(tampered) == 4


def test_a_flag_removed_is_caught(book: Book) -> None:
    key = book.key()
    book.sql("UPDATE accounts SET flags = 0 WHERE id = ?", book.alice)
    assert book.problems(key) == [
        f"account {book.alice} differs from its leaves: flags [] in the ledger, "
        "[debits_must_not_exceed_credits] in them"
    ]


def test_an_entry_moved_to_another_account_is_caught(book: Book) -> None:
    key = book.key()
    tid = book.move(book.cash, book.alice, 42)
    (entry, account, version), _ = book.entries_of(tid)
    assert account == book.cash
    fresh = book.ledger.create_account(book.ledger_id, "USD", Direction.DEBIT).id
    book.sql("UPDATE entries SET account_id = ? WHERE id = ?", fresh, entry)
    problems = book.problems(key)
    assert problems[0] == (
        f"entry {entry} (account {fresh} version {version}, transfer {tid}) has no leaf in the "
        "audit log"
    )
    assert problems[1].endswith(
        f"has entry {version} of account {book.cash} (transfer {tid}), the ledger does not"
    )
    assert len(problems) == 2


def test_a_transfer_deleted_with_its_entries_and_totals_fixed_is_caught(book: Book) -> None:
    key = book.key()
    before = book.ledger.get_account(book.alice)
    tid = book.move(book.alice, book.bob, 300)
    bob = book.ledger.get_account(book.bob)
    book.sql("DELETE FROM entries WHERE transfer_id = ?", tid)
    book.sql("DELETE FROM transfers WHERE id = ?", tid)
    # The totals and versions put back as they were, so the ledger's own sums agree.
    b = bob.balances
    book.sql(
        "UPDATE accounts SET debits_posted = ?, version = ? WHERE id = ?",
        before.balances.debits_posted,
        before.version,
        book.alice,
    )
    book.sql(
        "UPDATE accounts SET credits_posted = ?, version = ? WHERE id = ?",
        b.credits_posted - 300,
        bob.version - 1,
        book.bob,
    )
    problems = book.problems(key)
    assert problems[0] == f"the audit log has transfer {tid}, the ledger does not"
    assert f"of account {book.alice} (transfer {tid}), the ledger does not" in problems[1]
    assert f"of account {book.bob} (transfer {tid}), the ledger does not" in problems[2]
    assert problems[3].startswith(f"account {book.alice} differs from its leaves: version ")
    assert problems[4].startswith(f"account {book.bob} differs from its leaves: version ")
    assert len(problems) == 5


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("asset", "EUR", "asset EUR in the ledger, USD in them"),
        ("closed", True, "closed True in the ledger, False in them"),
        ("normal_balance", int(Direction.DEBIT), "normal balance debit in the ledger, credit"),
    ],
)
def test_an_account_changed_by_hand_is_caught(
    book: Book, column: str, value: object, said: str
) -> None:
    key = book.key()
    book.sql(f"UPDATE accounts SET {column} = ? WHERE id = ?", value, book.bob)
    problems = book.problems(key)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"account {book.bob} differs from its leaves: {said}")


def test_a_wide_total_edited_by_hand_is_caught(book: Book) -> None:
    """Past 64 bits (a BLOB on SQLite, NUMERIC on PostgreSQL) just as below."""
    tid = book.move(book.cash, book.bob, BIG)
    key = book.key()
    _, (credit, _, _) = book.entries_of(tid)
    stored = to_stored_int(BIG + 1) if book.engine.dialect.name == "sqlite" else BIG + 1
    book.sql("UPDATE entries SET credits_posted = ? WHERE id = ?", stored, credit)
    (problem,) = book.problems(key)
    assert problem.startswith(f"entry {credit} (account {book.bob} ")
    assert f"credits_posted {BIG + 1} in the ledger, {BIG + 8_000} in the leaf" in problem


def test_entries_out_of_id_order_still_match(book: Book) -> None:
    """PostgreSQL may commit a transaction with lower entry ids after one with higher ids:
    the replay holds what runs ahead on either side, here one transfer's entries renumbered
    past every other; also with a window of four entries."""
    tid = book.move(book.cash, book.alice, 11)
    book.move(book.cash, book.bob, 12)
    first = book.entries_of(tid)[0][0]
    book.sql("UPDATE entries SET id = id + ? WHERE transfer_id = ?", 2**40, tid)
    assert book.audit.verify().problems == []
    with UnitOfWork(book.engine, write=False) as uow:
        report = Replay(uow, Baseline(), lambda _m: None, window=4).run()
        assert report.problems == []
        # A window narrower than the reordering: the replay holds no more than it and names
        # what it had to let go, rather than grow.
        narrow = Replay(uow, Baseline(), lambda _m: None, window=1).run()
    assert narrow.problems[0].endswith(
        f"of account {book.cash} (transfer {tid}), the ledger does not"
    )
    assert narrow.problems[1].startswith(f"entry {first + 2**40} (account {book.cash} version ")
    assert len(narrow.problems) == 2
    # Renumbered into another account's history instead, it is named.
    book.sql(
        "UPDATE entries SET id = ?, account_id = ? WHERE id = ?", first, book.bob, first + 2**40
    )
    assert book.audit.verify().problems[0].startswith(f"entry {first} (account {book.bob} ")


def test_problems_are_capped(book: Book) -> None:
    """A hundred problems, then a count of the rest."""
    key = book.key()
    batch = [NewTransfer(f"tr_cap_{k}", book.ledger_id, book.cash, book.bob, 1) for k in range(120)]
    assert {o.result for o in book.ledger.post_transfers(batch)} == {R.CREATED}
    book.sql("UPDATE entries SET amount = amount + 1 WHERE account_id = ?", book.bob)
    problems = book.problems(key)
    assert len(problems) == 101
    assert problems[0].startswith("entry ")
    assert problems[-1] == "and 22 more problems replaying the leaves"


def test_a_leaf_whose_totals_do_not_add_up_is_caught(book: Book) -> None:
    """A forger who rewrites a leaf and the rows together, raising an entry's totals but not
    its amount: the tree check names the leaf, the replay the sum that does not add up."""
    tid = book.move(book.cash, book.alice, 10)
    (index,) = book.audit.leaf_indexes("ten_default", tid)
    with UnitOfWork(book.engine, write=False) as uow:
        row = ledger_store.get_transfer_row(uow, tid)
        assert row is not None
        entries = [ledger_store.get_entry(uow, e[0]) for e in book.entries_of(tid)]
    debit, credit = (tuple(e) for e in entries if e is not None)
    forged = (*credit[:9], credit[9] + 5, *credit[10:])  # credits_posted
    data = transfer_leaf("transfer.created", tuple(row), [debit, forged])  # type: ignore[arg-type]
    book.sql(
        "UPDATE audit_bundles SET data = ? WHERE log_id = ? AND first_idx = ?",
        pack_bundle([data]),
        "ten_default",
        index,
    )
    book.sql("UPDATE entries SET credits_posted = credits_posted + 5 WHERE id = ?", credit[0])
    book.sql("UPDATE accounts SET credits_posted = credits_posted + 5 WHERE id = ?", book.alice)
    problems = book.audit.verify().problems
    assert problems == [
        f"log ten_default: leaf {index} does not match the tree (changed?)",
        f"log ten_default: leaf {index}: account {book.alice}'s entry {credit[2]} has totals "
        "that are not its previous ones plus its amounts",
    ]


def test_a_freeze_verifies_and_one_set_by_hand_is_caught(book: Book) -> None:
    """A freeze and an unfreeze through the ledger are leaves the replay follows; a frozen flag
    set (or cleared) behind the log is named."""
    book.ledger.freeze_account(book.alice)
    book.ledger.freeze_account(book.cash)
    book.ledger.freeze_account(book.cash, frozen=False)
    key = book.key()
    assert book.problems(key) == []
    book.sql("UPDATE accounts SET frozen = ? WHERE id = ?", False, book.alice)
    book.sql("UPDATE accounts SET frozen = ? WHERE id = ?", True, book.bob)
    assert sorted(book.problems(key)) == sorted(
        [
            f"account {book.alice} differs from its leaves: frozen False in the ledger, "
            "True in them",
            f"account {book.bob} differs from its leaves: frozen True in the ledger, False in them",
        ]
    )


@pytest.mark.parametrize(
    ("table", "column", "value", "named"),
    [
        ("transfers", "status", 9, "transfer"),  # a status code no write makes
        ("transfers", "action", 9, "transfer"),
        ("transfers", "metadata", "not json", "transfer"),
        ("transfers", "created_at", "x", "transfer"),
        ("accounts", "flags", "x", "account"),
        ("accounts", "version", "x", "account"),
        ("entries", "version", "x", "entry"),
    ],
)
def test_a_row_no_write_makes_is_named_not_a_crash(
    book: Book, table: str, column: str, value: object, named: str
) -> None:
    """Found by an attacker: these edits made `audit verify` stop with a traceback (and so
    report nothing else). Each is named as a problem of its row; the rest is still checked."""
    if book.engine.dialect.name != "sqlite" and isinstance(value, str) and value == "x":
        pytest.skip("PostgreSQL's typed columns refuse text in a number column")
    key = book.key()
    first = book.move(book.cash, book.alice, 77)
    row = {
        "transfers": first,
        "accounts": book.alice,
        "entries": str(book.entries_of(first)[0][0]),
    }[table]
    book.sql(f"UPDATE {table} SET {column} = ? WHERE id = ?", value, row)
    book.sql("UPDATE accounts SET asset = 'EUR' WHERE id = ?", book.bob)  # reported as well
    problems = book.problems(key)
    assert any(p.startswith(f"{named} {row}") for p in problems), problems
    assert any(p.startswith(f"account {book.bob} differs") for p in problems), problems


def test_text_that_is_not_utf8_is_named_by_both_verifiers(db_url: str, db_engine: Engine) -> None:
    """SQLite stores any bytes as text when told to (a hand edit: `CAST(x'ff' AS TEXT)`), and
    every read of that row then fails: each verifier names the column instead of a traceback."""
    if db_engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL refuses text that is not UTF-8 when it is written")
    b = _book(db_url, db_engine)
    b.move(b.cash, b.alice, 5)
    key = b.key()
    b.sql("UPDATE accounts SET asset = CAST(x'ff55' AS TEXT) WHERE id = ?", b.alice)
    (problem,) = b.problems(key)
    assert problem.startswith("column asset holds bytes that are not UTF-8 text"), problem
    (problem,) = b.ledger.verify().problems
    assert problem.startswith("column asset holds bytes that are not UTF-8 text"), problem


def test_the_cli_takes_held_checkpoints_as_notes_or_as_the_apis_json(
    book: Book, tmp_path: Path
) -> None:
    key = book.key()
    latest = book.audit.latest("ten_default")  # the book's tenant's log
    note_file = tmp_path / "checkpoint.txt"
    note_file.write_text(latest.note, encoding="utf-8")
    json_file = tmp_path / "checkpoint.json"
    json_file.write_text(json.dumps(latest.to_dict()), encoding="utf-8")
    args = ["audit", "verify", "--database-url", book.url, "--public-key", key]
    for held in (note_file, json_file):
        result = CliRunner().invoke(app, [*args, "--checkpoint", str(held)])
        assert result.exit_code == 0, result.output
        assert "held checkpoints: 1" in result.output
    json_file.write_text('{"no": "note"}', encoding="utf-8")
    result = CliRunner().invoke(app, [*args, "--checkpoint", str(json_file)])
    assert result.exit_code != 0
    assert "a JSON checkpoint has a `note`" in result.output


def test_who_created_a_transfer_changed_by_hand_is_caught(book: Book) -> None:
    """The leaf records who asked; the row, its actor_ref. Found by an attacker: handing one
    key's transfer to another key (or to no one) passed both verifiers."""
    book.ledger.actor_ref("api_key:key_other")  # another actor, as the API interns one
    tid = book.ledger.post_transfers(
        [NewTransfer("tr_by_key", book.ledger_id, book.cash, book.alice, 5)],
        actor="api_key:key_mine",
    )[0].transfer_id
    key = book.key()
    assert book.problems(key) == []
    (other,) = book.sql("SELECT id FROM actors WHERE actor = ?", "api_key:key_other")[0]
    book.sql("UPDATE transfers SET actor_ref = ? WHERE id = ?", other, tid)
    assert book.problems(key) == [
        f"transfer {tid}: created by 'api_key:key_other' in the ledger, by 'api_key:key_mine' "
        "in its leaf"
    ]
    book.sql("UPDATE transfers SET actor_ref = NULL WHERE id = ?", tid)
    (problem,) = book.problems(key)
    assert "created by no one named in the ledger" in problem
    (mine,) = book.sql("SELECT id FROM actors WHERE actor = ?", "api_key:key_mine")[0]
    book.sql("UPDATE transfers SET actor_ref = ? WHERE id = ?", mine, tid)
    book.sql("UPDATE actors SET actor = 'cli' WHERE id = ?", mine)  # the name itself edited
    (problem,) = book.problems(key)
    assert problem.startswith(f"transfer {tid}: created by 'cli' in the ledger")


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("UPDATE transfers SET metadata = X'0102' WHERE id = ?", "transfer"),
        ("UPDATE audit_logs SET size = 'x' WHERE ? IS NOT NULL", "the audit tables"),
        ("UPDATE audit_checkpoints SET root = 'abc' WHERE ? IS NOT NULL", "the audit tables"),
        ("UPDATE audit_bundles SET count = 'x' WHERE ? IS NOT NULL", ""),
        ("UPDATE audit_keys SET verifier_key = X'ff' WHERE ? IS NOT NULL", ""),
    ],
)
def test_audit_rows_no_write_makes_are_named_not_a_crash(
    book: Book, statement: str, named: str
) -> None:
    """Found by the second attack round (SQLite, whose columns take any type): a blob in a
    transfer's text column, text in the audit tables' own number columns, a verifier key that
    is no text. Each ends the check with a named problem, never a traceback."""
    if book.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's typed columns refuse these")
    first = book.move(book.cash, book.alice, 77)
    book.audit.publish()
    book.sql(statement, first)
    problems = book.audit.verify().problems
    assert problems, statement
    assert any(p.startswith(named) for p in problems), problems
