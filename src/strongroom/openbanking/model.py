"""The UK Open Banking v4.0 vocabulary, pure: which ledger assets OB can express, OB amount
strings to and from integer minor units (exactly, never a float), OB date-times, the account
identification schemes we serve, and account access permissions with the AIS endpoints each
one opens (as data).

Refusals of client input are InvalidRequest with a code of model_errors.py and, as `param`,
the field's OB JSON path (Data.Initiation.InstructedAmount.Amount), which the OB error body
carries as Path (obcodes.py). No refusal echoes an account number or a name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final, NamedTuple

from strongroom.core.clock import from_datetime, to_datetime
from strongroom.core.errors import InvalidRequest
from strongroom.core.money import ISO_4217, Asset
from strongroom.openbanking import model_errors as me

# -- amounts and currencies ----------------------------------------------------------------
# OBActiveCurrencyAndAmount_SimpleType: ^\d{1,13}$|^\d{1,13}\.\d{1,5}$ (an unsigned decimal;
# a balance's sign travels in CreditDebitIndicator). ActiveOrHistoricCurrencyCode: ^[A-Z]{3,3}$.
OB_AMOUNT_INTEGER_DIGITS_MAX: Final = 13
OB_AMOUNT_FRACTION_DIGITS_MAX: Final = 5
OB_AMOUNT_TEXT_LENGTH_MAX: Final = OB_AMOUNT_INTEGER_DIGITS_MAX + 1 + OB_AMOUNT_FRACTION_DIGITS_MAX
# ASCII digits only: Python's \d also matches other scripts' digits, and $ a trailing newline.
_OB_AMOUNT: Final = re.compile(r"([0-9]{1,13})(?:\.([0-9]{1,5}))?")
_OB_CURRENCY: Final = re.compile(r"[A-Z]{3}")
_AMOUNT_FORM: Final = (
    "a positive decimal string such as 10.50, of at most 13 integer and 5 fraction digits"
)
# Every ISO 4217 minor unit fits OB's fraction digits, so each ISO currency is expressible.
assert max(ISO_4217.values()) <= OB_AMOUNT_FRACTION_DIGITS_MAX


class Money(NamedTuple):
    """An OB amount read into the ledger's terms: the asset and a positive integer of its
    minor units."""

    asset: Asset
    amount: int


def ob_expressible(asset: Asset) -> bool:
    """Whether OB can carry amounts of this ledger asset: an ISO 4217 currency whose scale is
    its ISO exponent (a custom asset never takes an ISO code: core.money refuses it)."""
    return bool(_OB_CURRENCY.fullmatch(asset.code)) and ISO_4217.get(asset.code) == asset.scale


def ob_asset(currency: str) -> Asset | None:
    """The ledger asset of an OB currency code, or None when it is not an ISO 4217 currency
    with a minor unit (core.money.ISO_4217)."""
    if not _OB_CURRENCY.fullmatch(currency):
        return None
    exponent = ISO_4217.get(currency)
    return None if exponent is None else Asset(currency, exponent)


def ob_amount_max(asset: Asset) -> int:
    """The largest amount, in minor units, that an OB amount string can carry for `asset`:
    13 integer digits and the asset's scale of fraction digits."""
    assert ob_expressible(asset), asset
    bound: int = 10 ** (OB_AMOUNT_INTEGER_DIGITS_MAX + asset.scale)
    return bound - 1


def format_ob_amount(amount: int, asset: Asset) -> str:
    """Minor units as an OB amount string, with exactly the asset's scale of fraction digits
    ("10.50" GBP, "1000" JPY, "1.250" BHD). Refuses a negative amount and one with more than
    13 integer digits (ObAmountNotExpressible): OB cannot carry them."""
    assert isinstance(amount, int), type(amount)
    assert not isinstance(amount, bool)
    assert ob_expressible(asset), asset
    if amount < 0:
        raise me.ObAmountNotExpressible(
            "an OB amount is unsigned: a negative amount travels as CreditDebitIndicator Debit"
        )
    if amount > ob_amount_max(asset):
        raise me.ObAmountNotExpressible(
            f"an OB amount has at most {OB_AMOUNT_INTEGER_DIGITS_MAX} integer digits"
        )
    units, minor = divmod(amount, 10**asset.scale)
    text = f"{units}.{minor:0{asset.scale}d}" if asset.scale else str(units)
    assert _OB_AMOUNT.fullmatch(text), text
    return text


