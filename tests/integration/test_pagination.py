"""Cursor pagination both ways: starting_after walks forward, ending_before walks back, and
every page reads in the same order."""

from __future__ import annotations

import pytest

from strongroom.core.errors import InvalidRequest
from strongroom.ledger.model import Direction, NewTransfer
from strongroom.ledger.service import AccountSpec, LedgerService


def test_pages_forward_and_back(ledger: LedgerService) -> None:
    main = ledger.create_ledger("main")
    accounts = ledger.create_accounts(
        [AccountSpec(main.id, "USD", Direction.CREDIT) for _ in range(7)]
    )
    a, b = accounts[0].id, accounts[1].id
    ids = [f"t{i:02d}" for i in range(9)]
    ledger.post_transfers([NewTransfer(i, main.id, a, b, 1) for i in ids])
    newest_first = list(reversed(ids))

    # Transfers: newest first, forward with starting_after...
    seen, cursor = [], None
    while True:
        page = ledger.list_transfers(ledger_id=main.id, limit=4, starting_after=cursor)
        seen += [t.id for t in page.data]
        if not page.has_more:
            break
        cursor = page.data[-1].id
    assert seen == newest_first
    # ...and back with ending_before, pages in the same (newest-first) order.
    back = ledger.list_transfers(ledger_id=main.id, limit=3, ending_before="t02")
    assert [t.id for t in back.data] == ["t05", "t04", "t03"]
    assert back.has_more
    last = ledger.list_transfers(ledger_id=main.id, limit=3, ending_before="t05")
    assert [t.id for t in last.data] == ["t08", "t07", "t06"]
    assert not last.has_more
    # The same through one account's transfers.
    by_account = ledger.list_transfers(account_id=b, limit=3, ending_before="t02")
    assert [t.id for t in by_account.data] == ["t05", "t04", "t03"]

    # Accounts: by id, both ways.
    ordered = sorted(acc.id for acc in accounts)
    page = ledger.list_accounts(main.id, limit=3, ending_before=ordered[5])
    assert [acc.id for acc in page.data] == ordered[2:5]
    assert page.has_more
    page = ledger.list_accounts(main.id, limit=3, starting_after=ordered[5])
    assert [acc.id for acc in page.data] == ordered[6:]
    assert not page.has_more

    ledgers = [main.id, *(ledger.create_ledger(f"l{i}").id for i in range(3))]
    page2 = ledger.list_ledgers(limit=2, ending_before=sorted(ledgers)[-1])
    assert [x.id for x in page2.data] == sorted(ledgers)[1:3]

    with pytest.raises(InvalidRequest) as both:
        ledger.list_transfers(ledger_id=main.id, starting_after="t01", ending_before="t05")
    assert both.value.param == "ending_before"
    with pytest.raises(InvalidRequest) as unknown:
        ledger.list_transfers(ledger_id=main.id, ending_before="nope")
    assert unknown.value.code == "invalid_cursor"
