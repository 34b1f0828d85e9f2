"""The payments' error codes (see core.errors), and the OB code each one answers on the OB API
(OB_CODES, for resources.api's error bodies). None carries personal data: a refusal names the
field or header at fault (its OB path), never a value sent in it.

The consent gate's codes are ledger refusals (422, a transfer `blocked_by_gate`): another door
that posts a transfer naming a consent (the CLI, a batch) answers them; the payment API answers
the OB error of the consent's state instead (api.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from strongroom.core.errors import ErrorCode, StrongroomError
from strongroom.openbanking import obcodes

OB_HEADER_MISSING: Final = "ob_header_missing"
OB_PAYMENT_CONSENT_MISMATCH: Final = "ob_payment_consent_mismatch"
UNSUPPORTED_OB_LOCAL_INSTRUMENT: Final = "unsupported_ob_local_instrument"
OB_PAYMENT_FORBIDDEN: Final = "ob_payment_forbidden"
# The consent gate's blocks (gate.py).
OB_CONSENT_NOT_AUTHORISED: Final = "ob_consent_not_authorised"
OB_CONSENT_MISMATCH: Final = "ob_consent_mismatch"

OB_PAYMENTS_ERRORS: Final = (
    ErrorCode(
        OB_HEADER_MISSING,
        400,
        "A required header is missing (x-idempotency-key on the payment initiation API)",
    ),
    ErrorCode(
        OB_PAYMENT_CONSENT_MISMATCH,
        400,
        "The payment's Initiation or Risk is not exactly its consent's",
    ),
    ErrorCode(
        UNSUPPORTED_OB_LOCAL_INSTRUMENT,
        400,
        "The LocalInstrument is not one this server pays by (UK.OBIE.FPS, UK.OBIE.BACS, "
        "UK.OBIE.CHAPS)",
    ),
    ErrorCode(
        OB_PAYMENT_FORBIDDEN,
        403,
        "The payment is another client's: only the client that made a payment reads it",
    ),
)

CONSENT_GATE_ERRORS: Final = (
    ErrorCode(
        OB_CONSENT_NOT_AUTHORISED,
        422,
        "The transfer names an open banking consent that is not an authorised, unexpired, "
        "unused domestic payment consent",
    ),
    ErrorCode(
        OB_CONSENT_MISMATCH,
        422,
        "The transfer is not the payment its open banking consent authorised (its customer, "
        "account, amount, payee account or client differ)",
    ),
)

# Our codes and the OB code (OB_Internal_Codeset) each answers on the OB API.
OB_CODES: Final[Mapping[str, obcodes.ObErrorCode]] = {
    OB_HEADER_MISSING: obcodes.HEADER_MISSING,
    OB_PAYMENT_CONSENT_MISMATCH: obcodes.RESOURCE_CONSENT_MISMATCH,
    UNSUPPORTED_OB_LOCAL_INSTRUMENT: obcodes.UNSUPPORTED_LOCAL_INSTRUMENT,
    OB_PAYMENT_FORBIDDEN: obcodes.RESOURCE_CONSENT_MISMATCH,
    OB_CONSENT_NOT_AUTHORISED: obcodes.RESOURCE_INVALID_CONSENT_STATUS,
    OB_CONSENT_MISMATCH: obcodes.RESOURCE_CONSENT_MISMATCH,
}


class PaymentForbidden(StrongroomError):
    code = OB_PAYMENT_FORBIDDEN
    status = 403
