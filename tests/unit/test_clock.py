"""Timestamps as the API writes them (core.clock.format_us): RFC 3339 in UTC with a Z, the
microseconds when there are any, exactly as datetime.isoformat writes the same instant."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from strongroom.core.clock import format_us, parse_timestamp


def _isoformat(us: int) -> str:
    seconds, micro = divmod(us, 1_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=micro)
    return moment.isoformat().replace("+00:00", "Z")


def test_format_us_writes_what_isoformat_writes() -> None:
    rng = random.Random(7)
    end = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
    values = [0, 1, 999_999, 1_000_000, end, 1_767_225_600_000_000]
    values += [rng.randrange(0, end + 1) for _ in range(20_000)]
    # Within one second and across its edges, in both orders (the second's text is cached).
    base = 1_767_225_600_000_000
    values += [base + k for k in range(-3_000, 3_000_000, 997)]
    values += [base - k for k in range(0, 3_000_000, 991)]
    for us in values:
        assert format_us(us) == _isoformat(us), us


def test_examples_and_a_round_trip() -> None:
    assert format_us(1_767_225_600_000_000) == "2026-01-01T00:00:00Z"
    assert format_us(1_767_225_600_000_250) == "2026-01-01T00:00:00.000250Z"
    assert format_us(0) == "1970-01-01T00:00:00Z"
    for us in (0, 1, 1_767_225_600_123_456, 253_402_300_799_000_000):
        assert parse_timestamp(format_us(us)) == us
