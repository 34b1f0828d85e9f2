"""Drift (risk/drift.py): the population stability index against hand-computed values, the
reference histograms' two edge layouts, and the monitor: binning, the minimum rows, and an
alert once per crossing of the threshold, not once per batch."""

from __future__ import annotations

import math
import threading

import pytest

from strongroom.risk.drift import (
    PSI_FLOOR,
    SCORE,
    DriftAlert,
    DriftMonitor,
    Histogram,
    histograms,
    psi,
)


def test_psi_of_identical_distributions_is_zero() -> None:
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    assert psi([0.2, 0.3, 0.5], [20, 30, 50]) == pytest.approx(0.0, abs=1e-15)  # counts


def test_psi_matches_hand_computed_values() -> None:
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    # = 0.25 x 0.693147 + 0.25 x 0.405465 = 0.274653
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.274653, abs=1e-6)
    # Ten bins of 0.1 each against 0.05 x 5 and 0.15 x 5:
    # 5 x (-0.05) ln(0.5) + 5 x 0.05 ln(1.5) = 0.173287 + 0.101366 = 0.274653
    assert psi([0.1] * 10, [0.05] * 5 + [0.15] * 5) == pytest.approx(0.274653, abs=1e-6)
    # (0.1 - 0.4) ln(0.25) + (0.3 - 0.3) ln(1) + (0.6 - 0.3) ln(2)
    # = 0.415888 + 0 + 0.207944 = 0.623832
    assert psi([0.4, 0.3, 0.3], [0.1, 0.3, 0.6]) == pytest.approx(0.623832, abs=1e-6)


def test_an_empty_bin_is_floored_not_infinite() -> None:
    # The empty live bin counts as 1e-4: (1 - 0.5) ln(2) + (1e-4 - 0.5) ln(1e-4 / 0.5)
    # = 0.346574 + 4.257745 = 4.604319
    assert PSI_FLOOR == 1e-4
    assert psi([0.5, 0.5], [10, 0]) == pytest.approx(4.604319, abs=1e-6)
    assert math.isfinite(psi([1.0, 0.0], [0.0, 1.0]))


def test_histograms_take_numpy_edges_or_inner_cuts() -> None:
    full = Histogram.of([0.0, 1.0, 2.0, 3.0], [0.2, 0.3, 0.5])
    cuts = Histogram.of([1.0, 2.0], [0.2, 0.3, 0.5])
    assert full == cuts
    assert full.cuts == (1.0, 2.0)
    # [0, 1) -> 0, [1, 2) -> 1, [2, ...) -> 2; past the outer edges: the outer bins.
    assert [full.bin_of(x) for x in (-5.0, 0.0, 0.999, 1.0, 1.5, 2.0, 3.0, 99.0)] == [
        0, 0, 0, 1, 1, 2, 2, 2,
    ]  # fmt: skip
    infinite = Histogram.of([-math.inf, 0.5, math.inf], [0.5, 0.5])
    assert infinite.cuts == (0.5,)


