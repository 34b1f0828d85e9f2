"""The case queue's use cases: list and read cases, and decide them.

Deciding a case whose transfer a gate held is two steps, each its own transaction:

1. the decision is carried out in the ledger, through its normal path (gates, post, sinks):
   a post (approve) or a void (decline) of the held transfer, under the id
   `decision_transfer_id(case)`; so a retry after a crash finds the first attempt's post (the
   ledger answers `exists`), and an approve racing a decline of one case cannot both be
   carried out (the loser's is `exists_with_different_action`, or its target is no longer
   pending): the loser answers 409 `case_not_open` and writes nothing;
2. the case is marked decided (if it is still open), with who, why and its label, and the
   label is handed to the LabelRecorder port, with an audit leaf and an event, all in one
   transaction.

A crash between the two leaves the case open with its transfer posted (or voided); deciding
it again the same way completes it. Another tenant's case answers 404, as one that does not
exist."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.cases import store
from strongroom.cases.errors import CaseNotOpen, CaseTransferRefused
from strongroom.cases.model import (
    TRAINING_LABEL_KINDS,
    Alert,
    Case,
    CaseStatus,
    Label,
    decision_transfer_id,
    detail_json,
)
from strongroom.cases.sink import case_leaf
from strongroom.core import clock, ids
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.core.limits import CASE_KIND_LENGTH_MAX, CASE_REASON_CHARS_MAX, PAGE_SIZE_DEFAULT
from strongroom.core.pagination import check_limit
from strongroom.db.uow import UnitOfWork
from strongroom.events.hooks import EventEmitter, EventType
from strongroom.ledger.listing import Page
from strongroom.ledger.model import (
    Action,
    NewTransfer,
    TransferRecord,
    TransferResult,
)
from strongroom.ledger.service import LedgerService

log = logging.getLogger(__name__)

CASE_EVENT_TYPES: Final = (
    EventType("case.created", "A case was opened (a transfer held for review): ids only."),
    EventType("case.approved", "An analyst approved a case: its transfer was posted."),
    EventType("case.declined", "An analyst declined a case: its transfer was voided."),
    EventType(
        "case.closed",
        "A case was closed without a decision: its transfer was posted, voided or expired by "
        "another door.",
    ),
    EventType("case.assigned", "A case was assigned to a staff user (or unassigned): ids only."),
    EventType("case.note_added", "An officer added a note to a case: ids only, never the text."),
)

# Records a decided case's label for the next training run (the risk domain's, wired by the
# composition root), inside the decision's transaction: (uow, tenant id, transfer id, fraud).
# The case row's `label` column is itself a record: the port is optional.
LabelRecorder = Callable[[UnitOfWork, str, str, bool], None]

# What another domain does when an officer decides one of its alerts (a confirmed sanctions
# match freezes the customer's accounts, a dismissed one is remembered): called inside the
# decision's transaction with (uow, case, new status, actor), everything it does commits with
# the decision or not at all; an exception undoes the decision. Nothing runs after the commit:
# a step that could fail there would leave the case decided and its effect undone. Registered
# by kind (CaseService.on_decided), wired by the composition root.
DecisionHook = Callable[[UnitOfWork, Case, CaseStatus, str], None]
# (tenant, the case's transfer, its stored detail) -> the detail as a read shows it (the risk
# domain's: a held payment's tree SHAP explanation, computed when the case is first read rather
# than when it posted).
ViewHook = Callable[[str, str | None, dict[str, Any]], dict[str, Any]]

# The ledger's answers to a decision's post or void that mean the case was decided elsewhere:
# the other decision of the case won, or another door posted, voided or expired the transfer.
_DECIDED_ELSEWHERE: Final = frozenset(
    {
        TransferResult.EXISTS_WITH_DIFFERENT_ACTION,
        TransferResult.PENDING_TRANSFER_NOT_PENDING,
        TransferResult.PENDING_TRANSFER_ALREADY_POSTED,
        TransferResult.PENDING_TRANSFER_ALREADY_VOIDED,
        TransferResult.PENDING_TRANSFER_EXPIRED,
    }
)


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case with its transfer as the ledger holds it now (None: a case of no transfer)."""

    case: Case
    transfer: TransferRecord | None


