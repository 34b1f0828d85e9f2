"""The payee gate's recheck inside the posting transaction (SanctionsGate.recheck, the
pipeline's RecheckedGate), on SQLite and PostgreSQL: found by a race review, a payee confirmed
between the gate's read and the write was paid, and a payment held for a probable payee was
posted by its case's approval after the payee had been confirmed. Each race is forced: the
confirmation commits right after the gate's read."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.engine import Engine as SAEngine

from strongroom.cases import store as cases_store
from strongroom.cases.errors import CaseTransferRefused
from strongroom.cases.gate import ReviewHoldGate
from strongroom.cases.model import CaseStatus
from strongroom.cases.service import CaseService
from strongroom.cases.sink import CaseSink
from strongroom.compliance.sanctions import store as sanctions_store
from strongroom.compliance.sanctions.gate import SanctionsGate
from strongroom.compliance.sanctions.service import SanctionsService
from strongroom.core.errors import ErrorCode
from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import (
    Direction,
    GateDecision,
    NewTransfer,
    Payment,
    Status,
    Verdict,
)
from strongroom.ledger.model import TransferResult as R
from strongroom.ledger.service import AccountSpec, LedgerService

TENANT = "ten_default"
ACTOR = "user:usr_analyst"
BLOCKED = GateDecision("sanctions", Verdict.BLOCK, "sanctions_blocked")


def _set_status(engine: SAEngine, subject: str, status: str, *, new: bool = False) -> None:
    with UnitOfWork(engine) as uow:
        if new:
            uow.cursor().execute(
                sql(
                    uow,
                    "INSERT INTO sanctions_subjects (tenant_id, subject, name_digest, status, "
                    "best_score, screened_at) VALUES (?,?,?,?,?,?)",
                ),
                (TENANT, subject, "digest", status, 0.9, 1),
            )
        else:
            sanctions_store.set_status(uow, TENANT, subject, status)
        uow.commit()


@dataclass
class World:
    engine: SAEngine
    gate: SanctionsGate
    ledger: LedgerService
    cases: CaseService
    ids: tuple[str, str, str]
    confirm_after_read: list[str] = field(default_factory=list)

    def pay(self, payee: str) -> NewTransfer:
        ledger_id, bank, alice = self.ids
        return NewTransfer(
            f"t_{uuid.uuid4().hex[:12]}",
            ledger_id,
            bank,
            alice,
            500,
            payment=Payment("cus_payer", payee=payee),
        )


def _world(engine: SAEngine, *, recheck: bool = True) -> World:
    """A ledger with the case sink, the review hold and the payee gate; the gate, when its
    `confirm_after_read` names a subject, lets that confirmation commit right after its own
    read (an officer confirming the match on another worker)."""
    box: dict[str, Any] = {}
    service = SanctionsService(engine)

    def tenants(account_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        ledger: LedgerService = box["ledger"]
        out = {}
        for account_id in account_ids:
            ledger_id = ledger.get_account(account_id).ledger_id
            out[account_id] = (ledger.ledger_tenants([ledger_id])[ledger_id], ledger_id)
        return out

    real = SanctionsGate(
        tenants,
        service.statuses,
        budget_ms=20_000,
        statuses_in=service.statuses_in if recheck else None,
        open_cases_in=cases_store.open_cases_of_transfers,
    )

    @dataclass
    class Racing:
        name: str = "sanctions"
        budget_ms: int = 20_000
        fail_open: bool = False
        errors: tuple[ErrorCode, ...] = ()
        payments_only: bool = True

        def decide(
            self, batch: Sequence[NewTransfer], actor: str | None
        ) -> Sequence[GateDecision | None]:
            answers = real.decide(batch, actor)
            while box["world"].confirm_after_read:
                _set_status(engine, box["world"].confirm_after_read.pop(), "confirmed")
            return answers

    @dataclass
    class RacingRechecked(Racing):
        def recheck(self, uow: UnitOfWork, batch: Sequence[NewTransfer]) -> Any:
            return real.recheck(uow, batch)

    def tenants_of(ledger_ids: Sequence[str], *, uow: UnitOfWork | None = None) -> Any:
        return box["ledger"].ledger_tenants(ledger_ids, uow=uow)

    gate = RacingRechecked() if recheck else Racing()
    ledger = LedgerService(
        engine, sinks=[CaseSink(tenants_of)], gates=[ReviewHoldGate(engine), gate]
    )
    box["ledger"] = ledger
    main = ledger.create_ledger("main")
    bank, alice = ledger.create_accounts(
        [
            AccountSpec(main.id, "USD", Direction.DEBIT),
            AccountSpec(main.id, "USD", Direction.CREDIT),
        ]
    )
    world = World(engine, real, ledger, CaseService(engine, ledger), (main.id, bank.id, alice.id))
    box["world"] = world
    return world


@pytest.mark.parametrize("recheck", [False, True])
def test_a_payee_confirmed_after_the_gates_read_is_not_paid(
    db_engine: SAEngine, recheck: bool
) -> None:
    world = _world(db_engine, recheck=recheck)
    payee = f"cpty_{uuid.uuid4().hex[:12]}"
    _set_status(db_engine, f"counterparty:{payee}", "clear", new=True)
    world.confirm_after_read.append(f"counterparty:{payee}")
    [outcome] = world.ledger.post_transfers([world.pay(payee)], validated=True, actor="cli")
    if not recheck:  # the race this forces: the payment posts to a confirmed payee
        assert outcome.result is R.CREATED
        return
    assert outcome.result is R.BLOCKED_BY_GATE
    assert outcome.decision == BLOCKED
    assert world.ledger.verify().ok


def test_a_held_payment_whose_payee_was_confirmed_since_is_not_posted_by_its_approval(
    db_engine: SAEngine,
) -> None:
    world = _world(db_engine)
    payee = f"cpty_{uuid.uuid4().hex[:12]}"
    _set_status(db_engine, f"counterparty:{payee}", "probable", new=True)
    payment = world.pay(payee)
    [held] = world.ledger.post_transfers([payment], validated=True, actor="cli")
    assert held.row is not None
    assert held.row[4] == Status.PENDING
    [case] = list(world.cases.list_cases(TENANT, limit=100).data)
    assert (case.kind, case.transfer_id) == ("sanctions_review", payment.id)
    _set_status(db_engine, f"counterparty:{payee}", "confirmed")
    with pytest.raises(CaseTransferRefused):
        world.cases.approve(TENANT, case.id, actor=ACTOR)
    assert world.ledger.get_transfer(payment.id).status is Status.PENDING
    assert world.cases.get(TENANT, case.id).case.status is CaseStatus.OPEN
    # The analyst declines it: the payment is voided.
    view = world.cases.decline(TENANT, case.id, actor=ACTOR)
    assert view.transfer is not None
    assert view.transfer.status is Status.VOIDED
    # A probable payee still clear of confirmation is approved as before.
    other = f"cpty_{uuid.uuid4().hex[:12]}"
    _set_status(db_engine, f"counterparty:{other}", "probable", new=True)
    second = world.pay(other)
    world.ledger.post_transfers([second], validated=True, actor="cli")
    [case] = [
        c for c in world.cases.list_cases(TENANT, limit=100).data if c.transfer_id == second.id
    ]
    approved = world.cases.approve(TENANT, case.id, actor=ACTOR)
    assert approved.transfer is not None
    assert approved.transfer.status is Status.POSTED
    assert world.ledger.verify().ok
