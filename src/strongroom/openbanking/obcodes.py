"""OB error bodies (OBErrorResponse1) built only from the error codes of the OB code set.

The codes are OB_Internal_Codeset.csv's `OBExternalStatusReason1Code` rows that carry an HTTP
status category (U000-U029, the `UK.OBIE.*` names): the values of OBError1.ErrorCode, which the
v4.0 schema bounds to 4 characters. They are embedded here, and
tests/unit/test_ob_codes.py checks each one (code, name, status category) against the CSV.

Pure: no HTTP framework. The HTTP layer renders `error_body(...)` with the status it chooses.
"""

from __future__ import annotations

import http
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from strongroom.openbanking import model_errors as me

# OBErrorResponse1 and OBError1's bounds (v4.0 schema: Id and Code 40, Message and Path 500).
OB_ERROR_ID_LENGTH_MAX: Final = 40
OB_ERROR_CODE_TEXT_LENGTH_MAX: Final = 40
OB_ERROR_MESSAGE_LENGTH_MAX: Final = 500
OB_ERROR_PATH_LENGTH_MAX: Final = 500
OB_ERRORS_PER_BODY_MAX: Final = 20  # ours: a body lists the first few problems, not all


@dataclass(frozen=True, slots=True)
class ObErrorCode:
    """One row of the code set: `code` goes in ErrorCode, `name` is its UK.OBIE name,
    `status_category` the CSV's HTTP status category ("400", "403", "409" or "5xx")."""

    code: str
    name: str
    status_category: str

    def __post_init__(self) -> None:
        assert len(self.code) == 4, self.code  # OBExternalStatusReason1Code: 4 characters
        assert self.name.startswith("UK.OBIE."), self.name

    @property
    def http_status(self) -> int:
        return 500 if self.status_category == "5xx" else int(self.status_category)


