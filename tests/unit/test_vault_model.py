"""The card vault's rules, on the public test card numbers the networks and processors publish
(Stripe's, Adyen's and the brands' own test ranges): Luhn, brand by IIN range, lengths, expiry,
security code, masking. A refusal never carries the value it refuses."""

from __future__ import annotations

import pytest

from strongroom.core.errors import InvalidRequest
from strongroom.security.vault.model import (
    Brand,
    bin_digits,
    brand_of,
    check_card,
    luhn_ok,
    masked,
    normalize_number,
)

TODAY = {"year": 2026, "month": 12}

PUBLIC_TEST_CARDS = {
    "4242424242424242": Brand.VISA,
    "4000056655665556": Brand.VISA,
    "4111111111111111": Brand.VISA,
    "4222222222222": Brand.VISA,  # 13 digits
    "5555555555554444": Brand.MASTERCARD,
    "5105105105105100": Brand.MASTERCARD,
    "2223003122003222": Brand.MASTERCARD,  # the 2-series
    "2720990000000007": Brand.MASTERCARD,
    "378282246310005": Brand.AMEX,
    "371449635398431": Brand.AMEX,
    "6011111111111117": Brand.DISCOVER,
    "6011000990139424": Brand.DISCOVER,
    "3530111333300000": Brand.JCB,
    "3566002020360505": Brand.JCB,
    "36227206271667": Brand.DINERS,  # 14 digits
    "30569309025904": Brand.DINERS,
    "3056930009020004": Brand.DINERS,
    "6200000000000005": Brand.UNIONPAY,
    "6205500000000000004": Brand.UNIONPAY,  # 19 digits
    "6759649826438453": Brand.MAESTRO,
}


def with_check_digit(body: str) -> str:
    """`body` and the digit that makes it pass Luhn (computed here, not by the model)."""
    for digit in "0123456789":
        candidate = body + digit
        total = 0
        for i, c in enumerate(reversed(candidate)):
            d = int(c) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


@pytest.mark.parametrize(("number", "brand"), sorted(PUBLIC_TEST_CARDS.items()))
def test_public_test_cards_pass_luhn_and_get_their_brand(number: str, brand: Brand) -> None:
    assert luhn_ok(number)
    assert brand_of(number)[0] is brand
    card = check_card(number, 12, 2030, "Ada Lovelace", None, **TODAY)
    assert card.brand is brand
    assert card.pan == number


@pytest.mark.parametrize(
    ("prefix", "length", "brand"),
    [
        ("2221", 16, Brand.MASTERCARD),  # the 2-series' first and last IINs
        ("2720", 16, Brand.MASTERCARD),
        ("2220", 16, Brand.UNKNOWN),  # just outside it
        ("2721", 16, Brand.UNKNOWN),
        ("644", 16, Brand.DISCOVER),
        ("65", 19, Brand.DISCOVER),
        ("622126", 16, Brand.DISCOVER),  # co-branded, inside UnionPay's 62
        ("622925", 16, Brand.DISCOVER),
        ("622125", 16, Brand.UNIONPAY),
        ("81", 16, Brand.UNIONPAY),
        ("3528", 16, Brand.JCB),
        ("3589", 19, Brand.JCB),
        ("300", 14, Brand.DINERS),
        ("3095", 14, Brand.DINERS),
        ("38", 16, Brand.DINERS),
        ("5018", 12, Brand.MAESTRO),
        ("6304", 19, Brand.MAESTRO),
        ("6763", 16, Brand.MAESTRO),
        ("9", 16, Brand.UNKNOWN),
    ],
)
def test_iin_ranges_longest_prefix_wins(prefix: str, length: int, brand: Brand) -> None:
    number = with_check_digit(prefix + "0" * (length - len(prefix) - 1))
    assert brand_of(number)[0] is brand
    assert check_card(number, 1, 2027, "A", None, **TODAY).brand is brand


