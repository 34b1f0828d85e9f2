"""A transfer of several debit and several credit legs becomes flows from each debited account
to each credited one, pro rata, in integers: what each account sent and received sums exactly
to its leg, every flow within one minor unit of its exact share (the AML monitor feeds them to
the detectors: compliance/aml/monitor.py)."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from strongroom.compliance.aml.monitor import flows, movements
from strongroom.ledger.model import Action, Status

T0 = 1_767_225_600 * 1_000_000


def _legs_row(legs: list[tuple[str, int, int]]) -> tuple[Any, ...]:
    return (1, "tr_1", "ldg_1", Action.TRANSFER, Status.POSTED, None, None, 1,
            json.dumps(legs), None, False, 0, None, None, T0, None)  # fmt: skip


@st.composite
def balanced(draw: st.DrawFn) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    debits = draw(st.lists(st.integers(1, 10**12), min_size=1, max_size=32))
    total = sum(debits)
    n = draw(st.integers(1, 32))
    cuts = sorted(draw(st.lists(st.integers(0, total), min_size=n - 1, max_size=n - 1)))
    credits = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    return (
        [(f"d{i}", a) for i, a in enumerate(debits)],
        [(f"c{j}", a) for j, a in enumerate(credits) if a > 0] or [("c0", total)],
    )


@given(balanced())
def test_flows_sum_exactly_to_every_leg_and_stay_within_a_unit_of_pro_rata(
    sides: tuple[list[tuple[str, int]], list[tuple[str, int]]],
) -> None:
    debits, credits = sides
    out = flows(debits, credits)
    total = sum(a for _, a in debits)
    sent = {d: 0 for d, _ in debits}
    received = {c: 0 for c, _ in credits}
    for src, dst, amount in out:
        assert amount > 0
        sent[src] += amount
        received[dst] += amount
        exact = Fraction(dict(debits)[src] * dict(credits)[dst], total)
        assert abs(amount - exact) < 1
    assert sent == dict(debits)
    assert received == dict(credits)


def test_two_by_two_is_shared_pro_rata_and_rounded_exactly() -> None:
    assert flows([("a", 1), ("b", 2)], [("x", 2), ("y", 1)]) in (
        [("a", "x", 1), ("b", "x", 1), ("b", "y", 1)],
        [("a", "y", 1), ("b", "x", 2)],
    )
    assert flows([("a", 600), ("b", 400)], [("x", 500), ("y", 500)]) == [
        ("a", "x", 300), ("a", "y", 300), ("b", "x", 200), ("b", "y", 200),
    ]  # fmt: skip
    assert flows([("a", 5)], [("x", 4)]) == []  # unbalanced: never a posted transfer


def test_movements_split_each_asset_apart_and_merge_an_account_named_twice() -> None:
    assets = {"usd_a": "USD", "usd_b": "USD", "usd_x": "USD", "usd_y": "USD",
              "eur_a": "EUR", "eur_x": "EUR"}  # fmt: skip
    legs = [("usd_a", 0, 300), ("usd_b", 0, 100), ("usd_a", 0, 100), ("usd_x", 1, 250),
            ("usd_y", 1, 250), ("eur_a", 0, 70), ("eur_x", 1, 70)]  # fmt: skip
    got = movements(_legs_row(legs), assets.__getitem__)
    assert sorted(got) == [
        ("eur_a", "eur_x", 70, "EUR"),
        ("usd_a", "usd_x", 200, "USD"),
        ("usd_a", "usd_y", 200, "USD"),
        ("usd_b", "usd_x", 50, "USD"),
        ("usd_b", "usd_y", 50, "USD"),
    ]
    # An account on both sides pays itself nothing: only what went elsewhere is a flow.
    both = [("a", 0, 100), ("b", 0, 100), ("a", 1, 100), ("c", 1, 100)]
    assert sorted(movements(_legs_row(both), lambda _a: "USD")) == [
        ("a", "c", 50, "USD"),
        ("b", "a", 50, "USD"),
        ("b", "c", 50, "USD"),
    ]
