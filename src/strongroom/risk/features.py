"""The feature engine: velocity, spending-behaviour and payee-risk features of payments, computed
by ONE incremental code path online (the gate: a batch of new payments) and offline (replaying a
time-ordered history for training), so training and serving cannot skew (docs/risk-features.md).

Each entity (customer, payee, device, IP) keeps a time-ordered track of its recent payments with
running (prefix) sums, so a window aggregate is two binary searches and two subtractions. Windows
are right-closed, `(t - w, t]`, and include the payment being scored, as the Fraud Detection
Handbook's pandas time-based rolling windows do. Payee risk uses a label delay: the window
`(t - delay - w, t - delay]`, risk = frauds / payments (0 when none).

Memory is bounded: events older than the longest window plus the label delay are dropped (a sweep
every `SWEEP_INTERVAL_S` of event time), and each entity keeps at most `ENTITY_EVENTS_MAX` events.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from strongroom.risk.model import PaymentEvent

# --- bounds and windows -------------------------------------------------------------------------

DAY_S: Final = 86_400
HOUR_S: Final = 3_600
HANDBOOK_WINDOWS_DAYS: Final = (1, 7, 30)
LABEL_DELAY_DAYS: Final = 7  # labels (chargebacks) of the last 7 days are not trusted yet
VELOCITY_WINDOWS: Final = (("1h", HOUR_S), ("1d", DAY_S), ("7d", 7 * DAY_S), ("30d", 30 * DAY_S))
HISTORY_WINDOW_S: Final = 30 * DAY_S  # the customer's own history for amount_to_mean / zscore
# Events older than the longest window plus the label delay can never be read again.
RETENTION_S: Final = max(w for w in HANDBOOK_WINDOWS_DAYS) * DAY_S + LABEL_DELAY_DAYS * DAY_S
SWEEP_INTERVAL_S: Final = DAY_S  # event time between two sweeps of expired events
# Per entity: a hotter one (a big merchant) keeps only its latest events, so its 30-day counts
# saturate there; raise it where such payees matter more than the memory.
ENTITY_EVENTS_MAX: Final = 50_000
_REPLAY_BLOCK_ROWS: Final = 4_096  # rows copied into the replay's array at once
ZSCORE_VARIANCE_FLOOR: Final = 1.0  # squared major units: keeps the z-score finite on flat history
# A payment's amount as the windows hold it, in major units: at most this. The windows are
# prefix sums of floats, so one payment of 1e30 would cancel every later window's sum to 0 for
# as long as it is retained (amount rules silenced for 37 days); at this bound, 50,000 events'
# sums stay exact to about 0.01. The `amount` feature itself is clipped the same way.
FEATURE_AMOUNT_MAX: Final = 1e9
assert max(w for _, w in VELOCITY_WINDOWS) <= RETENTION_S
assert HISTORY_WINDOW_S <= RETENTION_S
assert SWEEP_INTERVAL_S <= RETENTION_S

# --- feature names ------------------------------------------------------------------------------

AMOUNT: Final = "amount"
DURING_WEEKEND: Final = "during_weekend"  # Saturday or Sunday, UTC
DURING_NIGHT: Final = "during_night"  # hour <= 6, UTC (the handbook's definition)
CUSTOMER_NB_TX_1D: Final = "customer_nb_tx_1d"
CUSTOMER_AVG_AMOUNT_1D: Final = "customer_avg_amount_1d"
CUSTOMER_NB_TX_7D: Final = "customer_nb_tx_7d"
CUSTOMER_AVG_AMOUNT_7D: Final = "customer_avg_amount_7d"
CUSTOMER_NB_TX_30D: Final = "customer_nb_tx_30d"
CUSTOMER_AVG_AMOUNT_30D: Final = "customer_avg_amount_30d"
PAYEE_NB_TX_1D: Final = "payee_nb_tx_1d"
PAYEE_RISK_1D: Final = "payee_risk_1d"
PAYEE_NB_TX_7D: Final = "payee_nb_tx_7d"
PAYEE_RISK_7D: Final = "payee_risk_7d"
PAYEE_NB_TX_30D: Final = "payee_nb_tx_30d"
PAYEE_RISK_30D: Final = "payee_risk_30d"
AMOUNT_TO_MEAN_30D: Final = "amount_to_mean_30d"
AMOUNT_ZSCORE_30D: Final = "amount_zscore_30d"
NEW_PAYEE: Final = "new_payee"
CHANNEL_CODE: Final = "channel_code"

# The handbook's 15 input features, in its order (TX_AMOUNT, TX_DURING_WEEKEND, ...).
HANDBOOK_FEATURES: Final = (
    AMOUNT,
    DURING_WEEKEND,
    DURING_NIGHT,
    CUSTOMER_NB_TX_1D,
    CUSTOMER_AVG_AMOUNT_1D,
    CUSTOMER_NB_TX_7D,
    CUSTOMER_AVG_AMOUNT_7D,
    CUSTOMER_NB_TX_30D,
    CUSTOMER_AVG_AMOUNT_30D,
    PAYEE_NB_TX_1D,
    PAYEE_RISK_1D,
    PAYEE_NB_TX_7D,
    PAYEE_RISK_7D,
    PAYEE_NB_TX_30D,
    PAYEE_RISK_30D,
)

ENTITY_KINDS: Final = ("customer", "payee", "device", "ip")


def velocity_name(kind: str, aggregate: str, window: str) -> str:
    """`customer_count_1h`, `ip_sum_30d`, ...: the velocity features' names."""
    assert kind in ENTITY_KINDS
    assert aggregate in ("count", "sum")
    return f"{kind}_{aggregate}_{window}"


