"""The card vault's error codes (see core.errors). None of them echoes what it refuses."""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import ErrorCode

VAULT_ERRORS: Final = (
    ErrorCode("invalid_card_number", 400, "This is not a card number"),
    ErrorCode("invalid_expiry", 400, "The card's expiry is malformed"),
    ErrorCode("card_expired", 400, "The card has expired"),
    ErrorCode("invalid_cvc", 400, "The card's security code is malformed", ("cvc",)),
    ErrorCode("invalid_holder_name", 400, "The holder's name is malformed", ("holder_name",)),
)
# The codes a tokenization answers itself (the OpenAPI document lists them).
VAULT_INPUT_ERRORS: Final = tuple(error.code for error in VAULT_ERRORS)