def parse_ob_amount(value: object, asset: Asset, *, path: str) -> int:
    """An OB amount string as a positive integer of the asset's minor units, exactly.

    Refused (invalid_ob_amount): anything but a string matching OB's pattern, zero, and a
    fraction finer than the asset's minor unit ("10.505" GBP); trailing zeros are exact and
    taken ("10.500" GBP is 1050)."""
    assert ob_expressible(asset), asset
    if not isinstance(value, str) or len(value) > OB_AMOUNT_TEXT_LENGTH_MAX:
        raise _amount_invalid(path, _AMOUNT_FORM)
    match = _OB_AMOUNT.fullmatch(value)
    if match is None:
        raise _amount_invalid(path, _AMOUNT_FORM)
    units_text, fraction_text = match.group(1), match.group(2) or ""
    kept, dropped = fraction_text[: asset.scale], fraction_text[asset.scale :]
    if dropped.strip("0"):
        raise _amount_invalid(
            path, f"exact in {asset.code}'s minor unit ({asset.scale} decimal places)"
        )
    factor: int = 10**asset.scale
    amount = int(units_text) * factor + int(kept.ljust(asset.scale, "0") or "0")
    if amount == 0:
        raise _amount_invalid(path, "more than zero")
    return amount


def _amount_invalid(path: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"{path} must be {what}", param=path, code=me.INVALID_OB_AMOUNT)


def parse_ob_currency(value: object, *, path: str) -> Asset:
    """An OB currency code as its ledger asset (unsupported_ob_currency otherwise)."""
    asset = ob_asset(value) if isinstance(value, str) else None
    if asset is None:
        raise InvalidRequest(
            f"{path} must be an ISO 4217 currency code with a minor unit",
            param=path,
            code=me.UNSUPPORTED_OB_CURRENCY,
        )
    return asset


def ob_money(amount: int, asset: Asset) -> dict[str, str]:
    """An OB {Amount, Currency} object (OBActiveOrHistoricCurrencyAndAmount)."""
    return {"Amount": format_ob_amount(amount, asset), "Currency": asset.code}


def parse_ob_money(value: object, *, path: str) -> Money:
    """An OB {Amount, Currency} object (InstructedAmount) as an asset and minor units; the
    currency is read first, since it fixes the amount's scale."""
    if not isinstance(value, Mapping):
        raise InvalidRequest(
            f"{path} must be an object with Amount and Currency",
            param=path,
            code=me.INVALID_OB_AMOUNT,
        )
    asset = parse_ob_currency(value.get("Currency"), path=f"{path}.Currency")
    return Money(asset, parse_ob_amount(value.get("Amount"), asset, path=f"{path}.Amount"))


class CreditDebit(StrEnum):
    """OBCreditDebitCode: "A zero balance is considered to be a credit balance"."""

    CREDIT = "Credit"
    DEBIT = "Debit"


def ob_signed_amount(amount: int, asset: Asset) -> tuple[CreditDebit, str]:
    """A signed ledger amount (a balance) as OB's CreditDebitIndicator and unsigned amount."""
    indicator = CreditDebit.DEBIT if amount < 0 else CreditDebit.CREDIT
    return indicator, format_ob_amount(abs(amount), asset)


# -- date-times ----------------------------------------------------------------------------
# "All date-time fields in responses must include the timezone. 2017-04-05T10:43:07+00:00".
OB_DATETIME_TEXT_LENGTH_MAX: Final = 40
_OB_DATETIME: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_YEAR_MIN: Final = 1970


def ob_datetime(us: int) -> str:
    """Epoch microseconds as OB renders a date-time: UTC, whole seconds (truncated, so never
    later than the instant), with the zone written out: 2017-04-05T10:43:07+00:00."""
    assert us >= 0, us
    return to_datetime(us).isoformat(timespec="seconds")