FIELD_EXPECTED: Final = ObErrorCode("U001", "UK.OBIE.Field.Expected", "400")
FIELD_INVALID: Final = ObErrorCode("U002", "UK.OBIE.Field.Invalid", "400")
FIELD_INVALID_DATE: Final = ObErrorCode("U003", "UK.OBIE.Field.InvalidDate", "400")
FIELD_MISSING: Final = ObErrorCode("U004", "UK.OBIE.Field.Missing", "400")
FIELD_UNEXPECTED: Final = ObErrorCode("U005", "UK.OBIE.Field.Unexpected", "400")
HEADER_INVALID: Final = ObErrorCode("U006", "UK.OBIE.Header.Invalid", "400")
HEADER_MISSING: Final = ObErrorCode("U007", "UK.OBIE.Header.Missing", "400")
RESOURCE_CONSENT_MISMATCH: Final = ObErrorCode("U008", "UK.OBIE.Resource.ConsentMismatch", "400")
RESOURCE_INVALID_CONSENT_STATUS: Final = ObErrorCode(
    "U009", "UK.OBIE.Resource.InvalidConsentStatus", "400"
)
RESOURCE_INVALID_FORMAT: Final = ObErrorCode("U010", "UK.OBIE.Resource.InvalidFormat", "400")
RESOURCE_NOT_FOUND: Final = ObErrorCode("U011", "UK.OBIE.Resource.NotFound", "400")
RULES_AFTER_CUT_OFF: Final = ObErrorCode("U012", "UK.OBIE.Rules.AfterCutOffDateTime", "400")
RULES_DUPLICATE_REFERENCE: Final = ObErrorCode("U013", "UK.OBIE.Rules.DuplicateReference", "400")
RULES_FAILS_CONTROL_PARAMETERS: Final = ObErrorCode(
    "U014", "UK.OBIE.Rules.FailsControlParameters", "400"
)
SIGNATURE_INVALID: Final = ObErrorCode("U015", "UK.OBIE.Signature.Invalid", "400")
SIGNATURE_INVALID_CLAIM: Final = ObErrorCode("U016", "UK.OBIE.Signature.InvalidClaim", "400")
SIGNATURE_MISSING_CLAIM: Final = ObErrorCode("U017", "UK.OBIE.Signature.MissingClaim", "400")
SIGNATURE_MALFORMED: Final = ObErrorCode("U018", "UK.OBIE.Signature.Malformed", "400")
SIGNATURE_MISSING: Final = ObErrorCode("U019", "UK.OBIE.Signature.Missing", "400")
SIGNATURE_UNEXPECTED: Final = ObErrorCode("U020", "UK.OBIE.Signature.Unexpected", "400")
UNSUPPORTED_ACCOUNT_IDENTIFIER: Final = ObErrorCode(
    "U021", "UK.OBIE.Unsupported.AccountIdentifier", "400"
)
UNSUPPORTED_ACCOUNT_SECONDARY_IDENTIFIER: Final = ObErrorCode(
    "U022", "UK.OBIE.Unsupported.AccountSecondaryIdentifier", "400"
)
UNSUPPORTED_CURRENCY: Final = ObErrorCode("U023", "UK.OBIE.Unsupported.Currency", "400")
UNSUPPORTED_EVENT_TYPE: Final = ObErrorCode("U024", "UK.OBIE.Unsupported.EventType", "400")
UNSUPPORTED_FREQUENCY: Final = ObErrorCode("U025", "UK.OBIE.Unsupported.Frequency", "400")
UNSUPPORTED_LOCAL_INSTRUMENT: Final = ObErrorCode(
    "U026", "UK.OBIE.Unsupported.LocalInstrument", "400"
)
UNSUPPORTED_SCHEME: Final = ObErrorCode("U027", "UK.OBIE.Unsupported.Scheme", "400")
REAUTHENTICATE: Final = ObErrorCode("U028", "UK.OBIE.Reauthenticate", "403")
RULES_RESOURCE_ALREADY_EXISTS: Final = ObErrorCode(
    "U029", "UK.OBIE.Rules.ResourceAlreadyExists", "409"
)
UNEXPECTED_ERROR: Final = ObErrorCode("U000", "UK.OBIE.UnexpectedError", "5xx")

ALL_CODES: Final[tuple[ObErrorCode, ...]] = (
    FIELD_EXPECTED,
    FIELD_INVALID,
    FIELD_INVALID_DATE,
    FIELD_MISSING,
    FIELD_UNEXPECTED,
    HEADER_INVALID,
    HEADER_MISSING,
    RESOURCE_CONSENT_MISMATCH,
    RESOURCE_INVALID_CONSENT_STATUS,
    RESOURCE_INVALID_FORMAT,
    RESOURCE_NOT_FOUND,
    RULES_AFTER_CUT_OFF,
    RULES_DUPLICATE_REFERENCE,
    RULES_FAILS_CONTROL_PARAMETERS,
    SIGNATURE_INVALID,
    SIGNATURE_INVALID_CLAIM,
    SIGNATURE_MISSING_CLAIM,
    SIGNATURE_MALFORMED,
    SIGNATURE_MISSING,
    SIGNATURE_UNEXPECTED,
    UNSUPPORTED_ACCOUNT_IDENTIFIER,
    UNSUPPORTED_ACCOUNT_SECONDARY_IDENTIFIER,
    UNSUPPORTED_CURRENCY,
    UNSUPPORTED_EVENT_TYPE,
    UNSUPPORTED_FREQUENCY,
    UNSUPPORTED_LOCAL_INSTRUMENT,
    UNSUPPORTED_SCHEME,
    REAUTHENTICATE,
    RULES_RESOURCE_ALREADY_EXISTS,
    UNEXPECTED_ERROR,
)
assert len({c.code for c in ALL_CODES}) == len(ALL_CODES)

