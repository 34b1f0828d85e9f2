"""The card vault's rules (pure): what a card number is, whose brand it is, when it expires,
and how much of it may be shown.

Refusals name the field and the rule broken, never the value: a card number, a security code
or a holder's name is not echoed, not even in part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import (
    CARD_EXPIRY_YEARS_MAX,
    CARD_HOLDER_NAME_CHARS_MAX,
    CARD_NUMBER_CHARS_MAX,
    CARD_NUMBER_DIGITS_MAX,
    CARD_NUMBER_DIGITS_MIN,
)


class Brand(StrEnum):
    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    DISCOVER = "discover"
    JCB = "jcb"
    DINERS = "diners"
    UNIONPAY = "unionpay"
    MAESTRO = "maestro"
    UNKNOWN = "unknown"  # a valid number in no range below: accepted, any length 12-19


def _lengths(low: int, high: int) -> frozenset[int]:
    return frozenset(range(low, high + 1))


# (first IIN, last IIN, brand, card number lengths): the issuer identification number ranges
# of each brand's published rules, as prefixes of the number; the longest prefix that matches
# wins (Discover's 622126-622925 inside UnionPay's 62, Maestro's 6759 inside nothing else).
_IIN_RANGES: Final[tuple[tuple[str, str, Brand, frozenset[int]], ...]] = (
    ("4", "4", Brand.VISA, frozenset({13, 16, 19})),
    ("51", "55", Brand.MASTERCARD, frozenset({16})),
    ("2221", "2720", Brand.MASTERCARD, frozenset({16})),  # the 2-series, since 2017
    ("34", "34", Brand.AMEX, frozenset({15})),
    ("37", "37", Brand.AMEX, frozenset({15})),
    ("6011", "6011", Brand.DISCOVER, _lengths(16, 19)),
    ("644", "649", Brand.DISCOVER, _lengths(16, 19)),
    ("65", "65", Brand.DISCOVER, _lengths(16, 19)),
    ("622126", "622925", Brand.DISCOVER, _lengths(16, 19)),  # co-branded with UnionPay
    ("3528", "3589", Brand.JCB, _lengths(16, 19)),
    ("36", "36", Brand.DINERS, _lengths(14, 19)),
    ("300", "305", Brand.DINERS, _lengths(14, 19)),
    ("3095", "3095", Brand.DINERS, _lengths(14, 19)),
    ("38", "39", Brand.DINERS, _lengths(14, 19)),
    ("62", "62", Brand.UNIONPAY, _lengths(16, 19)),
    ("81", "81", Brand.UNIONPAY, _lengths(16, 19)),
    ("5018", "5018", Brand.MAESTRO, _lengths(12, 19)),
    ("5020", "5020", Brand.MAESTRO, _lengths(12, 19)),
    ("5038", "5038", Brand.MAESTRO, _lengths(12, 19)),
    ("5893", "5893", Brand.MAESTRO, _lengths(12, 19)),
    ("6304", "6304", Brand.MAESTRO, _lengths(12, 19)),
    ("6759", "6759", Brand.MAESTRO, _lengths(12, 19)),
    ("6761", "6763", Brand.MAESTRO, _lengths(12, 19)),
)
for _low, _high, _brand, _sizes in _IIN_RANGES:
    assert len(_low) == len(_high), (_low, _high)
    assert _low <= _high, (_low, _high)
    assert _sizes <= _lengths(CARD_NUMBER_DIGITS_MIN, CARD_NUMBER_DIGITS_MAX), _brand

# The security code's length: four digits on the front of an Amex card, three on the back of
# every other brand's.
CVC_DIGITS: Final = {Brand.AMEX: 4}
CVC_DIGITS_DEFAULT: Final = 3


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check digit of ISO/IEC 7812-1 is right."""
    assert digits.isascii(), "digits only"
    assert digits.isdigit(), "digits only"
    # Every second digit from the right doubled, less 9 when over 9: a table look-up.
    doubled = digits[-2::-2]
    total = sum(map(int, digits[::-2])) + sum(_DOUBLED[int(c)] for c in doubled)
    return total % 10 == 0


_DOUBLED: Final = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


# Every prefix of every range (about 1,400), so that a number's brand is a few dict look-ups,
# longest prefix first, instead of a scan of the ranges on the tokenization path.
_BY_PREFIX: Final = {
    str(prefix).zfill(len(low)): (brand, lengths)
    for low, high, brand, lengths in _IIN_RANGES
    for prefix in range(int(low), int(high) + 1)
}
assert len(_BY_PREFIX) == sum(int(h) - int(lo) + 1 for lo, h, _, _ in _IIN_RANGES), "overlap"
_PREFIX_SIZES: Final = sorted({len(low) for low, _, _, _ in _IIN_RANGES}, reverse=True)
_ANY_LENGTH: Final = _lengths(CARD_NUMBER_DIGITS_MIN, CARD_NUMBER_DIGITS_MAX)


