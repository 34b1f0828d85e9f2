"""Money is an integer of minor units plus an asset with a scale. Floats are refused."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import (
    AMOUNT_MAX,
    ASSET_CODE_LENGTH_MAX,
    ASSET_SCALE_MAX,
    NATIVE_INT_MAX,
)

# ISO 4217 active codes and their minor-unit exponent (list one, as published by SIX).
# Codes with no minor unit defined (precious metals, SDR, testing codes, XXX) are left out:
# register them as custom assets with the scale you need.
_ISO_BY_EXPONENT: Final = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    2: (
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN "
        "BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB "
        "EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS "
        "KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN "
        "MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD "
        "SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS "
        "UAH USD USN UYU UZS VES VED WST XCD XCG YER ZAR ZMW ZWG"
    ),
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
}

ISO_4217: Final[dict[str, int]] = {
    code: exponent for exponent, codes in _ISO_BY_EXPONENT.items() for code in codes.split()
}

_CUSTOM_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,15}$")


@dataclass(frozen=True, slots=True)
class Asset:
    code: str
    scale: int

    def __post_init__(self) -> None:
        assert 0 <= self.scale <= ASSET_SCALE_MAX
        assert len(self.code) <= ASSET_CODE_LENGTH_MAX

    def format(self, amount: int) -> str:
        """Render minor units as a decimal string, exactly (no float on the way)."""
        sign = "-" if amount < 0 else ""
        units, minor = divmod(abs(amount), 10**self.scale)
        if self.scale == 0:
            return f"{sign}{units} {self.code}"
        return f"{sign}{units}.{minor:0{self.scale}d} {self.code}"


def iso_asset(code: str) -> Asset | None:
    exponent = ISO_4217.get(code)
    return None if exponent is None else Asset(code, exponent)


def validate_custom_asset(code: object, scale: object) -> Asset:
    if not isinstance(code, str) or not _CUSTOM_CODE.match(code):
        raise InvalidRequest(
            "asset code must be 2 to 16 characters of A-Z, 0-9 and _, starting with a letter",
            param="code",
            code="invalid_asset_code",
        )
    if code in ISO_4217:
        raise InvalidRequest(
            f"{code} is an ISO 4217 currency and exists already", param="code", code="asset_exists"
        )
    if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= ASSET_SCALE_MAX:
        raise InvalidRequest(
            f"scale must be an integer from 0 to {ASSET_SCALE_MAX}",
            param="scale",
            code="invalid_asset_scale",
        )
    return Asset(code, scale)


def validate_amount(value: object, param: str = "amount") -> int:
    """An amount is a positive integer of minor units, at most 2^128-1. Floats are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        kind = type(value).__name__
        raise InvalidRequest(
            f"{param} must be an integer of minor units, not {kind}",
            param=param,
            code="amount_not_integer",
        )
    if value <= 0:
        raise InvalidRequest(f"{param} must be positive", param=param, code="amount_not_positive")
    if value > AMOUNT_MAX:
        raise InvalidRequest(
            f"{param} must be at most 2^128-1", param=param, code="amount_too_large"
        )
    return value


def parse_amount_text(text: str, param: str = "amount") -> int:
    """For the CLI: a string of ASCII digits only. '1.5', '1e3' or other scripts' digits are
    refused, never rounded or converted."""
    if not (text.isascii() and text.isdigit()):
        raise InvalidRequest(
            f"{param} must be an integer of minor units", param=param, code="amount_not_integer"
        )
    return validate_amount(int(text), param)


# -- the stored form of a money value ------------------------------------------------------
# SQLite has no integer wider than 64 bits. A money value (an amount, a total, a pending delta)
# whose magnitude fits NATIVE_INT_MAX is stored as a native INTEGER, as before 128-bit amounts
# (so existing data needs no rewrite and the common case costs nothing); a larger one as a
# BLOB of STORED_INT_BYTES, big-endian two's complement. SQLite never converts a BLOB by column
# affinity, so both forms live in the same column. PostgreSQL stores NUMERIC(39,0) and needs
# neither function. docs/architecture.md explains the choice and what was measured.
STORED_INT_BYTES: Final = 17  # signed: pending deltas go down to -(2^128-1)


def to_stored_int(value: int) -> int | bytes:
    if -NATIVE_INT_MAX <= value <= NATIVE_INT_MAX:
        return value
    assert -AMOUNT_MAX <= value <= AMOUNT_MAX, "money values are at most 128 bits"
    return value.to_bytes(STORED_INT_BYTES, "big", signed=True)


def from_stored_int(value: object) -> int:
    """The inverse of to_stored_int. Anything else (a float, text, a blob of another length:
    a hand edit) raises ValueError."""
    if type(value) is int:
        return value
    if isinstance(value, bytes | memoryview) and len(value) == STORED_INT_BYTES:
        number = int.from_bytes(value, "big", signed=True)
        if -NATIVE_INT_MAX <= number <= NATIVE_INT_MAX:
            raise ValueError("a wide stored integer holds a value that fits 64 bits")
        if not -AMOUNT_MAX <= number <= AMOUNT_MAX:
            raise ValueError("a stored money value is wider than 128 bits")
        return number
    raise ValueError(f"not a stored money value: {type(value).__name__}")