VELOCITY_FEATURES: Final = tuple(
    velocity_name(kind, aggregate, window)
    for kind in ENTITY_KINDS
    for window, _ in VELOCITY_WINDOWS
    for aggregate in ("count", "sum")
)
EXTRA_FEATURES: Final = (
    *VELOCITY_FEATURES,
    AMOUNT_TO_MEAN_30D,
    AMOUNT_ZSCORE_30D,
    NEW_PAYEE,
    CHANNEL_CODE,
)
ALL_FEATURES: Final = (*HANDBOOK_FEATURES, *EXTRA_FEATURES)
assert len(set(ALL_FEATURES)) == len(ALL_FEATURES)

# channel_code is categorical (LightGBM: categorical_feature): 0 unknown, 1.. known, last other.
CHANNELS: Final = ("card_present", "card_not_present", "bank_transfer", "wallet")
CHANNEL_OTHER_CODE: Final = len(CHANNELS) + 1
_CHANNEL_CODES: Final = {name: float(code) for code, name in enumerate(CHANNELS, start=1)}

_HANDBOOK_WINDOWS_S: Final = tuple(days * DAY_S for days in HANDBOOK_WINDOWS_DAYS)
_DELAY_S: Final = LABEL_DELAY_DAYS * DAY_S
_VELOCITY_WINDOWS_S: Final = tuple(w for _, w in VELOCITY_WINDOWS)
_HANDBOOK_IN_VELOCITY: Final = tuple(_VELOCITY_WINDOWS_S.index(w) for w in _HANDBOOK_WINDOWS_S)
_HISTORY_IN_VELOCITY: Final = _VELOCITY_WINDOWS_S.index(HISTORY_WINDOW_S)
_NO_VELOCITY: Final = (0.0,) * (2 * len(VELOCITY_WINDOWS))
_NO_PAYEE_RISK: Final = (0.0,) * (2 * len(HANDBOOK_WINDOWS_DAYS))
_CHANNEL_OTHER: Final = float(CHANNEL_OTHER_CODE)