class CaseService:
    def __init__(
        self,
        engine: Engine,
        ledger: LedgerService,
        *,
        audit: AuditRecorder | None = None,
        events: EventEmitter | None = None,
        labels: LabelRecorder | None = None,
        clock_: clock.MonotonicClock | None = None,
    ) -> None:
        self.engine = engine
        self.ledger = ledger
        self._audit = audit
        self._events = events
        self.labels = labels
        self.clock = clock_ or clock.MonotonicClock()
        self._hooks: dict[str, DecisionHook] = {}
        self._views: dict[str, ViewHook] = {}
        self._scopes: list[tuple[str, str]] = []

    def on_decided(self, kind: str, hook: DecisionHook) -> None:
        """`hook` runs in the transaction of every decision on a case of `kind`."""
        assert kind not in self._hooks, f"one hook per kind: {kind}"
        self._hooks[kind] = hook

    def on_view(self, kind: str, hook: ViewHook) -> None:
        """`hook` completes the detail of a case of `kind` when one is read (`get`, the
        report draft)."""
        assert kind not in self._views, f"one view hook per kind: {kind}"
        self._views[kind] = hook

    def completed(self, case: Case) -> Case:
        """`case` with its detail as its kind's view hook completes it (a risk review's
        explanation); as stored when its kind has none."""
        view = self._views.get(case.kind)
        if view is None or not case.detail:
            return case
        try:
            completed = view(case.tenant_id, case.transfer_id, case.detail_dict())
        except Exception as exc:
            # A read (or the answer of a decision that has committed) stands without what the
            # hook adds: a hand-edited decision row, an explainer that failed.
            log.warning("cases: the view of case %s failed (%s)", case.id, type(exc).__name__)
            return case
        return dataclasses.replace(case, detail=json.dumps(completed, separators=(",", ":")))

    def restrict(self, kind_prefix: str, scope: str) -> None:
        """Deciding a case whose kind starts with `kind_prefix` needs `scope` besides
        cases:write (a sanctions or AML alert is compliance's to decide: compliance:write)."""
        self._scopes.append((kind_prefix, scope))

    def required_scope(self, kind: str) -> str | None:
        """The scope a decision on a case of `kind` needs besides cases:write, if any."""
        return next((scope for prefix, scope in self._scopes if kind.startswith(prefix)), None)

    def _uow(self, write: bool = True) -> UnitOfWork:
        return UnitOfWork(self.engine, write=write)

    def uow(self, write: bool = True) -> UnitOfWork:
        """A unit of work on the queue's database (cases.work runs its changes in one)."""
        return self._uow(write)

    def record(
        self, uow: UnitOfWork, case: Case, event_type: str, actor: str, extra: dict[str, Any]
    ) -> None:
        """An audit leaf and an event of a change to `case` (ids and codes only), in `uow`."""
        data = {**case_leaf(case), **extra}
        if self._audit is not None:
            self._audit.record_all(uow, case.tenant_id, actor, [(event_type, case.id, data)])
        if self._events is not None:
            event = {"object": "case", "id": case.id, **data}
            del event["case_id"]
            self._events.emit(uow, case.tenant_id, [(event_type, event)])

    # -- alerts ----------------------------------------------------------------------------

    def open_alerts(
        self, uow: UnitOfWork, tenant_id: str, alerts: Sequence[Alert], *, actor: str
    ) -> list[Case]:
        """Open one case per alert in the caller's transaction (so an alert exists if and only
        if what raised it committed), each an audit leaf and a `case.created` event (ids and
        codes only). The caller commits."""
        if not alerts:
            return []
        now = self.clock.now_us()
        cases = []
        for case_id, alert in zip(ids.new_ids("case", len(alerts)), alerts, strict=True):
            if not alert.kind or len(alert.kind) > CASE_KIND_LENGTH_MAX:
                raise InvalidRequest(
                    f"an alert's kind is 1 to {CASE_KIND_LENGTH_MAX} characters", param="kind"
                )
            detail = {"subject": alert.subject, "evidence": dict(alert.evidence)}
            cases.append(
                Case(
                    id=case_id, tenant_id=tenant_id, kind=alert.kind, status=CaseStatus.OPEN,
                    transfer_id=alert.transfer_id, gate=None, code=alert.code,
                    detail=detail_json(detail), created_at=now, created_by=actor,
                    decided_at=None, decided_by=None, decision_reason=None, label=None,
                )
            )  # fmt: skip
        store.insert_cases(uow, cases)
        for case in cases:
            self.record(uow, case, "case.created", actor, {})
        return cases

    def decide_alerts_in(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        case_ids: Sequence[str],
        status: CaseStatus,
        *,
        actor: str,
        reason: str | None,
        effect: Callable[[], object],
    ) -> list[Case]:
        """Alerts decided through their own domain's door (a sanctions match dismissed or
        confirmed through the screening API), in the caller's transaction, as a decision in
        the queue is recorded: those of `case_ids` that are open alerts of `tenant_id` are
        locked and marked `status` (approve: label genuine; decline: fraud) with `actor` and
        `reason`; then `effect` runs (the domain's own change: what the kind's hook would do
        in the queue, so the hook is not run); then each decided case's audit leaf and event.
        The same order of locks as `_record_decision` (the case, the domain's rows, the audit
        log), so the two doors cannot deadlock. Another tenant's, a decided case and a
        transfer's hold are left as they are. The caller commits."""
        assert status in (CaseStatus.APPROVED, CaseStatus.DECLINED)
        if reason is not None and len(reason) > CASE_REASON_CHARS_MAX:
            raise InvalidRequest(
                f"a reason is at most {CASE_REASON_CHARS_MAX} characters", param="reason"
            )
        label = Label.GENUINE if status is CaseStatus.APPROVED else Label.FRAUD
        now = self.clock.now_us()
        decided: list[Case] = []
        for case_id in sorted(set(case_ids)):
            case = store.get_case(uow, case_id, lock=True)
            if (
                case is None
                or case.tenant_id != tenant_id
                or case.status is not CaseStatus.OPEN
                or case.gate is not None
            ):
                continue
            if store.decide(
                uow, case.id, status, at_us=now, actor=actor, reason=reason, label=label
            ):
                decided.append(case)
        effect()
        for case in decided:
            self.record(uow, case, f"case.{status.value}", actor, {"label": label.value})
        return decided

    # -- reads -----------------------------------------------------------------------------

    @staticmethod
    def _own(case: Case | None, tenant_id: str, case_id: str) -> Case:
        if case is None or case.tenant_id != tenant_id:  # another tenant's: as none at all
            raise NotFound(f"no case {case_id}", param="case_id")
        return case

    def get(self, tenant_id: str, case_id: str, *, complete: bool = True) -> CaseView:
        """`complete=False`: the detail as stored, without its kind's view hook (a check of
        the case's kind needs no explanation computed)."""
        with self._uow(write=False) as uow:
            case = self._own(store.get_case(uow, case_id), tenant_id, case_id)
        if complete:
            case = self.completed(case)
        transfer = self._own_transfer(case) if case.transfer_id is not None else None
        return CaseView(case, transfer)

    def list_cases(
        self,
        tenant_id: str,
        *,
        status: str | None = None,
        kind: str | None = None,
        assignee: str | None = None,
        starting_after: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
    ) -> Page[Case]:
        """Newest first; `starting_after`: the last id of the previous page."""
        check_limit(limit)
        if status is not None and status not in set(CaseStatus):
            raise InvalidRequest(f"status is one of {', '.join(CaseStatus)}", param="status")
        if kind is not None and not 1 <= len(kind) <= CASE_KIND_LENGTH_MAX:
            raise InvalidRequest(f"a kind is 1 to {CASE_KIND_LENGTH_MAX} characters", param="kind")
        with self._uow(write=False) as uow:
            rows = store.list_cases(
                uow,
                tenant_id,
                status=status,
                kind=kind,
                assignee=assignee,
                starting_after=starting_after,
                limit=limit + 1,
            )
        return Page(rows[:limit], len(rows) > limit)

    # -- decisions -------------------------------------------------------------------------

    def approve(
        self, tenant_id: str, case_id: str, *, actor: str, reason: str | None = None
    ) -> CaseView:
        """Posts the held transfer, then marks the case approved (label: genuine)."""
        return self._decide(tenant_id, case_id, CaseStatus.APPROVED, Label.GENUINE, actor, reason)

    def decline(
        self,
        tenant_id: str,
        case_id: str,
        *,
        actor: str,
        reason: str | None = None,
        fraud: bool = True,
    ) -> CaseView:
        """Voids the held transfer, then marks the case declined (label: fraud, unless
        `fraud` is False: declined for another reason)."""
        label = Label.FRAUD if fraud else Label.GENUINE
        return self._decide(tenant_id, case_id, CaseStatus.DECLINED, label, actor, reason)

    def _decide(
        self,
        tenant_id: str,
        case_id: str,
        status: CaseStatus,
        label: Label,
        actor: str,
        reason: str | None,
    ) -> CaseView:
        if reason is not None and len(reason) > CASE_REASON_CHARS_MAX:
            raise InvalidRequest(
                f"a reason is at most {CASE_REASON_CHARS_MAX} characters",
                param="reason",
            )
        with self._uow(write=False) as uow:
            case = self._own(store.get_case(uow, case_id), tenant_id, case_id)
        if case.status is not CaseStatus.OPEN:
            raise CaseNotOpen(f"case {case_id} is {case.status.value}", param="case_id")
        if case.gate is not None and case.transfer_id is not None:  # a hold, not an alert
            self._carry_out(case, status, actor)
        self._record_decision(case, status, label, actor, reason)
        return self.get(tenant_id, case_id)

    def _carry_out(self, case: Case, status: CaseStatus, actor: str) -> None:
        """Step 1: the decision's post or void, through the ledger's normal path."""
        assert case.transfer_id is not None
        held = self._own_transfer(case)
        if held is None:
            raise CaseTransferRefused(
                f"case {case.id} names no transfer of its tenant: nothing was done",
                param="case_id",
            )
        action = Action.POST if status is CaseStatus.APPROVED else Action.VOID
        order = NewTransfer(
            id=decision_transfer_id(case.id, case.created_at),
            ledger_id=held.ledger_id,
            action=action,
            target_id=held.id,
        )
        result = self.ledger.post_transfers([order], actor=actor)[0].result
        if result is TransferResult.CREATED or result is TransferResult.EXISTS:
            return
        if result in _DECIDED_ELSEWHERE:
            raise CaseNotOpen(
                f"case {case.id} was decided elsewhere: its transfer is no longer pending "
                f"({result.value})",
                param="case_id",
            )
        raise CaseTransferRefused(
            f"the ledger refused the case's {action.name.lower()}: {result.value}",
            param="case_id",
        )

    def _own_transfer(self, case: Case) -> TransferRecord | None:
        """The case's transfer, when it exists in one of the case's tenant's ledgers. A case
        of the queue only ever names its own tenant's: another's, or none (a hand edit of the
        database), is neither shown nor posted or voided."""
        assert case.transfer_id is not None
        try:
            transfer = self.ledger.get_transfer(case.transfer_id)
        except NotFound:
            log.warning("cases: case %s names a transfer that does not exist", case.id)
            return None
        tenants = self.ledger.ledger_tenants([transfer.ledger_id])
        if tenants.get(transfer.ledger_id) != case.tenant_id:
            log.warning("cases: case %s names a transfer of another tenant", case.id)
            return None
        return transfer

    def _record_decision(
        self, case: Case, status: CaseStatus, label: Label, actor: str, reason: str | None
    ) -> None:
        """Step 2: the case decided, its label recorded, a leaf and an event, in one
        transaction; a case no longer open is refused with nothing written."""
        event_type = f"case.{status.value}"
        with self._uow() as uow:
            current = store.get_case(uow, case.id, lock=True)
            assert current is not None
            decided = store.decide(
                uow,
                case.id,
                status,
                at_us=self.clock.now_us(),
                actor=actor,
                reason=reason,
                label=label,
            )
            if not decided:
                raise CaseNotOpen(f"case {case.id} is {current.status.value}", param="case_id")
            hook = self._hooks.get(case.kind)
            seen = dataclasses.replace(case, decision_reason=reason)  # as the hook sees it
            if hook is not None:
                hook(uow, seen, status, actor)
            fraud = label is Label.FRAUD
            if (
                self.labels is not None
                and case.kind in TRAINING_LABEL_KINDS
                and case.gate is not None
                and case.transfer_id is not None
            ):
                self.labels(uow, case.tenant_id, case.transfer_id, fraud)
            self.record(uow, case, event_type, actor, {"label": label.value})
            uow.commit()
