"""Review of the AML customer view (issue 12): a flood of tiny movements into or out of an
account, or a customer's other account, hides nothing (a full deque folds small movements into
tallies that keep their sums, and keeps the ones typologies judge one by one)."""

from __future__ import annotations

import pytest

from strongroom.compliance.aml.typologies import (
    AccountInfo,
    AmlConfig,
    Detectors,
    Hit,
    Posted,
    Typology,
)

INFO = {
    "a1": AccountInfo("cus_c"),
    "a2": AccountInfo("cus_c"),
    "a3": AccountInfo("cus_c"),
    "cash": AccountInfo(None, None, False),
}
FLOOD = 1_100  # more than either deque holds (512 per account, 1,024 per customer)
assert max(AmlConfig().events_per_account_max, AmlConfig().events_per_customer_max) < FLOOD


def _run(moves: list[tuple[str, str, int]], d: Detectors | None = None) -> list[Hit]:
    """Feed `moves` one second apart."""
    d = d or Detectors(info=lambda a: INFO.get(a, AccountInfo()))
    hits = []
    for i, (debit, credit, amount) in enumerate(moves):
        hits += d.feed(Posted(f"t{i}", (i + 1) * 1_000_000, debit, credit, amount, "USD", "l"))
    return hits


def _structuring(pad: int) -> list[tuple[str, ...]]:
    """Three deposits just under the threshold split over a1 and a2; after the first, `pad`
    payments of one minor unit out of the customer's third account."""
    moves = [("cash", "a1", 900_000)] + [("a3", "friend", 1)] * pad
    moves += [("cash", "a2", 900_000), ("cash", "a2", 900_000)]
    return [h.accounts for h in _run(moves) if h.typology is Typology.STRUCTURING]


def test_structuring_split_over_two_accounts_is_one_customer_hit() -> None:
    assert _structuring(0) == [("a1", "a2")]


def test_tiny_payments_from_a_third_account_do_not_hide_it() -> None:
    assert _structuring(FLOOD) == [("a1", "a2")]


def test_tiny_payments_out_of_the_account_itself_do_not_hide_its_structuring() -> None:
    moves = [("cash", "s", 900_000)] + [("s", "friend", 1)] * FLOOD
    moves += [("cash", "s", 900_000), ("cash", "s", 900_000)]
    hits = [h for h in _run(moves) if h.typology is Typology.STRUCTURING]
    assert [(h.account, h.amount) for h in hits] == [("s", 2_700_000)]


@pytest.mark.parametrize("inbound", [True, False])
def test_tiny_movements_do_not_hide_a_fan(inbound: bool) -> None:
    """Seven counterparties of 30,000 (fan_amount_min 20,000), a flood of one-unit movements
    the other way, then the eighth: the fan still counts eight."""

    def leg(k: int) -> tuple[str, str, int]:
        return (f"p{k}", "mule", 30_000) if inbound else ("mule", f"p{k}", 30_000)

    tiny = ("mule", "friend", 1) if inbound else ("friend", "mule", 1)
    moves = [leg(k) for k in range(7)] + [tiny] * FLOOD + [leg(7)]
    typology = Typology.FAN_IN if inbound else Typology.FAN_OUT
    hits = [h for h in _run(moves) if h.typology is typology]
    assert [(h.account, h.counterparties) for h in hits] == [("mule", 8)]


def test_folded_movements_still_count_in_sums() -> None:
    """1,000 inflows of 600 (600,000 in all), then 600,000 out: rapid movement, though the
    deque holds 512 movements and the sum of the last 512 is under rapid_amount_min."""
    d = Detectors()
    moves = [(f"p{k}", "m", 600) for k in range(1_000)] + [("m", "x", 600_000)]
    hits = [h for h in _run(moves, d) if h.typology is Typology.RAPID_MOVEMENT]
    assert [(h.account, h.amount) for h in hits] == [("m", 600_000)]
    assert d.moves_folded > 0
    assert d.moves_dropped == 0


def test_a_flood_of_kept_movements_drops_the_oldest_and_counts_them() -> None:
    config = AmlConfig(events_per_account_max=8)
    d = Detectors(config)
    _run([("hub", f"x{k}", 30_000) for k in range(20)], d)
    hub = d._accounts["hub"]
    assert len(hub.moves) <= 8
    assert [m.counterparty for m in hub.moves][-1] == "x19"  # the most recent kept
    assert d.moves_dropped > 0
    assert d.moves_folded == 0


def test_a_tally_is_no_deposit_for_structuring() -> None:
    """1,100 payments of 900 within the hour: those folded make one tally of over 850,000, in
    the structuring band; with two real near-threshold deposits it makes no third."""
    d = Detectors()
    moves = [(f"p{k}", "s", 900) for k in range(FLOOD)]
    moves += [("cash", "s", 900_000), ("cash", "s", 900_000)]
    assert [h for h in _run(moves, d) if h.typology is Typology.STRUCTURING] == []
    [tally] = [m.amount for m in d._accounts["s"].moves if m.tally]
    assert 850_000 <= tally < 1_000_000
