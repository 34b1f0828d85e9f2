"""The event listing reads in proportion to its page, not to every tenant's history: a tenant
with few events among another's many gets partial pages with a cursor that goes on, and every
one of its events comes back exactly once, newest first (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from strongroom.core.errors import InvalidRequest
from strongroom.events.outbox import Outbox
from strongroom.events.service import EventService
from strongroom.ledger.model import Direction, NewTransfer
from strongroom.ledger.service import LedgerService
from strongroom.tenancy.service import TenancyService


def _ledger_of(ledger: LedgerService, tenant: str) -> tuple[str, str, str]:
    ledger_id = ledger.create_ledger(tenant, tenant_id=tenant).id
    bank = ledger.create_account(ledger_id, "USD", Direction.DEBIT).id
    alice = ledger.create_account(ledger_id, "USD", Direction.CREDIT).id
    return ledger_id, bank, alice


def test_a_tenant_pages_through_its_events_past_another_tenants_history(
    db_engine: Engine,
) -> None:
    tenancy = TenancyService(db_engine)
    big, small = (tenancy.ensure_tenant(name).id for name in ("big", "small"))
    ledger = LedgerService(db_engine, sinks=[Outbox()])
    events = EventService(db_engine)
    events.scan_rows_max = 50  # a small budget, so that its effect shows at this size
    b_ledger, b_bank, b_alice = _ledger_of(ledger, big)
    s_ledger, s_bank, s_alice = _ledger_of(ledger, small)
    mine: list[str] = []
    for round_ in range(3):
        ledger.post_transfers(
            [NewTransfer(f"b{round_}-{i}", b_ledger, b_bank, b_alice, 1) for i in range(120)]
        )
        ledger.post_transfers([NewTransfer(f"s{round_}", s_ledger, s_bank, s_alice, 1)])
        mine.append(f"s{round_}")
    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        page = events.list_events(tenant_id=small, cursor=cursor, limit=10)
        pages += 1
        assert len(page.data) <= 10
        seen.extend(e.data.split('"id":"')[1].split('"')[0] for e in page.data)
        if not page.has_more:
            break
        assert page.next_cursor is not None
        cursor = page.next_cursor
        assert pages < 100, "the listing does not end"
    assert seen == list(reversed(mine))
    # 3 x 121 events at 50 examined a page: the tenant's 3 need about 8 pages, not one scan.
    assert pages >= (3 * 121) // 50
    # With a budget larger than the history, one page holds them all.
    events.scan_rows_max = 10_000
    whole = events.list_events(tenant_id=small, limit=10)
    assert (len(whole.data), whole.has_more) == (3, False)


def test_a_bad_event_cursor_is_refused(db_engine: Engine) -> None:
    events = EventService(db_engine)
    for bad in ("cur_x", "nonsense", "cur_" + "A" * 70):
        with pytest.raises(InvalidRequest) as exc:
            events.list_events(cursor=bad)
        assert (exc.value.code, exc.value.param) == ("invalid_cursor", "cursor")
