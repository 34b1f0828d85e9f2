"""KYC tier caps checked inside the posting transaction (compliance/kyc/limit.py through the
ledger's Limit port), account freezing, on SQLite and PostgreSQL; and the race: several
processes paying against one customer's daily cap on PostgreSQL never cross it; a bad tier
file stops `serve` with one line."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from strongroom.cli import app
from strongroom.compliance.kyc.limit import KycLimit
from strongroom.compliance.kyc.model import Caps, TierTable
from strongroom.compliance.kyc.service import KycService, load_tiers
from strongroom.compliance.sanctions import store as sanctions_store
from strongroom.compliance.sanctions.errors import SanctionsConfirmed
from strongroom.compliance.sanctions.owners import refuse_confirmed
from strongroom.core import ids
from strongroom.core.errors import NotFound
from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.errors import PaymentCustomerMismatch
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
from strongroom.settings import InvalidSettings
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
    # A deposit (it debits no customer's account, and carries no payment): no cap applies.
    plain = NewTransfer(ids.new_id("tr"), world.book.id, dst, src, 50_000)
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
    world.kyc.set("ten_default", cus, "verified", None, actor="cli")  # caps are not the point
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


def usage_of(engine: Engine, customer: str) -> int:
    with UnitOfWork(engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute(
            "SELECT amount FROM kyc_usage WHERE customer_id = " + ("?" if uow.sqlite else "%s"),
            (customer,),
        )
        return sum(int(r[0]) for r in cur.fetchall())


def test_a_transfer_without_a_payment_from_a_customers_account_is_capped(
    world: World, db_engine: Engine
) -> None:
    """The payer is the debit account's owner, whatever the transfer says: leaving `payment`
    out neither lifts the caps nor the verification."""
    cus = ids.new_id("cus")
    src, dst = world.account(cus), world.account()

    def plain(amount: int) -> NewTransfer:
        return NewTransfer(ids.new_id("tr"), world.book.id, src, dst, amount)

    assert world.post(plain(10)) == [(R.BLOCKED_BY_GATE, "kyc_unverified")]
    world.kyc.set("ten_default", cus, "verified", "basic", actor="cli")
    assert world.post(plain(1_001)) == [(R.BLOCKED_BY_GATE, "kyc_limit_exceeded")]
    # Plain transfers and payments of the customer share its windows (2,500 a day).
    assert world.post(plain(1_000), world.pay(cus, src, dst, 1_000), plain(600), plain(500)) == [
        (R.CREATED, None),
        (R.CREATED, None),
        (R.BLOCKED_BY_GATE, "kyc_limit_exceeded"),
        (R.CREATED, None),
    ]
    assert usage_of(db_engine, cus) == 2_500
    # A pending transfer reserves, and counts, as well.
    held = NewTransfer(ids.new_id("tr"), world.book.id, src, dst, 1, pending=True)
    assert world.post(held) == [(R.BLOCKED_BY_GATE, "kyc_limit_exceeded")]


def test_a_pending_transfer_posts_only_while_its_payer_is_verified(
    world: World, db_engine: Engine
) -> None:
    """A pending transfer created while the payer was verified does not post once the payer
    is rejected (kyc_unverified, nothing written: it is still pending and posts once verified
    again); voiding it stays allowed. Its caps were counted at creation: posting counts
    nothing again and is not refused by a window the pending transfer itself filled."""
    cus = ids.new_id("cus")
    src, dst = world.account(cus), world.account()
    assert world.post(NewTransfer(ids.new_id("tr"), world.book.id, dst, src, 10_000)) == [
        (R.CREATED, None)
    ]
    world.kyc.set("ten_default", cus, "verified", "basic", actor="cli")

    def held(amount: int) -> NewTransfer:
        return NewTransfer(ids.new_id("tr"), world.book.id, src, dst, amount, pending=True)

    def act(target: NewTransfer, action: Action) -> NewTransfer:
        return NewTransfer(
            ids.new_id("tr"), world.book.id, target_id=target.id, action=action, amount=0
        )

    first, second, third = held(1_000), held(1_000), held(500)
    assert world.post(first, second, third) == [(R.CREATED, None)] * 3
    assert usage_of(db_engine, cus) == 2_500  # the day's cap, filled by the pending ones
    world.kyc.set("ten_default", cus, "rejected", None, actor="cli")
    assert world.post(act(first, Action.POST)) == [(R.BLOCKED_BY_GATE, "kyc_unverified")]
    assert world.post(act(second, Action.VOID)) == [(R.CREATED, None)]
    assert usage_of(db_engine, cus) == 2_500
    world.kyc.set("ten_default", cus, "verified", "basic", actor="cli")
    assert world.post(act(first, Action.POST), act(third, Action.POST)) == [
        (R.CREATED, None),
        (R.CREATED, None),
    ]
    assert usage_of(db_engine, cus) == 2_500


def test_a_payment_naming_another_customer_is_refused_with_nothing_written(
    world: World, db_engine: Engine
) -> None:
    owner, other = ids.new_id("cus"), ids.new_id("cus")
    src, dst, bank = world.account(owner), world.account(), world.account()
    world.kyc.set("ten_default", other, "verified", "basic", actor="cli")
    lie = world.pay(other, src, dst, 10)  # the owner is not verified; `other` is
    with pytest.raises(PaymentCustomerMismatch) as caught:
        world.ledger.post_transfers([lie])
    assert caught.value.status == 422
    assert caught.value.param == "transfers[0].payment.customer_id"
    with pytest.raises(NotFound):
        world.ledger.get_transfer(lie.id)
    assert usage_of(db_engine, other) == 0
    # Legs too: every customer's account a payment debits must be its customer's.
    legs = (Leg(src, Direction.DEBIT, 5), Leg(dst, Direction.CREDIT, 5))
    lie_legs = NewTransfer(
        ids.new_id("tr"), world.book.id, legs=legs, payment=Payment(other), amount=0
    )
    with pytest.raises(PaymentCustomerMismatch):
        world.ledger.post_transfers([world.pay(owner, src, dst, 1), lie_legs])
    # The owner named: refused as the owner (not verified), not as a mismatch.
    assert world.post(world.pay(owner, src, dst, 10)) == [(R.BLOCKED_BY_GATE, "kyc_unverified")]
    # An account no customer owns pays as the payment's customer: capped as `other`.
    assert world.post(world.pay(other, bank, dst, 1_001)) == [
        (R.BLOCKED_BY_GATE, "kyc_limit_exceeded")
    ]
    assert world.post(world.pay(other, bank, dst, 1_000)) == [(R.CREATED, None)]
    assert usage_of(db_engine, other) == 1_000


def test_a_transfer_debiting_two_customers_accounts_caps_each(
    world: World, db_engine: Engine
) -> None:
    ada, bob = ids.new_id("cus"), ids.new_id("cus")
    a, b, dst = world.account(ada), world.account(bob), world.account()

    def legs(from_a: int, from_b: int) -> NewTransfer:
        total = from_a + from_b
        entries = (
            Leg(a, Direction.DEBIT, from_a),
            Leg(b, Direction.DEBIT, from_b),
            Leg(dst, Direction.CREDIT, total),
        )
        return NewTransfer(ids.new_id("tr"), world.book.id, legs=entries, amount=0)

    world.kyc.set("ten_default", ada, "verified", "basic", actor="cli")
    # Bob is not verified: the whole transfer is refused, nothing counted for Ada.
    assert world.post(legs(500, 500)) == [(R.BLOCKED_BY_GATE, "kyc_unverified")]
    world.kyc.set("ten_default", bob, "verified", "basic", actor="cli")
    assert world.post(legs(500, 700)) == [(R.CREATED, None)]
    assert (usage_of(db_engine, ada), usage_of(db_engine, bob)) == (500, 700)
    # Bob's 1,001 crosses his per-transfer cap: refused, Ada's 600 not counted either.
    assert world.post(legs(600, 1_001)) == [(R.BLOCKED_BY_GATE, "kyc_limit_exceeded")]
    # Ada's day: 500 + 1,000 + 1,000 fits 2,500, the next 1 does not; Bob's is his own.
    assert world.post(legs(1_000, 1), legs(1_000, 1), legs(1, 1)) == [
        (R.CREATED, None),
        (R.CREATED, None),
        (R.BLOCKED_BY_GATE, "kyc_limit_exceeded"),
    ]
    assert (usage_of(db_engine, ada), usage_of(db_engine, bob)) == (2_500, 702)
    assert world.ledger.verify().ok


def _screened(engine: Engine, customer: str, status: str) -> None:
    with UnitOfWork(engine) as uow:
        row = sanctions_store.SubjectRow("ten_default", f"customer:{customer}", "d", status, 0.9, 1)
        sanctions_store.put_subject(uow, row)
        uow.commit()


def test_a_confirmed_customer_gets_no_account_and_none_unfrozen(db_engine: Engine) -> None:
    """The owner guard (compliance/sanctions/owners.py) wired as runtime.py wires it: a
    customer confirmed on a sanctions list gets no new account, and no account of theirs is
    unfrozen, at any door of the ledger; nothing is written."""
    world = World(db_engine)
    world.ledger = LedgerService(db_engine, customers=_all_customers, owners=refuse_confirmed)
    world.kyc = KycService(db_engine, world.ledger, customers=_all_customers, tiers=TIERS)
    listed, namesake = ids.new_id("cus"), ids.new_id("cus")
    kept, other = world.account(listed), world.account(namesake)
    world.kyc.freeze_account("ten_default", kept, actor="cli")
    world.kyc.freeze_account("ten_default", other, actor="cli")
    _screened(db_engine, listed, "confirmed")
    _screened(db_engine, namesake, "probable")  # not confirmed: no refusal
    with UnitOfWork(db_engine, write=False) as uow:
        before = uow.cursor().execute("SELECT COUNT(*) FROM accounts").fetchone()[0]
    with pytest.raises(SanctionsConfirmed) as caught:
        world.account(listed)
    assert (caught.value.status, caught.value.code) == (409, "sanctions_confirmed")
    with pytest.raises(SanctionsConfirmed):  # all or nothing: the unlisted one is not made
        world.ledger.create_accounts(
            [
                AccountSpec(world.book.id, "EUR", Direction.CREDIT),
                AccountSpec(world.book.id, "EUR", Direction.CREDIT, customer_id=listed),
            ]
        )
    with UnitOfWork(db_engine, write=False) as uow:
        after = uow.cursor().execute("SELECT COUNT(*) FROM accounts").fetchone()[0]
    assert after == before
    for unfreeze in (
        lambda: world.kyc.freeze_account("ten_default", kept, frozen=False, actor="cli"),
        lambda: world.ledger.freeze_accounts(
            [kept, other], frozen=False, tenant_id=None, actor="x"
        ),
        lambda: world.ledger.freeze_customer_accounts("ten_default", listed, "x", frozen=False),
    ):
        with pytest.raises(SanctionsConfirmed):
            unfreeze()
        assert world.ledger.get_account(kept).frozen
    assert world.ledger.get_account(other).frozen  # the batch refused as a whole
    assert not world.kyc.freeze_account("ten_default", other, frozen=False, actor="cli").frozen
    assert world.account(namesake)
    # Another tenant's confirmation of the same id is not this tenant's.
    _screened(db_engine, namesake, "clear")
    with UnitOfWork(db_engine) as uow:
        row = sanctions_store.SubjectRow("ten_x", f"customer:{namesake}", "d", "confirmed", 1, 1)
        sanctions_store.put_subject(uow, row)
        uow.commit()
    assert world.account(namesake)


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


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "cannot read"),
        ("{not json", "is no tier table: Expecting property name"),
        ('{"default": {"basic": []}}', "is no tier table: tier 'basic'"),
    ],
)
def test_a_bad_tier_file_stops_serve_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, said: str
) -> None:
    """STRONGROOM_KYC_TIERS missing or malformed: `strongroom serve` stops before it starts,
    with one `error: invalid_setting: ...` line and exit code 2, as other CLI errors do (no
    traceback)."""
    tiers = tmp_path / "tiers.json"
    if content is not None:
        tiers.write_text(content, encoding="utf-8")
    monkeypatch.setenv("STRONGROOM_DATABASE_URL", f"sqlite:///{tmp_path / 'kyc.db'}")
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    monkeypatch.setenv("STRONGROOM_KYC_TIERS", str(tiers))
    result = runner.invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = [x for x in result.output.splitlines() if x.strip()]
    assert line.startswith("error: invalid_setting: STRONGROOM_KYC_TIERS: "), line
    assert said in line
    with pytest.raises(InvalidSettings, match="STRONGROOM_KYC_TIERS"):
        load_tiers(str(tiers))


def test_a_payment_checked_before_is_settled_from_what_was_kept_without_a_read(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group committer's check (payment_refusals): a payment whose customer and accounts
    an earlier check saw is settled with no statement, a mismatch included; one not seen is
    read, all of a batch's in one read; each refusal names its own transfer."""
    owner, other = ids.new_id("cus"), ids.new_id("cus")
    src, dst = world.account(owner), world.account()
    ledger = world.ledger
    good, lie = world.pay(owner, src, dst, 10), world.pay(other, src, dst, 10)
    ledger.check_payment_customers([good])
    ledger.check_payment_customers([world.pay(other, dst, src, 1)])  # `other` seen

    # Another thread clearing the kept owners mid-check never lets the mismatch through.
    class ClearedOnRead(dict[str, tuple[str, str | None]]):
        def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
            found = super().get(key, default)
            self.clear()  # as another check does past ACCOUNT_OWNERS_MAX
            return found

    kept = ledger._account_owners
    ledger._account_owners = ClearedOnRead(kept)
    with pytest.raises(PaymentCustomerMismatch):
        ledger.check_payment_customers([lie])
    ledger._account_owners = kept
    ledger.check_payment_customers([good])  # the owners read again
    newcomer = ids.new_id("cus")
    unseen_customer = world.pay(newcomer, world.account(newcomer), dst, 1)
    unseen_account = world.pay(owner, world.account(owner), dst, 1)
    reads: list[str] = []
    opened = ledger._uow

    def counted(write: bool = True) -> Any:
        reads.append("write" if write else "read")
        return opened(write=write)

    monkeypatch.setattr(ledger, "_uow", counted)
    assert ledger.payment_refusals([good]) == {}
    refused = ledger.payment_refusals([good, lie], "transfers[{}].")
    assert list(refused) == [1]
    assert isinstance(refused[1], PaymentCustomerMismatch)
    assert refused[1].param == "transfers[1].payment.customer_id"
    assert reads == []  # all of it settled from what was kept
    assert ledger.payment_refusals([unseen_customer, unseen_account, good]) == {}
    assert reads == ["read"]  # the two not seen: one read transaction
    assert ledger.payment_refusals([unseen_customer, unseen_account]) == {}
    assert reads == ["read"]  # kept since


