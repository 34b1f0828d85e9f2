"""The risk domain's use cases off the transfer path: a payment's recorded decision, a label
(a chargeback or an analyst's finding) that flows into the feature store, and the short write
of blocked payments' decisions (the risk gate's RecordBlocked)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.core import clock
from strongroom.core.errors import NotFound
from strongroom.db.uow import UnitOfWork
from strongroom.events.hooks import EventEmitter, EventType
from strongroom.risk import store
from strongroom.risk.errors import DecisionDamaged
from strongroom.risk.gate import contributions_json, explained
from strongroom.risk.model import Explain

log = logging.getLogger(__name__)

LABELLED_EVENT: Final = "risk.labelled"
RISK_EVENT_TYPES: Final = (
    EventType(LABELLED_EVENT, "A payment was labelled as fraud or not: its transfer id only."),
)
CONTRIBUTIONS_TOP: Final = 5  # the contributions an explanation computed on read shows


class RiskService:
    def __init__(
        self,
        engine: Engine,
        *,
        audit: AuditRecorder | None = None,
        events: EventEmitter | None = None,
        explain: Explain | None = None,
        now_us: Callable[[], int] = clock.now_us,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.events = events
        self.explain = explain
        self.now_us = now_us

    def payment_accounts(self, account_ids: Sequence[str]) -> dict[str, store.PayerAccount]:
        """The risk gate's AccountLookup."""
        with UnitOfWork(self.engine, write=False) as uow:
            return store.payment_accounts(uow, account_ids)

    def record_blocked(self, rows: Sequence[store.DecisionRow]) -> None:
        """The decisions of blocked payments, in a transaction of their own (a blocked payment
        posts nothing, so no posting transaction carries them). A decision recorded already
        under the id is kept: that transfer exists, or was blocked before."""
        with UnitOfWork(self.engine) as uow:
            store.upsert_decisions(uow, rows, replace=False)
            uow.commit()

    def decision(self, tenant_id: str, transfer_id: str) -> dict[str, Any]:
        """The recorded decision on the tenant's payment, as the API answers it; its
        contributions computed now when they were not stored (the gate stores none), and then
        stored, so a decision is explained once however often it is read."""
        with UnitOfWork(self.engine, write=False) as uow:
            found = store.get_decision(uow, tenant_id, transfer_id)
        if found is None:
            raise NotFound(f"no risk decision for transfer {transfer_id}", param="transfer_id")
        contributions = found.contributions
        if contributions is None:
            contributions = self._explained(tenant_id, found.model_version, found.features) or []
            if contributions:
                self._keep(tenant_id, transfer_id, contributions)
        return decision_body(found, contributions)

    def explain_case(
        self, tenant_id: str, transfer_id: str | None, detail: dict[str, Any]
    ) -> dict[str, Any]:
        """A risk review case's detail (risk.gate.Scored.to_dict) as its view shows it: the
        contributions its decision stored, else computed now (and stored with the decision)."""
        decision = detail.get("decision")
        if (
            self.explain is None
            or not isinstance(decision, dict)
            or decision.get("contributions")
            or decision.get("verdict") == "allow"
        ):
            return detail
        found = None
        if transfer_id is not None:
            # A stored decision damaged by hand has nothing to show: the case's own copy is
            # explained instead, and nothing is stored with the damaged row.
            with (
                UnitOfWork(self.engine, write=False) as uow,
                contextlib.suppress(DecisionDamaged),
            ):
                found = store.get_decision(uow, tenant_id, transfer_id)
        contributions = found.contributions if found is not None else None
        if contributions is None:
            contributions = self._explained(
                tenant_id, decision.get("model_version"), decision.get("features")
            )
            if not contributions:
                return detail
            if found is not None and transfer_id is not None:
                self._keep(tenant_id, transfer_id, contributions)
        return {**detail, "decision": {**decision, "contributions": contributions}}

    def _explained(
        self, tenant_id: str, version: object, features: object
    ) -> list[dict[str, Any]] | None:
        """The top contributions of `features` under the tenant's model `version` as JSON;
        None when they cannot be computed (risk.gate.explained)."""
        found = explained(self.explain, tenant_id, version, features)
        return None if found is None else contributions_json(found[:CONTRIBUTIONS_TOP])

    def _keep(self, tenant_id: str, transfer_id: str, contributions: list[dict[str, Any]]) -> None:
        """Stores a decision's contributions computed on read (where none are stored yet); a
        failure only means the next read computes them again."""
        try:
            with UnitOfWork(self.engine) as uow:
                store.set_contributions(uow, tenant_id, transfer_id, contributions)
                uow.commit()
        except Exception as exc:
            log.warning("risk: could not store an explanation (%s)", type(exc).__name__)

    def label(self, tenant_id: str, transfer_id: str, fraud: bool, actor: str) -> dict[str, Any]:
        """Records the label of the tenant's payment (its risk event), with an audit leaf and a
        `risk.labelled` event (ids only), in one transaction. A transfer that is no payment of
        the tenant answers not found."""
        now = self.now_us()
        with UnitOfWork(self.engine) as uow:
            found = store.label(uow, tenant_id, transfer_id, fraud, now)
            if found is None:
                raise NotFound(f"no payment {transfer_id}", param="transfer_id")
            if self.audit is not None:
                item = (LABELLED_EVENT, transfer_id, {"transfer_id": transfer_id, "fraud": fraud})
                self.audit.record_all(uow, tenant_id, actor, [item])
            if self.events is not None:
                data = {"object": "risk_label", "transfer_id": transfer_id}
                self.events.emit(uow, tenant_id, [(LABELLED_EVENT, data)])
            uow.commit()
        return {
            "object": "risk_label",
            "transfer_id": transfer_id,
            "fraud": fraud,
            "labelled_at": clock.format_us(now),
        }


def decision_body(d: store.DecisionRow, contributions: list[dict[str, Any]]) -> dict[str, Any]:
    """A decision as the API answers it: no personal data (features are numbers)."""
    return {
        "object": "risk_decision",
        "transfer_id": d.transfer_id,
        "verdict": d.verdict,
        "score": d.score,
        "reasons": d.reasons,
        "model_version": d.model_version,
        "rules_version": d.rules_version,
        "contributions": contributions,
        "features": d.features,
        "shadow_score": d.shadow_score,
        "shadow_version": d.shadow_version,
        "created_at": clock.format_us(d.created_at),
    }
