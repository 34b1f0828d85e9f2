"""The case queue's sink in the ledger's pipeline, on SQLite and PostgreSQL, without the HTTP
app: a transfer two gates hold opens a case per gate, and the decision of one closes the
other; an expiry of a held transfer closes its case; a batch with nothing held writes no case.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine as SAEngine

from strongroom.cases import store
from strongroom.cases.gate import ReviewHoldGate
from strongroom.cases.model import Alert, CaseStatus
from strongroom.cases.service import CaseService
from strongroom.cases.sink import CaseSink
from strongroom.core.errors import ErrorCode
from strongroom.db.uow import UnitOfWork
from strongroom.ledger import store as ledger_store
from strongroom.ledger.model import (
    Action,
    Direction,
    GateDecision,
    NewTransfer,
    Status,
    Verdict,
    record_from_row,
    record_to_row,
)
from strongroom.ledger.model import TransferResult as R
from strongroom.ledger.pipeline import CommittedBatch
from strongroom.ledger.service import AccountSpec, LedgerService

ACTOR = "user:usr_analyst"


@dataclass
class Reviewer:
    """Holds every transfer whose metadata says `"gate": "review"`."""

    name: str
    budget_ms: int = 2_000
    fail_open: bool = False
    errors: tuple[ErrorCode, ...] = ()

    def decide(
        self, batch: Sequence[NewTransfer], actor: str | None
    ) -> Sequence[GateDecision | None]:
        return [
            GateDecision(self.name, Verdict.REVIEW, f"{self.name}_hold")
            if t.metadata and json.loads(t.metadata).get("gate") == "review"
            else None
            for t in batch
        ]


def _world(engine: SAEngine) -> tuple[LedgerService, CaseService, CaseSink, Any]:
    ledger: LedgerService | None = None

    def tenants_of(ledger_ids: Sequence[str], *, uow: UnitOfWork | None = None) -> Any:
        assert ledger is not None
        return ledger.ledger_tenants(ledger_ids, uow=uow)

    sink = CaseSink(tenants_of)
    ledger = LedgerService(engine, sinks=[sink], gates=[Reviewer("risk"), Reviewer("sanctions")])
    cases = CaseService(engine, ledger)
    main = ledger.create_ledger("main")
    bank, alice = ledger.create_accounts(
        [
            AccountSpec(main.id, "USD", Direction.DEBIT),
            AccountSpec(main.id, "USD", Direction.CREDIT),
        ]
    )
    return ledger, cases, sink, (main.id, bank.id, alice.id)


def _transfer(ids: Any, tid: str, wish: str) -> NewTransfer:
    ledger, bank, alice = ids
    meta = json.dumps({"gate": wish}, separators=(",", ":"))
    return NewTransfer(tid, ledger, bank, alice, 10, metadata=meta)


def _cases(cases: CaseService, tenant: str = "ten_default") -> list[Any]:
    return cases.list_cases(tenant, limit=100).data


def test_two_gates_open_two_cases_and_one_decision_closes_the_other(db_engine: SAEngine) -> None:
    ledger, cases, _, ids = _world(db_engine)
    outcomes = ledger.post_transfers(
        [_transfer(ids, "t_plain", "allow"), _transfer(ids, "t_held", "review")], actor=ACTOR
    )
    assert [o.row[4] if o.row else None for o in outcomes] == [Status.POSTED, Status.PENDING]
    opened = sorted(_cases(cases), key=lambda c: c.kind)
    assert [(c.kind, c.gate, c.code, c.transfer_id) for c in opened] == [
        ("risk_review", "risk", "risk_hold", "t_held"),
        ("sanctions_review", "sanctions", "sanctions_hold", "t_held"),
    ]
    assert {c.created_by for c in opened} == {ACTOR}
    risk, sanctions = opened
    view = cases.approve("ten_default", risk.id, actor=ACTOR)
    assert view.case.status is CaseStatus.APPROVED
    assert view.transfer is not None
    assert view.transfer.status is Status.POSTED
    other = cases.get("ten_default", sanctions.id).case
    assert (other.status, other.decision_reason, other.decided_by) == (
        CaseStatus.CLOSED,
        "transfer_posted",
        ACTOR,
    )


def test_an_expired_hold_closes_its_case(db_engine: SAEngine) -> None:
    ledger, cases, sink, ids = _world(db_engine)
    ledger.post_transfers([_transfer(ids, "t_exp", "review")], actor=ACTOR)
    assert len(_cases(cases)) == 2
    # As expire_due hands the sinks an expiry (a held transfer has no timeout of its own: a
    # gate that gave one would see it expire so).
    with UnitOfWork(db_engine) as uow:
        row = ledger_store.get_transfer_row(uow, "t_exp")
        assert row is not None
        record = record_from_row(row)
        record.status = Status.EXPIRED
        batch = CommittedBatch(
            kinds=["transfer.expired"],
            transfers=[record_to_row(record)],
            entries=[],
            at_us=0,
            actor="system:expiry",
        )
        sink(uow, batch)
        uow.commit()
    closed = _cases(cases)
    assert {(c.status, c.decision_reason, c.decided_by) for c in closed} == {
        (CaseStatus.CLOSED, "transfer_expired", "system:expiry")
    }


def test_a_batch_that_holds_nothing_writes_no_case(db_engine: SAEngine) -> None:
    ledger, cases, _, ids = _world(db_engine)
    ledger.post_transfers([_transfer(ids, f"t{i}", "allow") for i in range(20)])
    pending = NewTransfer("t_pend", ids[0], ids[1], ids[2], 5, pending=True)
    ledger.post_transfers([pending])
    ledger.post_transfers([NewTransfer("t_void", ids[0], action=Action.VOID, target_id="t_pend")])
    assert _cases(cases) == []
    with UnitOfWork(db_engine, write=False) as uow:
        assert store.open_cases_of_transfers(uow, ["t_pend", "t0"]) == []


def test_an_alert_opens_a_case_that_holds_nothing_and_decides_without_moving_money(
    db_engine: SAEngine,
) -> None:
    """Compliance raises alerts (a screening hit, a monitoring typology) in its own
    transaction: a case with its subject and evidence; deciding it posts or voids nothing,
    even when it names the transfer that raised it."""
    ledger, cases, _, ids = _world(db_engine)
    [posted] = ledger.post_transfers([_transfer(ids, "t_seen", "allow")], actor=ACTOR)
    assert posted.row is not None
    assert posted.row[4] == Status.POSTED
    alerts = [
        Alert("aml_structuring", "account:acc_1", {"transfers": ["t_seen"]}, "t_seen", "aml"),
        Alert("sanctions_match", "customer:cus_1", {"entry": "un:QDi.1", "score": 0.97}),
    ]
    with UnitOfWork(db_engine) as uow:
        opened = cases.open_alerts(uow, "ten_default", alerts, actor="system:test")
        uow.commit()
    assert [c.kind for c in opened] == ["aml_structuring", "sanctions_match"]
    listed = {c.kind: c for c in _cases(cases)}
    aml = listed["aml_structuring"]
    assert (aml.status, aml.transfer_id, aml.gate, aml.code) == (
        CaseStatus.OPEN, "t_seen", None, "aml",
    )  # fmt: skip
    assert json.loads(aml.detail or "{}") == {
        "subject": "account:acc_1",
        "evidence": {"transfers": ["t_seen"]},
    }
    decided = cases.decline("ten_default", aml.id, actor="user:officer", reason="reported")
    assert decided.case.status is CaseStatus.DECLINED
    assert ledger.get_transfer("t_seen").status == Status.POSTED  # nothing voided
    with UnitOfWork(db_engine) as uow:
        rolled = cases.open_alerts(uow, "ten_default", alerts[1:], actor="system:test")
        uow.rollback()
    assert rolled
    assert {c.kind for c in _cases(cases)} == {"aml_structuring", "sanctions_match"}
    assert len(_cases(cases)) == 2  # a rolled-back alert left no case


def test_a_post_racing_the_commit_of_its_transfers_hold_is_refused(db_engine: SAEngine) -> None:
    """Found in review: the review hold read open cases before the post's write transaction,
    so a post whose hold check ran while another worker was committing the payment's hold
    (each `serve` worker process has its own coalescer) found no case, then posted the held
    payment. The hold is read again inside the transaction (ReviewHoldGate.recheck). Here the
    race is forced: the other worker commits the hold between the check and the write."""
    other, _cases, _sink, ids = _world(db_engine)  # the payment's worker: it holds and opens
    hold = ReviewHoldGate(db_engine)

    @dataclass
    class Racing:
        """The review hold, with the other worker committing the hold once it has read."""

        name: str = "review_hold"
        budget_ms: int = 10_000
        fail_open: bool = False
        errors: tuple[ErrorCode, ...] = ()
        posts_only: bool = True
        tid: str = "t_held"

        def decide(
            self, batch: Sequence[NewTransfer], actor: str | None
        ) -> Sequence[GateDecision | None]:
            answers = hold.decide(batch, actor)  # no case yet: allowed
            held = other.post_transfers([_transfer(ids, self.tid, "review")], actor=ACTOR)
            assert held[0].result is R.CREATED
            return answers

    @dataclass
    class RacingRechecked(Racing):
        def recheck(self, uow: UnitOfWork, batch: Sequence[NewTransfer]) -> Any:
            return hold.recheck(uow, batch)

    # Without the check in the transaction, the race posts the held payment: what this forces.
    unchecked = LedgerService(db_engine, gates=[Racing(tid="t_raced")])
    raced = NewTransfer("t_raced_post", ids[0], action=Action.POST, target_id="t_raced")
    assert unchecked.post_transfers([raced], actor=ACTOR)[0].result is R.CREATED

    checked = LedgerService(db_engine, gates=[RacingRechecked()])
    post = NewTransfer("t_post", ids[0], action=Action.POST, target_id="t_held")
    outcome = checked.post_transfers([post], actor=ACTOR)[0]
    assert outcome.result is R.BLOCKED_BY_GATE
    assert outcome.decision == GateDecision("review_hold", Verdict.BLOCK, "held_for_review")
    assert other.get_transfer("t_held").status is Status.PENDING
    assert other.verify().ok


def test_either_case_of_a_transfer_two_gates_held_posts_it_with_the_review_hold(
    db_engine: SAEngine,
) -> None:
    """Found in review: with the review hold installed (as on every served ledger), the older
    of two open cases of one transfer could not be approved: the hold kept one case a transfer,
    the newest, and blocked the older case's own post with held_for_review."""
    _, _, sink, ids = _world(db_engine)
    hold = ReviewHoldGate(db_engine)
    ledger = LedgerService(
        db_engine, sinks=[sink], gates=[Reviewer("risk"), Reviewer("sanctions"), hold]
    )
    cases = CaseService(db_engine, ledger)
    for tid, which in (("t_older", "risk"), ("t_newer", "sanctions")):
        ledger.post_transfers([_transfer(ids, tid, "review")], actor=ACTOR)
        opened = {c.gate: c for c in _cases(cases) if c.transfer_id == tid}
        assert set(opened) == {"risk", "sanctions"}
        view = cases.approve("ten_default", opened[which].id, actor=ACTOR)
        assert view.transfer is not None
        assert view.transfer.status is Status.POSTED
        other = next(c for g, c in opened.items() if g != which)
        assert cases.get("ten_default", other.id).case.status is CaseStatus.CLOSED
    # Any other door is still refused while a case is open.
    ledger.post_transfers([_transfer(ids, "t_third", "review")], actor=ACTOR)
    post = NewTransfer("t_third_post", ids[0], action=Action.POST, target_id="t_third")
    assert ledger.post_transfers([post], actor=ACTOR)[0].result is R.BLOCKED_BY_GATE
    assert ledger.verify().ok