# Our error codes (core's and the open banking model's) and the OB code each one answers.
# Codes not listed here answer FIELD_INVALID when they are a 400, UNEXPECTED_ERROR otherwise
# (ob_code_for): the HTTP layer extends this table for its own codes.
OB_CODE_BY_ERROR: Final[Mapping[str, ObErrorCode]] = {
    "invalid_request": FIELD_INVALID,
    "not_found": RESOURCE_NOT_FOUND,
    me.CONSENT_STATE: RESOURCE_INVALID_CONSENT_STATUS,
    me.INVALID_OB_AMOUNT: FIELD_INVALID,
    me.OB_AMOUNT_NOT_EXPRESSIBLE: UNEXPECTED_ERROR,
    me.UNSUPPORTED_OB_CURRENCY: UNSUPPORTED_CURRENCY,
    me.INVALID_OB_DATETIME: FIELD_INVALID_DATE,
    me.INVALID_OB_ACCOUNT_IDENTIFICATION: FIELD_INVALID,
    me.UNSUPPORTED_OB_ACCOUNT_SCHEME: UNSUPPORTED_ACCOUNT_IDENTIFIER,
    me.INVALID_OB_PERMISSIONS: FIELD_INVALID,
}


def ob_code_for(error_code: str, http_status: int) -> ObErrorCode:
    """The OB code that answers one of our error codes (OB_CODE_BY_ERROR), else a default."""
    found = OB_CODE_BY_ERROR.get(error_code)
    if found is not None:
        return found
    return FIELD_INVALID if http_status == 400 else UNEXPECTED_ERROR


@dataclass(frozen=True, slots=True)
class ObError:
    """One entry of Errors: the code, a message (never personal data or secrets), the JSON
    path of the field at fault (Data.Initiation.InstructedAmount.Amount) and a help URL."""

    code: ObErrorCode
    message: str
    path: str | None = None
    url: str | None = None

    def to_ob(self) -> dict[str, str]:
        entry = {"ErrorCode": self.code.code, "Message": _clip(self.message, "error")}
        if self.path:
            entry["Path"] = _clip(self.path, "")
        if self.url:
            entry["Url"] = self.url
        return entry


def _clip(text: str, fallback: str) -> str:
    """OB's bound on messages and paths (500 characters, at least 1)."""
    text = text or fallback
    limit = OB_ERROR_MESSAGE_LENGTH_MAX
    assert limit == OB_ERROR_PATH_LENGTH_MAX
    return text if len(text) <= limit else text[: limit - 3] + "..."


def status_text(http_status: int) -> str:
    """OBErrorResponse1.Code's form, as in the schema's example: "400 BadRequest"."""
    try:
        phrase = http.HTTPStatus(http_status).phrase.replace(" ", "").replace("-", "")
    except ValueError:
        phrase = "Error"
    return f"{http_status} {phrase}"[:OB_ERROR_CODE_TEXT_LENGTH_MAX]


def error_body(
    http_status: int, errors: Sequence[ObError], *, error_id: str | None = None
) -> dict[str, Any]:
    """An OBErrorResponse1: Code ("400 BadRequest"), Id (`error_id`, e.g. the request's
    x-fapi-interaction-id, at most 40 characters), Message (the first error's) and Errors."""
    assert errors, "OBErrorResponse1.Errors has at least one item"
    assert 400 <= http_status <= 599, http_status
    body: dict[str, Any] = {"Code": status_text(http_status)}
    if error_id:
        assert len(error_id) <= OB_ERROR_ID_LENGTH_MAX, "an error id is at most 40 characters"
        body["Id"] = error_id
    body["Message"] = _clip(errors[0].message, "error")
    body["Errors"] = [e.to_ob() for e in errors[:OB_ERRORS_PER_BODY_MAX]]
    return body


def error_for(error_code: str, http_status: int, detail: str, param: str | None) -> ObError:
    """One of our errors (a StrongroomError's code, status, detail and param) as an OB
    error: its param becomes the Path (the modules here use OB JSON paths as params)."""
    return ObError(ob_code_for(error_code, http_status), detail, path=param)
