"""The OB v4.0 request bodies we take, as strict pydantic models: a member of the wrong JSON
type is refused (an amount sent as a number, say: OB amounts are strings), and members the
document does not declare are refused where it says `additionalProperties: false` (the funds
confirmation bodies' top level, OBRisk2) and ignored elsewhere, as OB allows. Values are read
further by openbanking/model.py (permissions, date-times, amounts, account identifications).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from strongroom.openbanking.model import (
    OB_ACCOUNT_IDENTIFICATION_LENGTH_MAX,
    OB_ACCOUNT_NAME_LENGTH_MAX,
    OB_AMOUNT_TEXT_LENGTH_MAX,
    OB_DATETIME_TEXT_LENGTH_MAX,
    OB_PERMISSIONS_MAX,
    OB_SECONDARY_IDENTIFICATION_LENGTH_MAX,
)
from strongroom.openbanking.resources.model import OB_CONSENT_ID_LENGTH_MAX, OB_REFERENCE_LENGTH_MAX

_SCHEME_NAME_LENGTH_MAX = 40


class _Open(BaseModel):
    """Members OB does not declare are ignored (the document allows them)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _Closed(BaseModel):
    """OB's `additionalProperties: false`: an undeclared member is refused."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


DateTimeText = str  # checked by model.parse_ob_datetime, with its zone


class Risk(_Closed):
    """OBRisk2: an empty object in v4.0."""


class ReadConsentData(_Open):
    Permissions: list[str] = Field(min_length=1, max_length=OB_PERMISSIONS_MAX)
    ExpirationDateTime: DateTimeText | None = Field(
        default=None, max_length=OB_DATETIME_TEXT_LENGTH_MAX
    )
    TransactionFromDateTime: DateTimeText | None = Field(
        default=None, max_length=OB_DATETIME_TEXT_LENGTH_MAX
    )
    TransactionToDateTime: DateTimeText | None = Field(
        default=None, max_length=OB_DATETIME_TEXT_LENGTH_MAX
    )


class ReadConsent(_Open):
    """OBReadConsent1."""

    Data: ReadConsentData
    Risk: Risk


class DebtorAccount(_Open):
    SchemeName: str = Field(min_length=1, max_length=_SCHEME_NAME_LENGTH_MAX)
    Identification: str = Field(min_length=1, max_length=OB_ACCOUNT_IDENTIFICATION_LENGTH_MAX)
    Name: str | None = Field(default=None, min_length=1, max_length=OB_ACCOUNT_NAME_LENGTH_MAX)
    SecondaryIdentification: str | None = Field(
        default=None, min_length=1, max_length=OB_SECONDARY_IDENTIFICATION_LENGTH_MAX
    )


class FundsConsentData(_Open):
    ExpirationDateTime: DateTimeText | None = Field(
        default=None, max_length=OB_DATETIME_TEXT_LENGTH_MAX
    )
    DebtorAccount: DebtorAccount


class FundsConsent(_Closed):
    """OBFundsConfirmationConsent1."""

    Data: FundsConsentData


class InstructedAmount(_Open):
    Amount: str = Field(min_length=1, max_length=OB_AMOUNT_TEXT_LENGTH_MAX)
    Currency: str = Field(min_length=1, max_length=3)


class FundsConfirmationData(_Open):
    ConsentId: str = Field(min_length=1, max_length=OB_CONSENT_ID_LENGTH_MAX)
    Reference: str = Field(min_length=1, max_length=OB_REFERENCE_LENGTH_MAX)
    InstructedAmount: InstructedAmount


class FundsConfirmation(_Closed):
    """OBFundsConfirmation1."""

    Data: FundsConfirmationData
