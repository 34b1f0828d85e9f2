"""Account statements with a completeness proof: made from the database, checked offline with
the public key only; a dropped, altered or invented entry is caught."""

from __future__ import annotations

import base64
import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from strongroom.audit.leaf import parse
from strongroom.audit.service import AuditLog
from strongroom.audit.statement import StatementError, verify_statement
from strongroom.cli import app as cli_app
from strongroom.core import clock
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.ledger.model import Direction, NewTransfer, TransferResult
from strongroom.ledger.service import LedgerService
from strongroom.runtime import build_ledger
from strongroom.settings import Settings


@dataclass
class World:
    ledger: LedgerService
    audit: AuditLog
    ledger_id: str
    bank: str
    alice: str
    marks: list[int]  # times between the groups of transfers
    key: str

    def statement(self, start: int, end: int) -> dict[str, Any]:
        return self.audit.statement("ten_default", self.alice, start, end)


def _tick() -> int:
    time.sleep(0.003)
    now = clock.now_us()
    time.sleep(0.003)
    return now


@pytest.fixture
def world(db_engine: Engine, db_url: str) -> World:
    ledger, audit = build_ledger(db_engine, Settings(database_url=db_url))
    ldg = ledger.create_ledger("books").id
    bank = ledger.create_account(ldg, "USD", Direction.DEBIT).id
    alice = ledger.create_account(ldg, "USD", Direction.CREDIT).id
    marks = []
    for group in ((100, 200, 300), (5, 6, 7, 8), (9, 10)):
        marks.append(_tick())
        for amount in group:
            assert ledger.transfer(ldg, bank, alice, amount).result is TransferResult.CREATED
    marks.append(_tick())
    audit.publish()
    key = audit.verifier_keys()[-1]["verifier_key"]
    return World(ledger, audit, ldg, bank, alice, marks, key)


def test_a_statement_proves_its_period_complete_and_adding_up(world: World) -> None:
    statement = world.statement(world.marks[1], world.marks[2])
    checked = verify_statement(statement, [world.key])
    assert [e.amount for e in checked.entries] == [5, 6, 7, 8]
    assert [e.version for e in checked.entries] == [4, 5, 6, 7]
    assert checked.opening == (0, 600, 0, 0)
    assert checked.closing == (0, 626, 0, 0)
    assert checked.has_boundary
    # Up to now: no later entry, so no boundary; from before the first entry: opening zero.
    whole = verify_statement(world.statement(world.marks[0], world.marks[3]), [world.key])
    assert (whole.opening, whole.closing, whole.has_boundary) == (
        (0, 0, 0, 0),
        (0, 645, 0, 0),
        False,
    )
    assert len(whole.entries) == 9
    # An empty period is a statement too: opening == closing, proved by the boundary entry.
    quiet = verify_statement(world.statement(world.marks[1] - 1, world.marks[1]), [world.key])
    assert (quiet.entries, quiet.opening, quiet.closing) == ([], (0, 600, 0, 0), (0, 600, 0, 0))


def _leaf_of(statement: dict[str, Any], amount: int) -> int:
    for n, item in enumerate(statement["leaves"]):
        if parse(base64.b64decode(item["leaf"]))["transfer"]["amount"] == amount:
            return n
    raise AssertionError(amount)


def test_a_dropped_altered_or_moved_entry_is_caught(world: World) -> None:
    statement = world.statement(world.marks[1], world.marks[2])
    dropped = copy.deepcopy(statement)
    del dropped["leaves"][_leaf_of(dropped, 6)]
    with pytest.raises(StatementError, match="not all there"):
        verify_statement(dropped, [world.key])

    altered = copy.deepcopy(statement)
    item = altered["leaves"][_leaf_of(altered, 6)]
    leaf = base64.b64decode(item["leaf"])
    leaf = leaf[:-1] + bytes([leaf[-1] ^ 1])
    item["leaf"] = base64.b64encode(leaf).decode()
    with pytest.raises(StatementError, match="not in the checkpoint's tree"):
        verify_statement(altered, [world.key])

    no_boundary = {**statement, "boundary": False}
    with pytest.raises(StatementError, match="ends at version 8, not 7"):
        verify_statement(no_boundary, [world.key])
    no_boundary_leaf = copy.deepcopy(no_boundary)
    no_boundary_leaf["last_version"] = 7
    with pytest.raises(StatementError, match=r"holds version 8, outside 3\.\.7"):
        verify_statement(no_boundary_leaf, [world.key])

    wider = {**statement, "to": world.marks[3]}  # claims the period runs on, boundary inside
    with pytest.raises(StatementError, match="boundary entry 8 is inside the period"):
        verify_statement(wider, [world.key])

    with pytest.raises(StatementError, match="does not verify"):
        verify_statement(statement, [world.audit.verifier_keys()[-1]["verifier_key"][:-4] + "AAA="])


def _pages(world: World, start: int, end: int, limit: int) -> list[dict[str, Any]]:
    pages = [world.audit.statement("ten_default", world.alice, start, end, limit=limit)]
    while pages[-1]["has_more"]:
        cursor = pages[-1]["next_cursor"]
        pages.append(
            world.audit.statement(
                "ten_default", world.alice, start, end, limit=limit, cursor=cursor
            )
        )
    return pages