def brand_of(digits: str) -> tuple[Brand, frozenset[int]]:
    """The brand whose IIN range is the longest prefix of `digits`, and its lengths."""
    for size in _PREFIX_SIZES:
        found = _BY_PREFIX.get(digits[:size])
        if found is not None:
            return found
    return Brand.UNKNOWN, _ANY_LENGTH


def bin_digits(length: int) -> int:
    """How many leading digits may be shown with the last four (PCI DSS 3.4.1: at most the
    BIN and the last four): an eight-digit BIN for numbers of 16 digits or more, six below,
    and never so many that fewer than eight digits stay hidden or shown as the last four
    (a 12-digit Maestro number shows its first four only)."""
    assert CARD_NUMBER_DIGITS_MIN <= length <= CARD_NUMBER_DIGITS_MAX
    return min(8 if length >= 16 else 6, length - 8)


def normalize_number(number: str) -> str:
    """The digits of a card number sent with optional single spaces or dashes between groups;
    refused (`invalid_card_number`) as a whole, without saying which digit was wrong."""
    if len(number) > CARD_NUMBER_CHARS_MAX:
        raise _invalid_number(f"at most {CARD_NUMBER_CHARS_MAX} characters")
    digits = number.replace(" ", "").replace("-", "")
    if not (digits.isascii() and digits.isdigit()):
        raise _invalid_number("digits only, with spaces or dashes between groups")
    if not CARD_NUMBER_DIGITS_MIN <= len(digits) <= CARD_NUMBER_DIGITS_MAX:
        raise _invalid_number(
            f"{CARD_NUMBER_DIGITS_MIN} to {CARD_NUMBER_DIGITS_MAX} digits are a card number"
        )
    if not luhn_ok(digits):
        raise _invalid_number("the check digit (Luhn) is wrong")
    return digits


def _invalid_number(rule: str) -> InvalidRequest:
    return InvalidRequest(
        f"number: not a card number: {rule}", param="number", code="invalid_card_number"
    )


@dataclass(frozen=True, slots=True)
class CardInput:
    """A card as checked, for the length of one request. `pan` and `holder_name` are the
    only copies in clear; `repr` shows neither."""

    pan: str = field(repr=False)
    brand: Brand
    exp_month: int
    exp_year: int
    holder_name: str = field(repr=False)

    @property
    def bin(self) -> str:
        return self.pan[: bin_digits(len(self.pan))]

    @property
    def last4(self) -> str:
        return self.pan[-4:]


def check_expiry(exp_month: int, exp_year: int, *, year: int, month: int) -> None:
    """A card is valid to the end of its expiry month; `year`/`month` are today's (UTC)."""
    if not 1 <= exp_month <= 12:
        raise InvalidRequest("exp_month: 1 to 12", param="exp_month", code="invalid_expiry")
    if not 1_000 <= exp_year <= year + CARD_EXPIRY_YEARS_MAX:
        raise InvalidRequest(
            f"exp_year: the four-digit year, at most {CARD_EXPIRY_YEARS_MAX} years ahead",
            param="exp_year",
            code="invalid_expiry",
        )
    if (exp_year, exp_month) < (year, month):
        raise InvalidRequest("the card has expired", param="exp_year", code="card_expired")


def check_cvc(cvc: str, brand: Brand) -> None:
    """A security code of the brand's length; checked, then forgotten by the caller."""
    digits = CVC_DIGITS.get(brand, CVC_DIGITS_DEFAULT)
    if len(cvc) != digits or not (cvc.isascii() and cvc.isdigit()):
        raise InvalidRequest(
            f"cvc: {digits} digits for this card's brand", param="cvc", code="invalid_cvc"
        )


def normalize_holder_name(name: str) -> str:
    text = " ".join(name.split())
    if not 1 <= len(text) <= CARD_HOLDER_NAME_CHARS_MAX or not text.isprintable():
        raise InvalidRequest(
            f"holder_name: 1 to {CARD_HOLDER_NAME_CHARS_MAX} printable characters",
            param="holder_name",
            code="invalid_holder_name",
        )
    return text


def check_card(
    number: str,
    exp_month: int,
    exp_year: int,
    holder_name: str,
    cvc: str | None,
    *,
    year: int,
    month: int,
) -> CardInput:
    """Every rule, in the order the fields are read; the first broken one is reported."""
    pan = normalize_number(number)
    brand, lengths = brand_of(pan)
    if len(pan) not in lengths:
        raise _invalid_number(f"a {brand.value} card number has {_describe(lengths)} digits")
    check_expiry(exp_month, exp_year, year=year, month=month)
    holder = normalize_holder_name(holder_name)
    if cvc is not None:
        check_cvc(cvc, brand)
    return CardInput(pan, brand, exp_month, exp_year, holder)


def _describe(lengths: frozenset[int]) -> str:
    ordered = sorted(lengths)
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"{ordered[0]} to {ordered[-1]}"
    return " or ".join(str(n) for n in ordered)


def masked(bin_: str, last4: str, length: int) -> str:
    """The number as it may be displayed: its BIN, then `*` for each hidden digit, then its
    last four."""
    hidden = length - len(bin_) - len(last4)
    assert hidden >= 4, "at least four digits stay hidden"
    return bin_ + "*" * hidden + last4
