"""The consent resources' own terms, pure: a stored consent as a named object, the bounds of
what a TPP may send and what one answer carries, and the audit leaf and event of each change.

A consent is found by its id alone (ids are unique in the deployment); its tenant, client and
kind come with it, and every read checks them against the request (api.py).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from strongroom.core import clock
from strongroom.core.limits import PAGE_SIZE_MAX
from strongroom.openbanking.consents import (
    ConsentEvent,
    ConsentKind,
    ConsentState,
    ConsentStatus,
    Transition,
)
from strongroom.openbanking.model import (
    OB_PERMISSIONS_MAX,
    AccountIdentification,
    Money,
    Permission,
    parse_account_identification,
    parse_ob_money,
)
from strongroom.openbanking.ports import ConsentRef

# -- bounds --------------------------------------------------------------------------------
# A consent request's Data, as stored (canonical JSON): permissions, three date-times and a
# debtor account fit in well under a kilobyte; anything near this bound is refused.
OB_CONSENT_REQUEST_BYTES_MAX: Final = 4_096
# The accounts a customer may select for one account access consent (a funds confirmation
# consent names exactly one).
OB_CONSENT_ACCOUNTS_MAX: Final = 100
# OB's x-idempotency-key: at most 40 characters.
OB_IDEMPOTENCY_KEY_LENGTH_MAX: Final = 40
# Transactions per page (OB has no page size parameter: Links.Next leads on), and the entries a
# page may examine to fill it (a consent of credits only skips the debits): a page never reads
# more than this, and may hold fewer items while a Next link leads on.
OB_TRANSACTIONS_PAGE_SIZE: Final = 50
OB_TRANSACTIONS_SCAN_MAX: Final = 4 * OB_TRANSACTIONS_PAGE_SIZE
# A funds confirmation's Reference (OBFundsConfirmation1: 1 to 35 characters).
OB_REFERENCE_LENGTH_MAX: Final = 35
# ConsentId in OB's documents: 1 to 128 characters.
OB_CONSENT_ID_LENGTH_MAX: Final = 128
assert OB_TRANSACTIONS_PAGE_SIZE <= PAGE_SIZE_MAX <= OB_TRANSACTIONS_SCAN_MAX
assert OB_CONSENT_ACCOUNTS_MAX <= PAGE_SIZE_MAX  # a customer's accounts: one ledger page
# Stored permissions are space-separated names: all 21 fit the column (String(600)).
assert sum(len(p.value) + 1 for p in Permission) <= 600
assert len(Permission) == OB_PERMISSIONS_MAX

# -- audit leaves and events ---------------------------------------------------------------
CONSENT_CREATED: Final = "openbanking.consent_created"
CONSENT_EVENT_NAMES: Final[Mapping[ConsentEvent, str]] = {
    ConsentEvent.AUTHORISE: "openbanking.consent_authorised",
    ConsentEvent.REJECT: "openbanking.consent_rejected",
    ConsentEvent.REVOKE: "openbanking.consent_revoked",
    ConsentEvent.EXPIRE: "openbanking.consent_expired",
    ConsentEvent.CONSUME: "openbanking.consent_consumed",
}
assert len(set(CONSENT_EVENT_NAMES.values())) == len(ConsentEvent)


@dataclass(frozen=True, slots=True)
class PaymentDetails:
    """What a domestic payment consent asks the customer to approve (the consent page shows
    it): the amount (`money.amount` minor units of `money.asset`, and as the TPP wrote it), the
    creditor's account (its Name, the payee), the debtor account the TPP named, if any (the
    customer still chooses the account at authorisation: ledger accounts carry no sort code
    yet), and the TPP's references."""

    money: Money
    amount_text: str  # Data.Initiation.InstructedAmount.Amount as sent ("10.50")
    creditor: AccountIdentification
    debtor: AccountIdentification | None
    end_to_end_identification: str
    instruction_identification: str
    remittance: tuple[str, ...] = ()  # RemittanceInformation.Unstructured lines

    @property
    def creditor_name(self) -> str:
        assert self.creditor.name is not None, "a payment's CreditorAccount has a Name"
        return self.creditor.name


def payment_details(request: Mapping[str, Any]) -> PaymentDetails:
    """The payment a domestic payment consent's request (`Consent.request`) asks for; the
    request was validated when the consent was created (openbanking/payments/)."""
    initiation = request["Initiation"]
    path = "Data.Initiation"
    debtor = initiation.get("DebtorAccount")
    remittance = initiation.get("RemittanceInformation") or {}
    return PaymentDetails(
        money=parse_ob_money(initiation["InstructedAmount"], path=f"{path}.InstructedAmount"),
        amount_text=initiation["InstructedAmount"]["Amount"],
        creditor=parse_account_identification(
            initiation["CreditorAccount"], path=f"{path}.CreditorAccount"
        ),
        debtor=None
        if debtor is None
        else parse_account_identification(debtor, path=f"{path}.DebtorAccount"),
        end_to_end_identification=initiation["EndToEndIdentification"],
        instruction_identification=initiation["InstructionIdentification"],
        remittance=tuple(remittance.get("Unstructured") or ()),
    )