def test_a_statement_in_pages_proves_the_same(world: World) -> None:
    """Pages of two entries join into the statement of one page; a page left out, repeated,
    moved or taken from another statement is caught."""
    whole = verify_statement(world.statement(world.marks[1], world.marks[2]), [world.key])
    pages = _pages(world, world.marks[1], world.marks[2], limit=2)
    # Versions 3 (opening) to 8 (boundary): three pages.
    assert [(p["first_version"], p["last_version"]) for p in pages] == [(3, 4), (5, 6), (7, 8)]
    assert [p["has_more"] for p in pages] == [True, True, False]
    assert all(len(p["leaves"]) == 2 for p in pages)
    checked = verify_statement(pages, [world.key])
    assert (checked.entries, checked.opening, checked.closing, checked.pages) == (
        whole.entries,
        whole.opening,
        whole.closing,
        3,
    )
    with pytest.raises(StatementError, match="page 1 starts at version 7, not 5"):
        verify_statement([pages[0], pages[2]], [world.key])
    with pytest.raises(StatementError, match="page 1 starts at version 3"):
        verify_statement([pages[0], pages[0], pages[1], pages[2]], [world.key])
    with pytest.raises(StatementError, match="has_more"):
        verify_statement(pages[:2], [world.key])
    moved = copy.deepcopy(pages)
    moved[1]["leaves"].append(moved[2]["leaves"].pop())
    with pytest.raises(StatementError, match=r"page 1 holds version 8, outside 5\.\.6"):
        verify_statement(moved, [world.key])
    other = _pages(world, world.marks[0], world.marks[2], limit=2)
    with pytest.raises(StatementError, match="page 1: from is not the first page's"):
        verify_statement([pages[0], *other[1:]], [world.key])
    # A cursor is for the statement it came from.
    with pytest.raises(InvalidRequest) as exc:
        world.audit.statement(
            "ten_default",
            world.alice,
            world.marks[0],
            world.marks[2],
            cursor=pages[0]["next_cursor"],
        )
    assert exc.value.code == "invalid_cursor"
    for bad in ("stm_", "nope", "stm_MS4yLjMuNC41LjY", pages[0]["next_cursor"][:-2]):
        with pytest.raises(InvalidRequest):
            world.audit.statement(
                "ten_default", world.alice, world.marks[1], world.marks[2], cursor=bad
            )
    with pytest.raises(InvalidRequest) as exc:
        world.audit.statement(
            "ten_default", world.alice, world.marks[1], world.marks[2], limit=1001
        )
    assert exc.value.code == "invalid_limit"


def test_another_tenants_account_has_no_statement(world: World) -> None:
    other = world.ledger.create_ledger("theirs", tenant_id="ten_other")
    theirs = world.ledger.create_account(other.id, "USD", Direction.DEBIT).id
    with pytest.raises(NotFound):
        world.audit.statement("ten_default", theirs, 0, clock.now_us())


def test_verify_statement_cli(world: World, tmp_path: Path) -> None:
    path = tmp_path / "statement.json"
    path.write_text(json.dumps(world.statement(world.marks[1], world.marks[2])))
    runner = CliRunner()
    good = runner.invoke(
        cli_app, ["audit", "verify-statement", str(path), "--public-key", world.key]
    )
    assert good.exit_code == 0, good.output
    assert "statement: ok, complete: 4 entries" in good.output
    assert "credit 7 pending +0" in good.output
    statement = json.loads(path.read_text())
    statement["leaves"].pop()
    path.write_text(json.dumps(statement))
    bad = runner.invoke(
        cli_app, ["audit", "verify-statement", str(path), "--public-key", world.key]
    )
    assert bad.exit_code == 1
    assert "statement: INVALID" in bad.output
    # Pages: one file each, in order.
    files = []
    for n, page in enumerate(_pages(world, world.marks[1], world.marks[2], limit=3)):
        files.append(tmp_path / f"page{n}.json")
        files[-1].write_text(json.dumps(page))
    paged = runner.invoke(
        cli_app, ["audit", "verify-statement", *map(str, files), "--public-key", world.key]
    )
    assert paged.exit_code == 0, paged.output
    assert "statement: ok, complete: 4 entries" in paged.output
    assert "2 pages" in paged.output
    backwards = runner.invoke(
        cli_app, ["audit", "verify-statement", *map(str, files[::-1]), "--public-key", world.key]
    )
    assert backwards.exit_code == 1


def test_a_statement_over_a_bulk_batch(world: World) -> None:
    """Thirty entries of one account in one bundle: each found, none twice."""
    start = _tick()
    batch = [
        NewTransfer(f"tr_bulk{i:02d}", world.ledger_id, world.bank, world.alice, 1000 + i)
        for i in range(30)
    ]
    assert all(o.result is TransferResult.CREATED for o in world.ledger.post_transfers(batch))
    end = _tick()
    checked = verify_statement(world.statement(start, end), [world.key])
    assert [e.amount for e in checked.entries] == [1000 + i for i in range(30)]
    assert [e.transfer_id for e in checked.entries] == [f"tr_bulk{i:02d}" for i in range(30)]
    assert checked.closing[1] == checked.opening[1] + sum(1000 + i for i in range(30))
