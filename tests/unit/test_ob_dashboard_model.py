"""The consent dashboard's view of a consent (openbanking/dashboard/model.py), pure: what each
kind covers in one line, its times, and nothing of the request it should not echo."""

from __future__ import annotations

from typing import Any

from strongroom.core import clock
from strongroom.openbanking.consents import ConsentKind, ConsentState, ConsentStatus
from strongroom.openbanking.dashboard.model import consent_view, covers
from strongroom.openbanking.model import Permission
from strongroom.openbanking.resources.model import Consent

T0 = 1_700_000_000_000_000
HOUR_US = 3_600_000_000


def _consent(
    kind: ConsentKind,
    request: dict[str, Any],
    *,
    status: ConsentStatus = ConsentStatus.AUTH,
    permissions: tuple[Permission, ...] = (),
    expires_at_us: int | None = None,
) -> Consent:
    decided = status is not ConsentStatus.AWAU
    return Consent(
        id="obc_1",
        tenant_id="ten_1",
        client_id="tpp_1",
        state=ConsentState(kind, status, T0, T0 + HOUR_US),
        expires_at_us=expires_at_us,
        permissions=permissions,
        request=request,
        customer_id="cus_1" if decided else None,
        account_ids=("acc_1",) if decided else (),
    )


def test_an_account_access_consent_covers_its_permissions_and_period() -> None:
    permissions = (
        Permission.READ_ACCOUNTS_DETAIL,
        Permission.READ_BALANCES,
        Permission.READ_TRANSACTIONS_CREDITS,
    )
    request = {
        "Permissions": [p.value for p in permissions],
        "TransactionFromDateTime": "2024-01-01T00:00:00+00:00",
    }
    consent = _consent(ConsentKind.ACCOUNT_ACCESS, request, permissions=permissions)
    assert covers(consent) == (
        "Read your accounts' details, their numbers included, your balances and money coming "
        "in (transactions from 2024-01-01T00:00:00Z to now)"
    )
    one = _consent(ConsentKind.ACCOUNT_ACCESS, {}, permissions=(Permission.READ_ACCOUNTS_BASIC,))
    assert covers(one) == "Read your accounts' names and currencies"


def test_a_funds_consent_never_echoes_its_debtor_account() -> None:
    request = {
        "DebtorAccount": {"SchemeName": "UK.OBIE.IBAN", "Identification": "GB29NWBK60161331926819"}
    }
    view = consent_view(_consent(ConsentKind.FUNDS_CONFIRMATION, request), "Buddy", T0)
    assert "GB29NWBK" not in str(view)
    assert view["covers"].startswith("Ask whether the account has enough money")


def test_a_payment_consent_names_its_amount_when_it_is_well_formed() -> None:
    def payment(amount: Any, currency: Any) -> str:
        money = {"Amount": amount, "Currency": currency}
        request = {"Initiation": {"InstructedAmount": money}}
        return covers(_consent(ConsentKind.DOMESTIC_PAYMENT, request))

    assert payment("12.50", "GBP") == "Make one payment of 12.50 GBP from your account"
    for amount, currency in (("12.5.0", "GBP"), ("1" * 14, "GBP"), ("1", "gbp"), (12, "GBP")):
        assert payment(amount, currency) == "Make one payment from your account"
    assert covers(_consent(ConsentKind.DOMESTIC_PAYMENT, {})) == (
        "Make one payment from your account"
    )


def test_times_and_whether_it_is_in_force() -> None:
    expires = T0 + 2 * HOUR_US
    permissions = (Permission.READ_BALANCES,)
    live = _consent(ConsentKind.ACCOUNT_ACCESS, {}, permissions=permissions, expires_at_us=expires)
    view = consent_view(live, None, T0 + HOUR_US)
    assert view["tpp"] == {"id": "tpp_1", "name": None}
    assert (view["status"], view["in_force"]) == ("AUTH", True)
    assert view["created_at"] == clock.format_us(T0)
    assert view["authorised_at"] == view["status_updated_at"] == clock.format_us(T0 + HOUR_US)
    assert view["expires_at"] == clock.format_us(expires)
    # Past its expiry, before the expiry job marked it: still AUTH, in force no more.
    assert consent_view(live, None, expires)["in_force"] is False
    ended = _consent(
        ConsentKind.ACCOUNT_ACCESS, {}, status=ConsentStatus.CANC, permissions=permissions
    )
    shown = consent_view(ended, "Buddy", T0)
    assert (shown["status"], shown["in_force"], shown["authorised_at"]) == ("CANC", False, None)
    assert shown["expires_at"] is None
