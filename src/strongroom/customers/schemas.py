"""Request and response bodies of the customers' and counterparties' HTTP API (pydantic,
strict). Personal-data members are masked in every answer but the reveals' (docs/customers.md).
A refused value is never echoed: validation names the rule broken only."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from strongroom.core.clock import Timestamp
from strongroom.core.limits import (
    ACCOUNT_IDENTIFIER_LENGTH_MAX,
    ADDRESS_LINE_LENGTH_MAX,
    EMAIL_LENGTH_MAX,
    NAME_LENGTH_MAX,
    NATIONAL_ID_LENGTH_MAX,
    POSTAL_CODE_LENGTH_MAX,
)
from strongroom.ledger.schemas import AccountOut, MetadataIn

# Bounds on what is sent, before normalisation (which drops separators and spaces).
EMAIL_SENT_LENGTH_MAX = EMAIL_LENGTH_MAX + 16
PHONE_SENT_LENGTH_MAX = 32
NATIONAL_ID_SENT_LENGTH_MAX = 2 * NATIONAL_ID_LENGTH_MAX
ACCOUNT_SENT_LENGTH_MAX = 2 * ACCOUNT_IDENTIFIER_LENGTH_MAX

Line = Annotated[str, Field(min_length=1, max_length=ADDRESS_LINE_LENGTH_MAX)]
NameIn = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH_MAX)]
Email = Annotated[str, Field(min_length=3, max_length=EMAIL_SENT_LENGTH_MAX)]
Phone = Annotated[
    str, Field(min_length=1, max_length=PHONE_SENT_LENGTH_MAX, description="E.164: +447700900123")
]
NationalId = Annotated[str, Field(min_length=1, max_length=NATIONAL_ID_SENT_LENGTH_MAX)]
Day = Annotated[str, Field(min_length=10, max_length=10, description="YYYY-MM-DD")]
Country = Annotated[
    str, Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2, e.g. GB")
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddressIn(_In):
    line1: Line
    line2: Line | None = None
    city: Line
    region: Line | None = None
    postal_code: Annotated[str, Field(min_length=1, max_length=POSTAL_CODE_LENGTH_MAX)] | None = (
        None
    )
    country: Country


class _PersonalDataIn(_In):
    date_of_birth: Day | None = Field(default=None, description="a person's; not a business's")
    address: AddressIn | None = None
    email: Email | None = Field(default=None, description="trimmed and lower-cased")
    phone: Phone | None = None
    national_id: NationalId | None = Field(
        default=None, description="upper-cased, spaces and dashes dropped"
    )
    metadata: MetadataIn | None = Field(
        default=None, description="references of yours: never personal data (it is in clear)"
    )


class CustomerCreate(_PersonalDataIn):
    kind: Literal["person", "business"] = "person"
    name: NameIn


class CustomerUpdate(_PersonalDataIn):
    """The fields given replace the stored ones; those left out are kept."""

    name: NameIn | None = None


class CustomerSearch(_In):
    """Exact lookup through a blind index, in a body: no proxy logs it."""

    email: Email | None = None
    national_id: NationalId | None = None


class AddressOut(_Out):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str


class CustomerOut(_Out):
    id: str
    object: Literal["customer"]
    kind: Literal["person", "business"]
    name: str | None = Field(description='masked: "A** L*******"')
    date_of_birth: str | None = Field(description="masked: the year only")
    address: AddressOut | None = Field(description="masked: the country only")
    email: str | None = Field(description='masked: "a***@example.com"')
    phone: str | None = Field(description='masked: "+**********23"')
    national_id: str | None = Field(description='masked: "*****6789"')
    legal_hold: bool
    erased: bool = Field(description="the personal data was erased: every field above is null")
    erased_at: Timestamp | None
    metadata: dict[str, str | int | bool | None]
    created_at: Timestamp
    updated_at: Timestamp


class CustomerList(_Out):
    object: Literal["list"]
    data: list[CustomerOut]
    has_more: bool


class PersonalDataOut(_Out):
    """The personal data in full: each answer is an audit leaf `customer.pii_revealed`."""

    object: Literal["customer_personal_data"]
    customer_id: str
    name: str | None
    date_of_birth: str | None
    address: AddressOut | None
    email: str | None
    phone: str | None
    national_id: str | None


class CustomerAccountList(_Out):
    object: Literal["list"]
    data: list[AccountOut]
    has_more: bool


class CounterpartyCreate(_In):
    name: NameIn
    account_identifier: Annotated[
        str,
        Field(
            min_length=1,
            max_length=ACCOUNT_SENT_LENGTH_MAX,
            description="an IBAN, or an account number with its bank's code",
        ),
    ]
    country: Country


class CounterpartyOut(_Out):
    id: str
    object: Literal["counterparty"]
    name: str | None = Field(description="masked, but in a reveal")
    account_identifier: str | None = Field(description="masked (the last 4), but in a reveal")
    country: str
    erased: bool
    erased_at: Timestamp | None
    created_at: Timestamp


class CounterpartyList(_Out):
    object: Literal["list"]
    data: list[CounterpartyOut]
    has_more: bool
