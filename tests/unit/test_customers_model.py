"""The customers' pure rules: normalisation (what the blind index sees), masks, and refusals
that name the rule broken, never the value."""

from __future__ import annotations

import datetime as dt

import pytest

from strongroom.core.errors import InvalidRequest
from strongroom.customers.model import (
    Address,
    CounterpartyData,
    CustomerKind,
    PersonalData,
    mask_email,
    mask_name,
    mask_tail,
    merged,
    normalise_account_identifier,
    normalise_country,
    normalise_email,
    normalise_national_id,
    normalise_phone,
    parse_personal_data,
)

TODAY = dt.date(2026, 12, 6)


@pytest.mark.parametrize(
    ("normalise", "typed", "stored"),
    [
        (normalise_email, "  Ada.Lovelace@Example.COM ", "ada.lovelace@example.com"),
        (normalise_national_id, "qq 12-34-56 c", "QQ123456C"),
        (normalise_phone, "+44 (7700) 900-123", "+447700900123"),
        (normalise_account_identifier, "gb29 nwbk 6016 1331 9268 19", "GB29NWBK60161331926819"),
        (normalise_country, " gb", "GB"),
    ],
)
def test_normalisation_makes_equal_values_equal(normalise: object, typed: str, stored: str) -> None:
    assert callable(normalise)
    assert normalise(typed) == stored
    assert normalise(stored) == stored  # idempotent: the index of a stored value is stable


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "ada-at-example.com"),
        ("email", "ada@localhost"),
        ("phone", "call me 123"),
        ("phone", "+12"),
        ("national_id", "QQ1"),
        ("national_id", "QQ12345$"),
        ("date_of_birth", "1985-02-30"),
        ("date_of_birth", "2099-01-01"),
        ("date_of_birth", "10/12/1985"),
        ("address", {"line1": "Somewhere 12", "city": "Paris", "country": "FRA"}),
        (
            "address",
            {"line1": "Somewhere 12", "city": "Paris", "country": "FR", "pin": "SECRETPIN"},
        ),
    ],
)
def test_a_refusal_names_the_field_never_the_value(field: str, value: object) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_personal_data({"name": "Ada", field: value}, CustomerKind.PERSON, TODAY)
    assert refused.value.param is not None
    assert refused.value.param.split(".")[0] == field
    text = f"{refused.value} {refused.value.param}"
    for part in [*value.values()] if isinstance(value, dict) else [value]:
        assert str(part) not in text


def test_a_business_has_no_date_of_birth() -> None:
    with pytest.raises(InvalidRequest):
        parse_personal_data(
            {"name": "Acme Ltd", "date_of_birth": "2001-01-01"}, CustomerKind.BUSINESS, TODAY
        )
    acme = parse_personal_data({"name": "Acme  Ltd "}, CustomerKind.BUSINESS, TODAY)
    assert acme.name == "Acme Ltd"


def test_masks_show_enough_to_recognise_never_the_whole() -> None:
    assert mask_name("Ada King Lovelace") == "A** K*** L*******"
    assert mask_email("ada@example.com") == "a***@example.com"
    assert mask_tail("+447700900123", 2) == "+**********23"
    assert mask_tail("QQ123456C", 4) == "*****456C"
    ada = PersonalData(
        name="Ada Lovelace",
        date_of_birth="1985-12-10",
        address=Address("12 St James's Square", "London", "GB", postal_code="SW1Y 4JH"),
        email="ada@example.com",
        phone="+447700900123",
        national_id="QQ123456C",
    )
    masked = ada.masked()
    assert masked == {
        "name": "A** L*******",
        "date_of_birth": "1985",
        "address": {"country": "GB"},
        "email": "a***@example.com",
        "phone": "+**********23",
        "national_id": "*****456C",
    }
    text = repr(masked)
    for value in ("Lovelace", "12-10", "James", "SW1Y", "ada@", "900123", "QQ12"):
        assert value not in text
    payee = CounterpartyData("Charles Babbage", "GB29NWBK60161331926819").masked()
    assert payee == {"name": "C****** B******", "account_identifier": "******************6819"}


def test_sealed_bytes_round_trip_and_updates_merge() -> None:
    ada = parse_personal_data(
        {
            "name": "Ada Lovelace",
            "address": {"line1": "12 St James's Square", "city": "London", "country": "gb"},
            "email": "ADA@example.com",
        },
        CustomerKind.PERSON,
        TODAY,
    )
    assert PersonalData.from_opened(ada.sealable()) == ada
    moved = merged(ada, PersonalData(email="ada@analytical.engine"))
    assert (moved.name, moved.email) == ("Ada Lovelace", "ada@analytical.engine")