def parse_ob_datetime(value: object, *, path: str) -> int:
    """An OB request's date-time (ExpirationDateTime, ...) as epoch microseconds. It must
    carry its time zone (Z or +hh:mm): a local time is ambiguous and refused."""
    if (
        isinstance(value, str)
        and len(value) <= OB_DATETIME_TEXT_LENGTH_MAX
        and _OB_DATETIME.fullmatch(value)
    ):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            utc = parsed.astimezone(UTC)
            if utc.year >= _YEAR_MIN:
                return from_datetime(utc)
    raise InvalidRequest(
        f"{path} must be an ISO 8601 date-time with a time zone, such as 2017-04-05T10:43:07+00:00",
        param=path,
        code=me.INVALID_OB_DATETIME,
    )


# -- account identification ----------------------------------------------------------------
# OBInternalAccountIdentification4Code also names BBAN, PAN, Paym and Wallet: we serve two.
OB_ACCOUNT_IDENTIFICATION_LENGTH_MAX: Final = 256  # Identification_0
OB_ACCOUNT_NAME_LENGTH_MAX: Final = 350
OB_SECONDARY_IDENTIFICATION_LENGTH_MAX: Final = 34
_SORT_CODE_ACCOUNT_NUMBER: Final = re.compile(r"[0-9]{6}[0-9]{8}")  # the code set's own regex
# ISO 13616: country, check digits, a BBAN of up to 30 letters and digits (15 to 34 in all).
_IBAN: Final = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")


class AccountScheme(StrEnum):
    SORT_CODE_ACCOUNT_NUMBER = "UK.OBIE.SortCodeAccountNumber"
    IBAN = "UK.OBIE.IBAN"


def iban_checksum_ok(iban: str) -> bool:
    """ISO 13616's MOD 97-10 check: the first four characters moved to the end, letters as
    10..35, the number modulo 97 is 1."""
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


@dataclass(frozen=True, slots=True)
class AccountIdentification:
    """An account as OB names it (DebtorAccount, CreditorAccount, Account[].Account[])."""

    scheme: AccountScheme
    identification: str
    name: str | None = None
    secondary_identification: str | None = None

    def __post_init__(self) -> None:
        assert _identification_ok(self.scheme, self.identification), self.scheme

    def to_ob(self) -> dict[str, str]:
        found = {"SchemeName": str(self.scheme), "Identification": self.identification}
        if self.name is not None:
            found["Name"] = self.name
        if self.secondary_identification is not None:
            found["SecondaryIdentification"] = self.secondary_identification
        return found


def _identification_ok(scheme: AccountScheme, identification: str) -> bool:
    if scheme is AccountScheme.SORT_CODE_ACCOUNT_NUMBER:
        return bool(_SORT_CODE_ACCOUNT_NUMBER.fullmatch(identification))
    return bool(_IBAN.fullmatch(identification)) and iban_checksum_ok(identification)


def parse_account_identification(value: object, *, path: str) -> AccountIdentification:
    """An OB account object ({SchemeName, Identification, Name?, SecondaryIdentification?}).
    A scheme other than ours is unsupported_ob_account_scheme; a malformed field is
    invalid_ob_account_identification, naming the field, never its value."""
    if not isinstance(value, Mapping):
        raise _identification_invalid(path, "an object with SchemeName and Identification")
    scheme_name = value.get("SchemeName")
    try:
        scheme = AccountScheme(scheme_name if isinstance(scheme_name, str) else "")
    except ValueError:
        raise InvalidRequest(
            f"{path}.SchemeName must be one of " + ", ".join(s.value for s in AccountScheme),
            param=f"{path}.SchemeName",
            code=me.UNSUPPORTED_OB_ACCOUNT_SCHEME,
        ) from None
    identification = value.get("Identification")
    if not (
        isinstance(identification, str)
        and len(identification) <= OB_ACCOUNT_IDENTIFICATION_LENGTH_MAX
        and _identification_ok(scheme, identification)
    ):
        what = (
            "14 digits: a sort code and an account number"
            if scheme is AccountScheme.SORT_CODE_ACCOUNT_NUMBER
            else "an IBAN in capitals without spaces, with valid check digits"
        )
        raise _identification_invalid(f"{path}.Identification", what)
    name = _optional_text(value, "Name", OB_ACCOUNT_NAME_LENGTH_MAX, path)
    secondary = _optional_text(
        value, "SecondaryIdentification", OB_SECONDARY_IDENTIFICATION_LENGTH_MAX, path
    )
    return AccountIdentification(scheme, identification, name, secondary)


