"""Review of the `kyc_usage_counted` control (issue 12): hand edits of `kyc_usage` that the
control once did not notice, and of `kyc_limits_since`, which bounds the hours it compares."""

from __future__ import annotations

import sqlalchemy as sa

from strongroom.compliance.controls.model import Outcome
from strongroom.compliance.kyc.limit import KycLimit
from strongroom.compliance.kyc.service import KycService
from strongroom.core import clock
from strongroom.db import tables
from strongroom.ledger.model import Direction
from strongroom.ledger.service import AccountSpec, LedgerService, NewTransfer
from tests.integration import test_compliance_gdpr_controls as gdpr_controls
from tests.integration.test_compliance_gdpr_controls import ACTOR, HOUR_US, World, _control
from tests.integration.test_ledger_service import ManualClock

world = gdpr_controls.world  # the fixture


def _paying(w: World) -> tuple[ManualClock, LedgerService, str]:
    ticking = ManualClock((clock.now_us() // HOUR_US - 10) * HOUR_US + 1_000)
    ledger = LedgerService(
        w.engine, clock_=ticking, customers=lambda uow, t, ids: set(ids), limits=[KycLimit()]
    )
    KycService(w.engine, ledger, customers=lambda uow, t, ids: set(ids)).set(
        "ten_a", "cus_u", "verified", "enhanced", actor=ACTOR
    )
    (u1,) = (a.id for a in ledger.create_accounts([AccountSpec(w.book, "USD", Direction.CREDIT,
                                                                customer_id="cus_u")]))  # fmt: skip
    assert ledger.post_transfers([NewTransfer("tr_fund", w.book, w.bank, u1, 100_000)])[0].row
    return ticking, ledger, u1


def test_deleting_every_older_bucket_is_a_finding(world: World) -> None:
    """Deleting every bucket older than the newest hour is a finding: the first hour compared
    comes from when the limits were first on (kyc_limits_since), not from the earliest bucket
    stored, so the deleted hours are still recounted (else the caps would allow it all
    again)."""
    ticking, ledger, u1 = _paying(world)
    assert ledger.post_transfers([NewTransfer("tr_h0", world.book, u1, world.bank, 100)])[0].row
    ticking.advance(2 * HOUR_US)
    assert ledger.post_transfers([NewTransfer("tr_h2", world.book, u1, world.bank, 5_000)])[0].row
    ticking.advance(2 * HOUR_US)
    assert ledger.post_transfers([NewTransfer("tr_h4", world.book, u1, world.bank, 10)])[0].row
    before = _control(world.controls().run(actor=ACTOR), "kyc_usage_counted")
    assert before.outcome is Outcome.PASS
    newest = ticking.now_us() // HOUR_US
    with world.engine.begin() as conn:  # the hand edit: 5,100 of usage forgotten
        conn.execute(sa.delete(tables.kyc_usage).where(tables.kyc_usage.c.hour < newest))
    after = _control(world.controls().run(actor=ACTOR), "kyc_usage_counted")
    assert after.outcome is Outcome.FAIL, after.summary


def test_when_the_limits_were_first_on_is_recorded_once_and_guarded(world: World) -> None:
    """The first posting that writes a bucket records when the limits were first on (its
    time, never moved by later ones); that row deleted while buckets are stored, or moved
    past the earliest bucket, is a finding."""
    ticking, ledger, u1 = _paying(world)
    started = ticking.now_us()
    assert ledger.post_transfers([NewTransfer("tr_h0", world.book, u1, world.bank, 100)])[0].row
    ticking.advance(2 * HOUR_US)
    assert ledger.post_transfers([NewTransfer("tr_h2", world.book, u1, world.bank, 50)])[0].row
    since = tables.kyc_limits_since
    with world.engine.connect() as conn:
        assert conn.execute(sa.select(since.c.id, since.c.since)).all() == [(1, started)]
    assert _control(world.controls().run(actor=ACTOR), "kyc_usage_counted").outcome is (
        Outcome.PASS
    )
    with world.engine.begin() as conn:  # moved to the newest hour: the older buckets before it
        conn.execute(sa.update(since).values(since=ticking.now_us()))
    moved = _control(world.controls().run(actor=ACTOR), "kyc_usage_counted")
    assert moved.outcome is Outcome.FAIL
    assert [f.detail["table"] for f in moved.findings] == ["kyc_limits_since"]
    with world.engine.begin() as conn:
        conn.execute(sa.delete(since))
    gone = _control(world.controls().run(actor=ACTOR), "kyc_usage_counted")
    assert gone.outcome is Outcome.FAIL
    assert [f.detail["table"] for f in gone.findings] == ["kyc_limits_since"]
    assert "no record of when the KYC limits were first on" in gone.summary
