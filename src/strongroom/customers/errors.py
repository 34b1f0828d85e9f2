"""The error codes of customers and counterparties (see core.errors). None of them carries a
value of personal data: a refusal names the field, never what was sent in it."""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import Conflict, ErrorCode

CUSTOMERS_ERRORS: Final = (
    ErrorCode("invalid_customer_kind", 400, "A customer's kind is 'person' or 'business'"),
    ErrorCode(
        "invalid_personal_data",
        400,
        "A personal-data field is malformed",
        ("email", "phone", "national_id", "date_of_birth", "address", "account_identifier"),
    ),
    ErrorCode("invalid_country", 400, "A country is an ISO 3166-1 alpha-2 code", ("country",)),
    ErrorCode("invalid_lookup", 400, "Look a customer up by one of email or national_id"),
    ErrorCode("legal_hold", 409, "The customer is under legal hold: erasure is refused"),
    ErrorCode("customer_erased", 409, "The customer's personal data was erased"),
)


class LegalHold(Conflict):
    """Erasure of a customer under legal hold (retention that overrides the right to erasure;
    the compliance domain will set it from its rules)."""

    code = "legal_hold"


class CustomerErased(Conflict):
    """A change to the personal data of a customer whose data was erased."""

    code = "customer_erased"
