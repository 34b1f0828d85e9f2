"""The OB v4.0 payment initiation request bodies we take (OBWriteDomesticConsent4,
OBWriteDomestic2), as strict pydantic models: a member of the wrong JSON type is refused (an
amount sent as a number), and so is any member the models do not declare: the document says
`additionalProperties: false` for each of these objects, and the members it declares that this
server does not serve (CreditorAgent, CreditorPostalAddress, UltimateCreditor, UltimateDebtor,
RegulatoryReporting, RemittanceInformation.Structured, SupplementaryData, a Proxy, Data's
Authorisation and SCASupportData, Risk's PaymentPurposeCode, CategoryPurposeCode and
DeliveryAddress) are refused too (UK.OBIE.Field.Unexpected, naming the member), rather than
taken and ignored: the Initiation is echoed and compared exactly, and a payment we could not
carry out as asked is not accepted. Values are read further by model.read_initiation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from strongroom.openbanking.model import (
    OB_ACCOUNT_IDENTIFICATION_LENGTH_MAX,
    OB_ACCOUNT_NAME_LENGTH_MAX,
    OB_AMOUNT_TEXT_LENGTH_MAX,
    OB_SECONDARY_IDENTIFICATION_LENGTH_MAX,
)
from strongroom.openbanking.payments.model import (
    OB_REMITTANCE_LINE_LENGTH_MAX,
    OB_REMITTANCE_LINES_MAX,
)
from strongroom.openbanking.resources.model import OB_CONSENT_ID_LENGTH_MAX

_SCHEME_NAME_LENGTH_MAX = 40
_LOCAL_INSTRUMENT_LENGTH_MAX = 50
_IDENTIFICATION_35 = 35  # InstructionIdentification, EndToEndIdentification


class _Closed(BaseModel):
    """OB's `additionalProperties: false`: an undeclared member is refused."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    def as_ob(self) -> dict[str, Any]:
        """The object as OB JSON, members not sent left out."""
        return self.model_dump(exclude_none=True)


class AmountBody(_Closed):
    Amount: str = Field(min_length=1, max_length=OB_AMOUNT_TEXT_LENGTH_MAX)
    Currency: str = Field(min_length=1, max_length=3)


class DebtorAccountBody(_Closed):
    SchemeName: str = Field(min_length=1, max_length=_SCHEME_NAME_LENGTH_MAX)
    Identification: str = Field(min_length=1, max_length=OB_ACCOUNT_IDENTIFICATION_LENGTH_MAX)
    Name: str | None = Field(default=None, min_length=1, max_length=OB_ACCOUNT_NAME_LENGTH_MAX)
    SecondaryIdentification: str | None = Field(
        default=None, min_length=1, max_length=OB_SECONDARY_IDENTIFICATION_LENGTH_MAX
    )


class CreditorAccountBody(_Closed):
    SchemeName: str = Field(min_length=1, max_length=_SCHEME_NAME_LENGTH_MAX)
    Identification: str = Field(min_length=1, max_length=OB_ACCOUNT_IDENTIFICATION_LENGTH_MAX)
    Name: str = Field(min_length=1, max_length=OB_ACCOUNT_NAME_LENGTH_MAX)
    SecondaryIdentification: str | None = Field(
        default=None, min_length=1, max_length=OB_SECONDARY_IDENTIFICATION_LENGTH_MAX
    )


RemittanceLine = Annotated[str, Field(min_length=1, max_length=OB_REMITTANCE_LINE_LENGTH_MAX)]


class RemittanceInformationBody(_Closed):
    Unstructured: list[RemittanceLine] | None = Field(
        default=None, min_length=1, max_length=OB_REMITTANCE_LINES_MAX
    )


class InitiationBody(_Closed):
    """OBWriteDomestic2DataInitiation, the members we serve."""

    InstructionIdentification: str = Field(min_length=1, max_length=_IDENTIFICATION_35)
    EndToEndIdentification: str = Field(min_length=1, max_length=_IDENTIFICATION_35)
    LocalInstrument: str | None = Field(
        default=None, min_length=1, max_length=_LOCAL_INSTRUMENT_LENGTH_MAX
    )
    InstructedAmount: AmountBody
    DebtorAccount: DebtorAccountBody | None = None
    CreditorAccount: CreditorAccountBody
    RemittanceInformation: RemittanceInformationBody | None = None


PaymentContextCodes = Literal[
    "BillingGoodsAndServicesInAdvance",
    "BillingGoodsAndServicesInArrears",
    "EcommerceMerchantInitiatedPayment",
    "FaceToFacePointOfSale",
    "TransferToSelf",
    "TransferToThirdParty",
]
BeneficiaryAccountTypes = Literal[
    "Business",
    "BusinessSavingsAccount",
    "Charity",
    "Collection",
    "Corporate",
    "Ewallet",
    "Government",
    "Investment",
    "ISA",
    "JointPersonal",
    "Pension",
    "Personal",
    "PersonalSavingsAccount",
    "Premier",
    "Wealth",
]


class RiskBody(_Closed):
    """OBRisk1, the members we serve (all optional: `{}` is a valid Risk)."""

    PaymentContextCode: PaymentContextCodes | None = None
    MerchantCategoryCode: str | None = Field(default=None, min_length=3, max_length=4)
    MerchantCustomerIdentification: str | None = Field(default=None, min_length=1, max_length=70)
    ContractPresentIndicator: bool | None = None
    BeneficiaryPrepopulatedIndicator: bool | None = None
    BeneficiaryAccountType: BeneficiaryAccountTypes | None = None


class ConsentDataBody(_Closed):
    ReadRefundAccount: Literal["No", "Yes"] | None = None
    Initiation: InitiationBody


class DomesticConsent(_Closed):
    """OBWriteDomesticConsent4."""

    Data: ConsentDataBody
    Risk: RiskBody


class PaymentDataBody(_Closed):
    ConsentId: str = Field(min_length=1, max_length=OB_CONSENT_ID_LENGTH_MAX)
    Initiation: InitiationBody


class DomesticPayment(_Closed):
    """OBWriteDomestic2."""

    Data: PaymentDataBody
    Risk: RiskBody
