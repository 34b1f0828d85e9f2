"""The OB v4.0 response bodies, pure: consents (OBReadConsentResponse1,
OBFundsConfirmationConsentResponse1), accounts (OBReadAccount6), balances (OBReadBalance1),
transactions (OBReadTransaction6) and funds confirmations (OBFundsConfirmationResponse1).
Every body carries Links.Self (the request's URL) and Meta; amounts are OB amount strings of
the account's currency (model.py), date-times UTC with the zone written out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from strongroom.ledger.views import Entry
from strongroom.openbanking.model import (
    Money,
    ob_datetime,
    ob_money,
    ob_signed_amount,
)
from strongroom.openbanking.resources.model import Consent
from strongroom.openbanking.resources.reads import ObAccount, available, booked, indicator

OB_NICKNAME_LENGTH_MAX: Final = 70  # OBAccount6.Nickname
# The balance types we report (OBBalanceType1Code): interim booked and interim available, as
# of the reading (the ledger is real time: there is no closing balance of a business day).
INTERIM_BOOKED: Final = "ITBD"
INTERIM_AVAILABLE: Final = "ITAV"


def _links(self_url: str, next_url: str | None = None) -> dict[str, Any]:
    links = {"Self": self_url}
    if next_url is not None:
        links["Next"] = next_url
    return {"Links": links, "Meta": {}}


def _consent_data(consent: Consent) -> dict[str, Any]:
    return {
        "ConsentId": consent.id,
        "CreationDateTime": ob_datetime(consent.state.created_at_us),
        "Status": str(consent.status),
        "StatusUpdateDateTime": ob_datetime(consent.state.status_updated_at_us),
    }


def account_access_consent(consent: Consent, self_url: str) -> dict[str, Any]:
    """OBReadConsentResponse1: the request's Data (permissions in the order asked, the
    date-times as kept) under the consent's id, times and status."""
    data = _consent_data(consent)
    data["Permissions"] = [p.value for p in consent.permissions]
    for name in ("ExpirationDateTime", "TransactionFromDateTime", "TransactionToDateTime"):
        if name in consent.request:
            data[name] = consent.request[name]
    return {"Data": data, "Risk": {}, **_links(self_url)}


def funds_confirmation_consent(consent: Consent, self_url: str) -> dict[str, Any]:
    """OBFundsConfirmationConsentResponse1: the DebtorAccount as the TPP named it."""
    data = _consent_data(consent)
    if "ExpirationDateTime" in consent.request:
        data["ExpirationDateTime"] = consent.request["ExpirationDateTime"]
    data["DebtorAccount"] = dict(consent.request["DebtorAccount"])
    return {"Data": data, **_links(self_url)}


def account(ob_account: ObAccount) -> dict[str, Any]:
    """OBAccount6. Ledger accounts carry no scheme identification (sort code, IBAN) yet, so
    the detail elements (Account, Servicer) are absent under either permission."""
    found = ob_account.account
    out: dict[str, Any] = {
        "AccountId": found.id,
        "Status": "Disabled" if found.closed or found.frozen else "Enabled",
        "StatusUpdateDateTime": ob_datetime(found.updated_at),
        "Currency": ob_account.asset.code,
        "OpeningDate": ob_datetime(found.created_at),
    }
    if found.name:
        out["Nickname"] = found.name[:OB_NICKNAME_LENGTH_MAX]
    return out


def accounts(found: Sequence[ObAccount], self_url: str) -> dict[str, Any]:
    return {"Data": {"Account": [account(a) for a in found]}, **_links(self_url)}


def _balance(ob_account: ObAccount, kind: str, amount: int, at_us: int) -> dict[str, Any]:
    sign, text = ob_signed_amount(amount, ob_account.asset)
    return {
        "AccountId": ob_account.id,
        "CreditDebitIndicator": sign.value,
        "Type": kind,
        "DateTime": ob_datetime(at_us),
        "Amount": {"Amount": text, "Currency": ob_account.asset.code},
    }


def balances(found: Sequence[ObAccount], at_us: int, self_url: str) -> dict[str, Any]:
    """OBReadBalance1: each account's interim booked and interim available balance."""
    rows = []
    for ob_account in found:
        current = ob_account.account.balances
        rows.append(_balance(ob_account, INTERIM_BOOKED, booked(current), at_us))
        rows.append(_balance(ob_account, INTERIM_AVAILABLE, available(current), at_us))
    return {"Data": {"Balance": rows}, **_links(self_url)}


def transaction(ob_account: ObAccount, entry: Entry, *, detail: bool) -> dict[str, Any]:
    """OBTransaction6 of a booked ledger entry. Basic: the amount, direction, times and ids;
    Detail adds the account's balance after it."""
    out: dict[str, Any] = {
        "AccountId": ob_account.id,
        "TransactionId": f"{ob_account.id}.{entry.version}",
        "TransactionReference": entry.transfer_id,
        "CreditDebitIndicator": indicator(entry.direction).value,
        "Status": "BOOK",
        "TransactionMutability": "Immutable",
        "BookingDateTime": ob_datetime(entry.created_at),
        "Amount": ob_money(entry.amount, ob_account.asset),
    }
    if detail:
        sign, text = ob_signed_amount(booked(entry.balances_after), ob_account.asset)
        out["Balance"] = {
            "CreditDebitIndicator": sign.value,
            "Type": INTERIM_BOOKED,
            "Amount": {"Amount": text, "Currency": ob_account.asset.code},
        }
    return out


def transactions(
    items: Sequence[tuple[ObAccount, Entry]],
    *,
    detail: bool,
    self_url: str,
    next_url: str | None,
) -> dict[str, Any]:
    return {
        "Data": {"Transaction": [transaction(a, e, detail=detail) for a, e in items]},
        **_links(self_url, next_url),
    }


def funds_confirmation(
    confirmation_id: str,
    consent_id: str,
    at_us: int,
    reference: str,
    money: Money,
    funds_available: bool,
    self_url: str,
) -> dict[str, Any]:
    """OBFundsConfirmationResponse1: yes or no, never the balance."""
    return {
        "Data": {
            "FundsConfirmationId": confirmation_id,
            "ConsentId": consent_id,
            "CreationDateTime": ob_datetime(at_us),
            "FundsAvailable": funds_available,
            "Reference": reference,
            "InstructedAmount": ob_money(money.amount, money.asset),
        },
        **_links(self_url),
    }
