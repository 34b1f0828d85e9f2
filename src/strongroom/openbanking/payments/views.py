"""The OB v4.0 payment initiation response bodies, pure: a domestic payment consent
(OBWriteDomesticConsentResponse5), its funds confirmation (OBWriteFundsConfirmationResponse1),
a domestic payment (OBWriteDomesticResponse5) and its details (OBWritePaymentDetailsResponse1).
The Initiation and Risk are echoed as the TPP sent them; date-times are UTC with the zone."""

from __future__ import annotations

from typing import Any

from strongroom.openbanking.model import ob_datetime
from strongroom.openbanking.payments.model import PaymentState
from strongroom.openbanking.payments.service import PaymentView
from strongroom.openbanking.resources.model import Consent


def _links(self_url: str) -> dict[str, Any]:
    return {"Links": {"Self": self_url}, "Meta": {}}


def payment_consent(consent: Consent, self_url: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ConsentId": consent.id,
        "CreationDateTime": ob_datetime(consent.state.created_at_us),
        "Status": str(consent.status),
        "StatusUpdateDateTime": ob_datetime(consent.state.status_updated_at_us),
    }
    if "ReadRefundAccount" in consent.request:
        data["ReadRefundAccount"] = consent.request["ReadRefundAccount"]
    data["Initiation"] = consent.request["Initiation"]
    return {"Data": data, "Risk": consent.request["Risk"], **_links(self_url)}


def funds_confirmation(available: bool, at_us: int, self_url: str) -> dict[str, Any]:
    """Yes or no, never the balance."""
    result = {"FundsAvailableDateTime": ob_datetime(at_us), "FundsAvailable": available}
    return {"Data": {"FundsAvailableResult": result}, **_links(self_url)}


def _reasons(state: PaymentState) -> list[dict[str, str]]:
    assert state.reason_code is not None
    assert state.reason is not None
    return [{"StatusReasonCode": state.reason_code, "StatusReasonDescription": state.reason}]


def payment(view: PaymentView, self_url: str) -> dict[str, Any]:
    state = view.state
    data: dict[str, Any] = {
        "DomesticPaymentId": view.id,
        "ConsentId": view.consent.id,
        "CreationDateTime": ob_datetime(view.payment.created_at_us),
        "Status": str(state.status),
        "StatusUpdateDateTime": ob_datetime(state.updated_at_us),
    }
    if state.reason is not None:
        data["StatusReason"] = _reasons(state)
    data["Initiation"] = view.consent.request["Initiation"]
    return {"Data": data, **_links(self_url)}


def payment_details(view: PaymentView, self_url: str) -> dict[str, Any]:
    """One PaymentStatus: the payment's one ledger transfer (its PaymentTransactionId)."""
    state = view.state
    detail: dict[str, Any] = {"Status": str(state.status)}
    instrument = view.consent.request["Initiation"].get("LocalInstrument")
    if instrument is not None:
        detail["LocalInstrument"] = instrument
    if state.reason is not None:
        assert state.reason_code is not None
        detail["StatusReason"] = state.reason_code
        detail["StatusReasonDescription"] = state.reason
    status = {
        "PaymentTransactionId": view.id,
        "Status": str(state.status),
        "StatusUpdateDateTime": ob_datetime(state.updated_at_us),
        "StatusDetail": detail,
    }
    return {"Data": {"PaymentStatus": [status]}, **_links(self_url)}