def test_the_group_committer_refuses_a_payment_of_no_customer_alone(db_engine: Engine) -> None:
    """The coalescer checks the payments it gathers: one naming no customer of the ledger's
    tenant gets NotFound, one debiting another customer's account PaymentCustomerMismatch,
    each naming its own field, and the others of the same batch post."""
    from strongroom.ledger.coalescer import GroupCommitter

    known = {ids.new_id("cus"), ids.new_id("cus")}
    owner, other = sorted(known)

    def customers(uow: UnitOfWork, tenant_id: str, customer_ids: Sequence[str]) -> set[str]:
        del uow, tenant_id
        return known & set(customer_ids)

    ledger = LedgerService(db_engine, customers=customers)
    book = ledger.create_ledger("book", tenant_id="ten_default")
    spec = AccountSpec(book.id, "EUR", Direction.CREDIT, customer_id=owner)
    src = ledger.create_accounts([spec])[0].id
    dst = ledger.create_accounts([AccountSpec(book.id, "EUR", Direction.CREDIT)])[0].id

    def pay(customer: str) -> NewTransfer:
        return NewTransfer(ids.new_id("tr"), book.id, src, dst, 5, payment=Payment(customer))

    batch = [pay(owner), pay(ids.new_id("cus")), pay(other), pay(owner)]
    committer = GroupCommitter(ledger, batch_max=len(batch))
    try:
        # Queued while the committer cannot take them (its condition is re-entrant): one batch.
        with committer._cond:
            futures = [committer.submit(t) for t in batch]
        assert futures[0].result(timeout=30).result is R.CREATED
        assert futures[3].result(timeout=30).result is R.CREATED
        with pytest.raises(NotFound) as missing:
            futures[1].result(timeout=30)
        assert missing.value.param == "payment.customer_id"
        with pytest.raises(PaymentCustomerMismatch) as mismatch:
            futures[2].result(timeout=30)
        assert mismatch.value.param == "payment.customer_id"
    finally:
        committer.close()
    assert (committer.stats.batches, committer.stats.transfers) == (1, 2)
    for refused in (batch[1], batch[2]):
        with pytest.raises(NotFound):
            ledger.get_transfer(refused.id)
    assert ledger.get_account(src).balances.debits_posted == 10


