"""Pure model and validation rules: money, metadata, legs, flags, assets, ids. No database."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pytest

from strongroom.core import ids
from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import (
    AMOUNT_MAX,
    LEGS_PER_TRANSFER_MAX,
    METADATA_BYTES_MAX,
    METADATA_KEY_LENGTH_MAX,
    METADATA_KEYS_MAX,
)
from strongroom.core.money import (
    ISO_4217,
    Asset,
    from_stored_int,
    iso_asset,
    parse_amount_text,
    to_stored_int,
    validate_amount,
    validate_custom_asset,
)
from strongroom.ledger.model import (
    AccountFlag,
    Action,
    Balances,
    Direction,
    Leg,
    NewTransfer,
    TransferResult,
    canonical_metadata,
    derived_balances,
    legs_from_json,
    legs_to_json,
    simple_transfer_ok,
    validate_id,
    validate_legs,
    validate_transfer,
)


def _code_of(exc: pytest.ExceptionInfo[InvalidRequest]) -> str:
    return exc.value.code


def _balanced_legs(count: int, amount: int = 10) -> tuple[Leg, ...]:
    """`count` legs on distinct accounts: one debit of the total, the rest credits."""
    credits = tuple(Leg(f"acc_{i}", Direction.CREDIT, amount) for i in range(1, count))
    return (Leg("acc_0", Direction.DEBIT, amount * (count - 1)), *credits)


# -- amounts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (1.0, "amount_not_integer"),
        (1.5, "amount_not_integer"),
        ("100", "amount_not_integer"),
        (True, "amount_not_integer"),
        (False, "amount_not_integer"),
        (None, "amount_not_integer"),
        (0, "amount_not_positive"),
        (-1, "amount_not_positive"),
        (-(2**63), "amount_not_positive"),
        (2**128, "amount_too_large"),
        (2**129 + 1, "amount_too_large"),
        (10**100, "amount_too_large"),
    ],
)
def test_amount_refused_with_its_code(value: object, code: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        validate_amount(value)
    assert _code_of(exc) == code
    assert exc.value.param == "amount"
    assert exc.value.status == 400


@pytest.mark.parametrize("value", [1, 100, 2**63 - 1, 2**63, 10**27, AMOUNT_MAX])
def test_amount_accepted_up_to_uint128_max(value: int) -> None:
    assert AMOUNT_MAX == 2**128 - 1
    assert validate_amount(value) == value


def test_amount_error_names_the_field() -> None:
    with pytest.raises(InvalidRequest) as exc:
        validate_amount(0, "transfers[3].amount")
    assert exc.value.param == "transfers[3].amount"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("1.5", "amount_not_integer"),
        ("1e3", "amount_not_integer"),
        ("-5", "amount_not_integer"),
        ("", "amount_not_integer"),
        (" 5", "amount_not_integer"),
        ("0", "amount_not_positive"),
        (str(2**128), "amount_too_large"),
    ],
)
def test_amount_text_is_digits_only_never_rounded(text: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_amount_text(text)
    assert _code_of(exc) == code


def test_amount_text_accepts_digits() -> None:
    assert parse_amount_text("250") == 250
    assert parse_amount_text(str(AMOUNT_MAX)) == AMOUNT_MAX


# -- metadata ------------------------------------------------------------------------------


def test_metadata_is_canonical_json() -> None:
    text = canonical_metadata({"b": 1, "a": "x", "c": None, "d": True})
    assert text == '{"a":"x","b":1,"c":null,"d":true}'
    assert canonical_metadata({"d": True, "c": None, "a": "x", "b": 1}) == text


def test_metadata_absent_or_empty_is_none() -> None:
    assert canonical_metadata(None) is None
    assert canonical_metadata({}) is None


def test_metadata_at_the_key_limit_is_accepted() -> None:
    value = {f"k{i}": i for i in range(METADATA_KEYS_MAX)}
    text = canonical_metadata(value)
    assert text is not None
    assert json.loads(text) == value


def test_metadata_with_too_many_keys_is_refused() -> None:
    with pytest.raises(InvalidRequest) as exc:
        canonical_metadata({f"k{i}": i for i in range(METADATA_KEYS_MAX + 1)})
    assert _code_of(exc) == "metadata_too_large"


def test_metadata_larger_than_the_byte_limit_is_refused() -> None:
    # Two keys whose values together pass METADATA_BYTES_MAX once encoded.
    half = METADATA_BYTES_MAX // 2
    with pytest.raises(InvalidRequest) as exc:
        canonical_metadata({"a": "x" * half, "b": "y" * half})
    assert _code_of(exc) == "metadata_too_large"


def test_metadata_byte_limit_counts_utf8_bytes_not_characters() -> None:
    # 1,500 characters of 3 bytes each: under the limit in characters, over it in bytes.
    value = {"note": "€" * 1_500}
    assert len(json.dumps(value, ensure_ascii=False)) < METADATA_BYTES_MAX
    with pytest.raises(InvalidRequest) as exc:
        canonical_metadata(value)
    assert _code_of(exc) == "metadata_too_large"


def test_metadata_exactly_at_the_byte_limit_is_accepted() -> None:
    overhead = len('{"a":""}')
    text = canonical_metadata({"a": "x" * (METADATA_BYTES_MAX - overhead)})
    assert text is not None
    assert len(text.encode()) == METADATA_BYTES_MAX


@pytest.mark.parametrize(
    "value",
    [
        {"amount": 1.5},
        {"amount": 1.0},
        {"nested": {"a": 1}},
        {"list": [1, 2]},
        {"tuple": (1, 2)},
        {"bytes": b"x"},
    ],
)
def test_metadata_values_are_flat_scalars_without_floats(value: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as exc:
        canonical_metadata(value)
    assert _code_of(exc) == "invalid_metadata"
    key = next(iter(value))
    assert exc.value.param == f"metadata[{key}]"


@pytest.mark.parametrize(
    "value",
    [
        ["a", "b"],
        "text",
        {"": 1},
        {"k" * (METADATA_KEY_LENGTH_MAX + 1): 1},
        {1: "x"},
    ],
)
def test_metadata_shape_and_keys_are_checked(value: object) -> None:
    with pytest.raises(InvalidRequest) as exc:
        canonical_metadata(value)
    assert _code_of(exc) == "invalid_metadata"


def test_metadata_key_at_the_length_limit_is_accepted() -> None:
    key = "k" * METADATA_KEY_LENGTH_MAX
    assert canonical_metadata({key: "v"}) == f'{{"{key}":"v"}}'


# -- ids and names -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "a" * 65, "has space", "naïve", "tab\t", 5, None])
def test_client_ids_are_short_printable_ascii(value: object) -> None:
    with pytest.raises(InvalidRequest) as exc:
        validate_id(value, "id")
    assert _code_of(exc) == "invalid_id"


def test_client_id_at_the_length_limit_is_accepted() -> None:
    assert validate_id("x" * 64, "id") == "x" * 64


# -- legs ----------------------------------------------------------------------------------


def test_balanced_legs_are_accepted() -> None:
    validate_legs(_balanced_legs(2), "legs")
    validate_legs(_balanced_legs(5), "legs")
    validate_legs(_balanced_legs(LEGS_PER_TRANSFER_MAX), "legs")


def test_unbalanced_legs_are_refused() -> None:
    legs = (Leg("a", Direction.DEBIT, 10), Leg("b", Direction.CREDIT, 9))
    with pytest.raises(InvalidRequest) as exc:
        validate_legs(legs, "legs")
    assert _code_of(exc) == "unbalanced_legs"


def test_an_account_appears_in_one_leg_only() -> None:
    legs = (
        Leg("a", Direction.DEBIT, 10),
        Leg("b", Direction.CREDIT, 5),
        Leg("b", Direction.CREDIT, 5),
    )
    with pytest.raises(InvalidRequest) as exc:
        validate_legs(legs, "legs")
    assert _code_of(exc) == "duplicate_leg_account"
    assert exc.value.param == "legs[2].account_id"


def test_a_debit_and_credit_on_one_account_is_a_duplicate() -> None:
    legs = (Leg("a", Direction.DEBIT, 10), Leg("a", Direction.CREDIT, 10))
    with pytest.raises(InvalidRequest) as exc:
        validate_legs(legs, "legs")
    assert _code_of(exc) == "duplicate_leg_account"


@pytest.mark.parametrize(
    "legs",
    [
        (),
        (Leg("a", Direction.DEBIT, 10),),
        _balanced_legs(LEGS_PER_TRANSFER_MAX + 1),
        [Leg("a", Direction.DEBIT, 10), Leg("b", Direction.CREDIT, 10)],  # not a tuple
        (Leg("a", Direction.DEBIT, 10), ("b", Direction.CREDIT, 10)),  # not a Leg
    ],
)
def test_leg_count_and_shape_are_checked(legs: object) -> None:
    with pytest.raises(InvalidRequest) as exc:
        validate_legs(legs, "legs")
    assert _code_of(exc) == "invalid_legs"


@pytest.mark.parametrize(
    ("amount", "code"), [(0, "amount_not_positive"), (1.5, "amount_not_integer")]
)
def test_leg_amounts_are_validated(amount: Any, code: str) -> None:
    legs = (Leg("a", Direction.DEBIT, amount), Leg("b", Direction.CREDIT, amount))
    with pytest.raises(InvalidRequest) as exc:
        validate_legs(legs, "legs")
    assert _code_of(exc) == code
    assert exc.value.param == "legs[0].amount"


def test_legs_round_trip_through_json() -> None:
    legs = _balanced_legs(3, amount=7)
    assert legs_from_json(legs_to_json(legs)) == legs


# -- whole transfers -----------------------------------------------------------------------


def _simple(**changes: Any) -> NewTransfer:
    fields: dict[str, Any] = {
        "id": "t1",
        "ledger_id": "ldg_1",
        "debit_account_id": "acc_a",
        "credit_account_id": "acc_b",
        "amount": 100,
    }
    fields.update(changes)
    return NewTransfer(**fields)


def test_a_simple_transfer_is_valid() -> None:
    validate_transfer(_simple())
    validate_transfer(_simple(pending=True, timeout_s=60))


@pytest.mark.parametrize(
    ("changes", "code", "param"),
    [
        ({"amount": 1.5}, "amount_not_integer", "amount"),
        ({"amount": 0}, "amount_not_positive", "amount"),
        ({"amount": 2**128}, "amount_too_large", "amount"),
        ({"debit_account_id": None}, "invalid_id", "debit_account_id"),
        ({"id": ""}, "invalid_id", "id"),
        ({"target_id": "t0"}, "invalid_request", "target_id"),
        ({"timeout_s": 5}, "invalid_timeout", "timeout_s"),
        ({"pending": True, "timeout_s": -1}, "invalid_timeout", "timeout_s"),
        ({"pending": True, "timeout_s": 1.5}, "invalid_timeout", "timeout_s"),
        (
            {"legs": (Leg("a", Direction.DEBIT, 1), Leg("b", Direction.CREDIT, 1))},
            "invalid_request",
            "legs",
        ),
    ],
)
def test_bad_transfers_are_refused_naming_the_field(
    changes: dict[str, Any], code: str, param: str
) -> None:
    with pytest.raises(InvalidRequest) as exc:
        validate_transfer(_simple(**changes))
    assert _code_of(exc) == code
    assert exc.value.param == param


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": True},
        {"amount": 1.0},
        {"amount": 0},
        {"amount": 2**128},
        {"id": ""},
        {"id": "t 1"},
        {"id": "t\u00e91"},
        {"id": "t\n1"},
        {"id": "t" * 65},
        {"ledger_id": ""},
        {"ledger_id": "l" * 65},
        {"debit_account_id": None},
        {"credit_account_id": "a" * 65},
        {"target_id": "t0"},
        {"timeout_s": False},
        {"timeout_s": 5},
        {"pending": True, "timeout_s": -1},
        {"pending": True, "timeout_s": 1.5},
        {"pending": True, "timeout_s": 10**9},
        {"metadata": '{"a":1}'},
        {"action": Action.POST},
        {"legs": (Leg("a", Direction.DEBIT, 1), Leg("b", Direction.CREDIT, 1))},
    ],
)
def test_the_bulk_check_passes_only_plain_valid_transfers(changes: dict[str, Any]) -> None:
    """simple_transfer_ok is the fast path of validate_transfer: anything it passes must be a
    valid transfer, and anything unusual (valid or not) goes to the slow path."""
    assert simple_transfer_ok(_simple())
    assert simple_transfer_ok(_simple(pending=True, timeout_s=60, linked=True))
    assert not simple_transfer_ok(_simple(**changes))


def test_a_leg_transfer_is_validated_through_its_legs() -> None:
    t = NewTransfer(
        id="t1",
        ledger_id="ldg_1",
        legs=(Leg("a", Direction.DEBIT, 5), Leg("b", Direction.CREDIT, 4)),
    )
    with pytest.raises(InvalidRequest) as exc:
        validate_transfer(t)
    assert _code_of(exc) == "unbalanced_legs"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"action": Action.VOID, "amount": 5}, "invalid_request"),
        ({"action": Action.POST, "pending": True}, "invalid_request"),
        ({"action": Action.POST, "debit_account_id": "a"}, "invalid_request"),
        ({"action": Action.REVERSE, "target_id": None}, "invalid_id"),
        ({"action": Action.POST, "amount": -1}, "amount_not_positive"),
        ({"action": Action.REVERSE, "amount": 1.5}, "amount_not_integer"),
    ],
)
def test_post_void_and_reverse_shapes(changes: dict[str, Any], code: str) -> None:
    fields: dict[str, Any] = {"id": "t2", "ledger_id": "ldg_1", "target_id": "t1"}
    fields.update(changes)
    with pytest.raises(InvalidRequest) as exc:
        validate_transfer(NewTransfer(**fields))
    assert _code_of(exc) == code


def test_post_void_and_reverse_without_amount_are_valid() -> None:
    for action in (Action.POST, Action.VOID, Action.REVERSE):
        validate_transfer(NewTransfer(id="t2", ledger_id="ldg_1", action=action, target_id="t1"))
    validate_transfer(
        NewTransfer(id="t2", ledger_id="ldg_1", action=Action.POST, target_id="t1", amount=5)
    )


# -- flags and directions ------------------------------------------------------------------


def test_flags_parse_by_name() -> None:
    assert AccountFlag.parse([]) is AccountFlag.NONE
    flag = AccountFlag.parse(["debits_must_not_exceed_credits"])
    assert flag is AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
    assert flag.names() == ["debits_must_not_exceed_credits"]
    assert AccountFlag.parse(("credits_must_not_exceed_debits",)).names() == [
        "credits_must_not_exceed_debits"
    ]


@pytest.mark.parametrize("names", [["no_such_flag"], [1], "debits_must_not_exceed_credits", None])
def test_unknown_flags_are_refused(names: object) -> None:
    with pytest.raises(InvalidRequest) as exc:
        AccountFlag.parse(names)
    assert _code_of(exc) == "invalid_flags"


def test_both_overdraft_flags_are_mutually_exclusive() -> None:
    with pytest.raises(InvalidRequest) as exc:
        AccountFlag.parse(["debits_must_not_exceed_credits", "credits_must_not_exceed_debits"])
    assert _code_of(exc) == "flags_are_mutually_exclusive"


def test_direction_parses_words_and_members() -> None:
    assert Direction.parse("debit", "d") is Direction.DEBIT
    assert Direction.parse(Direction.CREDIT, "d") is Direction.CREDIT
    with pytest.raises(InvalidRequest) as exc:
        Direction.parse("up", "d")
    assert _code_of(exc) == "invalid_direction"


def test_result_ok_is_created_or_exists_only() -> None:
    ok = {r for r in TransferResult if r.ok}
    assert ok == {TransferResult.CREATED, TransferResult.EXISTS}
    assert list(TransferResult)[:2] == [TransferResult.CREATED, TransferResult.EXISTS]


def test_derived_balances_for_each_normal_side() -> None:
    b = Balances(debits_posted=30, credits_posted=100, debits_pending=20, credits_pending=5)
    credit = derived_balances(Direction.CREDIT, b)
    assert (credit["posted"], credit["pending"], credit["available"]) == (70, 55, 50)
    debit = derived_balances(Direction.DEBIT, b)
    assert (debit["posted"], debit["pending"], debit["available"]) == (-70, -55, -75)


# -- assets and formatting -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "exponent"),
    [("JPY", 0), ("KRW", 0), ("USD", 2), ("EUR", 2), ("KWD", 3), ("BHD", 3), ("CLF", 4)],
)
def test_iso_4217_exponents(code: str, exponent: int) -> None:
    assert ISO_4217[code] == exponent
    assert iso_asset(code) == Asset(code, exponent)


def test_codes_without_a_minor_unit_are_not_iso_assets() -> None:
    for code in ("XAU", "XDR", "XXX", "usd", "BTC"):
        assert iso_asset(code) is None


def test_iso_table_is_well_formed() -> None:
    assert all(re.fullmatch(r"[A-Z]{3}", code) for code in ISO_4217)
    assert set(ISO_4217.values()) == {0, 2, 3, 4}


@pytest.mark.parametrize(
    ("asset", "amount", "text"),
    [
        (Asset("USD", 2), 12345, "123.45 USD"),
        (Asset("USD", 2), 5, "0.05 USD"),
        (Asset("USD", 2), -5, "-0.05 USD"),
        (Asset("USD", 2), 0, "0.00 USD"),
        (Asset("JPY", 0), 1000, "1000 JPY"),
        (Asset("JPY", 0), -7, "-7 JPY"),
        (Asset("KWD", 3), 1, "0.001 KWD"),
        (Asset("CLF", 4), 123456, "12.3456 CLF"),
        (Asset("USD", 2), 2**63 - 1, "92233720368547758.07 USD"),
        (Asset("USD", 2), AMOUNT_MAX, "3402823669209384634633746074317682114.55 USD"),
        (Asset("ETH", 18), 10**27, "1000000000.000000000000000000 ETH"),
        (Asset("WEI", 18), 10**18 + 1, "1.000000000000000001 WEI"),
    ],
)
def test_money_formats_exactly(asset: Asset, amount: int, text: str) -> None:
    assert asset.format(amount) == text


def test_custom_asset_is_accepted() -> None:
    assert validate_custom_asset("GOLD_OZ", 6) == Asset("GOLD_OZ", 6)
    assert validate_custom_asset("BTC", 8) == Asset("BTC", 8)
    assert validate_custom_asset("PT", 0) == Asset("PT", 0)
    assert validate_custom_asset("A" * 16, 18) == Asset("A" * 16, 18)


@pytest.mark.parametrize(
    ("code", "scale", "error"),
    [
        ("usd_points", 2, "invalid_asset_code"),
        ("A", 2, "invalid_asset_code"),
        ("1ABC", 2, "invalid_asset_code"),
        ("_ABC", 2, "invalid_asset_code"),
        ("A" * 17, 2, "invalid_asset_code"),
        ("AB-C", 2, "invalid_asset_code"),
        (42, 2, "invalid_asset_code"),
        ("USD", 2, "asset_exists"),
        ("JPY", 0, "asset_exists"),
        ("POINTS", -1, "invalid_asset_scale"),
        ("POINTS", 19, "invalid_asset_scale"),
        ("POINTS", True, "invalid_asset_scale"),
        ("POINTS", 2.0, "invalid_asset_scale"),
        ("POINTS", "2", "invalid_asset_scale"),
    ],
)
def test_custom_asset_is_validated(code: object, scale: object, error: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        validate_custom_asset(code, scale)
    assert _code_of(exc) == error


# -- ids -----------------------------------------------------------------------------------


def test_ids_are_prefixed_and_fixed_length() -> None:
    for prefix in ("ldg", "acc", "tr", "evt"):
        value = ids.new_id(prefix)
        assert re.fullmatch(rf"{prefix}_[0-9a-hjkmnp-tv-z]{{26}}", value), value


def test_ids_are_unique_and_sorted_within_a_burst() -> None:
    burst = ids.new_ids("tr", 5_000)
    singles = [ids.new_id("tr") for _ in range(1_000)]
    everything = burst + singles
    assert len(set(everything)) == len(everything)
    assert everything == sorted(everything)


def test_ids_are_time_ordered_across_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A later millisecond sorts after an earlier one, and a clock that steps back does not
    break the order."""
    now_ns = [1_700_000_000_000 * 1_000_000]
    monkeypatch.setattr(ids, "time", SimpleNamespace(time_ns=lambda: now_ns[0]))
    monkeypatch.setattr(ids, "_generator", ids._Generator())
    produced = []
    for step_ms in (0, 1, 1, 250, -500, 0, 3_600_000):
        now_ns[0] += step_ms * 1_000_000
        produced.extend(ids.new_ids("acc", 3))
    assert produced == sorted(produced)
    assert len(set(produced)) == len(produced)
    # The 48-bit time prefix is the millisecond: the last id (an hour later) has a later prefix.
    assert produced[-1][4:14] > produced[0][4:14]


