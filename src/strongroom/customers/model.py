"""Customers' and counterparties' personal data: validation, normalisation and masking (pure).

A value is normalised before it is sealed or indexed, so that the blind index of an email or a
national id matches however it was typed: an email trimmed and lower-cased, a national id or an
account identifier upper-cased without spaces or dashes, a phone number without separators.
Masks show enough to recognise a value, never enough to use it (docs/customers.md)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any, Final

from strongroom.core import clock
from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import (
    ACCOUNT_IDENTIFIER_LENGTH_MAX,
    ADDRESS_LINE_LENGTH_MAX,
    EMAIL_LENGTH_MAX,
    NAME_LENGTH_MAX,
    NATIONAL_ID_LENGTH_MAX,
    NATIONAL_ID_LENGTH_MIN,
    PHONE_DIGITS_MAX,
    PHONE_DIGITS_MIN,
    POSTAL_CODE_LENGTH_MAX,
)

# The blind indexes' purposes (Envelope.blind_index): one key per purpose and tenant.
EMAIL_INDEX: Final = "customer.email"
NATIONAL_ID_INDEX: Final = "customer.national_id"
DATE_OF_BIRTH_MIN: Final = dt.date(1900, 1, 1)

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_PHONE = re.compile(rf"\+?[0-9]{{{PHONE_DIGITS_MIN},{PHONE_DIGITS_MAX}}}")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_ID_SEPARATORS = re.compile(r"[\s-]")
_ALNUM = re.compile(r"[A-Z0-9]+")
_COUNTRY = re.compile(r"[A-Z]{2}")


class CustomerKind(StrEnum):
    PERSON = "person"
    BUSINESS = "business"

    @classmethod
    def parse(cls, value: object) -> CustomerKind:
        for kind in cls:
            if value == kind.value:
                return kind
        raise InvalidRequest(
            "a customer's kind is 'person' or 'business'",
            param="kind",
            code="invalid_customer_kind",
        )


def _invalid(param: str, rule: str) -> InvalidRequest:
    # The rule broken, never the value: a refusal does not echo personal data.
    return InvalidRequest(f"{param} {rule}", param=param, code="invalid_personal_data")


def _text(value: object, param: str, length_max: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid(param, "is a non-empty string")
    text = " ".join(value.split())
    if len(text) > length_max:
        raise _invalid(param, f"is at most {length_max} characters")
    return text


def normalise_name(value: object, param: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{param} is a non-empty string", param=param, code="invalid_name")
    text = " ".join(value.split())
    if len(text) > NAME_LENGTH_MAX:
        raise InvalidRequest(
            f"{param} is at most {NAME_LENGTH_MAX} characters", param=param, code="invalid_name"
        )
    return text


def normalise_email(value: object) -> str:
    if not isinstance(value, str):
        raise _invalid("email", "is a string")
    email = value.strip().lower()
    if len(email) > EMAIL_LENGTH_MAX or not _EMAIL.fullmatch(email):
        raise _invalid("email", "is an address of the form name@domain.tld")
    return email


def normalise_phone(value: object) -> str:
    if not isinstance(value, str):
        raise _invalid("phone", "is a string")
    phone = _PHONE_SEPARATORS.sub("", value)
    if not _PHONE.fullmatch(phone):
        raise _invalid(
            "phone", f"is {PHONE_DIGITS_MIN} to {PHONE_DIGITS_MAX} digits, '+' first for E.164"
        )
    return phone


def _identifier(value: object, param: str, length_min: int, length_max: int) -> str:
    if not isinstance(value, str):
        raise _invalid(param, "is a string")
    found = _ID_SEPARATORS.sub("", value).upper()
    if not length_min <= len(found) <= length_max or not _ALNUM.fullmatch(found):
        raise _invalid(param, f"is {length_min} to {length_max} letters and digits")
    return found


def normalise_national_id(value: object) -> str:
    return _identifier(value, "national_id", NATIONAL_ID_LENGTH_MIN, NATIONAL_ID_LENGTH_MAX)


def normalise_account_identifier(value: object) -> str:
    """An IBAN, or an account number with its bank's code: letters and digits."""
    return _identifier(value, "account_identifier", 6, ACCOUNT_IDENTIFIER_LENGTH_MAX)


