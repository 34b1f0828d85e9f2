"""Drift: how far live features and scores have moved from the training data, as a population
stability index (PSI) per feature and for the score. Pure: no I/O; the gate feeds it
(`observe(rows, scores)`) and runtime.py wires its two outputs, a gauge and an alert event.

PSI = sum over bins of (a - e) * ln(a / e), where e is a bin's share of the training data (the
artefact's reference histogram) and a its share of the live rows, each floored at PSI_FLOOR so
that an empty bin counts as rare rather than infinite. Rules of thumb: below 0.1 stable, 0.1 to
0.25 moderate, past 0.25 (STRONGROOM_RISK_DRIFT_PSI's default) a shift worth a look.

Memory is bounded: counts per bin, in two generations of at most `window_rows` rows each (the
PSI is computed over the previous generation and the current one), so the PSI follows the last
one to two windows of traffic rather than everything since the server started. It is computed
every `check_every_rows` rows, once at least `min_rows` are counted. An alert is raised once per
crossing: when a PSI rises past the threshold, and not again until it has fallen below
ALERT_RESET_FRACTION of it (a PSI hovering at the threshold does not alert on every check).
"""

from __future__ import annotations

import itertools
import math
import threading
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

PSI_FLOOR: Final = 1e-4  # a bin's share, floored: an empty bin counts as 1 in 10,000
ALERT_RESET_FRACTION: Final = 0.8  # re-armed once the PSI is below 0.8 x the threshold
DRIFT_WINDOW_ROWS_DEFAULT: Final = 50_000
DRIFT_CHECK_EVERY_ROWS_DEFAULT: Final = 1_000
REFERENCE_BINS_MAX: Final = 1_000  # per feature: the counts stay small
SCORE: Final = "score"  # the reference's key of the score's histogram
assert 0 < ALERT_RESET_FRACTION < 1
assert DRIFT_CHECK_EVERY_ROWS_DEFAULT <= DRIFT_WINDOW_ROWS_DEFAULT


def psi(expected: Sequence[float], actual: Sequence[float], floor: float = PSI_FLOOR) -> float:
    """The population stability index of `actual` against `expected`, two distributions over
    the same bins (shares or counts: each is normalised to sum to 1 first)."""
    assert len(expected) == len(actual)
    assert len(expected) >= 1
    assert floor > 0
    e_total, a_total = math.fsum(expected), math.fsum(actual)
    assert e_total > 0, "an empty distribution has no PSI"
    assert a_total > 0, "an empty distribution has no PSI"
    total = 0.0
    for e_raw, a_raw in zip(expected, actual, strict=True):
        e = max(e_raw / e_total, floor)
        a = max(a_raw / a_total, floor)
        total += (a - e) * math.log(a / e)
    return total


@dataclass(frozen=True, slots=True)
class Histogram:
    """A reference histogram: `cuts` are the inner bin edges, ascending (bin i holds the values
    x with cuts[i-1] <= x < cuts[i]; below the first cut, bin 0; from the last on, the last bin),
    `shares` each bin's share of the training data."""

    cuts: tuple[float, ...]
    shares: tuple[float, ...]

    @classmethod
    def of(cls, edges: Sequence[float], proportions: Sequence[float]) -> Histogram:
        """From an artefact's (edges, proportions): either every edge, outer ones included
        (len(edges) == bins + 1, as numpy.histogram gives them), or the inner cuts only
        (len(edges) == bins - 1). Outer edges only bound the training data: a live value past
        them counts in the first or last bin. ValueError when malformed."""
        bins = len(proportions)
        if not 1 <= bins <= REFERENCE_BINS_MAX:
            raise ValueError(f"a histogram has 1 to {REFERENCE_BINS_MAX} bins, not {bins}")
        values = [float(x) for x in edges]
        if len(values) == bins + 1:
            cuts = values[1:-1]
            if bins >= 1 and not values[0] <= values[-1]:
                raise ValueError("the outer edges are not in order")
        elif len(values) == bins - 1:
            cuts = values
        else:
            raise ValueError(f"{len(values)} edges do not bound {bins} bins")
        if any(not math.isfinite(x) for x in cuts):
            raise ValueError("a bin edge is not a finite number")
        if any(b < a for a, b in itertools.pairwise(cuts)):
            raise ValueError("the bin edges are not ascending")
        shares = [float(p) for p in proportions]
        if any(not math.isfinite(p) or p < 0 for p in shares):
            raise ValueError("a bin's proportion is negative or not a number")
        total = math.fsum(shares)
        if not 0.99 <= total <= 1.01:
            raise ValueError(f"the proportions sum to {total:.4f}, not 1")
        return cls(tuple(cuts), tuple(p / total for p in shares))

    def bin_of(self, value: float) -> int:
        return bisect_right(self.cuts, value)

    @property
    def bins(self) -> int:
        return len(self.shares)


