"""The risk domain's operations as request values, for both clients (as `resources`: each
function becomes a method of `Client` and `AsyncClient`)."""

from __future__ import annotations

from strongroom.client._spec import Call, model, segment
from strongroom.risk.schemas import LabelOut, RiskDecisionOut


def get_transfer_risk(transfer_id: str) -> Call[RiskDecisionOut]:
    """The risk decision recorded on a payment (`risk:read`): verdict, score, reasons, model
    and rules versions, and the top feature contributions."""
    return Call("GET", f"/v1/transfers/{segment(transfer_id)}/risk", model(RiskDecisionOut))


def create_risk_label(
    transfer_id: str, fraud: bool, *, idempotency_key: str | None = None
) -> Call[LabelOut]:
    """Label a payment as fraud or not (`risk:write`): a chargeback, an analyst's finding."""
    return Call(
        "POST",
        "/v1/risk/labels",
        model(LabelOut),
        json={"transfer_id": transfer_id, "fraud": fraud},
        idempotency_key=idempotency_key,
    )