class _Track:
    """One entity's payments in time order, with prefix sums: `cum_x[j]` is the sum of the first
    j events' x, so a window's sum is `cum_x[hi] - cum_x[lo]`."""

    __slots__ = ("amounts", "cum_amount", "cum_fraud", "cum_square", "frauds", "ids", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.amounts: list[float] = []
        self.frauds: list[int] = []
        self.ids: list[str] = []
        self.cum_amount: list[float] = [0.0]
        self.cum_square: list[float] = [0.0]
        self.cum_fraud: list[int] = [0]

    def add(self, at_s: float, amount: float, fraud: int, event_id: str) -> int:
        """Insert an event after any of the same time; its index."""
        times = self.times
        if not times or at_s >= times[-1]:
            times.append(at_s)
            self.amounts.append(amount)
            self.frauds.append(fraud)
            self.ids.append(event_id)
            self.cum_amount.append(self.cum_amount[-1] + amount)
            self.cum_square.append(self.cum_square[-1] + amount * amount)
            self.cum_fraud.append(self.cum_fraud[-1] + fraud)
            return len(times) - 1
        index = bisect_right(times, at_s)  # an event from the past (a late or skewed clock)
        times.insert(index, at_s)
        self.amounts.insert(index, amount)
        self.frauds.insert(index, fraud)
        self.ids.insert(index, event_id)
        self.cum_amount.append(0.0)
        self.cum_square.append(0.0)
        self.cum_fraud.append(0)
        self._rebuild(index)
        return index

    def remove(self, index: int) -> None:
        """Undo `add` (the latest add first)."""
        last = len(self.times) - 1
        for column in (self.times, self.amounts, self.frauds, self.ids):
            del column[index]
        for cumulative in (self.cum_amount, self.cum_square, self.cum_fraud):
            cumulative.pop()
        if index != last:
            self._rebuild(index)

    def set_fraud(self, at_s: float, event_id: str, fraud: int) -> bool:
        times = self.times
        index = bisect_left(times, at_s)
        while index < len(times) and times[index] == at_s:
            if self.ids[index] == event_id:
                if self.frauds[index] != fraud:
                    self.frauds[index] = fraud
                    self._rebuild(index)
                return True
            index += 1
        return False

    def trim(self, before_s: float, keep_max: int) -> None:
        """Drop events at or before `before_s`, and the oldest beyond `keep_max`."""
        drop = max(bisect_right(self.times, before_s), len(self.times) - keep_max)
        if drop <= 0:
            return
        for column in (self.times, self.amounts, self.frauds, self.ids):
            del column[:drop]
        # Fresh sums from the kept events, so the prefix sums never grow without bound.
        self.cum_amount = [0.0]
        self.cum_square = [0.0]
        self.cum_fraud = [0]
        self._rebuild(0)

    def _rebuild(self, start: int) -> None:
        cum_amount, cum_square, cum_fraud = self.cum_amount, self.cum_square, self.cum_fraud
        del cum_amount[start + 1 :], cum_square[start + 1 :], cum_fraud[start + 1 :]
        total, squares, frauds = cum_amount[start], cum_square[start], cum_fraud[start]
        for amount, fraud in zip(self.amounts[start:], self.frauds[start:], strict=True):
            total += amount
            squares += amount * amount
            frauds += fraud
            cum_amount.append(total)
            cum_square.append(squares)
            cum_fraud.append(frauds)


# An undo record of a tentative push: the tracks and indices added, and a pair's previous state.
# `added` holds (kind, key, track, index); a track the push created has index 0 and one event.
_Added = tuple[int, str, _Track, int]
_Undo = tuple[list[_Added], tuple[str, str] | None, tuple[float, float] | None]


class FeatureEngine:
    """Implements risk.model.FeatureSource. Thread-safe: one lock around every call.

    - `features(events)`: the gate's call. Each event is pushed into the windows, its features
      computed, and all pushes undone at the end, so a payment that is then refused leaves no
      trace; `observe` adds it once posted.
    - `replay(events)`: offline, a time-ordered history: the same push and compute per event,
      kept (observed) instead of undone. Both go through `_push` and `_compute` only.
    """

    names: tuple[str, ...] = ALL_FEATURES

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tracks: tuple[dict[str, _Track], ...] = tuple({} for _ in ENTITY_KINDS)
        # (customer, payee) -> (first, last) time paid, for new_payee.
        self._pairs: dict[tuple[str, str], tuple[float, float]] = {}
        # Where each retained, labelable event is: event_id -> (at_s, payee); and its expiry order.
        self._where: dict[str, tuple[float, str]] = {}
        self._where_order: deque[tuple[float, str]] = deque()
        self._clock_s = -math.inf
        self._next_sweep_s = -math.inf

    # --- FeatureSource ---------------------------------------------------------------------------

    def observe(self, event: PaymentEvent) -> None:
        with self._lock:
            self._retain(event, self._push(event))

    def label(self, event_id: str, fraud: bool) -> None:
        """Record a retained payment's label; labels of unknown or expired payments are ignored
        (they could no longer change any window)."""
        with self._lock:
            where = self._where.get(event_id)
            if where is None:
                return
            at_s, payee = where
            track = self._tracks[1].get(payee)
            if track is not None:
                track.set_fraud(at_s, event_id, int(fraud))

    def features(self, events: Sequence[PaymentEvent]) -> list[dict[str, float]]:
        names = self.names
        rows: list[dict[str, float]] = []
        undos: list[_Undo] = []
        with self._lock:
            try:
                for event in events:
                    undo = self._push(event)
                    undos.append(undo)
                    rows.append(dict(zip(names, self._compute(event, undo), strict=True)))
            finally:
                for undo in reversed(undos):
                    self._undo(undo)
        return rows

    # --- offline ---------------------------------------------------------------------------------

    def replay(
        self, events: Iterable[PaymentEvent], count: int, columns: Sequence[str] = ALL_FEATURES
    ) -> npt.NDArray[np.float64]:
        """Observe `count` time-ordered events, returning each one's features as of its own time
        (a row per event, `columns` in order): what `features` would have answered just before
        `observe`. Keeps only the asked columns, so a long history fits in memory."""
        positions = [self.names.index(name) for name in columns]
        out = np.empty((count, len(positions)), dtype=np.float64)
        row = 0
        block: list[list[float]] = []
        with self._lock:
            for event in events:
                undo = self._push(event)
                block.append(self._compute(event, undo))
                self._retain(event, undo)
                if len(block) == _REPLAY_BLOCK_ROWS:
                    out[row : row + len(block)] = np.array(block)[:, positions]
                    row += len(block)
                    block.clear()
            if block:
                out[row : row + len(block)] = np.array(block)[:, positions]
                row += len(block)
        assert row == count, f"replay: {row} events, {count} announced"
        return out

    def entity_count(self) -> int:
        """How many entities the windows hold now (bounded by the sweep)."""
        with self._lock:
            return sum(len(tracks) for tracks in self._tracks)

    # --- the one code path -----------------------------------------------------------------------

    def _push(self, event: PaymentEvent) -> _Undo:
        fraud = 1 if event.fraud else 0
        amount = min(event.amount, FEATURE_AMOUNT_MAX)
        added: list[_Added] = []
        keys = (event.customer, event.payee, event.device, event.ip)
        for kind, key in enumerate(keys):
            if key is None:
                continue
            tracks = self._tracks[kind]
            track = tracks.get(key)
            if track is None:
                track = tracks[key] = _Track()
            index = track.add(event.at_s, amount, fraud, event.event_id)
            added.append((kind, key, track, index))
        pair: tuple[str, str] | None = None
        previous: tuple[float, float] | None = None
        if event.payee is not None:
            pair = (event.customer, event.payee)
            previous = self._pairs.get(pair)
            at_s = event.at_s
            if previous is None:
                self._pairs[pair] = (at_s, at_s)
            else:
                self._pairs[pair] = (min(previous[0], at_s), max(previous[1], at_s))
        return added, pair, previous

    def _undo(self, undo: _Undo) -> None:
        added, pair, previous = undo
        for kind, key, track, index in reversed(added):
            track.remove(index)
            if not track.times:  # the push created it
                del self._tracks[kind][key]
        if pair is not None:
            if previous is None:
                del self._pairs[pair]
            else:
                self._pairs[pair] = previous

    def _compute(self, event: PaymentEvent, undo: _Undo) -> list[float]:
        """The event's features (ALL_FEATURES order), just after `_push(event)`. The hot path:
        window starts are found once per entity and shared by every feature that reads them."""
        at_s = event.at_s
        amount = min(event.amount, FEATURE_AMOUNT_MAX)
        added, _pair, previous = undo
        seconds = int(at_s)
        day = seconds // DAY_S
        weekend = 1.0 if (day + 3) % 7 >= 5 else 0.0  # 1970-01-01 was a Thursday (3)
        night = 1.0 if (seconds - day * DAY_S) // HOUR_S <= 6 else 0.0

        # Velocity per entity: count and sum over (t - w, t], this payment included; later
        # events of the same second are not seen (hi), as in a time-ordered replay.
        assert added[0][0] == 0, "every payment has a customer"
        customer = added[0][2], added[0][3]
        velocity: list[float] = []
        customer_starts: list[int] = []
        payee: tuple[_Track, int] | None = None
        kind = 0
        for entry_kind, _key, track, index in added:
            while kind < entry_kind:  # no key of this kind: no window
                velocity.extend(_NO_VELOCITY)
                kind += 1
            times, cum = track.times, track.cum_amount
            hi = index + 1
            total = cum[hi]
            starts = [bisect_right(times, at_s - w, 0, index) for w in _VELOCITY_WINDOWS_S]
            for lo in starts:
                velocity.append(float(hi - lo))
                velocity.append(total - cum[lo])
            if entry_kind == 0:
                customer_starts = starts
            elif entry_kind == 1:
                payee = track, index
            kind += 1
        while kind < len(ENTITY_KINDS):
            velocity.extend(_NO_VELOCITY)
            kind += 1

        # Customer spending (the handbook's): count and mean over 1, 7, 30 days, from the
        # velocity windows of the same lengths.
        out = [amount, weekend, night]
        for position in _HANDBOOK_IN_VELOCITY:
            count = velocity[2 * position]
            out.append(count)
            out.append(velocity[2 * position + 1] / count)

        # Payee risk with the label delay: (t - delay - w, t - delay].
        if payee is None:
            out.extend(_NO_PAYEE_RISK)
        else:
            track, index = payee
            times, fraud_cum = track.times, track.cum_fraud
            hi = bisect_right(times, at_s - _DELAY_S, 0, index)
            for window_s in _HANDBOOK_WINDOWS_S:
                lo = bisect_right(times, at_s - _DELAY_S - window_s, 0, hi)
                count = hi - lo
                out.append(float(count))
                out.append((fraud_cum[hi] - fraud_cum[lo]) / count if count else 0.0)
        out.extend(velocity)

        # The amount against the customer's own earlier payments of the last 30 days.
        track, index = customer
        lo = customer_starts[_HISTORY_IN_VELOCITY]
        earlier = index - lo
        if earlier == 0:
            out.append(1.0)
            out.append(0.0)
        else:
            mean = (track.cum_amount[index] - track.cum_amount[lo]) / earlier
            squares = (track.cum_square[index] - track.cum_square[lo]) / earlier
            variance = max(squares - mean * mean, 0.0)
            out.append(amount / mean if mean > 0.0 else 1.0)
            out.append((amount - mean) / math.sqrt(variance + ZSCORE_VARIANCE_FLOOR))

        # New payee: the customer paid this payee never before, within the retained history.
        if event.payee is None:
            out.append(0.0)
        else:
            out.append(1.0 if previous is None or previous[0] > at_s else 0.0)

        channel = event.channel
        if channel is None:
            out.append(0.0)
        else:
            out.append(_CHANNEL_CODES.get(channel, _CHANNEL_OTHER))
        return out

    # --- retention -------------------------------------------------------------------------------

    def _retain(self, event: PaymentEvent, undo: _Undo) -> None:
        """Keep a pushed event (observe): label lookup, clock, bounded memory."""
        if event.payee is not None:
            self._where[event.event_id] = (event.at_s, event.payee)
            self._where_order.append((event.at_s, event.event_id))
        cap = ENTITY_EVENTS_MAX
        for _kind, _key, track, _index in undo[0]:
            if len(track.times) > cap + cap // 8:  # trim in steps, not on every event
                track.trim(-math.inf, cap)
        if event.at_s > self._clock_s:
            self._clock_s = event.at_s
        if self._clock_s >= self._next_sweep_s:
            self._sweep()
            self._next_sweep_s = self._clock_s + SWEEP_INTERVAL_S

    def _sweep(self) -> None:
        expired_s = self._clock_s - RETENTION_S
        for tracks in self._tracks:
            for key in list(tracks):
                track = tracks[key]
                if track.times[-1] <= expired_s:
                    del tracks[key]
                elif track.times[0] <= expired_s:
                    track.trim(expired_s, ENTITY_EVENTS_MAX)
        for pair in [p for p, (_, last) in self._pairs.items() if last <= expired_s]:
            del self._pairs[pair]
        order = self._where_order
        while order and order[0][0] <= expired_s:
            _, event_id = order.popleft()
            self._where.pop(event_id, None)


__all__ = [
    "ALL_FEATURES",
    "CHANNELS",
    "EXTRA_FEATURES",
    "HANDBOOK_FEATURES",
    "FeatureEngine",
    "velocity_name",
]