def normalise_country(value: object, param: str = "country") -> str:
    """ISO 3166-1 alpha-2, upper-cased."""
    country = value.strip().upper() if isinstance(value, str) else ""
    if not _COUNTRY.fullmatch(country):
        raise InvalidRequest(
            f"{param} is an ISO 3166-1 alpha-2 code", param=param, code="invalid_country"
        )
    return country


def validate_date_of_birth(value: object, today: dt.date) -> str:
    """YYYY-MM-DD, from 1900 to today."""
    try:
        day = dt.date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        day = None
    if day is None or not DATE_OF_BIRTH_MIN <= day <= today:
        raise _invalid("date_of_birth", "is a date YYYY-MM-DD from 1900 to today")
    return day.isoformat()


@dataclass(frozen=True, slots=True)
class Address:
    line1: str
    city: str
    country: str
    line2: str | None = None
    region: str | None = None
    postal_code: str | None = None

    @classmethod
    def parse(cls, value: object) -> Address:
        if not isinstance(value, Mapping):
            raise _invalid("address", "is an object")
        known = {f.name for f in fields(cls)}
        if set(value) - known:
            raise _invalid("address", f"has only the members {', '.join(sorted(known))}")

        def optional(name: str, length_max: int) -> str | None:
            item = value.get(name)
            return None if item is None else _text(item, f"address.{name}", length_max)

        return cls(
            line1=_text(value.get("line1"), "address.line1", ADDRESS_LINE_LENGTH_MAX),
            city=_text(value.get("city"), "address.city", ADDRESS_LINE_LENGTH_MAX),
            country=normalise_country(value.get("country"), "address.country"),
            line2=optional("line2", ADDRESS_LINE_LENGTH_MAX),
            region=optional("region", ADDRESS_LINE_LENGTH_MAX),
            postal_code=optional("postal_code", POSTAL_CODE_LENGTH_MAX),
        )

    def to_dict(self) -> dict[str, str | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class PersonalData:
    """A customer's personal data, normalised; each field is sealed on its own."""

    name: str | None = None
    date_of_birth: str | None = None
    address: Address | None = None
    email: str | None = None
    phone: str | None = None
    national_id: str | None = None

    def sealable(self) -> dict[str, bytes]:
        """The fields that are set, as the bytes that are sealed."""
        out: dict[str, bytes] = {}
        for name in PII_FIELDS:
            value = getattr(self, name)
            if isinstance(value, Address):
                out[name] = json.dumps(value.to_dict(), sort_keys=True).encode()
            elif value is not None:
                out[name] = value.encode()
        return out

    @classmethod
    def from_opened(cls, opened: Mapping[str, bytes]) -> PersonalData:
        values: dict[str, Any] = {name: raw.decode() for name, raw in opened.items()}
        if "address" in values:
            values["address"] = Address(**json.loads(values["address"]))
        return cls(**values)

    def revealed(self, only: frozenset[str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in PII_FIELDS:
            value = getattr(self, name) if only is None or name in only else None
            out[name] = value.to_dict() if isinstance(value, Address) else value
        return out

    def masked(self) -> dict[str, Any]:
        address = None
        if self.address is not None:
            address = {"country": self.address.country}  # the rest would locate the person
        return {
            "name": mask_name(self.name) if self.name else None,
            "date_of_birth": self.date_of_birth[:4] if self.date_of_birth else None,
            "address": address,
            "email": mask_email(self.email) if self.email else None,
            "phone": mask_tail(self.phone, 2) if self.phone else None,
            "national_id": mask_tail(self.national_id, 4) if self.national_id else None,
        }


PII_FIELDS: Final = tuple(f.name for f in fields(PersonalData))


def parse_personal_data(
    values: Mapping[str, object], kind: CustomerKind, today: dt.date
) -> PersonalData:
    """The fields given (a None value: not given), validated and normalised."""
    given = {k: v for k, v in values.items() if v is not None}
    assert set(given) <= set(PII_FIELDS), "the schema lets only the known fields through"
    if "date_of_birth" in given and kind is CustomerKind.BUSINESS:
        raise _invalid("date_of_birth", "is a person's: a business has none")
    return PersonalData(
        name=normalise_name(given["name"]) if "name" in given else None,
        date_of_birth=(
            validate_date_of_birth(given["date_of_birth"], today)
            if "date_of_birth" in given
            else None
        ),
        address=Address.parse(given["address"]) if "address" in given else None,
        email=normalise_email(given["email"]) if "email" in given else None,
        phone=normalise_phone(given["phone"]) if "phone" in given else None,
        national_id=normalise_national_id(given["national_id"]) if "national_id" in given else None,
    )


def merged(current: PersonalData, changes: PersonalData) -> PersonalData:
    """`current` with the fields `changes` sets."""
    return replace(
        current,
        **{name: getattr(changes, name) for name in PII_FIELDS if getattr(changes, name)},
    )


# -- masks ---------------------------------------------------------------------------------


def mask_name(name: str) -> str:
    """Each word's first letter: "Ada Lovelace" -> "A** L*******"."""
    return " ".join(word[0] + "*" * (len(word) - 1) for word in name.split())


def mask_email(email: str) -> str:
    """The first letter and the domain: "ada@example.com" -> "a***@example.com"."""
    local, _, domain = email.partition("@")
    return f"{local[0]}***@{domain}"


def mask_tail(value: str, shown: int) -> str:
    """All but the last `shown` characters starred (a leading '+' kept): "+447700900123" ->
    "+**********23"."""
    assert len(value) > shown, "a mask never shows the whole value"
    head = "+" if value.startswith("+") else ""
    body = value.removeprefix("+")
    return head + "*" * (len(body) - shown) + body[-shown:]


# -- counterparties ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CounterpartyData:
    name: str
    account_identifier: str

    def sealable(self) -> dict[str, bytes]:
        return {"name": self.name.encode(), "account": self.account_identifier.encode()}

    def revealed(self) -> dict[str, Any]:
        return {"name": self.name, "account_identifier": self.account_identifier}

    def masked(self) -> dict[str, Any]:
        return {
            "name": mask_name(self.name),
            "account_identifier": mask_tail(self.account_identifier, 4),
        }


# -- what callers get ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    tenant_id: str
    kind: CustomerKind
    personal: PersonalData | None  # None once erased
    legal_hold: bool
    metadata: dict[str, Any] | None
    created_at: int
    updated_at: int
    erased_at: int | None

    def to_dict(self) -> dict[str, Any]:
        """Masked: the API's answer to a key without `pii:read` (and to every GET)."""
        empty: dict[str, Any] = dict.fromkeys(PII_FIELDS)
        return {
            "id": self.id,
            "object": "customer",
            "kind": self.kind.value,
            **(self.personal.masked() if self.personal is not None else empty),
            "legal_hold": self.legal_hold,
            "erased": self.erased_at is not None,
            "erased_at": clock.format_us(self.erased_at) if self.erased_at is not None else None,
            "metadata": self.metadata or {},
            "created_at": clock.format_us(self.created_at),
            "updated_at": clock.format_us(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class Counterparty:
    id: str
    tenant_id: str
    country: str
    personal: CounterpartyData | None  # None once erased
    created_at: int
    erased_at: int | None

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"name": None, "account_identifier": None}
        if self.personal is not None:
            data = self.personal.revealed() if reveal else self.personal.masked()
        return {
            "id": self.id,
            "object": "counterparty",
            **data,
            "country": self.country,
            "erased": self.erased_at is not None,
            "erased_at": clock.format_us(self.erased_at) if self.erased_at is not None else None,
            "created_at": clock.format_us(self.created_at),
        }
