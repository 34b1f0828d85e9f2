"""KYC's pure model: the rolling windows' buckets, the caps' order, the tier table's parsing."""

from __future__ import annotations

import pytest

from strongroom.compliance.kyc.model import (
    ANY_ASSET,
    BUCKET_US,
    DEFAULT_TABLE,
    DEFAULT_TIERS,
    Caps,
    Window,
    bucket_of,
    over_cap,
    parse_tiers,
    window_sums,
)

HOUR = BUCKET_US
NOW = 1_800_000_000_000_000 + 1_234_567  # inside an hour, not at its start


def test_an_amount_counts_for_at_least_the_window_and_at_most_an_hour_more() -> None:
    posted = bucket_of(NOW)
    buckets = {posted: 100}
    # Still counted 24 hours later (and up to 25), gone after 25.
    assert window_sums(buckets, NOW + 24 * HOUR) == (100, 100)
    assert window_sums(buckets, NOW + 24 * HOUR + (HOUR - 1 - NOW % HOUR)) == (100, 100)
    assert window_sums(buckets, (posted + 25) * HOUR) == (0, 100)
    # The 30-day window likewise: 720 hours on, still there; 721 full hours after, gone.
    assert window_sums(buckets, NOW + 720 * HOUR) == (0, 100)
    assert window_sums(buckets, (posted + 721) * HOUR) == (0, 0)


def test_window_sums_add_every_bucket_of_the_window_exactly() -> None:
    hour = bucket_of(NOW)
    big = 2**127  # past 64 bits: sums are exact integers
    buckets = {hour: big, hour - 3: 5, hour - 30: 7, hour - 800: 11}
    assert window_sums(buckets, NOW) == (big + 5, big + 12)


def test_the_first_cap_crossed_is_reported_per_transfer_then_daily_then_monthly() -> None:
    caps = Caps(per_transfer=100, daily=250, monthly=1_000)
    assert over_cap(caps, 100, 150, 900) is None  # exactly at each cap passes
    assert over_cap(caps, 101, 0, 0) == (Window.PER_TRANSFER, 100)
    assert over_cap(caps, 100, 151, 0) == (Window.DAILY, 250)
    assert over_cap(caps, 100, 0, 901) == (Window.MONTHLY, 1_000)
    assert over_cap(Caps(None, None, None), 10**30, 10**30, 10**30) is None
    assert over_cap(None, 1, 0, 0) == (Window.PER_TRANSFER, 0)  # an asset with no caps


def test_a_tenant_table_replaces_the_defaults_for_that_tenant_only() -> None:
    table = parse_tiers(
        '{"tenants": {"ten_a": {"gold": {"EUR": {"per_transfer": 5, "daily": null}}}}}'
    )
    assert table.tiers == DEFAULT_TIERS
    assert table.caps("ten_a", "gold", "EUR") == Caps(5, None, None)
    assert table.caps("ten_a", "gold", "USD") is None  # not named, no "*": refused
    assert table.caps("ten_a", "basic", "EUR") == Caps(0, 0, 0)  # not this tenant's tier
    assert table.caps("ten_b", "basic", "EUR") == DEFAULT_TIERS["basic"][ANY_ASSET]
    assert DEFAULT_TABLE.caps("ten_b", "basic", "JPY") == DEFAULT_TIERS["basic"][ANY_ASSET]


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"other": {}}',
        '{"default": {}}',
        '{"default": {"t": {"EUR": {"daily": 1.5}}}}',
        '{"default": {"t": {"EUR": {"daily": -1}}}}',
        '{"default": {"t": {"EUR": {"weekly": 1}}}}',
        '{"tenants": []}',
    ],
)
def test_a_malformed_tier_table_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"object|amount|per_transfer"):
        parse_tiers(text)
