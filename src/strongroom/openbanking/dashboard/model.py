"""The dashboard's own terms, pure: what a customer (or staff) sees of a consent, and the
paths it is served at.

A consent shows its TPP, its kind and status, what it covers (the permissions of an account
access consent, a one-line summary for every kind), the accounts the customer granted and its
times. `authorised_at` is known while the consent is authorised (its status time); once it
ended, `status_updated_at` says when, and the authorisation's own time is in the audit log
(`openbanking.consent_authorised`). Nothing here echoes the request's debtor account: the
accounts granted are named by their ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from strongroom.core import clock
from strongroom.core.errors import InvalidRequest
from strongroom.openbanking.consents import ConsentKind, ConsentStatus
from strongroom.openbanking.model import Permission, parse_ob_datetime
from strongroom.openbanking.resources.model import Consent

API_PATH: Final = "/v1/openbanking/consents"
PAGE_PATH: Final = "/openbanking/consents"
SCRIPT_PATH: Final = "/openbanking/consents.js"
SIGN_IN_PATH: Final = "/signin"  # where the page sends a visitor without a session

# What each permission lets the TPP read, as the dashboard words it (the permissions our AIS
# endpoints serve; any other is shown by its OB name).
PERMISSION_WORDS: Final[Mapping[Permission, str]] = {
    Permission.READ_ACCOUNTS_BASIC: "your accounts' names and currencies",
    Permission.READ_ACCOUNTS_DETAIL: "your accounts' details, their numbers included",
    Permission.READ_BALANCES: "your balances",
    Permission.READ_TRANSACTIONS_BASIC: "your transactions",
    Permission.READ_TRANSACTIONS_DETAIL: "your transactions in detail",
    Permission.READ_TRANSACTIONS_CREDITS: "money coming in",
    Permission.READ_TRANSACTIONS_DEBITS: "money going out",
}
_OB_AMOUNT: Final = re.compile(r"[0-9]{1,13}(?:\.[0-9]{1,5})?")
_CURRENCY: Final = re.compile(r"[A-Z]{3}")


def _time(value: int | None) -> str | None:
    return None if value is None else clock.format_us(value)


def _ob_time(request: Mapping[str, Any], name: str) -> str | None:
    """A date-time of the stored request (OB's form, as it was checked when the consent was
    created), as an RFC 3339 timestamp; None when absent or (never expected) unreadable."""
    value = request.get(name)
    if not isinstance(value, str):
        return None
    try:
        return clock.format_us(parse_ob_datetime(value, path=name))
    except InvalidRequest:
        return None


def _permission_words(permissions: Sequence[Permission]) -> str:
    words = [PERMISSION_WORDS.get(p, p.value) for p in permissions]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def covers(consent: Consent) -> str:
    """One line saying what the consent lets its TPP do."""
    request = consent.request
    if consent.kind is ConsentKind.ACCOUNT_ACCESS:
        line = f"Read {_permission_words(consent.permissions)}"
        first = _ob_time(request, "TransactionFromDateTime")
        last = _ob_time(request, "TransactionToDateTime")
        if first is not None or last is not None:
            line += f" (transactions from {first or 'the start'} to {last or 'now'})"
        return line
    if consent.kind is ConsentKind.FUNDS_CONFIRMATION:
        return (
            "Ask whether the account has enough money for a payment (yes or no, never the balance)"
        )
    assert consent.kind is ConsentKind.DOMESTIC_PAYMENT, consent.kind
    initiation = request.get("Initiation")
    money = initiation.get("InstructedAmount") if isinstance(initiation, Mapping) else None
    if isinstance(money, Mapping):
        amount, currency = money.get("Amount"), money.get("Currency")
        if (
            isinstance(amount, str)
            and isinstance(currency, str)
            and _OB_AMOUNT.fullmatch(amount)
            and _CURRENCY.fullmatch(currency)
        ):
            return f"Make one payment of {amount} {currency} from your account"
    return "Make one payment from your account"


def consent_view(consent: Consent, tpp_name: str | None, now_us: int) -> dict[str, Any]:
    """The consent as the dashboard's API answers it (schemas.OpenbankingConsentOut)."""
    state = consent.state
    return {
        "id": consent.id,
        "object": "openbanking_consent",
        "tpp": {"id": consent.client_id, "name": tpp_name},
        "kind": str(consent.kind),
        "status": str(consent.status),
        "in_force": consent.in_force(now_us),
        "customer_id": consent.customer_id,
        "permissions": [p.value for p in consent.permissions],
        "covers": covers(consent),
        "account_ids": list(consent.account_ids),
        "created_at": clock.format_us(state.created_at_us),
        "authorised_at": (
            _time(state.status_updated_at_us) if consent.status is ConsentStatus.AUTH else None
        ),
        "status_updated_at": clock.format_us(state.status_updated_at_us),
        "expires_at": _time(consent.expires_at_us),
    }
