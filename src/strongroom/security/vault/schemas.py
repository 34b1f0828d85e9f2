"""Request and response bodies of the card vault's HTTP API (pydantic, strict). A refused
body's error never carries the value refused (`hide_input_in_errors`, and the HTTP layer sends
pydantic's rule, not the input)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from strongroom.core.clock import Timestamp
from strongroom.core.limits import CARD_HOLDER_NAME_CHARS_MAX, CARD_NUMBER_CHARS_MAX

Brand = Literal[
    "visa", "mastercard", "amex", "discover", "jcb", "diners", "unionpay", "maestro", "unknown"
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CardCreate(_In):
    number: Annotated[
        str,
        Field(
            min_length=1,
            max_length=CARD_NUMBER_CHARS_MAX,
            description="12 to 19 digits (spaces or dashes between groups allowed), with a "
            "valid Luhn check digit and, for a known brand, one of its lengths",
            repr=False,
        ),
    ]
    exp_month: Annotated[int, Field(description="1 to 12")]
    exp_year: Annotated[
        int, Field(description="four digits; the card is valid to the end of its expiry month")
    ]
    holder_name: Annotated[
        str, Field(min_length=1, max_length=CARD_HOLDER_NAME_CHARS_MAX, repr=False)
    ]
    cvc: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=4,
            description="the security code: checked (4 digits for Amex, 3 for the others), "
            "then forgotten; never stored, logged or sent back",
            repr=False,
        ),
    ] = None


class CardOut(_Out):
    id: str
    object: Literal["card"]
    brand: Brand
    bin: str = Field(description="the first 6 digits, or 8 for numbers of 16 digits or more")
    last4: str
    masked_number: str = Field(description="the BIN, `*` for each hidden digit, the last four")
    exp_month: int
    exp_year: int
    fingerprint: str | None = Field(
        description="the same for the same card number within a tenant (a keyed hash): "
        "recognises a card without revealing it. Shown only to a key holding `vault:reveal` "
        "(null otherwise): with the BIN and last four, it would confirm guesses of the number"
    )
    created_at: Timestamp


class CardList(_Out):
    object: Literal["list"]
    data: list[CardOut]
    has_more: bool


class CardNumberOut(_Out):
    id: str
    object: Literal["card_number"]
    number: str
    holder_name: str
    brand: Brand
    exp_month: int
    exp_year: int


class CardDeleted(_Out):
    id: str
    object: Literal["card"]
    deleted: Literal[True]
