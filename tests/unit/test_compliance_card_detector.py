"""The card-number detector of the `card_numbers_in_clear` control: a Luhn-valid run with a
brand's prefix, in free text, but never the digits of a hex digest (a fingerprint's or a key's),
which a sanctions list load or a keyed hash would otherwise trip one time in ten."""

from __future__ import annotations

import hashlib

from strongroom.compliance.controls.model import as_text, card_numbers, luhn_valid
from strongroom.core import frames

CARD = "4111111111111111"


def test_a_card_number_is_found_in_text_and_beside_letters() -> None:
    assert list(card_numbers(f"paid with {CARD} today")) == [CARD]
    assert list(card_numbers(f"card={CARD};")) == [CARD]
    assert list(card_numbers("4111 1111 1111 1111")) == [CARD]
    assert list(card_numbers(f"PAN{CARD}")) == [CARD]  # a few letters are no digest


def test_digits_inside_a_hex_digest_are_no_card_number() -> None:
    digest = f"ab{CARD}cd" + "0" * 40  # 60 hex characters around a Luhn-valid run
    assert list(card_numbers(digest)) == []
    assert list(card_numbers(f"fingerprint {digest} end")) == []
    # Real SHA-256 digests: those whose digits hold a Luhn-valid branded run are skipped too.
    tripped = 0
    for i in range(2_000):
        hexed = hashlib.sha256(str(i).encode()).hexdigest()
        tripped += bool(list(card_numbers(hexed)))
    assert tripped == 0


def test_a_long_run_of_digits_alone_is_still_scanned() -> None:
    # All digits is no hex digest: a card number inside a long number is still reported when
    # the run itself is one (13 to 19 digits).
    assert luhn_valid(CARD)
    assert list(card_numbers(f"x {CARD} y")) == [CARD]


def test_the_fraction_of_a_decimal_number_is_no_card_number() -> None:
    # A risk feature as JSON: its sixteen decimals are a Luhn-valid, branded run (439803...).
    assert luhn_valid("4398037835090485")
    assert list(card_numbers('{"amount_to_mean_30d":1.4398037835090485}')) == []
    assert list(card_numbers("score 0.4111111111111111")) == []
    assert list(card_numbers(f"[-1.{CARD}, 2]")) == []
    # After a dot that ends no decimal number, or with separators, it is still a card number.
    for text in (
        f"Card ending.{CARD}",
        f"paid. {CARD}",
        f"Ref.{CARD}",
        f"v1.{CARD}",
        f"10.0.0.1.{CARD}",
        f"2024-01-05.{CARD}",
        "1.4111 1111 1111 1111",
        "item 3.4111-1111-1111-1111",
    ):
        assert list(card_numbers(text)) == [CARD], text


def test_a_compressed_value_is_scanned_as_what_it_holds() -> None:
    """The audit log's bundles are zstd frames: a number in one is found. A frame that does not
    open, or says it holds more than the bound, is scanned as stored (nothing allocated)."""
    clear = b'\x00\x01leaf {"note":"4111 1111 1111 1111"}' * 20
    frame = frames.compress(clear, 1)
    text = as_text(frame)
    assert text == clear.decode("latin-1")  # opened, not the frame's bytes
    assert list(card_numbers(text))[:1] == ["4111111111111111"]
    damaged = frame[:-3]
    assert as_text(damaged) == damaged.decode("latin-1")
    huge = frames.MAGIC + bytes([0b1110_0000]) + (1 << 40).to_bytes(8, "little") + b"\x01"
    assert as_text(huge) == huge.decode("latin-1")
