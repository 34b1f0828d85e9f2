"""The payee gate's recheck inside the posting transaction (SanctionsGate.recheck, the
pipeline's RecheckedGate), on SQLite and PostgreSQL: found by a race review, a payee confirmed
between the gate's read and the write was paid, and a payment held for a probable payee was
posted by its case's approval after the payee had been confirmed; then (a second review) any
payment created pending, a client's two-phase one or one another gate held, was posted after its
payee or payer had been confirmed. Each race is forced: the confirmation commits right after
the gate's read."""

from __future__ import annotations

import threading
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
from strongroom.compliance.sanctions.sink import PaymentSubjectsSink
from strongroom.core.errors import ErrorCode
from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import (
    Action,
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
class Reviewer:
    """Another gate (risk's, say): holds every payment whose metadata asks it to."""

    name: str = "risk"
    budget_ms: int = 20_000
    fail_open: bool = False
    errors: tuple[ErrorCode, ...] = ()

    def decide(
        self, batch: Sequence[NewTransfer], actor: str | None
    ) -> Sequence[GateDecision | None]:
        return [
            GateDecision(self.name, Verdict.REVIEW, "risk_review") if t.metadata else None
            for t in batch
        ]


@dataclass
class World:
    engine: SAEngine
    gate: SanctionsGate
    ledger: LedgerService
    cases: CaseService
    ids: tuple[str, str, str]
    confirm_after_read: list[str] = field(default_factory=list)

    def pay(self, payee: str, **kw: Any) -> NewTransfer:
        ledger_id, bank, alice = self.ids
        return NewTransfer(
            f"t_{uuid.uuid4().hex[:12]}",
            ledger_id,
            bank,
            alice,
            500,
            payment=Payment(kw.pop("payer", "cus_payer"), payee=payee),
            **kw,
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
        pending_subjects_in=service.pending_subjects_in,
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
        engine,
        sinks=[CaseSink(tenants_of), PaymentSubjectsSink(tenants_of)],
        gates=[ReviewHoldGate(engine), gate, Reviewer()],
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


@pytest.mark.parametrize("how", ["client_post", "risk_case_approval"])
@pytest.mark.parametrize("confirmed", ["payee", "payer"])
def test_a_pending_payment_is_not_posted_once_its_payee_or_payer_is_confirmed(
    db_engine: SAEngine, how: str, confirmed: str
) -> None:
    """Second review: a payment created pending while its payee and payer were clear (a
    client's two-phase payment, or one the risk gate held) was posted, by the client or by the
    risk case's approval, after either had been confirmed: its subjects were screened only at
    creation. Its payer and payee subjects are now kept with it and screened again at the post.
    The payer here pays from an account no customer owns (an omnibus account), which no freeze
    reaches."""
    world = _world(db_engine)
    payee = f"cpty_{uuid.uuid4().hex[:12]}"
    payer = f"cus_{uuid.uuid4().hex[:12]}"
    for subject in (f"counterparty:{payee}", f"customer:{payer}"):
        _set_status(db_engine, subject, "clear", new=True)
    if how == "client_post":
        payment = world.pay(payee, payer=payer, pending=True)
    else:
        payment = world.pay(payee, payer=payer, metadata='{"hold":true}')
    [created] = world.ledger.post_transfers([payment], validated=True, actor="cli")
    assert created.result is R.CREATED
    assert world.ledger.get_transfer(payment.id).status is Status.PENDING
    subject = f"counterparty:{payee}" if confirmed == "payee" else f"customer:{payer}"
    _set_status(db_engine, subject, "confirmed")
    if how == "client_post":
        post = NewTransfer(
            f"{payment.id}_post", payment.ledger_id, action=Action.POST, target_id=payment.id
        )
        [outcome] = world.ledger.post_transfers([post], actor="cli")
        assert outcome.result is R.BLOCKED_BY_GATE
        assert outcome.decision == BLOCKED
    else:
        [case] = [
            c for c in world.cases.list_cases(TENANT, limit=100).data if c.transfer_id == payment.id
        ]
        assert case.kind == "risk_review"
        with pytest.raises(CaseTransferRefused):
            world.cases.approve(TENANT, case.id, actor=ACTOR)
    assert world.ledger.get_transfer(payment.id).status is Status.PENDING
    # Voiding it stays open: nothing moves.
    void = NewTransfer(
        f"{payment.id}_void", payment.ledger_id, action=Action.VOID, target_id=payment.id
    )
    assert world.ledger.post_transfers([void], actor="cli")[0].result is R.CREATED
    assert world.ledger.verify().ok


def test_a_pending_payment_whose_subjects_stay_clear_posts(db_engine: SAEngine) -> None:
    world = _world(db_engine)
    payee = f"cpty_{uuid.uuid4().hex[:12]}"
    _set_status(db_engine, f"counterparty:{payee}", "clear", new=True)
    payment = world.pay(payee, pending=True)
    world.ledger.post_transfers([payment], validated=True, actor="cli")
    post = NewTransfer(
        f"{payment.id}_post", payment.ledger_id, action=Action.POST, target_id=payment.id
    )
    assert world.ledger.post_transfers([post], actor="cli")[0].result is R.CREATED
    assert world.ledger.get_transfer(payment.id).status is Status.POSTED


def test_a_confirmation_committing_during_a_dismissal_stands(
    db_engine: SAEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Second review (PostgreSQL): a dismissal read the subject's status without a lock and
    wrote `clear` after a confirmation of the same match had committed in between, so the
    confirmed subject read clear to the payee gate. The read now locks the row: the
    confirmation waits for the dismissal and is the last word. Forced: the confirmation starts
    (another worker) right after the dismissal's read."""
    service = SanctionsService(db_engine)
    subject = f"counterparty:cpty_{uuid.uuid4().hex[:12]}"
    _set_status(db_engine, subject, "probable", new=True)
    with UnitOfWork(db_engine) as uow:
        uow.cursor().execute(
            sql(
                uow,
                "INSERT INTO sanctions_results (tenant_id, subject, source, entry_id, score, "
                "fingerprint, list_version, name_digest, case_id, screened_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
            ),
            (TENANT, subject, "ofac", "e1", 0.9, "f", 1, "digest", None, 1),
        )
        uow.commit()
    real = sanctions_store.get_subject
    confirming: list[threading.Thread] = []

    def get_subject(uow: UnitOfWork, tenant_id: str, subj: str, **kw: Any) -> Any:
        row = real(uow, tenant_id, subj, **kw)
        if not confirming:
            thread = threading.Thread(
                target=service.confirm,
                args=(TENANT, subject, "ofac", "e1"),
                kwargs={"actor": "user:officer_b"},
            )
            confirming.append(thread)
            thread.start()
            thread.join(0.5)  # it commits now, unless the read above locked the row
        return row

    monkeypatch.setattr(sanctions_store, "get_subject", get_subject)
    service.dismiss(TENANT, subject, "ofac", "e1", reviewer="user:officer_a")
    monkeypatch.undo()
    confirming[0].join(30)
    assert not confirming[0].is_alive()
    assert service.statuses(TENANT, [subject]) == {subject: "confirmed"}
