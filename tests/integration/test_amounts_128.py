"""128-bit amounts end to end, on SQLite and PostgreSQL, in the configuration `serve` ships
(the outbox and the audit log on, through runtime.build_ledger): an 18-decimal token moves
10^9 whole tokens (10^27 minor units) a thousand times, totals run up to 2^128-1 and refuse one
more, two-phase and reversals work past 64 bits, and both verifiers agree afterwards."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine as SAEngine

from strongroom.audit.service import AuditLog
from strongroom.core.limits import AMOUNT_MAX, NATIVE_INT_MAX
from strongroom.db.uow import UnitOfWork
from strongroom.events import store as event_store
from strongroom.ledger.model import Action, Direction, Leg, NewTransfer, Status
from strongroom.ledger.model import TransferResult as R
from strongroom.ledger.service import Account, AccountSpec, LedgerService
from strongroom.runtime import build_ledger
from strongroom.settings import Settings

D, C = Direction.DEBIT, Direction.CREDIT
TOKEN = 10**18  # one whole token of an 18-decimal asset, in minor units
BILLION_TOKENS = 10**9 * TOKEN  # 10^27: past 2^63-1 (about 9.2 whole tokens) by far


@pytest.fixture
def served(db_engine: SAEngine, db_url: str) -> tuple[LedgerService, AuditLog]:
    return build_ledger(db_engine, Settings(database_url=db_url))


def _accounts(svc: LedgerService, n: int, asset: str = "WEI18") -> tuple[str, list[Account]]:
    svc.create_asset(asset, 18)
    ledger = svc.create_ledger("tokens")
    specs = [AccountSpec(ledger.id, asset, D if i == 0 else C) for i in range(n)]
    return ledger.id, svc.create_accounts(specs)


def _verify_both(svc: LedgerService, audit: AuditLog) -> None:
    report = svc.verify()
    assert report.ok, report.problems
    audit_report = audit.verify()
    assert audit_report.ok, audit_report.problems


def test_a_billion_tokens_at_scale_18_move_a_thousand_times(
    served: tuple[LedgerService, AuditLog],
) -> None:
    svc, audit = served
    ledger_id, (issuer, a, b) = _accounts(svc, 3)
    assert svc.transfer(ledger_id, issuer.id, a.id, BILLION_TOKENS).result is R.CREATED
    # A thousand moves of the whole balance back and forth: singly and in batches.
    for i in range(100):
        src, dst = (a, b) if i % 2 == 0 else (b, a)
        out = svc.transfer(ledger_id, src.id, dst.id, BILLION_TOKENS, id=f"single-{i}")
        assert out.result is R.CREATED
    batch = [
        NewTransfer(
            id=f"bulk-{i}",
            ledger_id=ledger_id,
            debit_account_id=(a if i % 2 == 0 else b).id,
            credit_account_id=(b if i % 2 == 0 else a).id,
            amount=BILLION_TOKENS,
        )
        for i in range(900)
    ]
    assert {o.result for o in svc.post_transfers(batch)} == {R.CREATED}
    moves = 1000
    assert moves == 100 + len(batch)
    for account, debits, credits in (
        (a, moves // 2 * BILLION_TOKENS, (moves // 2 + 1) * BILLION_TOKENS),
        (b, moves // 2 * BILLION_TOKENS, moves // 2 * BILLION_TOKENS),
    ):
        balances = svc.get_account(account.id).balances
        assert (balances.debits_posted, balances.credits_posted) == (debits, credits)
        assert balances.debits_posted > NATIVE_INT_MAX
    assert svc.get_account(a.id).balance_view()["posted"] == BILLION_TOKENS
    assert svc.get_account(b.id).balance_view()["posted"] == 0
    # History is exact too: every entry of b, and the balance at any version.
    entries = svc.list_entries(b.id, limit=100).data
    assert all(e.amount == BILLION_TOKENS for e in entries)
    version, then, _ = svc.balance_at(a.id, version=1)
    assert (version, then.credits_posted) == (1, BILLION_TOKENS)
    # The transfer reads back exactly, and its event renders the exact integer.
    assert svc.get_transfer("bulk-899").amount == BILLION_TOKENS
    _verify_both(svc, audit)


def test_events_carry_the_exact_integer(served: tuple[LedgerService, AuditLog]) -> None:
    svc, _audit = served
    ledger_id, (issuer, a) = _accounts(svc, 2)
    svc.transfer(ledger_id, issuer.id, a.id, AMOUNT_MAX, id="max")
    with UnitOfWork(svc.engine, write=False) as uow:
        events, _ = event_store.list_events(
            uow,
            tenant_id=None,
            ledger_id=None,
            event_type=None,
            before_seq=None,
            limit=10,
            scan_rows_max=10,
        )
    [data] = [json.loads(e.data) for e in events if e.type == "transfer.created"]
    assert data["id"] == "max"
    assert data["amount"] == AMOUNT_MAX  # an exact JSON integer, not a float


def test_totals_run_up_to_the_limit_and_refuse_one_more(
    served: tuple[LedgerService, AuditLog],
) -> None:
    svc, audit = served
    ledger_id, (issuer, a, b) = _accounts(svc, 3)
    assert svc.transfer(ledger_id, issuer.id, a.id, AMOUNT_MAX).result is R.CREATED
    assert svc.transfer(ledger_id, issuer.id, a.id, 1).result is R.OVERFLOWS_DEBITS_POSTED
    # Pending past 64 bits, then the combined posted + pending bound.
    out = svc.transfer(ledger_id, a.id, b.id, AMOUNT_MAX // 2, pending=True, id="hold")
    assert out.result is R.CREATED
    hold_more = svc.transfer(ledger_id, a.id, b.id, AMOUNT_MAX // 2 + 2, pending=True)
    assert hold_more.result is R.OVERFLOWS_CREDITS_PENDING or hold_more.result in (
        R.OVERFLOWS_DEBITS,
        R.OVERFLOWS_DEBITS_PENDING,
    )
    balances = svc.get_account(a.id).balances
    assert balances.credits_posted == AMOUNT_MAX
    assert balances.debits_pending == AMOUNT_MAX // 2
    _verify_both(svc, audit)


def test_two_phase_and_reversals_past_64_bits(served: tuple[LedgerService, AuditLog]) -> None:
    svc, audit = served
    ledger_id, (issuer, a, b, c) = _accounts(svc, 4)
    big = 3 * 10**30
    svc.transfer(ledger_id, issuer.id, a.id, 10 * big)

    def act(id: str, action: Action, target: str, amount: int = 0) -> R:
        t = NewTransfer(id=id, ledger_id=ledger_id, action=action, target_id=target, amount=amount)
        return svc.post_transfers([t])[0].result

    assert svc.transfer(ledger_id, a.id, b.id, big, pending=True, id="p1").result is R.CREATED
    assert act("p1-post", Action.POST, "p1", big - 7) is R.CREATED  # a partial post
    assert svc.transfer(ledger_id, a.id, b.id, big, pending=True, id="p2").result is R.CREATED
    assert act("p2-void", Action.VOID, "p2") is R.CREATED
    assert svc.transfer(ledger_id, a.id, c.id, 2 * big, id="t1").result is R.CREATED
    assert act("t1-rev-1", Action.REVERSE, "t1", big) is R.CREATED
    assert act("t1-rev-2", Action.REVERSE, "t1") is R.CREATED  # the remainder
    assert act("t1-rev-3", Action.REVERSE, "t1", 1) is R.EXCEEDS_REVERSIBLE_AMOUNT
    legs = (Leg(a.id, D, big), Leg(b.id, C, big - 1), Leg(c.id, C, 1))
    multi = NewTransfer(id="m1", ledger_id=ledger_id, legs=legs)
    assert svc.post_transfers([multi])[0].result is R.CREATED
    assert svc.get_transfer("p1").status is Status.POSTED
    assert svc.get_transfer("p1-post").amount == big - 7
    view_b = svc.get_account(b.id).balance_view()
    assert view_b["posted"] == (big - 7) + (big - 1)
    assert view_b["credits_pending"] == view_b["debits_pending"] == 0
    assert svc.get_account(c.id).balance_view()["posted"] == 1
    _verify_both(svc, audit)


def test_a_pending_transfer_past_64_bits_expires(
    served: tuple[LedgerService, AuditLog],
) -> None:
    svc, audit = served
    ledger_id, (issuer, a) = _accounts(svc, 2)
    out = svc.transfer(ledger_id, issuer.id, a.id, 10**30, pending=True, timeout_s=1, id="hold")
    assert out.result is R.CREATED
    svc.clock = _Later(svc.clock, 5_000_000)  # type: ignore[assignment]
    assert svc.expire_due() == 1
    assert svc.get_transfer("hold").status is Status.EXPIRED
    assert svc.get_account(a.id).balance_view()["pending"] == 0
    _verify_both(svc, audit)


class _Later:
    """A clock some microseconds ahead of another."""

    def __init__(self, clock: Any, ahead_us: int) -> None:
        self.clock, self.ahead_us = clock, ahead_us

    def now_us(self) -> int:
        return int(self.clock.now_us()) + self.ahead_us


def test_sqlite_keeps_native_integers_where_they_fit(
    served: tuple[LedgerService, AuditLog], db_engine: SAEngine
) -> None:
    svc, _audit = served
    ledger_id, (issuer, a) = _accounts(svc, 2)
    svc.transfer(ledger_id, issuer.id, a.id, 5, id="small")
    svc.transfer(ledger_id, issuer.id, a.id, 2**64, id="large")
    with db_engine.connect() as conn:
        if db_engine.dialect.name == "sqlite":
            kinds = dict(conn.execute(sa.text("SELECT id, typeof(amount) FROM transfers")).all())
            assert kinds == {"small": "integer", "large": "blob"}
        else:
            amounts = dict(conn.execute(sa.text("SELECT id, amount FROM transfers")).all())
            assert amounts == {"small": 5, "large": 2**64}