Reference = Mapping[str, tuple[Sequence[float], Sequence[float]]]


def histograms(reference: Reference) -> dict[str, Histogram]:
    """An artefact's reference histograms, checked (ValueError naming the feature)."""
    out = {}
    for name, pair in reference.items():
        try:
            edges, proportions = pair
            out[str(name)] = Histogram.of(edges, proportions)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"reference histogram {name!r}: {exc}") from None
    return out


@dataclass(frozen=True, slots=True)
class DriftAlert:
    """A PSI that crossed the threshold (the event `risk.drift_detected`: names, no values of
    any payment)."""

    feature: str  # a feature's name, or SCORE
    psi: float
    threshold: float
    rows: int  # live rows the PSI was computed over


class DriftMonitor:
    """Bins live feature values and scores into the reference's bins and computes their PSI
    against it. Thread-safe (one lock around the counts; the outputs are called outside it).
    `on_psi(feature, psi)` is given every PSI at each check (the gauge); `on_alert(alert)` each
    crossing of `threshold` (the event). A value that is not a finite number (a missing
    feature) is not counted."""

    def __init__(
        self,
        reference: Reference,
        *,
        threshold: float,
        min_rows: int,
        on_psi: Callable[[str, float], object] | None = None,
        on_alert: Callable[[DriftAlert], object] | None = None,
        window_rows: int = DRIFT_WINDOW_ROWS_DEFAULT,
        check_every_rows: int = DRIFT_CHECK_EVERY_ROWS_DEFAULT,
        score_key: str = SCORE,
    ) -> None:
        assert threshold > 0
        assert min_rows >= 1
        assert window_rows >= 1
        assert check_every_rows >= 1
        self.threshold = threshold
        self.min_rows = min_rows
        self.window_rows = window_rows
        self.check_every_rows = check_every_rows
        self.score_key = score_key
        self._hist = histograms(reference)
        self._on_psi = on_psi
        self._on_alert = on_alert
        self._lock = threading.Lock()
        names = list(self._hist)
        self._names = names
        # Two generations of counts per histogram: the previous full window and the current.
        self._previous = {n: [0] * self._hist[n].bins for n in names}
        self._current = {n: [0] * self._hist[n].bins for n in names}
        self._previous_rows = 0
        self._current_rows = 0
        self._since_check = 0
        self._alerted: set[str] = set()
        self._last: dict[str, float] = {}

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self._names)

    def observe(
        self, rows: Sequence[Mapping[str, float]], scores: Sequence[float] | None = None
    ) -> list[DriftAlert]:
        """Count a batch of feature rows (and their scores, in order), and check when due.
        The alerts raised by this call are returned too (and given to `on_alert`)."""
        assert scores is None or len(scores) == len(rows)
        if not rows:
            return []
        due = False
        with self._lock:
            for index, row in enumerate(rows):
                if self._current_rows >= self.window_rows:
                    self._previous, self._previous_rows = self._current, self._current_rows
                    self._current = {n: [0] * self._hist[n].bins for n in self._names}
                    self._current_rows = 0
                self._current_rows += 1
                for name, counts in self._current.items():
                    if name == self.score_key and scores is not None:
                        value = scores[index]
                    else:
                        found = row.get(name)
                        if found is None:
                            continue
                        value = found
                    if math.isfinite(value):
                        counts[self._hist[name].bin_of(value)] += 1
            self._since_check += len(rows)
            if self._since_check >= self.check_every_rows:
                self._since_check = 0
                due = True
        return self.check() if due else []

    def psi_now(self) -> dict[str, float]:
        """Each histogram's PSI over the counted rows (those with at least one counted value),
        none before `min_rows` rows are counted."""
        with self._lock:
            if self._previous_rows + self._current_rows < self.min_rows:
                return {}
            out = {}
            for name in self._names:
                counts = [
                    a + b for a, b in zip(self._previous[name], self._current[name], strict=True)
                ]
                if sum(counts) >= self.min_rows:
                    out[name] = psi(self._hist[name].shares, counts)
            return out

    def check(self) -> list[DriftAlert]:
        """Compute every PSI now, report them, and alert on each new crossing."""
        values = self.psi_now()
        rows = self._previous_rows + self._current_rows
        alerts = []
        with self._lock:
            self._last = dict(values)
            for name, value in values.items():
                if value > self.threshold and name not in self._alerted:
                    self._alerted.add(name)
                    alerts.append(DriftAlert(name, value, self.threshold, rows))
                elif value < self.threshold * ALERT_RESET_FRACTION:
                    self._alerted.discard(name)
        if self._on_psi is not None:
            for name, value in values.items():
                self._on_psi(name, value)
        if self._on_alert is not None:
            for alert in alerts:
                self._on_alert(alert)
        return alerts

    @property
    def last(self) -> dict[str, float]:
        """The PSIs of the last check."""
        with self._lock:
            return dict(self._last)