def test_unknown_id_prefix_is_a_bug() -> None:
    with pytest.raises(AssertionError):
        ids.new_id("xyz")


def test_legs_whose_debits_add_up_past_the_maximum_are_refused() -> None:
    big = 2**127
    legs = (
        Leg("a", Direction.DEBIT, big),
        Leg("b", Direction.DEBIT, big),
        Leg("c", Direction.CREDIT, big),
        Leg("d", Direction.CREDIT, big),
    )
    with pytest.raises(InvalidRequest) as refused:
        validate_legs(legs, "legs")
    assert (refused.value.code, refused.value.param) == ("amount_too_large", "legs")


@pytest.mark.parametrize(
    "value", [0, 1, -1, 2**63 - 1, -(2**63 - 1), 2**63, -(2**63), 10**27, 2**128 - 1, -(2**128 - 1)]
)
def test_stored_money_round_trips_and_stays_native_where_it_fits(value: int) -> None:
    stored = to_stored_int(value)
    assert from_stored_int(stored) == value
    assert (type(stored) is int) == (abs(value) <= 2**63 - 1)


@pytest.mark.parametrize(
    "stored",
    [
        1.5,
        "12",
        None,
        b"\x00" * 16,  # the wrong width
        (5).to_bytes(17, "big"),  # a value that fits 64 bits is never stored wide
        (2**130).to_bytes(17, "big"),  # past 128 bits
    ],
)
def test_a_stored_money_value_that_is_not_one_is_refused(stored: object) -> None:
    with pytest.raises(ValueError, match="stored"):
        from_stored_int(stored)


@pytest.mark.parametrize("text", ["١٢", "²", "１２"])
def test_amount_text_refuses_digits_of_other_scripts(text: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_amount_text(text)
    assert _code_of(exc) == "amount_not_integer"


def test_metadata_integers_are_bounded_to_what_every_json_parser_reads_exactly() -> None:
    assert canonical_metadata({"n": 2**53 - 1}) == '{"n":9007199254740991}'
    for value in (2**53, -(2**53), 2**200):
        with pytest.raises(InvalidRequest) as exc:
            canonical_metadata({"n": value})
        assert (exc.value.code, exc.value.param) == ("invalid_metadata", "metadata[n]")
