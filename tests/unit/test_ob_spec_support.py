"""The spec-validation harness (tests/support/ob_spec.py): the six v4.0 documents load and pass
openapi-spec-validator once their quirks are fixed, bodies built with the open banking model's
helpers validate against their operations' declared responses, and wrong ones are refused."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate as validate_document
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from strongroom.core.money import Asset
from strongroom.openbanking import consents as c
from strongroom.openbanking import model as m
from strongroom.openbanking import obcodes as ob
from strongroom.openbanking.consents import ConsentEvent, ConsentKind
from tests.support import flags, ob_spec
from tests.support.ob_spec import ResponseInvalid, validate_response

GBP = Asset("GBP", 2)
T0_US = 1_491_388_987_000_000  # 2017-04-05T10:43:07Z
INTERACTION = {"x-fapi-interaction-id": "93bac548-d2de-4546-b106-880a5018460d"}
SIGNED = {**INTERACTION, "x-jws-signature": "eyJhbGciOiJQUzI1NiJ9..c2lnbmF0dXJl"}


# -- the documents -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ob_spec.SPEC_NAMES)
def test_each_v4_document_passes_strict_validation_once_its_quirks_are_fixed(name: str) -> None:
    document = ob_spec.load_spec(name)
    assert document["info"]["version"] == "4.0.0"
    validate_document(copy.deepcopy(dict(document)))


def test_only_payment_initiation_needed_a_fix_and_it_needed_it() -> None:
    assert {name: ob_spec.quirk_fixes(name) for name in ob_spec.SPEC_NAMES} == {
        **dict.fromkeys(ob_spec.SPEC_NAMES, ()),
        "payment-initiation": (
            "#/components/schemas/OBFrequency6Code/enum: repeated values dropped",
        ),
    }
    raw = ob_spec._read_yaml(ob_spec.spec_path("payment-initiation"))
    with pytest.raises(OpenAPIValidationError, match="non-unique elements"):
        validate_document(raw)
    assert (
        ob_spec.load_spec("payment-initiation")["components"]["schemas"]["OBFrequency6Code"][
            "enum"
        ].count("WEEK")
        == 1
    )


def test_fix_quirks_stringifies_integer_keys_and_drops_repeated_enum_values() -> None:
    fixed, fixes = ob_spec.fix_quirks(
        {"responses": {201: {"d": 1}}, "s": {"enum": ["A", "B", "A", "C", "B"]}}
    )
    assert fixed == {"responses": {"201": {"d": 1}}, "s": {"enum": ["A", "B", "C"]}}
    assert fixes == ["#/responses/201: key made a string", "#/s/enum: repeated values dropped"]


def test_missing_shared_data_skips_or_fails_under_the_require_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(flags.REQUIRE_SHARED_DATA, raising=False)
    with pytest.raises(pytest.skip.Exception):
        ob_spec.need(tmp_path / "absent.yaml")
    monkeypatch.setenv(flags.REQUIRE_SHARED_DATA, "1")
    with pytest.raises(pytest.fail.Exception, match=flags.REQUIRE_SHARED_DATA):
        ob_spec.need(tmp_path / "absent.yaml")


# -- bodies built with the model's helpers --------------------------------------------------


def _consent_data(state: c.ConsentState, consent_id: str) -> dict[str, Any]:
    return {
        "ConsentId": consent_id,
        "CreationDateTime": m.ob_datetime(state.created_at_us),
        "Status": str(state.status),
        "StatusUpdateDateTime": m.ob_datetime(state.status_updated_at_us),
    }


def account_access_consent(status_event: ConsentEvent | None = None) -> dict[str, Any]:
    state = c.ConsentState.new(ConsentKind.ACCOUNT_ACCESS, T0_US)
    if status_event is not None:
        state, _ = c.apply(state, status_event, T0_US + 5_000_000)
    permissions = m.validate_permissions(
        ["ReadAccountsDetail", "ReadBalances", "ReadTransactionsBasic", "ReadTransactionsCredits"]
    )
    return {
        "Data": {
            **_consent_data(state, "aac_01HV3Y2W3F"),
            "Permissions": sorted(str(p) for p in permissions),
            "ExpirationDateTime": m.ob_datetime(T0_US + 90 * 86_400_000_000),
        },
        "Risk": {},
        "Links": {"Self": "https://bank.example/open-banking/v4.0/aisp/account-access-consents/x"},
        "Meta": {},
    }


def domestic_payment_consent() -> dict[str, Any]:
    state = c.ConsentState.new(ConsentKind.DOMESTIC_PAYMENT, T0_US)
    creditor = m.parse_account_identification(
        {
            "SchemeName": "UK.OBIE.SortCodeAccountNumber",
            "Identification": "08080021325698",
            "Name": "ACME Inc",
        },
        path="Data.Initiation.CreditorAccount",
    )
    return {
        "Data": {
            **_consent_data(state, "pdc_01HV3Y2W3F"),
            "Initiation": {
                "InstructionIdentification": "ACME412",
                "EndToEndIdentification": "FRESCO.21302.GFX.20",
                "InstructedAmount": m.ob_money(16_523, GBP),
                "CreditorAccount": creditor.to_ob(),
            },
        },
        "Risk": {"PaymentContextCode": "TransferToThirdParty"},
        "Links": {
            "Self": "https://bank.example/open-banking/v4.0/pisp/domestic-payment-consents/x"
        },
        "Meta": {},
    }


def test_an_account_access_consent_validates_as_created_read_and_authorised() -> None:
    validate_response(
        "account-info",
        "/account-access-consents",
        "post",
        201,
        account_access_consent(),
        INTERACTION,
    )
    authorised = account_access_consent(ConsentEvent.AUTHORISE)
    assert authorised["Data"]["Status"] == "AUTH"
    validate_response(
        "account-info",
        "/open-banking/v4.0/aisp/account-access-consents/aac_01HV3Y2W3F",  # concrete, with base
        "GET",
        200,
        authorised,
        {"X-FAPI-Interaction-ID": "x"},  # header names compared case-insensitively
    )
    validate_response(
        "account-info", "/account-access-consents/{ConsentId}", "delete", 204, None, INTERACTION
    )


def test_a_domestic_payment_consent_validates_with_its_signature_header() -> None:
    body = domestic_payment_consent()
    assert body["Data"]["Initiation"]["InstructedAmount"] == {"Amount": "165.23", "Currency": "GBP"}
    validate_response("payment-initiation", "/domestic-payment-consents", "post", 201, body, SIGNED)


def test_a_funds_confirmation_consent_validates() -> None:
    state, _ = c.apply(
        c.ConsentState.new(ConsentKind.FUNDS_CONFIRMATION, T0_US), ConsentEvent.REVOKE, T0_US
    )
    debtor = m.AccountIdentification(m.AccountScheme.IBAN, "GB29NWBK60161331926819")
    body = {"Data": {**_consent_data(state, "fcc_1"), "DebtorAccount": debtor.to_ob()}}
    assert body["Data"]["Status"] == "CANC"
    validate_response(
        "confirmation-funds", "/funds-confirmation-consents/fcc_1", "get", 200, body, INTERACTION
    )


def test_a_balance_validates_with_its_sign_as_credit_or_debit() -> None:
    indicator, amount = m.ob_signed_amount(-250_075, GBP)
    body = {
        "Data": {
            "Balance": [
                {
                    "AccountId": "acc_1",
                    "CreditDebitIndicator": str(indicator),
                    "Type": "ITAV",
                    "DateTime": m.ob_datetime(T0_US),
                    "Amount": {"Amount": amount, "Currency": "GBP"},
                }
            ]
        },
        "Links": {"Self": "https://bank.example/open-banking/v4.0/aisp/accounts/acc_1/balances"},
        "Meta": {"TotalPages": 1},
    }
    validate_response("account-info", "/accounts/acc_1/balances", "get", 200, body, INTERACTION)


def test_an_error_body_validates_for_each_declared_error_status() -> None:
    """Payment initiation signs its error answers too: x-jws-signature is required there."""
    body = ob.error_body(
        400,
        [
            ob.error_for(
                "invalid_ob_amount", 400, "must be exact", "Data.Initiation.InstructedAmount.Amount"
            )
        ],
        error_id="93bac548-d2de-4546-b106-880a5018460d",
    )
    for status in (400, 403, 500):
        validate_response(
            "payment-initiation", "/domestic-payment-consents", "post", status, body, SIGNED
        )


# -- and wrong ones refused -----------------------------------------------------------------


def test_an_old_style_status_and_a_time_without_a_zone_are_refused() -> None:
    body = account_access_consent()
    body["Data"]["Status"] = "AwaitingAuthorisation"  # v3.1's name
    body["Data"]["StatusUpdateDateTime"] = "2017-04-05T10:43:07"
    with pytest.raises(ResponseInvalid) as caught:
        validate_response(
            "account-info", "/account-access-consents", "post", 201, body, INTERACTION
        )
    assert caught.value.problems == [
        "Data/Status: 'AwaitingAuthorisation' is not one of "
        "['AWAU', 'RJCT', 'AUTH', 'EXPD', 'CANC']",
        "Data/StatusUpdateDateTime: '2017-04-05T10:43:07' is not a 'date-time'",
    ]


def test_a_payment_consent_with_a_wrong_status_amount_or_field_is_refused() -> None:
    for change, where in [
        (lambda b: b["Data"].update(Status="EXPD"), "Data/Status"),  # no EXPD for payments
        (lambda b: b["Data"]["Initiation"]["InstructedAmount"].update(Amount=165.23), "Amount"),
        (lambda b: b["Data"]["Initiation"]["InstructedAmount"].update(Amount="-1.00"), "Amount"),
        (lambda b: b["Data"]["Initiation"].update(Extra="x"), "Additional properties"),
        (lambda b: b["Data"].pop("Initiation"), "'Initiation' is a required property"),
    ]:
        body = domestic_payment_consent()
        change(body)
        with pytest.raises(ResponseInvalid, match=where):
            validate_response(
                "payment-initiation", "/domestic-payment-consents", "post", 201, body, SIGNED
            )


def test_a_missing_header_an_undeclared_status_or_a_stray_body_is_refused() -> None:
    body = domestic_payment_consent()
    with pytest.raises(ResponseInvalid, match="header x-jws-signature is required"):
        validate_response(
            "payment-initiation", "/domestic-payment-consents", "post", 201, body, INTERACTION
        )
    with pytest.raises(ResponseInvalid, match="status 200 is not declared"):
        validate_response(
            "payment-initiation", "/domestic-payment-consents", "post", 200, body, SIGNED
        )
    with pytest.raises(ResponseInvalid, match="declares no body"):
        validate_response(
            "account-info", "/account-access-consents/x", "delete", 204, {"a": 1}, INTERACTION
        )
    with pytest.raises(ResponseInvalid, match="declares a JSON body, but none"):
        validate_response(
            "account-info", "/account-access-consents/x", "get", 200, None, INTERACTION
        )
    with pytest.raises(AssertionError, match="declares no path"):
        validate_response("account-info", "/nowhere", "get", 200, None, INTERACTION)
    with pytest.raises(AssertionError, match="declares no PUT"):
        validate_response("account-info", "/accounts", "put", 200, None, INTERACTION)