def _optional_text(value: Mapping[object, object], key: str, limit: int, path: str) -> str | None:
    found = value.get(key)
    if found is None:
        return None
    if not isinstance(found, str) or not 1 <= len(found) <= limit:
        raise _identification_invalid(f"{path}.{key}", f"text of 1 to {limit} characters")
    return found


def _identification_invalid(path: str, what: str) -> InvalidRequest:
    return InvalidRequest(
        f"{path} must be {what}", param=path, code=me.INVALID_OB_ACCOUNT_IDENTIFICATION
    )


# -- account access permissions ------------------------------------------------------------


class Permission(StrEnum):
    """OBReadConsent1's Permissions enum (OBInternalPermissions1Code), all 21 of v4.0."""

    READ_ACCOUNTS_BASIC = "ReadAccountsBasic"
    READ_ACCOUNTS_DETAIL = "ReadAccountsDetail"
    READ_BALANCES = "ReadBalances"
    READ_BENEFICIARIES_BASIC = "ReadBeneficiariesBasic"
    READ_BENEFICIARIES_DETAIL = "ReadBeneficiariesDetail"
    READ_DIRECT_DEBITS = "ReadDirectDebits"
    READ_OFFERS = "ReadOffers"
    READ_PAN = "ReadPAN"
    READ_PARTY = "ReadParty"
    READ_PARTY_PSU = "ReadPartyPSU"
    READ_PRODUCTS = "ReadProducts"
    READ_SCHEDULED_PAYMENTS_BASIC = "ReadScheduledPaymentsBasic"
    READ_SCHEDULED_PAYMENTS_DETAIL = "ReadScheduledPaymentsDetail"
    READ_STANDING_ORDERS_BASIC = "ReadStandingOrdersBasic"
    READ_STANDING_ORDERS_DETAIL = "ReadStandingOrdersDetail"
    READ_STATEMENTS_BASIC = "ReadStatementsBasic"
    READ_STATEMENTS_DETAIL = "ReadStatementsDetail"
    READ_TRANSACTIONS_BASIC = "ReadTransactionsBasic"
    READ_TRANSACTIONS_CREDITS = "ReadTransactionsCredits"
    READ_TRANSACTIONS_DEBITS = "ReadTransactionsDebits"
    READ_TRANSACTIONS_DETAIL = "ReadTransactionsDetail"


_P = Permission
_ACCOUNTS: Final = frozenset({_P.READ_ACCOUNTS_BASIC, _P.READ_ACCOUNTS_DETAIL})
_TRANSACTIONS: Final = frozenset({_P.READ_TRANSACTIONS_BASIC, _P.READ_TRANSACTIONS_DETAIL})
_DIRECTIONS: Final = frozenset({_P.READ_TRANSACTIONS_CREDITS, _P.READ_TRANSACTIONS_DEBITS})

# The permissions our AIS endpoints serve; a consent asking for another one is refused
# rather than granted data we never return.
SUPPORTED_PERMISSIONS: Final = _ACCOUNTS | {_P.READ_BALANCES} | _TRANSACTIONS | _DIRECTIONS
OB_PERMISSIONS_MAX: Final = len(Permission)


@dataclass(frozen=True, slots=True)
class AisEndpoint:
    """An AIS read (GET, path as in the v4.0 OpenAPI document) and the permissions it needs:
    at least one of each group in `requires`. `detail` is the permission that adds the
    detail elements (account identifications, a transaction's silent party details)."""

    path: str
    requires: tuple[frozenset[Permission], ...]
    detail: Permission | None = None


