"""The payments' own terms, pure: what a domestic payment's Initiation asks for in the ledger's
terms, the ids a payment and its clearing account take, and a payment's OB status read from its
ledger transfer.

Statuses are v4.0's (ISO 20022 ExternalPaymentTransactionStatus1Code). A payment is:

- `ACSP` (AcceptedSettlementInProcess): its transfer is posted: the money left the customer's
  account for the tenant's outbound clearing account, which the rails (later) settle from;
- `PDNG` (Pending): a gate held it for review: its transfer is pending (the customer's money
  reserved) until a case analyst approves it (then ACSP) or declines it (RJCT);
- `RJCT` (Rejected): refused (a gate's block, a ledger refusal such as insufficient funds: no
  transfer was written), declined on review (its pending transfer voided) or left to expire;
  `StatusReason` carries the ISO status reason (STATUS_REASONS) and our stable code.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from strongroom.core.errors import InvalidRequest
from strongroom.ledger.model import Status, TransferRecord
from strongroom.openbanking.model import (
    AccountIdentification,
    Money,
    parse_account_identification,
    parse_ob_money,
)
from strongroom.openbanking.model_errors import INVALID_OB_ACCOUNT_IDENTIFICATION
from strongroom.openbanking.payments.errors import UNSUPPORTED_OB_LOCAL_INSTRUMENT

# OBInternalLocalInstrument1Code values this server pays by: the UK's domestic schemes (the
# outbound rails that settle the clearing account come later; none is chosen by it yet).
LOCAL_INSTRUMENTS: Final = frozenset({"UK.OBIE.FPS", "UK.OBIE.BACS", "UK.OBIE.CHAPS"})
# RemittanceInformation.Unstructured lines we keep (OB sets no bound; each is 1 to 140).
OB_REMITTANCE_LINES_MAX: Final = 3
OB_REMITTANCE_LINE_LENGTH_MAX: Final = 140
# DomesticPaymentId: 1 to 40 characters (OBWriteDomesticResponse5).
OB_PAYMENT_ID_LENGTH_MAX: Final = 40
PAYMENT_ID_PREFIX: Final = "obp_"
_PAYMENT_ID_HASH_BYTES: Final = 15  # 120 bits, 24 base32 characters
# The payment's channel as the risk gate sees it (ledger.model.Channel).
CHANNEL: Final = "bank_transfer"
# The metadata of a payment's transfer (ids only), for operators reading the ledger.
METADATA_CONSENT: Final = "ob_consent_id"
METADATA_CLIENT: Final = "ob_client_id"
# The tenant's outbound clearing account of an asset, in a ledger: made on first use.
CLEARING_ACCOUNT_PREFIX: Final = "acc_ob_outbound_"
CLEARING_ROLE: Final = "openbanking_outbound_clearing"


def payment_id(tenant_id: str, client_id: str, idempotency_key: str) -> str:
    """The DomesticPaymentId of a client's x-idempotency-key: a function of the three alone, so
    a repeated submission is the same payment (and the same ledger transfer id) in any process,
    and two submissions with different keys are two payments (of which one may consume the
    consent)."""
    seed = "\n".join(("ob-domestic-payment/1", tenant_id, client_id, idempotency_key))
    digest = hashlib.sha256(seed.encode()).digest()[:_PAYMENT_ID_HASH_BYTES]
    found = PAYMENT_ID_PREFIX + base64.b32encode(digest).decode().lower()
    assert len(found) <= OB_PAYMENT_ID_LENGTH_MAX
    return found


def clearing_account_id(ledger_id: str, asset_code: str) -> str:
    """The outbound clearing account of `asset_code` in a ledger (ids are deployment-wide, so
    the ledger's id is part of it)."""
    return f"{CLEARING_ACCOUNT_PREFIX}{asset_code}_{ledger_id}"


def clearing_account_name(asset_code: str) -> str:
    return f"Open banking outbound clearing ({asset_code})"


@dataclass(frozen=True, slots=True)
class PaymentTerms:
    """What a domestic payment's Initiation asks the ledger for."""

    money: Money
    creditor: AccountIdentification
    debtor: AccountIdentification | None
    local_instrument: str | None

    @property
    def payee(self) -> str:
        """The payee reference the risk gate keys its payee features on (hashed there, never
        stored in clear): the creditor account's scheme and identification."""
        return f"{self.creditor.scheme}:{self.creditor.identification}"

    @property
    def payee_name(self) -> str:
        assert self.creditor.name is not None, "a CreditorAccount has a Name"
        return self.creditor.name


def read_initiation(initiation: Mapping[str, Any], path: str = "Data.Initiation") -> PaymentTerms:
    """An Initiation's amount, accounts and local instrument, each refused with its own code
    (openbanking.model's: an amount that is not exact in its currency, a currency that is not
    ISO 4217, an account scheme we do not serve, an identification malformed for its scheme;
    unsupported_ob_local_instrument). `initiation` has the shape of schemas.Initiation."""
    money = parse_ob_money(initiation.get("InstructedAmount"), path=f"{path}.InstructedAmount")
    creditor = parse_account_identification(
        initiation.get("CreditorAccount"), path=f"{path}.CreditorAccount"
    )
    if creditor.name is None or not creditor.name.isprintable():  # screened as the payee's name
        raise InvalidRequest(
            f"{path}.CreditorAccount.Name must be printable text",
            param=f"{path}.CreditorAccount.Name",
            code=INVALID_OB_ACCOUNT_IDENTIFICATION,
        )
    debtor_value = initiation.get("DebtorAccount")
    debtor = (
        None
        if debtor_value is None
        else parse_account_identification(debtor_value, path=f"{path}.DebtorAccount")
    )
    instrument = initiation.get("LocalInstrument")
    if instrument is not None and instrument not in LOCAL_INSTRUMENTS:
        raise InvalidRequest(
            f"{path}.LocalInstrument must be one of {', '.join(sorted(LOCAL_INSTRUMENTS))}",
            param=f"{path}.LocalInstrument",
            code=UNSUPPORTED_OB_LOCAL_INSTRUMENT,
        )
    return PaymentTerms(money, creditor, debtor, instrument)


def check_text(value: object, path: str) -> None:
    """Every string of a request (a JSON value) is valid Unicode, without a lone surrogate
    (which JSON can carry and no UTF-8 store can keep): refused naming where, never what."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            raise InvalidRequest(
                f"{path} must be valid Unicode text", param=path, code="invalid_request"
            ) from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_text(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_text(item, f"{path}[{index}]")


class PaymentStatus(StrEnum):
    """The v4.0 statuses a payment of ours takes (ExternalPaymentTransactionStatus1Code)."""

    PENDING = "PDNG"
    ACCEPTED_SETTLEMENT_IN_PROCESS = "ACSP"
    REJECTED = "RJCT"


# Our refusal codes and the ISO 20022 ExternalStatusReason1Code each is reported as.
STATUS_REASONS: Final[Mapping[str, str]] = {
    "insufficient_funds": "AM04",  # InsufficientFunds
    "account_frozen": "AC06",  # BlockedAccount
    "account_closed": "AC04",  # ClosedAccountNumber
    "account_not_found": "AC01",  # IncorrectAccountNumber
    "sanctions_blocked": "RR04",  # RegulatoryReason
    "sanctions_unavailable": "RR04",
    "risk_blocked": "FRAD",  # FraudulentOrigin
    "risk_unavailable": "FRAD",
    "kyc_unverified": "RR01",  # MissingDebtorAccountOrIdentification
    "kyc_limit_exceeded": "AM14",  # AmountExceedsAgreedLimit
}
REASON_UNSPECIFIED: Final = "MS03"  # NotSpecifiedReasonAgentGenerated
# Why a held payment was rejected later: our codes (StatusReasonDescription).
DECLINED_ON_REVIEW: Final = "declined_on_review"
EXPIRED_ON_REVIEW: Final = "expired_on_review"
assert all(len(code) == 4 for code in STATUS_REASONS.values())


@dataclass(frozen=True, slots=True)
class PaymentState:
    """A payment's status now, when it took it, and (rejected) why: the ISO reason and our
    stable code."""

    status: PaymentStatus
    updated_at_us: int
    reason_code: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        assert (self.reason is not None) == (self.status is PaymentStatus.REJECTED)
        assert (self.reason_code is not None) == (self.reason is not None)


def rejected(reason: str, at_us: int) -> PaymentState:
    code = STATUS_REASONS.get(reason, REASON_UNSPECIFIED)
    return PaymentState(PaymentStatus.REJECTED, at_us, code, reason)


def state_of(
    created_at_us: int,
    refusal: str | None,
    transfer: TransferRecord | None,
    resolution: TransferRecord | None,
) -> PaymentState:
    """A payment's state: refused before posting (`refusal`, no transfer), or its transfer's:
    posted (ACSP: when posted), pending (PDNG), voided (RJCT: declined on review, when voided)
    or expired (RJCT, at its expiry). `resolution`: the post or void of a pending transfer
    (LedgerService.transfer_resolution), which dates the change."""
    if refusal is not None:
        return rejected(refusal, created_at_us)
    assert transfer is not None, "a payment that was not refused has its transfer"
    changed_at = resolution.created_at if resolution is not None else transfer.created_at
    if transfer.status is Status.POSTED:
        return PaymentState(PaymentStatus.ACCEPTED_SETTLEMENT_IN_PROCESS, changed_at)
    if transfer.status is Status.PENDING:
        return PaymentState(PaymentStatus.PENDING, transfer.created_at)
    if transfer.status is Status.VOIDED:
        return rejected(DECLINED_ON_REVIEW, changed_at)
    expired_at = transfer.expires_at if transfer.expires_at is not None else changed_at
    return rejected(EXPIRED_ON_REVIEW, expired_at)