@dataclass(frozen=True, slots=True)
class Consent:
    """A stored consent. `request` is the OB request's Data as we keep it (canonical: the
    permissions in the order sent, date-times as OB renders them, a debtor account); the
    customer and the accounts they selected are set once it is authorised."""

    id: str
    tenant_id: str
    client_id: str
    state: ConsentState
    expires_at_us: int | None
    permissions: tuple[Permission, ...]  # account access only, in the order requested
    request: Mapping[str, Any]
    customer_id: str | None = None
    account_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        assert len(self.account_ids) <= OB_CONSENT_ACCOUNTS_MAX, self.id
        # Nobody decided an AWAU consent; an authorised one names its customer and accounts.
        assert self.status is not ConsentStatus.AWAU or self.customer_id is None, self.id
        assert self.status is not ConsentStatus.AUTH or (
            self.customer_id is not None and self.account_ids
        ), self.id
        assert bool(self.permissions) == (self.kind is ConsentKind.ACCOUNT_ACCESS), self.id

    @property
    def kind(self) -> ConsentKind:
        return self.state.kind

    @property
    def status(self) -> ConsentStatus:
        return self.state.status

    def in_force(self, now_us: int) -> bool:
        """Authorised, and its ExpirationDateTime (if any) not yet passed: whether it opens
        anything now, whether or not the expiry job has marked it EXPD yet."""
        return self.status is ConsentStatus.AUTH and (
            self.expires_at_us is None or now_us < self.expires_at_us
        )

    @property
    def payment_details(self) -> PaymentDetails | None:
        """A domestic payment consent's payment (None for the other kinds)."""
        if self.kind is not ConsentKind.DOMESTIC_PAYMENT:
            return None
        return payment_details(self.request)

    def to_ref(self) -> ConsentRef:
        return ConsentRef(
            id=self.id,
            tenant_id=self.tenant_id,
            client_id=self.client_id,
            kind=self.kind,
            status=self.status,
            customer_id=self.customer_id,
            expires_at_us=self.expires_at_us,
        )


# The key manager's purpose whose key MACs a consent's stored request in its created leaf, and
# the label it is derived with: the leaf goes to the tenant's events, so never the request in
# clear. The consent service (runtime.py) and the control (compliance/wiring.py) derive it
# here alike.
REQUEST_MAC_PURPOSE: Final = "openbanking.consent_request"
_REQUEST_MAC_LABEL: Final = b"strongroom openbanking consent request v1"


def request_mac_key(mac: Callable[[str, bytes], bytes]) -> bytes:
    """The key of the created leaves' `request_mac`, from the key manager's `mac`."""
    return mac(REQUEST_MAC_PURPOSE, _REQUEST_MAC_LABEL)


def request_mac(key: bytes, stored: str) -> str:
    """HMAC-SHA256 (hex) of a consent's request as `ob_consents.request` holds it (its canonical
    JSON: store.request_json), keyed by `request_mac_key`: the
    created leaf pins the request (a payment's amount and creditor) without carrying it."""
    return hmac.new(key, stored.encode(), hashlib.sha256).hexdigest()


def created_fields(consent: Consent, stored_request_mac: str) -> dict[str, Any]:
    """What the created leaf adds to `leaf_data`, for the control to compare with the row
    (openbanking/records.py): the permissions (sorted; none for a payment or funds consent),
    the expiry (RFC 3339, or null for none) and the request's MAC."""
    data: dict[str, Any] = {}
    if consent.permissions:
        data["permissions"] = sorted(p.value for p in consent.permissions)
    data["expires_at"] = (
        None if consent.expires_at_us is None else clock.format_us(consent.expires_at_us)
    )
    data["request_mac"] = stored_request_mac
    return data


def leaf_data(
    consent: Consent, transition: Transition | None, *, created: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What an audit leaf and an event of a consent's change carry: ids and statuses only (never
    the request's debtor account or creditor, nor anything of the customer but their id); the
    created leaf (`transition` None) with `created_fields`."""
    assert (transition is None) == (created is not None), consent.id
    data: dict[str, Any] = {
        "object": "openbanking_consent",
        "id": consent.id,
        "kind": str(consent.kind),
        "client_id": consent.client_id,
        "status": str(consent.status),
    }
    if transition is not None:
        data["from"] = str(transition.from_status)
    if consent.customer_id is not None:
        data["customer_id"] = consent.customer_id
    if transition is not None and transition.event is ConsentEvent.AUTHORISE:
        data["account_ids"] = list(consent.account_ids)
    if created is not None:
        data.update(created)
    return data
