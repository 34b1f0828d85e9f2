"""The error codes of the pure open banking model (see core.errors): consents' state machine,
OB amounts, currencies, date-times, account identifications and permissions.

None carries personal data: a refusal names the field (its OB JSON path, as `param`), never
an account number or a name that was sent in it. obcodes.py maps each code to the OB error
code (OB_Internal_Codeset) that the OB error body carries.
"""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import Conflict, ErrorCode, StrongroomError

CONSENT_STATE: Final = "consent_state"
INVALID_OB_AMOUNT: Final = "invalid_ob_amount"
OB_AMOUNT_NOT_EXPRESSIBLE: Final = "ob_amount_not_expressible"
UNSUPPORTED_OB_CURRENCY: Final = "unsupported_ob_currency"
INVALID_OB_DATETIME: Final = "invalid_ob_datetime"
INVALID_OB_ACCOUNT_IDENTIFICATION: Final = "invalid_ob_account_identification"
UNSUPPORTED_OB_ACCOUNT_SCHEME: Final = "unsupported_ob_account_scheme"
INVALID_OB_PERMISSIONS: Final = "invalid_ob_permissions"

OPENBANKING_MODEL_ERRORS: Final = (
    ErrorCode(
        CONSENT_STATE,
        409,
        "The consent's status does not allow this change (the detail names the status and "
        "the change): nothing was written",
    ),
    ErrorCode(
        INVALID_OB_AMOUNT,
        400,
        "An Open Banking amount is a positive decimal string of at most 13 integer and 5 "
        "fraction digits, exact in its currency's minor unit",
    ),
    ErrorCode(
        OB_AMOUNT_NOT_EXPRESSIBLE,
        422,
        "The amount cannot be written as an Open Banking amount (negative, or more than 13 "
        "integer digits)",
    ),
    ErrorCode(
        UNSUPPORTED_OB_CURRENCY,
        400,
        "The currency is not an ISO 4217 currency code with a minor unit",
    ),
    ErrorCode(
        INVALID_OB_DATETIME,
        400,
        "An Open Banking date-time is ISO 8601 with a time zone (2017-04-05T10:43:07+00:00)",
    ),
    ErrorCode(
        INVALID_OB_ACCOUNT_IDENTIFICATION,
        400,
        "An account identification is malformed for its scheme",
    ),
    ErrorCode(
        UNSUPPORTED_OB_ACCOUNT_SCHEME,
        400,
        "The account identification scheme is not UK.OBIE.SortCodeAccountNumber or UK.OBIE.IBAN",
    ),
    ErrorCode(
        INVALID_OB_PERMISSIONS,
        400,
        "The permissions are not a list of supported OB permissions that the OB rules allow "
        "together",
    ),
)


class ConsentStateError(Conflict):
    """An event that the consent's kind and status do not allow (consents.TRANSITIONS)."""

    code = CONSENT_STATE


class ObAmountNotExpressible(StrongroomError):
    """A ledger amount that an OB amount string cannot carry. Not the client's fault: the
    caller leaves such an account out of what it exposes, or answers with this."""

    code = OB_AMOUNT_NOT_EXPRESSIBLE
    status = 422