AIS_ENDPOINTS: Final[tuple[AisEndpoint, ...]] = (
    AisEndpoint("/accounts", (_ACCOUNTS,), _P.READ_ACCOUNTS_DETAIL),
    AisEndpoint("/accounts/{AccountId}", (_ACCOUNTS,), _P.READ_ACCOUNTS_DETAIL),
    AisEndpoint("/balances", (frozenset({_P.READ_BALANCES}),)),
    AisEndpoint("/accounts/{AccountId}/balances", (frozenset({_P.READ_BALANCES}),)),
    # Credits and Debits choose which transactions are returned (transaction_directions).
    AisEndpoint("/transactions", (_TRANSACTIONS, _DIRECTIONS), _P.READ_TRANSACTIONS_DETAIL),
    AisEndpoint(
        "/accounts/{AccountId}/transactions",
        (_TRANSACTIONS, _DIRECTIONS),
        _P.READ_TRANSACTIONS_DETAIL,
    ),
)
AIS_ENDPOINT_BY_PATH: Final[Mapping[str, AisEndpoint]] = {e.path: e for e in AIS_ENDPOINTS}
assert len(AIS_ENDPOINT_BY_PATH) == len(AIS_ENDPOINTS)
assert all(p in SUPPORTED_PERMISSIONS for e in AIS_ENDPOINTS for g in e.requires for p in g)
assert {p for e in AIS_ENDPOINTS for g in e.requires for p in g} == SUPPORTED_PERMISSIONS


def endpoint_allowed(permissions: Iterable[Permission], path: str) -> bool:
    """Whether a consent's permissions open the AIS endpoint `path` (a v4.0 path template)."""
    granted = frozenset(permissions)
    endpoint = AIS_ENDPOINT_BY_PATH[path]
    return all(group & granted for group in endpoint.requires)


def shows_detail(permissions: Iterable[Permission], path: str) -> bool:
    """Whether the endpoint's answer carries its detail elements under these permissions."""
    endpoint = AIS_ENDPOINT_BY_PATH[path]
    return endpoint.detail is not None and endpoint.detail in frozenset(permissions)


def transaction_directions(permissions: Iterable[Permission]) -> frozenset[CreditDebit]:
    """The transactions a consent may read: credits, debits or both."""
    granted = frozenset(permissions)
    found: set[CreditDebit] = set()
    if _P.READ_TRANSACTIONS_CREDITS in granted:
        found.add(CreditDebit.CREDIT)
    if _P.READ_TRANSACTIONS_DEBITS in granted:
        found.add(CreditDebit.DEBIT)
    return frozenset(found)


def validate_permissions(value: object, *, path: str = "Data.Permissions") -> frozenset[Permission]:
    """An account access consent's Permissions: a non-empty list of OB permission names
    without repeats, each one we serve (SUPPORTED_PERMISSIONS), and obeying the code set's
    rules: ReadTransactionsBasic or Detail needs ReadTransactionsCredits or Debits, and
    either of those needs Basic or Detail."""
    if not isinstance(value, list) or not 1 <= len(value) <= OB_PERMISSIONS_MAX:
        raise _permissions_invalid(path, "must be a list of 1 to 21 OB permissions")
    granted: set[Permission] = set()
    for item in value:
        try:
            permission = Permission(item)
        except ValueError:
            raise _permissions_invalid(path, "holds a name that is not an OB permission") from None
        if permission in granted:
            raise _permissions_invalid(path, f"names {permission} twice")
        if permission not in SUPPORTED_PERMISSIONS:
            raise _permissions_invalid(
                path,
                f"asks for {permission}, which this server does not serve; it serves "
                + ", ".join(sorted(SUPPORTED_PERMISSIONS)),
            )
        granted.add(permission)
    if bool(granted & _TRANSACTIONS) != bool(granted & _DIRECTIONS):
        raise _permissions_invalid(
            path,
            "must pair ReadTransactionsBasic or ReadTransactionsDetail with "
            "ReadTransactionsCredits or ReadTransactionsDebits",
        )
    return frozenset(granted)


def _permissions_invalid(path: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"{path} {what}", param=path, code=me.INVALID_OB_PERMISSIONS)