def test_a_failed_payment_check_fails_only_the_payments_of_the_batch(
    db_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the coalescer's read of the payments' customers fails, its payments get the error
    and nothing of theirs is written; the transfers of the batch that carry no payment post."""
    import sqlite3

    from strongroom.ledger import store as ledger_store
    from strongroom.ledger.coalescer import GroupCommitter

    ledger = LedgerService(db_engine, customers=_all_customers)
    book = ledger.create_ledger("book", tenant_id="ten_default")
    spec = AccountSpec(book.id, "EUR", Direction.CREDIT, customer_id=ids.new_id("cus"))
    src = ledger.create_accounts([spec])[0].id
    dst = ledger.create_accounts([AccountSpec(book.id, "EUR", Direction.CREDIT)])[0].id

    def failing(*args: object) -> object:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(ledger_store, "account_owners", failing)
    owner = ledger.get_account(src).customer_id
    assert owner is not None
    payment = NewTransfer(ids.new_id("tr"), book.id, src, dst, 5, payment=Payment(owner))
    plain = [NewTransfer(ids.new_id("tr"), book.id, dst, src, 7) for _ in range(2)]
    batch = [plain[0], payment, plain[1]]
    committer = GroupCommitter(ledger, batch_max=len(batch))
    try:
        with committer._cond:  # one batch, as in the test above
            futures = [committer.submit(t) for t in batch]
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            futures[1].result(timeout=30)
        assert futures[0].result(timeout=30).result is R.CREATED
        assert futures[2].result(timeout=30).result is R.CREATED
    finally:
        committer.close()
    assert (committer.stats.batches, committer.stats.transfers) == (1, 2)
    with pytest.raises(NotFound):
        ledger.get_transfer(payment.id)
