"""A page costs what it returns, not the history behind it.

Every statement the service sends is counted, with the rows it gives back, and on SQLite the
virtual machine's steps (a progress handler): the work a statement does even where it returns
one row. One page of an account with 100 entries and one of an account with 100,000 entries
must send the same statements and read the same rows, give or take the entries between two
points of the sparse entry index; the steps may differ only by that and B-tree depth. A walk
of the whole history would differ a thousandfold.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from strongroom.audit.statement import verify_statement
from strongroom.core import clock
from strongroom.core.clock import MonotonicClock
from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import BATCH_TRANSFERS_MAX, ENTRY_INDEX_STRIDE
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import Direction, Leg, NewTransfer, Status
from strongroom.ledger.service import AccountSpec, LedgerService
from strongroom.runtime import build_ledger
from strongroom.settings import Settings

SMALL, LARGE = 100, 100_000
TAIL = 50  # both accounts' newest transfers come in one batch of this many
STEP = 100  # SQLite: the progress handler counts one step per this many VM instructions


@dataclass
class Reads:
    statements: int = 0
    rows: int = 0
    steps: int = 0


class _CountingCursor:
    def __init__(self, cursor: Any, reads: Reads) -> None:
        self._cursor = cursor
        self._reads = reads

    def execute(self, *args: Any) -> _CountingCursor:
        self._reads.statements += 1
        self._cursor.execute(*args)
        return self

    def fetchone(self) -> Any:
        row = self._cursor.fetchone()
        self._reads.rows += row is not None
        return row

    def fetchall(self) -> list[Any]:
        rows = list(self._cursor.fetchall())
        self._reads.rows += len(rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        for row in self._cursor:
            self._reads.rows += 1
            yield row

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], Any]], Reads]:
    """count(fn): the reads of one call."""
    current: list[Reads] = []
    plain = UnitOfWork.cursor

    def cursor(self: UnitOfWork) -> Any:
        if not current:
            return plain(self)
        reads = current[0]
        if self.sqlite:

            def step() -> int:
                reads.steps += 1
                return 0

            self.conn.set_progress_handler(step, STEP)
        return _CountingCursor(plain(self), reads)

    monkeypatch.setattr(UnitOfWork, "cursor", cursor)

    def count(fn: Callable[[], Any]) -> Reads:
        current[:] = [Reads()]
        try:
            fn()
        finally:
            reads = current.pop()
        return reads

    return count


class _SteppingClock(MonotonicClock):
    def __init__(self, start_us: int) -> None:
        super().__init__()
        self.t = start_us

    def now_us(self) -> int:
        self.t += 1_000
        return self.t


def _post(ledger: LedgerService, transfers: list[NewTransfer]) -> None:
    for start in range(0, len(transfers), BATCH_TRANSFERS_MAX):
        outcomes = ledger.post_transfers(transfers[start : start + BATCH_TRANSFERS_MAX])
        assert all(o.result.name == "CREATED" for o in outcomes)


def test_a_page_reads_the_same_at_100_and_100000_entries(
    ledger: LedgerService, counted: Callable[[Callable[[], Any]], Reads]
) -> None:
    main = ledger.create_ledger("main").id
    small, large, other = (
        a.id for a in ledger.create_accounts([AccountSpec(main, "USD", Direction.CREDIT)] * 3)
    )
    ids = (f"t{i}" for i in itertools.count())
    # A ledger-wide filtered listing while the table is small...
    _post(ledger, [NewTransfer(next(ids), main, small, other, 1) for _ in range(SMALL - TAIL)])
    _post(ledger, [NewTransfer(next(ids), main, small, other, 1) for _ in range(TAIL)])
    ledger.scan_rows_max = 80  # below the small history, so both listings use it all

    def unmatched() -> None:
        page = ledger.list_transfers(ledger_id=main, metadata=("k", "nothing"), limit=10)
        assert (page.data, page.has_more) == ([], True)
        more = ledger.list_transfers(ledger_id=main, status=Status.PENDING, cursor=page.next_cursor)
        assert (more.data, more.has_more) == ([], False)  # 100 - 80 left: the end

    scan_small = counted(unmatched)
    # ...and at a thousand times its size: the same rows examined.
    _post(ledger, [NewTransfer(next(ids), main, large, other, 1) for _ in range(LARGE - TAIL)])
    tail = [NewTransfer(next(ids), main, large, other, 1) for _ in range(TAIL)]
    _post(ledger, tail)
    assert ledger.get_account(large).version == LARGE
    assert ledger.get_account(small).version == SMALL

    def unmatched_large() -> None:
        page = ledger.list_transfers(ledger_id=main, metadata=("k", "nothing"), limit=10)
        assert (page.data, page.has_more) == ([], True)
        more = ledger.list_transfers(ledger_id=main, status=Status.PENDING, cursor=page.next_cursor)
        assert (more.data, more.has_more) == ([], True)

    scan_large = counted(unmatched_large)
    _same(scan_small, scan_large)

    def pages(account: str) -> Callable[[], None]:
        def run() -> None:
            first = ledger.list_transfers(account_id=account, limit=20)
            assert (len(first.data), first.has_more) == (20, True)
            second = ledger.list_transfers(account_id=account, limit=20, cursor=first.next_cursor)
            assert (len(second.data), second.has_more) == (20, True)
            # A transfer id as the cursor, in the newest batch; back towards newer ones too.
            newest = [t.id for t in first.data]
            by_id = ledger.list_transfers(account_id=account, limit=20, starting_after=newest[-1])
            assert [t.id for t in by_id.data] == [t.id for t in second.data]
            back = ledger.list_transfers(account_id=account, limit=5, ending_before=newest[10])
            assert [t.id for t in back.data] == newest[5:10]
            # Filtered: nothing matches, the budget ends the page.
            none = ledger.list_transfers(account_id=account, status=Status.PENDING, limit=5)
            assert (none.data, none.has_more) == ([], True)
            entries = ledger.list_entries(account, limit=20)
            assert entries.data[0].version == ledger.get_account(account).version
            deep = ledger.list_entries(account, starting_after=60, limit=20)
            assert [e.version for e in deep.data] == list(range(59, 39, -1))

        return run

    ledger.scan_rows_max = 80
    reads_small = counted(pages(small))
    reads_large = counted(pages(large))
    _same(reads_small, reads_large)
    # The bound itself: what an unbounded walk would read is a hundred times more.
    assert reads_large.rows < 1_000


def _same(small: Reads, large: Reads) -> None:
    assert large.statements == small.statements
    # A page that starts between two indexed entries reads up to a stride more to reach it:
    # the two accounts' versions sit differently between index points.
    assert abs(large.rows - small.rows) <= 4 * ENTRY_INDEX_STRIDE, (small, large)
    # SQLite: the same statements over the same rows; a deeper B-tree costs a few more steps
    # per look-up, a walk of the history would cost about a thousand times more.
    assert large.steps <= 2 * small.steps + 100, (small, large)


def test_account_listing_order_cursors_and_expiry(ledger: LedgerService) -> None:
    """Every transfer that touched the account once, where it was created, newest first; the
    release entries of an expiry add nothing, a multi-leg transfer counts once; cursors
    forward, backward and by id agree with one full listing."""
    main = ledger.create_ledger("main").id
    a, b, c = (
        x.id for x in ledger.create_accounts([AccountSpec(main, "USD", Direction.CREDIT)] * 3)
    )
    ledger.clock = _SteppingClock(ledger.clock.now_us())
    order: list[str] = []
    for i in range(30):
        if i % 7 == 3:
            t = NewTransfer(f"p{i}", main, a, b, 2, pending=True, timeout_s=1)
        elif i % 7 == 5:
            legs = (
                Leg(a, Direction.DEBIT, 1),
                Leg(b, Direction.DEBIT, 2),
                Leg(c, Direction.CREDIT, 3),
            )
            t = NewTransfer(f"m{i}", main, legs=legs)
        else:
            t = NewTransfer(f"t{i}", main, a, b, 1)
        assert ledger.post_transfers([t])[0].result.name == "CREATED"
        order.append(t.id)
    ledger.clock.t += 5_000_000
    assert ledger.expire_due() == 4
    newest_first = order[::-1]
    full = ledger.list_transfers(account_id=a, limit=100)
    assert [t.id for t in full.data] == newest_first
    assert (full.has_more, full.next_cursor) == (False, None)

    for limit in (1, 3, 4, 7):
        seen: list[str] = []
        cursor = None
        while True:
            page = ledger.list_transfers(account_id=a, limit=limit, cursor=cursor)
            seen += [t.id for t in page.data]
            if not page.has_more:
                break
            assert len(page.data) == limit
            cursor = page.next_cursor
        assert seen == newest_first
        for i, transfer_id in enumerate(newest_first):
            after = ledger.list_transfers(account_id=a, limit=limit, starting_after=transfer_id)
            assert [t.id for t in after.data] == newest_first[i + 1 : i + 1 + limit]
            before = ledger.list_transfers(account_id=a, limit=limit, ending_before=transfer_id)
            assert [t.id for t in before.data] == newest_first[max(0, i - limit) : i]
            assert before.has_more == (i > limit)
    # Backwards with next_cursor: on towards newer pages.
    back = ledger.list_transfers(account_id=a, limit=4, ending_before=newest_first[-1])
    assert [t.id for t in back.data] == newest_first[-5:-1]
    more = ledger.list_transfers(account_id=a, limit=4, cursor=back.next_cursor)
    assert [t.id for t in more.data] == newest_first[-9:-5]

    pending = ledger.list_transfers(account_id=a, status=Status.EXPIRED)
    assert [t.id for t in pending.data] == [i for i in newest_first if i.startswith("p")]
    multi = ledger.list_transfers(account_id=c)
    assert [t.id for t in multi.data] == [i for i in newest_first if i.startswith("m")]
    # A scan budget smaller than the history: partial pages that still cover everything once.
    ledger.scan_rows_max = 10
    seen, cursor = [], None
    for _ in range(100):
        page = ledger.list_transfers(account_id=a, status=Status.POSTED, limit=3, cursor=cursor)
        seen += [t.id for t in page.data]
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert seen == [i for i in newest_first if not i.startswith("p")]

    with pytest.raises(InvalidRequest) as exc:
        ledger.list_transfers(account_id=c, starting_after="t0")
    assert exc.value.code == "invalid_cursor"
    for bad in ("nope", "cur_", "cur_!!", "cur_czE"):
        with pytest.raises(InvalidRequest) as exc:
            ledger.list_transfers(account_id=a, cursor=bad)
        assert exc.value.code == "invalid_cursor"
    with pytest.raises(InvalidRequest):
        ledger.list_transfers(account_id=a, cursor=full.next_cursor or "x", starting_after="t0")


def test_a_statement_page_reads_the_same_at_100_and_100000_entries(
    db_engine: Engine, db_url: str, counted: Callable[[Callable[[], Any]], Reads]
) -> None:
    """The first page of a statement over the whole history of an account with 100 entries and
    of one with 100,000, on one log (so their proofs have the same depth)."""
    ledger, audit = build_ledger(db_engine, Settings(database_url=db_url))
    main = ledger.create_ledger("main").id
    small, large, other = (
        a.id for a in ledger.create_accounts([AccountSpec(main, "USD", Direction.CREDIT)] * 3)
    )
    ids = (f"t{i}" for i in itertools.count())
    _post(ledger, [NewTransfer(next(ids), main, small, other, 1) for _ in range(SMALL)])
    _post(ledger, [NewTransfer(next(ids), main, large, other, 1) for _ in range(LARGE)])
    audit.publish()
    end = clock.now_us()
    key = audit.verifier_keys()[-1]["verifier_key"]

    def page(account: str) -> Callable[[], None]:
        def run() -> None:
            first = audit.statement("ten_default", account, 0, end, limit=50)
            assert (first["first_version"], first["last_version"]) == (1, 50)
            assert len(first["leaves"]) == 50
            assert first["has_more"]
            following = audit.statement(
                "ten_default", account, 0, end, limit=50, cursor=first["next_cursor"]
            )
            assert (following["first_version"], following["last_version"]) == (51, 100)

        return run

    reads_small = counted(page(small))
    reads_large = counted(page(large))
    # Leaves are read by their bundles (one per commit time), and proofs by their tiles: the
    # two accounts' first entries sit in a different number of each.
    assert abs(reads_large.statements - reads_small.statements) <= 4, (reads_small, reads_large)
    assert reads_large.rows <= reads_small.rows + 2 * ENTRY_INDEX_STRIDE, (reads_small, reads_large)
    assert reads_large.steps <= 2 * reads_small.steps + 100, (reads_small, reads_large)
    pages = [audit.statement("ten_default", small, 0, end, limit=40)]
    while pages[-1]["has_more"]:
        cursor = pages[-1]["next_cursor"]
        pages.append(audit.statement("ten_default", small, 0, end, limit=40, cursor=cursor))
    assert len(verify_statement(pages, [key]).entries) == SMALL
