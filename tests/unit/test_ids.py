"""Ids: prefixed, 26 Crockford base32 characters, time-ordered, unique; a block of ids
(new_ids) is the same as the ids one by one would be, whatever the block straddles."""

from __future__ import annotations

import pytest

from strongroom.core import ids


def test_ids_are_prefixed_sorted_and_unique() -> None:
    block = ids.new_ids("tr", 5_000)
    singles = [ids.new_id("tr") for _ in range(100)]
    everything = block + singles
    assert len(set(everything)) == len(everything)
    assert everything == sorted(everything)
    assert all(len(x) == 29 and x.startswith("tr_") for x in everything)
    with pytest.raises(AssertionError):
        ids.new_id("nope")


@pytest.mark.parametrize("low", [0, 5, 0xFFFFF - 3, 0xFFFFF])
def test_a_block_encodes_as_each_value_alone(low: int, monkeypatch: pytest.MonkeyPatch) -> None:
    first = (1_795_000_000_000 << 80) | (0x1234_5678_9ABC << 20) | low
    monkeypatch.setattr(ids._generator, "next_values", lambda count: first)
    block = ids.new_ids("acc", 8)
    assert block == [f"acc_{ids._encode(first + i)}" for i in range(8)]
