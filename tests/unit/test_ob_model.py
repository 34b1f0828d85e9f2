"""The pure OB vocabulary (openbanking/model.py): amounts to and from minor units, exactly;
currencies; date-times; account identifications; permissions and the endpoints they open."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.core.errors import InvalidRequest
from strongroom.core.money import ISO_4217, Asset, iso_asset
from strongroom.openbanking import model as m
from strongroom.openbanking.model import AccountScheme, CreditDebit
from strongroom.openbanking.model import Permission as P
from strongroom.openbanking.model_errors import ObAmountNotExpressible
from tests.support import ob_spec

GBP = Asset("GBP", 2)
JPY = Asset("JPY", 0)
BHD = Asset("BHD", 3)
CLF = Asset("CLF", 4)
# The v4.0 schema's OBActiveCurrencyAndAmount_SimpleType pattern, as written there.
OB_PATTERN = re.compile(r"^\d{1,13}$|^\d{1,13}\.\d{1,5}$")
PATH = "Data.Initiation.InstructedAmount.Amount"

iso_assets = st.sampled_from(sorted(ISO_4217)).map(lambda code: Asset(code, ISO_4217[code]))


# -- amounts and currencies ----------------------------------------------------------------


def test_every_iso_currency_is_expressible_and_custom_assets_are_not() -> None:
    assert all(m.ob_expressible(Asset(code, scale)) for code, scale in ISO_4217.items())
    assert m.ob_asset("GBP") == GBP
    assert not m.ob_expressible(Asset("GBP", 3))  # not the ISO exponent
    assert not m.ob_expressible(Asset("USDC", 6))  # a custom asset
    assert not m.ob_expressible(Asset("XAU", 0))  # no minor unit in ISO 4217: left out
    assert m.ob_asset("gbp") is None
    assert m.ob_asset("XXX") is None


@pytest.mark.parametrize(
    ("amount", "asset", "text"),
    [
        (1050, GBP, "10.50"),
        (1, GBP, "0.01"),
        (0, GBP, "0.00"),
        (1000, JPY, "1000"),
        (1250, BHD, "1.250"),
        (1, CLF, "0.0001"),
        (10**15 - 1, GBP, "9999999999999.99"),
        (10**13 - 1, JPY, "9999999999999"),
    ],
)
def test_minor_units_are_written_as_ob_amounts(amount: int, asset: Asset, text: str) -> None:
    assert m.format_ob_amount(amount, asset) == text
    assert OB_PATTERN.match(text)


@pytest.mark.parametrize(("amount", "asset"), [(10**15, GBP), (10**13, JPY), (-1, GBP)])
def test_amounts_the_pattern_cannot_carry_are_refused(amount: int, asset: Asset) -> None:
    with pytest.raises(ObAmountNotExpressible) as caught:
        m.format_ob_amount(amount, asset)
    assert (caught.value.code, caught.value.status) == ("ob_amount_not_expressible", 422)


def test_a_signed_balance_takes_its_sign_as_credit_or_debit() -> None:
    assert m.ob_signed_amount(-1050, GBP) == (CreditDebit.DEBIT, "10.50")
    assert m.ob_signed_amount(0, GBP) == (CreditDebit.CREDIT, "0.00")  # zero is a credit
    assert m.ob_signed_amount(7, JPY) == (CreditDebit.CREDIT, "7")


@pytest.mark.parametrize(
    ("text", "asset", "amount"),
    [
        ("10.50", GBP, 1050),
        ("10.5", GBP, 1050),
        ("10", GBP, 1000),
        ("10.50000", GBP, 1050),  # trailing zeros are exact
        ("0.01", GBP, 1),
        ("1000", JPY, 1000),
        ("1000.0", JPY, 1000),
        ("1.25", BHD, 1250),
        ("9999999999999.99", GBP, 10**15 - 1),
    ],
)
def test_ob_amounts_are_read_exactly(text: str, asset: Asset, amount: int) -> None:
    assert m.parse_ob_amount(text, asset, path=PATH) == amount


@pytest.mark.parametrize(
    ("value", "asset"),
    [
        ("10.505", GBP),  # finer than a penny: never rounded
        ("0.5", JPY),
        ("0", GBP),
        ("0.00", GBP),
        ("-1.00", GBP),
        ("+1.00", GBP),
        ("1e3", GBP),
        ("1,000.00", GBP),
        (" 1.00", GBP),
        ("1.00\n", GBP),  # $ in a Python regex would let this through
        ("\u0661\u0662", GBP),  # Arabic-Indic digits match \d, not OB's ASCII digits
        ("10.", GBP),
        (".5", GBP),
        ("12345678901234", GBP),  # 14 integer digits
        ("1.123456", CLF),  # 6 fraction digits
        ("", GBP),
        (10.5, GBP),  # a float, never
        (1050, GBP),
        (None, GBP),
    ],
)
def test_malformed_or_inexact_ob_amounts_are_refused(value: object, asset: Asset) -> None:
    with pytest.raises(InvalidRequest) as caught:
        m.parse_ob_amount(value, asset, path=PATH)
    assert (caught.value.code, caught.value.param) == ("invalid_ob_amount", PATH)


@settings(max_examples=300, deadline=None)
@given(asset=iso_assets, data=st.data())
def test_writing_then_reading_an_amount_gives_it_back(asset: Asset, data: st.DataObject) -> None:
    amount = data.draw(st.integers(min_value=1, max_value=m.ob_amount_max(asset)))
    text = m.format_ob_amount(amount, asset)
    assert OB_PATTERN.match(text)
    assert m.parse_ob_amount(text, asset, path=PATH) == amount
    assert Decimal(text) * 10**asset.scale == amount  # the same number, not an approximation


@settings(max_examples=300, deadline=None)
@given(asset=iso_assets, text=st.from_regex(OB_PATTERN, fullmatch=True))
def test_reading_any_ob_amount_is_exact_or_refused(asset: Asset, text: str) -> None:
    """Every string the pattern admits (ASCII or not) is read exactly or refused, never
    rounded."""
    try:
        amount = m.parse_ob_amount(text, asset, path=PATH)
    except InvalidRequest:
        exact = text.isascii() and (Decimal(text) * 10**asset.scale) % 1 == 0
        assert not exact or Decimal(text) == 0
        return
    assert Decimal(text) * 10**asset.scale == amount > 0


def test_money_objects_are_read_currency_first_and_written_back() -> None:
    found = m.parse_ob_money({"Amount": "1.250", "Currency": "BHD"}, path="Data.X")
    assert found == m.Money(BHD, 1250)
    assert m.ob_money(found.amount, found.asset) == {"Amount": "1.250", "Currency": "BHD"}
    with pytest.raises(InvalidRequest) as caught:
        m.parse_ob_money({"Amount": "1.00", "Currency": "ZZZ"}, path="Data.X")
    assert (caught.value.code, caught.value.param) == ("unsupported_ob_currency", "Data.X.Currency")
    with pytest.raises(InvalidRequest) as caught:
        m.parse_ob_money({"Amount": "1.005", "Currency": "GBP"}, path="Data.X")
    assert (caught.value.code, caught.value.param) == ("invalid_ob_amount", "Data.X.Amount")
    with pytest.raises(InvalidRequest, match="Amount and Currency"):
        m.parse_ob_money("1.00 GBP", path="Data.X")
    assert iso_asset("GBP") == m.parse_ob_currency("GBP", path="C")


# -- date-times ----------------------------------------------------------------------------


def test_date_times_are_rendered_as_ob_shows_them() -> None:
    assert m.ob_datetime(1_491_388_987_999_999) == "2017-04-05T10:43:07+00:00"  # truncated
    assert m.ob_datetime(0) == "1970-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("text", "us"),
    [
        ("2017-04-05T10:43:07+00:00", 1_491_388_987_000_000),
        ("2017-04-05T10:43:07Z", 1_491_388_987_000_000),
        ("2017-04-05T11:43:07+01:00", 1_491_388_987_000_000),
        ("2017-04-05T10:43:07.25-00:30", 1_491_390_787_250_000),
    ],
)
def test_ob_date_times_with_a_zone_are_read(text: str, us: int) -> None:
    assert m.parse_ob_datetime(text, path="Data.ExpirationDateTime") == us


@pytest.mark.parametrize(
    "value",
    [
        "2017-04-05T10:43:07",  # no zone: ambiguous
        "2017-04-05",
        "2017-02-30T10:43:07Z",
        "2017-04-05 10:43:07Z",
        "1969-12-31T23:59:59Z",
        "2017-04-05T10:43:07+00:00\n",
        1_491_388_987,
        None,
    ],
)
def test_ob_date_times_without_a_zone_or_malformed_are_refused(value: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        m.parse_ob_datetime(value, path="Data.ExpirationDateTime")
    assert caught.value.code == "invalid_ob_datetime"


# -- account identification ----------------------------------------------------------------

SCAN = {"SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "08080021325698"}
IBAN = {"SchemeName": "UK.OBIE.IBAN", "Identification": "GB29NWBK60161331926819", "Name": "A"}
BAD = "invalid_ob_account_identification"
UNSUPPORTED = "unsupported_ob_account_scheme"


def test_the_two_schemes_we_serve_are_read_and_written_back() -> None:
    scan = m.parse_account_identification(SCAN, path="Data.DebtorAccount")
    assert scan.scheme is AccountScheme.SORT_CODE_ACCOUNT_NUMBER
    assert scan.to_ob() == SCAN
    iban = m.parse_account_identification(IBAN, path="Data.DebtorAccount")
    assert (iban.scheme, iban.name) == (AccountScheme.IBAN, "A")
    assert iban.to_ob() == IBAN


@pytest.mark.parametrize(
    ("value", "code", "param"),
    [
        ({**SCAN, "SchemeName": "UK.OBIE.PAN"}, UNSUPPORTED, "X.SchemeName"),
        ({**SCAN, "SchemeName": None}, UNSUPPORTED, "X.SchemeName"),
        ({**SCAN, "Identification": "0808002132569"}, BAD, "X.Identification"),
        ({**SCAN, "Identification": "08-08-00 21325698"}, BAD, "X.Identification"),
        ({**IBAN, "Identification": "GB28NWBK60161331926819"}, BAD, "X.Identification"),
        ({**IBAN, "Identification": "GB29 NWBK 6016 1331 9268 19"}, BAD, "X.Identification"),
        ({**IBAN, "Name": ""}, BAD, "X.Name"),
        ({**IBAN, "SecondaryIdentification": "x" * 35}, BAD, "X.SecondaryIdentification"),
        ("GB29NWBK60161331926819", BAD, "X"),
    ],
)
def test_malformed_account_identifications_are_refused_without_echoing_them(
    value: object, code: str, param: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        m.parse_account_identification(value, path="X")
    assert (caught.value.code, caught.value.param) == (code, param)
    assert "0808" not in str(caught.value)
    assert "6016" not in str(caught.value)


def test_iban_check_digits() -> None:
    assert m.iban_checksum_ok("GB29NWBK60161331926819")
    assert m.iban_checksum_ok("DE89370400440532013000")
    assert not m.iban_checksum_ok("DE88370400440532013000")


# -- permissions ---------------------------------------------------------------------------


def test_permissions_open_the_ais_endpoints_they_name() -> None:
    basic = {P.READ_ACCOUNTS_BASIC}
    assert m.endpoint_allowed(basic, "/accounts")
    assert m.endpoint_allowed(basic, "/accounts/{AccountId}")
    assert not m.shows_detail(basic, "/accounts")
    assert m.shows_detail({P.READ_ACCOUNTS_DETAIL}, "/accounts/{AccountId}")
    assert not m.endpoint_allowed(basic, "/balances")
    assert m.endpoint_allowed({P.READ_BALANCES}, "/accounts/{AccountId}/balances")
    assert not m.endpoint_allowed({P.READ_BALANCES}, "/accounts")
    # Transactions need a kind (Basic or Detail) and a direction (Credits or Debits).
    assert not m.endpoint_allowed({P.READ_TRANSACTIONS_BASIC}, "/transactions")
    credits = {P.READ_TRANSACTIONS_BASIC, P.READ_TRANSACTIONS_CREDITS}
    assert m.endpoint_allowed(credits, "/accounts/{AccountId}/transactions")
    assert m.transaction_directions(credits) == {CreditDebit.CREDIT}
    assert not m.shows_detail(credits, "/transactions")
    both = {P.READ_TRANSACTIONS_DETAIL, P.READ_TRANSACTIONS_CREDITS, P.READ_TRANSACTIONS_DEBITS}
    assert m.transaction_directions(both) == {CreditDebit.CREDIT, CreditDebit.DEBIT}
    assert m.shows_detail(both, "/transactions")


def test_permissions_are_validated_as_the_code_set_says() -> None:
    assert m.validate_permissions(["ReadAccountsBasic", "ReadBalances"]) == {
        P.READ_ACCOUNTS_BASIC,
        P.READ_BALANCES,
    }
    good = ["ReadTransactionsDetail", "ReadTransactionsDebits"]
    assert m.validate_permissions(good) == {P.READ_TRANSACTIONS_DETAIL, P.READ_TRANSACTIONS_DEBITS}
    for bad, why in [
        ([], "a list of 1 to 21"),
        ("ReadBalances", "a list of 1 to 21"),
        (["ReadBalances", "ReadBalances"], "twice"),
        (["ReadEverything"], "not an OB permission"),
        ([["ReadBalances"]], "not an OB permission"),
        (["ReadParty"], "does not serve"),
        (["ReadTransactionsBasic"], "must pair"),
        (["ReadTransactionsCredits", "ReadBalances"], "must pair"),
    ]:
        with pytest.raises(InvalidRequest, match=why) as caught:
            m.validate_permissions(bad)
        assert (caught.value.code, caught.value.param) == (
            "invalid_ob_permissions",
            "Data.Permissions",
        )


# -- against the official v4.0 documents ----------------------------------------------------


def test_the_permissions_are_v4_account_access_consents_enum() -> None:
    for schema in ("OBReadConsent1", "OBReadConsentResponse1"):
        data = ob_spec.component_schema("account-info", schema)["properties"]["Data"]
        enum = data["properties"]["Permissions"]["items"]["enum"]
        assert enum == [str(p) for p in P]


def test_each_ais_endpoint_is_a_get_of_the_v4_document() -> None:
    for endpoint in m.AIS_ENDPOINTS:
        template, _ = ob_spec.find_operation("account-info", endpoint.path, "get")
        assert template == endpoint.path


def test_the_amount_and_currency_patterns_are_v4s() -> None:
    for spec in ("account-info", "payment-initiation", "confirmation-funds"):
        schemas = ob_spec.load_spec(spec)["components"]["schemas"]
        if "OBActiveCurrencyAndAmount_SimpleType" in schemas:
            assert schemas["OBActiveCurrencyAndAmount_SimpleType"]["pattern"] == OB_PATTERN.pattern
    currency = ob_spec.component_schema("payment-initiation", "ActiveOrHistoricCurrencyCode")
    assert currency["pattern"] == "^[A-Z]{3,3}$"


def test_the_schemes_are_in_v4s_identification_code_list() -> None:
    scheme = ob_spec.component_schema("account-info", "OBInternalAccountIdentification4Code")
    assert {str(s) for s in AccountScheme} <= set(scheme["x-namespaced-enum"])