def test_a_wrong_check_digit_or_length_is_refused_without_the_number() -> None:
    for bad, why in (
        ("4242424242424241", "Luhn"),
        ("4242-4242-42", "digits are a card number"),
        ("4242 4242 4242 424x", "digits only"),
        ("１２３４５６７８９０１２", "digits only"),  # fullwidth digits are not ASCII
        (with_check_digit("378282246310000"), "15 digits"),  # an Amex of 16
        (with_check_digit("4" + "0" * 13), "13 or 16 or 19"),  # a Visa of 15
    ):
        with pytest.raises(InvalidRequest) as refused:
            check_card(bad, 12, 2030, "Ada", None, **TODAY)
        assert refused.value.code == "invalid_card_number"
        assert refused.value.param == "number"
        assert why in refused.value.detail
        digits = "".join(c for c in bad if c.isdigit())
        assert digits[-4:] not in str(refused.value)
    assert normalize_number("4242 4242-4242 4242") == "4242424242424242"


def test_expiry() -> None:
    check_card("4242424242424242", 12, 2026, "Ada", None, **TODAY)  # to the end of its month
    for month, year, code in (
        (11, 2026, "card_expired"),
        (12, 2025, "card_expired"),
        (1, 2001, "card_expired"),
        (0, 2030, "invalid_expiry"),
        (13, 2030, "invalid_expiry"),
        (12, 30, "invalid_expiry"),  # two digits
        (12, 2077, "invalid_expiry"),  # over 50 years ahead
    ):
        with pytest.raises(InvalidRequest) as refused:
            check_card("4242424242424242", month, year, "Ada", None, **TODAY)
        assert refused.value.code == code, (month, year)


def test_the_security_code_is_checked_by_brand_and_never_echoed() -> None:
    check_card("378282246310005", 12, 2030, "Ada", "1234", **TODAY)
    check_card("4242424242424242", 12, 2030, "Ada", "987", **TODAY)
    for number, cvc in (
        ("378282246310005", "123"),
        ("4242424242424242", "9876"),
        ("4242424242424242", "98a"),
        ("4242424242424242", "٩٨٧"),  # Arabic-Indic digits
    ):
        with pytest.raises(InvalidRequest) as refused:
            check_card(number, 12, 2030, "Ada", cvc, **TODAY)
        assert refused.value.code == "invalid_cvc"
        assert cvc not in str(refused.value)
    card = check_card("4242424242424242", 12, 2030, "Ada Lovelace", "987", **TODAY)
    assert "987" not in repr(card)
    assert "4242424242424242" not in repr(card)
    assert "Lovelace" not in repr(card)


def test_holder_name() -> None:
    card = check_card("4242424242424242", 12, 2030, "  Ada   Lovelace ", None, **TODAY)
    assert card.holder_name == "Ada Lovelace"
    for bad in ("", "   ", "x" * 101, "Ada\x00"):
        with pytest.raises(InvalidRequest) as refused:
            check_card("4242424242424242", 12, 2030, bad, None, **TODAY)
        assert refused.value.code == "invalid_holder_name"


def test_masking_shows_at_most_the_bin_and_the_last_four() -> None:
    """PCI DSS 3.4.1: an eight-digit BIN from 16 digits, six below, and always at least four
    digits hidden."""
    assert {n: bin_digits(n) for n in range(12, 20)} == {
        12: 4,
        13: 5,
        14: 6,
        15: 6,
        16: 8,
        17: 8,
        18: 8,
        19: 8,
    }
    visa = check_card("4242424242424242", 12, 2030, "Ada", None, **TODAY)
    assert (visa.bin, visa.last4) == ("42424242", "4242")
    assert masked(visa.bin, visa.last4, 16) == "42424242****4242"
    amex = check_card("378282246310005", 12, 2030, "Ada", None, **TODAY)
    assert masked(amex.bin, amex.last4, 15) == "378282*****0005"
    for number in PUBLIC_TEST_CARDS:
        card = check_card(number, 12, 2030, "Ada", None, **TODAY)
        shown = masked(card.bin, card.last4, len(number))
        assert len(shown) == len(number)
        assert shown.count("*") >= 4
        assert number not in shown