@pytest.mark.parametrize(
    ("edges", "proportions", "says"),
    [
        ([0.0], [0.2, 0.3, 0.5], "do not bound"),
        ([0.0, 2.0, 1.0, 3.0], [0.2, 0.3, 0.5], "not ascending"),
        ([0.0, 1.0, 2.0, 3.0], [0.2, 0.3, 0.1], "sum to"),
        ([0.0, 1.0, 2.0, 3.0], [0.2, -0.3, 1.1], "negative"),
        ([0.0, math.nan, 2.0, 3.0], [0.2, 0.3, 0.5], "finite"),
        ([], [], "bins"),
    ],
)
def test_malformed_histograms_are_refused(
    edges: list[float], proportions: list[float], says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        histograms({"amount": (edges, proportions)})


REFERENCE = {
    "amount": ([0.0, 10.0, 20.0, 30.0, 40.0], [0.25, 0.25, 0.25, 0.25]),
    SCORE: ([0.0, 0.5, 1.0], [0.9, 0.1]),
}


def _rows(values: list[float]) -> list[dict[str, float]]:
    return [{"amount": v, "unrelated": 1.0} for v in values]


def test_the_monitor_bins_live_values_and_waits_for_min_rows() -> None:
    seen: list[tuple[str, float]] = []
    monitor = DriftMonitor(
        REFERENCE, threshold=0.25, min_rows=8, check_every_rows=4,
        on_psi=lambda name, value: seen.append((name, value)),
    )  # fmt: skip
    monitor.observe(_rows([5.0, 15.0, 25.0, 35.0]), [0.1, 0.1, 0.1, 0.9])
    assert seen == []  # 4 rows < min_rows: no judgement yet
    assert monitor.psi_now() == {}
    monitor.observe(_rows([5.0, 15.0, 25.0, 35.0]), [0.1, 0.1, 0.1, 0.9])
    values = dict(seen)
    assert values["amount"] == pytest.approx(0.0, abs=1e-12)  # a quarter in each bin
    # 6 of 8 scores below 0.5 against 9 in 10: (0.75-0.9) ln(0.75/0.9) + (0.25-0.1) ln(2.5)
    assert values[SCORE] == pytest.approx(
        (0.75 - 0.9) * math.log(0.75 / 0.9) + (0.25 - 0.1) * math.log(2.5), abs=1e-12
    )
    assert monitor.last == values
    # A missing or non-finite value is not counted.
    monitor.observe([{"amount": math.nan}, {}], [0.1, 0.1])
    assert monitor.psi_now()["amount"] == pytest.approx(0.0, abs=1e-12)


def test_an_alert_fires_once_per_crossing() -> None:
    alerts: list[DriftAlert] = []
    monitor = DriftMonitor(
        REFERENCE, threshold=0.25, min_rows=100, check_every_rows=50, window_rows=400,
        on_alert=alerts.append,
    )  # fmt: skip
    matching = _rows([5.0, 15.0, 25.0, 35.0] * 25)  # 100 rows, as the reference
    shifted = _rows([35.0] * 100)  # everything in the top bin
    low_scores = [0.1] * 90 + [0.9] * 10
    monitor.observe(matching, low_scores)
    monitor.observe(matching, low_scores)
    assert alerts == []
    for _ in range(6):  # past the threshold at every check from the first shifted batch on
        monitor.observe(shifted, low_scores)
    assert [a.feature for a in alerts] == ["amount"]
    assert alerts[0].psi > 0.25
    assert alerts[0].threshold == 0.25
    # Back to the reference's shape (two windows of it), the alert is re-armed...
    for _ in range(8):
        monitor.observe(matching, low_scores)
    assert monitor.last["amount"] < 0.25 * 0.8
    assert len(alerts) == 1
    # ... and a new shift alerts again, once.
    for _ in range(6):
        monitor.observe(shifted, low_scores)
    assert [a.feature for a in alerts] == ["amount", "amount"]


def test_memory_is_a_count_per_bin_over_two_windows() -> None:
    monitor = DriftMonitor(REFERENCE, threshold=0.25, min_rows=1, window_rows=100)
    for _ in range(50):
        monitor.observe(_rows([35.0] * 100), [0.9] * 100)
    # Only the last two windows count: 200 rows, whatever was seen before.
    assert sum(monitor._previous["amount"]) + sum(monitor._current["amount"]) == 200


def test_the_monitor_counts_every_row_from_many_threads() -> None:
    monitor = DriftMonitor(REFERENCE, threshold=0.25, min_rows=1, window_rows=1_000_000)
    batch = _rows([5.0, 15.0, 25.0, 35.0] * 25)

    def feed() -> None:
        for _ in range(20):
            monitor.observe(batch, [0.1] * 100)

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert monitor._current["amount"] == [2_000] * 4
    assert sum(monitor._current[SCORE]) == 8_000


def test_the_psi_gauge_is_labelled_by_tenant_and_feature() -> None:
    from strongroom.metrics import Metrics

    metrics = Metrics()
    monitor = DriftMonitor(
        REFERENCE, threshold=0.25, min_rows=4, check_every_rows=4,
        on_psi=lambda feature, value: metrics.observe_psi("ten_a", feature, value),
    )  # fmt: skip
    monitor.observe(_rows([35.0] * 4), [0.1, 0.1, 0.1, 0.1])
    body = metrics.exposition()[0].decode()
    amount = psi([0.25] * 4, [0, 0, 0, 4])
    assert f'strongroom_risk_psi{{feature="amount",tenant="ten_a"}} {amount}' in body
    assert 'strongroom_risk_psi{feature="score",tenant="ten_a"}' in body
