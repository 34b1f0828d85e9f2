"""The case queue's sink in the transfer pipeline (ledger/pipeline.py): inside the posting
transaction, before the audit log's sink, it

- opens a case for every transfer a gate held for review (a `transfer.created` row, pending,
  with a `review` decision in `CommittedBatch.decisions`): one per reviewing gate, of kind
  `risk_review` for the risk gate and `<gate>_review` for any other;
- closes the open cases of a held transfer that another door posted, voided or expired (a
  `transfer.posted` or `.voided` row whose target is the held transfer, or its own
  `transfer.expired` row), naming who did it. The post or void that carries out a case's own
  decision (its id is `decision_transfer_id(case)`) leaves that case to the case service,
  which records the analyst's decision next.

Each opened or closed case is an audit leaf and an event (ids only), in the same transaction:
a case exists if and only if its hold committed."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from strongroom.audit.hooks import AuditRecorder
from strongroom.cases import store
from strongroom.cases.model import (
    CLOSED_BY_EVENT,
    Case,
    CaseStatus,
    decision_transfer_id,
    detail_json,
    kind_for_gate,
)
from strongroom.core import clock, ids
from strongroom.db.uow import UnitOfWork
from strongroom.events.hooks import EventEmitter
from strongroom.ledger.model import Status, Verdict
from strongroom.ledger.pipeline import (
    TR_ID,
    TR_LEDGER_ID,
    TR_STATUS,
    TR_TARGET_ID,
    CommittedBatch,
)

if TYPE_CHECKING:
    from strongroom.ledger.pipeline import Sink

CREATED: Final = "transfer.created"
UNKNOWN_ACTOR: Final = "unknown"  # a batch that names no actor (a direct service call)

# ledger ids -> their tenants, read through the transaction's own connection.
TenantsOf = Callable[..., Mapping[str, str]]


def _actor(batch: CommittedBatch, transfer_id: str) -> str:
    if batch.actors is not None:
        found = batch.actors.get(transfer_id)
        if found is not None:
            return found
    return batch.actor or UNKNOWN_ACTOR


def case_leaf(case: Case) -> dict[str, Any]:
    """What an audit leaf and an event say of a case: ids and codes, never the detail."""
    return {
        "case_id": case.id,
        "kind": case.kind,
        "transfer_id": case.transfer_id,
        "gate": case.gate,
        "code": case.code,
    }


class CaseSink:
    """A sink of the transfer pipeline (ledger.pipeline.Sink). `tenants_of(ledger_ids,
    uow=uow)` finds the tenants of ledgers; `audit` and `events` record each case opened or
    closed (optional: a test of the ledger alone may leave them out)."""

    def __init__(
        self,
        tenants_of: TenantsOf,
        *,
        audit: AuditRecorder | None = None,
        events: EventEmitter | None = None,
        clock_: clock.MonotonicClock | None = None,
    ) -> None:
        self._tenants_of = tenants_of
        self.audit = audit
        self.events = events
        self.clock = clock_ or clock.MonotonicClock()

    def __call__(self, uow: UnitOfWork, batch: CommittedBatch) -> None:
        rows = batch.transfers
        if not rows:
            return
        opened = self._held(batch) if batch.decisions else []
        kinds = batch.kinds
        # The usual batch creates transfers only: nothing to close, no query.
        ended: list[tuple[str, str, str]] = []  # (held transfer, event, transfer that did it)
        if any(k in CLOSED_BY_EVENT for k in set(kinds)):
            for kind, row in zip(kinds, rows, strict=True):
                if kind == "transfer.expired":
                    ended.append((row[TR_ID], kind, row[TR_ID]))
                elif kind in CLOSED_BY_EVENT and row[TR_TARGET_ID] is not None:
                    ended.append((row[TR_TARGET_ID], kind, row[TR_ID]))
        if not opened and not ended:
            return
        now = self.clock.now_us()
        ledgers = {row[TR_LEDGER_ID] for row in rows}
        tenants = self._tenants_of(sorted(ledgers), uow=uow)
        if opened:
            cases = [
                Case(
                    id=case_id, tenant_id=tenants[row[TR_LEDGER_ID]], kind=kind_for_gate(d.gate),
                    status=CaseStatus.OPEN, transfer_id=row[TR_ID], gate=d.gate, code=d.code,
                    detail=detail_json(getattr(d, "detail", None)), created_at=now,
                    created_by=_actor(batch, row[TR_ID]), decided_at=None, decided_by=None,
                    decision_reason=None, label=None,
                )
                for case_id, (row, d) in zip(ids.new_ids("case", len(opened)), opened, strict=True)
            ]  # fmt: skip
            store.insert_cases(uow, cases)
            for case in cases:
                self._record(uow, case, "case.created", case.created_by or UNKNOWN_ACTOR)
        if ended:
            self._close(uow, batch, ended, now)

    @staticmethod
    def _held(batch: CommittedBatch) -> list[tuple[Any, Any]]:
        """(row, review decision) of each transfer this batch created pending because a gate
        held it: one per reviewing gate."""
        out = []
        decisions = batch.decisions
        for kind, row in zip(batch.kinds, batch.transfers, strict=True):
            if kind != CREATED or row[TR_STATUS] != Status.PENDING:
                continue
            seen = set()
            for decision in decisions.get(row[TR_ID], ()):
                if decision.verdict is Verdict.REVIEW and decision.gate not in seen:
                    seen.add(decision.gate)
                    out.append((row, decision))
        return out

    def _close(
        self,
        uow: UnitOfWork,
        batch: CommittedBatch,
        ended: Sequence[tuple[str, str, str]],
        now: int,
    ) -> None:
        by_transfer: dict[str, tuple[str, str]] = {}
        for held, kind, by in ended:
            by_transfer.setdefault(held, (kind, by))
        for case in store.open_cases_of_transfers(uow, list(by_transfer), lock=True):
            assert case.transfer_id is not None
            kind, by = by_transfer[case.transfer_id]
            if by == decision_transfer_id(case.id, case.created_at):
                continue  # this case's own decision: the case service records it
            actor = _actor(batch, by)
            reason = CLOSED_BY_EVENT[kind]
            if store.decide(
                uow, case.id, CaseStatus.CLOSED, at_us=now, actor=actor, reason=reason, label=None
            ):
                self._record(uow, case, "case.closed", actor, {"reason": reason, "by": by})

    def _record(
        self,
        uow: UnitOfWork,
        case: Case,
        event_type: str,
        actor: str,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        data = {**case_leaf(case), **(extra or {})}
        if self.audit is not None:
            self.audit.record_all(uow, case.tenant_id, actor, [(event_type, case.id, data)])
        if self.events is not None:
            event = {"object": "case", "id": case.id, **data}
            del event["case_id"]
            self.events.emit(uow, case.tenant_id, [(event_type, event)])


if TYPE_CHECKING:
    _implements: Sink = CaseSink(lambda ledger_ids, uow=None: {})
