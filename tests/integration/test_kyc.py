"""KYC tier caps checked inside the posting transaction (compliance/kyc/limit.py through the
ledger's Limit port), account freezing, on SQLite and PostgreSQL; and the race: several
processes paying against one customer's daily cap on PostgreSQL never cross it."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy.engine import Engine

from strongroom.compliance.kyc.limit import KycLimit
from strongroom.compliance.kyc.model import Caps, TierTable
from strongroom.compliance.kyc.service import KycService
from strongroom.core import ids
from strongroom.core.errors import NotFound
from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.model import (
    Action,
    Direction,
    GateDecision,
    Leg,
    NewTransfer,
    Payment,
    TransferResult,
    Verdict,
)
from strongroom.ledger.service import LedgerService
from tests.integration.test_ledger_service import ManualClock

R = TransferResult
HOUR_US = 3_600_000_000
TIERS = TierTable(
    {"basic": {"*": Caps(per_transfer=1_000, daily=2_500, monthly=6_000)}},
    {"ten_other": {"gold": {"EUR": Caps(None, None, None)}}},
)


def _all_customers(uow: UnitOfWork, tenant_id: str, customer_ids: Sequence[str]) -> set[str]:
    del uow, tenant_id
    return set(customer_ids)


class World:
    def __init__(self, engine: Engine, *, limited: bool = True) -> None:
        self.clock = ManualClock()
        self.ledger = LedgerService(
            engine,
            clock_=self.clock,
            customers=_all_customers,
            limits=[KycLimit(TIERS)] if limited else [],
        )
        self.kyc = KycService(engine, self.ledger, customers=_all_customers, tiers=TIERS)
        self.book = self.ledger.create_ledger("book", tenant_id="ten_default")

    def account(self, customer: str | None = None) -> str:
        spec = AccountSpec(self.book.id, "EUR", Direction.CREDIT, customer_id=customer)
        return self.ledger.create_accounts([spec])[0].id

    def pay(self, customer: str, debit: str, credit: str, amount: int, **kw: object) -> NewTransfer:
        return NewTransfer(
            ids.new_id("tr"),
            self.book.id,
            debit,
            credit,
            amount,
            payment=Payment(customer),
            **kw,  # type: ignore[arg-type]
        )

    def post(self, *batch: NewTransfer) -> list[tuple[R, str | None]]:
        out = self.ledger.post_transfers(list(batch))
        return [(o.result, o.decision.code if o.decision else None) for o in out]


@pytest.fixture
def world(db_engine: Engine) -> World:
    return World(db_engine)


def test_only_a_verified_customer_pays_and_within_each_cap(world: World) -> None:
    cus = ids.new_id("cus")
    src, dst = world.account(cus), world.account()
    assert world.post(world.pay(cus, src, dst, 10)) == [(R.BLOCKED_BY_GATE, "kyc_unverified")]
    world.kyc.set("ten_default", cus, "pending", None, actor="cli")
    assert world.post(world.pay(cus, src, dst, 10)) == [(R.BLOCKED_BY_GATE, "kyc_unverified")]
    state = world.kyc.set("ten_default", cus, "verified", "basic", actor="cli")
    assert (state.status, state.tier) == ("verified", "basic")
    # A transfer without a payment is no customer's: no cap applies.
    plain = NewTransfer(ids.new_id("tr"), world.book.id, src, dst, 50_000)
    assert world.post(plain) == [(R.CREATED, None)]
    # One batch: each payment decided alone, in order, against the batch's earlier ones.
    results = world.post(
        world.pay(cus, src, dst, 1_001),  # over the per-transfer cap
        world.pay(cus, src, dst, 1_000),
        world.pay(cus, src, dst, 1_000),
        world.pay(cus, src, dst, 600),  # 2,600 > 2,500 in 24 h
        world.pay(cus, src, dst, 500),
    )
    refused, created = R.BLOCKED_BY_GATE, R.CREATED
    assert [r for r, _ in results] == [refused, created, created, refused, created]
    assert results[0][1] == results[3][1] == "kyc_limit_exceeded"
    out = world.ledger.post_transfers([world.pay(cus, src, dst, 1)])[0]
    assert out.decision is not None
    assert out.decision.detail.answer() == {"window": "24h", "limit": 2_500, "asset": "EUR"}  # type: ignore[attr-defined]
    # 25 hours on, the day's usage left the window; the month's is still there (2,500 of 6,000).
    world.clock.advance(25 * HOUR_US)
    assert world.post(world.pay(cus, src, dst, 1_000)) == [(R.CREATED, None)]
    world.clock.advance(25 * HOUR_US)
    assert world.post(world.pay(cus, src, dst, 1_000), world.pay(cus, src, dst, 1_000)) == [
        (R.CREATED, None),
        (R.CREATED, None),
    ]
    world.clock.advance(25 * HOUR_US)
    refused = world.ledger.post_transfers([world.pay(cus, src, dst, 1_000)])[0]
    assert refused.decision is not None
    assert refused.decision.detail.answer()["window"] == "30d"  # type: ignore[attr-defined]


def test_a_refused_payment_fails_its_linked_chain_and_counts_nothing(world: World) -> None:
    cus = ids.new_id("cus")
    src, dst = world.account(cus), world.account()
    world.kyc.set("ten_default", cus, "verified", None, actor="cli")
    first = world.pay(cus, src, dst, 900, linked=True)
    results = world.post(first, world.pay(cus, src, dst, 2_000))
    assert [r for r, _ in results] == [R.LINKED_EVENT_FAILED, R.BLOCKED_BY_GATE]
    # Nothing was counted: the whole daily cap is still there; a replay answers `exists`.
    full = world.pay(cus, src, dst, 1_000)
    assert world.post(full, world.pay(cus, src, dst, 1_000)) == [(R.CREATED, None)] * 2
    assert world.post(full) == [(R.EXISTS, None)]
    # Legs: what the payment's debit legs take out counts.
    legs = (Leg(src, Direction.DEBIT, 600), Leg(dst, Direction.CREDIT, 600))
    leg_pay = NewTransfer(
        ids.new_id("tr"), world.book.id, legs=legs, payment=Payment(cus), amount=0
    )
    assert world.post(leg_pay)[0] == (R.BLOCKED_BY_GATE, "kyc_limit_exceeded")


def test_a_tenant_table_and_an_unknown_tier(world: World) -> None:
    cus = ids.new_id("cus")
    with pytest.raises(Exception, match="KYC tier"):
        world.kyc.set("ten_default", cus, "verified", "gold", actor="cli")
    assert world.kyc.get("ten_default", cus).status == "unverified"


def test_a_frozen_account_refuses_money_until_unfrozen(world: World) -> None:
    cus = ids.new_id("cus")
    a, b, other = world.account(cus), world.account(cus), world.account()
    pending = NewTransfer(ids.new_id("tr"), world.book.id, other, a, 70, pending=True)
    pending2 = NewTransfer(ids.new_id("tr"), world.book.id, other, a, 30, pending=True)
    assert world.post(pending, pending2) == [(R.CREATED, None)] * 2
    frozen = world.kyc.freeze_customer_accounts("ten_default", cus, "cli")
    assert sorted(frozen) == sorted([a, b])
    assert world.ledger.get_account(a).frozen
    assert world.kyc.freeze_customer_accounts("ten_default", cus, "cli") == []  # nothing new
    plain = NewTransfer(ids.new_id("tr"), world.book.id, other, b, 5)
    out = NewTransfer(ids.new_id("tr"), world.book.id, a, other, 5)
    post = NewTransfer(
        ids.new_id("tr"), world.book.id, target_id=pending.id, action=Action.POST, amount=0
    )
    void = NewTransfer(
        ids.new_id("tr"), world.book.id, target_id=pending2.id, action=Action.VOID, amount=0
    )
    assert [r for r, _ in world.post(plain, out, post, void)] == [
        R.ACCOUNT_FROZEN,
        R.ACCOUNT_FROZEN,
        R.ACCOUNT_FROZEN,
        R.CREATED,  # a void moves nothing: it releases the reservation
    ]
    with pytest.raises(NotFound):
        world.kyc.freeze_account("ten_elsewhere", a, actor="cli")
    assert not world.kyc.freeze_account("ten_default", a, frozen=False, actor="cli").frozen
    again = NewTransfer(ids.new_id("tr"), world.book.id, other, a, 5)
    assert world.post(again) == [(R.CREATED, None)]
    assert world.post(plain) == [(R.ACCOUNT_FROZEN, None)]  # b is still frozen
    report = world.ledger.verify()
    assert report.ok, report


# -- the race ----------------------------------------------------------------------------------

RACE_CAP = 20_000
RACE_AMOUNT = 1_000
RACE_PROCESSES = 4
RACE_PAYMENTS = 12  # each: 48 payments of 1,000 against a cap of 20


def _race_worker(url: str, ledger_id: str, customer: str, debit: str, credit: str) -> int:
    """Post RACE_PAYMENTS single payments; the amount accepted."""
    engine = create_engine(url)
    table = TierTable({"basic": {"*": Caps(None, RACE_CAP, None)}}, {})
    ledger = LedgerService(engine, customers=_all_customers, limits=[KycLimit(table)])
    accepted = 0
    try:
        for _ in range(RACE_PAYMENTS):
            t = NewTransfer(
                ids.new_id("tr"), ledger_id, debit, credit, RACE_AMOUNT, payment=Payment(customer)
            )
            out = ledger.post_transfers([t])[0]
            assert out.result in (R.CREATED, R.BLOCKED_BY_GATE), out.result
            accepted += RACE_AMOUNT if out.result is R.CREATED else 0
    finally:
        engine.dispose()
    return accepted


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url)
    migrate.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_concurrent_processes_never_cross_a_daily_cap(
    postgres_engine: Engine, postgres_url: str
) -> None:
    world = World(postgres_engine)
    cus = ids.new_id("cus")
    world.kyc.set("ten_default", cus, "verified", None, actor="cli")
    # Each process its own accounts of the customer: no account lock serialises them, only
    # the customer's KYC row.
    jobs = [
        (postgres_url, world.book.id, cus, world.account(cus), world.account())
        for _ in range(RACE_PROCESSES)
    ]
    with multiprocessing.get_context("spawn").Pool(RACE_PROCESSES) as pool:
        accepted = pool.starmap(_race_worker, jobs, chunksize=1)
    assert sum(accepted) == RACE_CAP  # never more; and no payment under the cap was refused
    assert RACE_PROCESSES * RACE_PAYMENTS * RACE_AMOUNT > RACE_CAP  # so some were refused
    with UnitOfWork(postgres_engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute("SELECT SUM(amount) FROM kyc_usage WHERE customer_id = %s", (cus,))
        assert int(cur.fetchone()[0]) == RACE_CAP


class _BlockFirst:
    """A gate that blocks the first transfer of every batch."""

    name = "block_first"
    budget_ms = 5_000
    fail_open = False
    errors: Sequence[object] = ()

    def decide(self, batch: Sequence[NewTransfer], actor: str | None) -> list[GateDecision | None]:
        del actor
        return [GateDecision(self.name, Verdict.BLOCK, "blocked_first")] + [None] * (len(batch) - 1)


def test_a_payment_a_gate_blocked_counts_nothing(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    migrate.upgrade(engine)
    try:
        world = World(engine)
        world.ledger = LedgerService(
            engine,
            clock_=world.clock,
            customers=_all_customers,
            limits=[KycLimit(TIERS)],
            gates=[_BlockFirst()],  # type: ignore[list-item]
        )
        cus = ids.new_id("cus")
        src, dst = world.account(cus), world.account()
        world.kyc.set("ten_default", cus, "verified", None, actor="cli")
        # The blocked 1,000 does not use the day's 2,500: 1,000 + 1,000 + 500 still fit.
        batch = [world.pay(cus, src, dst, n) for n in (1_000, 1_000, 1_000, 500)]
        assert (
            world.post(*batch) == [(R.BLOCKED_BY_GATE, "blocked_first")] + [(R.CREATED, None)] * 3
        )
    finally:
        engine.dispose()
