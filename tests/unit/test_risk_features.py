"""The feature engine's semantics: right-closed windows that include the payment, payee risk with
a label delay, labels arriving late, tentative features that leave no trace, one code path online
and offline, bounded memory (risk/features.py, docs/risk-features.md)."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest

from strongroom.risk import features as f
from strongroom.risk.features import (
    ALL_FEATURES,
    DAY_S,
    FEATURE_AMOUNT_MAX,
    HANDBOOK_FEATURES,
    FeatureEngine,
)
from strongroom.risk.model import PaymentEvent

DAY = 86_400.0
T0 = 1_535_760_000.0  # 2018-09-01 00:00:00 UTC, a Saturday


def pay(
    n: int,
    at_s: float,
    amount: float = 10.0,
    customer: str = "c1",
    payee: str | None = "p1",
    fraud: bool | None = False,
    **extra: str,
) -> PaymentEvent:
    return PaymentEvent(f"e{n}", at_s, amount, customer, payee, fraud=fraud, **extra)


def one(engine: FeatureEngine, event: PaymentEvent) -> dict[str, float]:
    return engine.features([event])[0]


def test_names_are_the_handbook_fifteen_then_the_extras() -> None:
    assert ALL_FEATURES[: len(HANDBOOK_FEATURES)] == HANDBOOK_FEATURES
    assert len(HANDBOOK_FEATURES) == 15
    assert FeatureEngine.names == ALL_FEATURES
    row = one(FeatureEngine(), pay(1, T0))
    assert tuple(row) == ALL_FEATURES


def test_calendar_features_are_utc_weekend_and_hour_up_to_6() -> None:
    engine = FeatureEngine()
    saturday_6h59 = one(engine, pay(1, T0 + 6 * 3600 + 3599))
    monday_7h = one(engine, pay(2, T0 + 2 * DAY + 7 * 3600))
    assert (saturday_6h59[f.DURING_WEEKEND], saturday_6h59[f.DURING_NIGHT]) == (1.0, 1.0)
    assert (monday_7h[f.DURING_WEEKEND], monday_7h[f.DURING_NIGHT]) == (0.0, 0.0)


def test_customer_windows_are_right_closed_and_include_the_payment() -> None:
    engine = FeatureEngine()
    engine.observe(pay(1, T0, amount=10.0))
    inside = one(engine, pay(2, T0 + DAY - 1, amount=30.0))
    assert inside[f.CUSTOMER_NB_TX_1D] == 2.0
    assert inside[f.CUSTOMER_AVG_AMOUNT_1D] == 20.0
    edge = one(engine, pay(2, T0 + DAY, amount=30.0))  # T0 is exactly t - 1 day: out
    assert edge[f.CUSTOMER_NB_TX_1D] == 1.0
    assert edge[f.CUSTOMER_AVG_AMOUNT_1D] == 30.0
    assert edge[f.CUSTOMER_NB_TX_7D] == 2.0


def test_payee_risk_counts_only_the_delayed_window() -> None:
    engine = FeatureEngine()
    engine.observe(pay(1, T0, fraud=True, customer="a"))
    engine.observe(pay(2, T0 + 10, fraud=False, customer="b"))
    too_early = one(engine, pay(3, T0 + 7 * DAY - 1, customer="c"))
    assert too_early[f.PAYEE_NB_TX_1D] == 0.0
    assert too_early[f.PAYEE_RISK_1D] == 0.0
    at_delay = one(engine, pay(3, T0 + 7 * DAY + 5, customer="c"))
    assert at_delay[f.PAYEE_NB_TX_1D] == 1.0
    assert at_delay[f.PAYEE_RISK_1D] == 1.0
    both = one(engine, pay(3, T0 + 7 * DAY + 10, customer="c"))
    assert both[f.PAYEE_NB_TX_1D] == 2.0
    assert both[f.PAYEE_RISK_1D] == 0.5
    later = one(engine, pay(3, T0 + 8 * DAY + 1, customer="c"))
    assert later[f.PAYEE_NB_TX_1D] == 1.0
    assert later[f.PAYEE_RISK_1D] == 0.0
    assert later[f.PAYEE_NB_TX_7D] == 2.0
    assert later[f.PAYEE_RISK_7D] == 0.5


def test_a_late_label_changes_the_payee_risk() -> None:
    engine = FeatureEngine()
    engine.observe(pay(1, T0, fraud=None))
    probe = pay(2, T0 + 7 * DAY, customer="other")
    assert one(engine, probe)[f.PAYEE_RISK_30D] == 0.0
    engine.label("e1", True)
    assert one(engine, probe)[f.PAYEE_RISK_30D] == 1.0
    engine.label("e1", False)
    assert one(engine, probe)[f.PAYEE_RISK_30D] == 0.0
    engine.label("unknown", True)  # ignored


def test_features_leave_no_trace_and_see_the_earlier_ones_of_the_call() -> None:
    engine = FeatureEngine()
    engine.observe(pay(1, T0, payee="p1"))
    batch = [pay(2, T0 + 10, payee="p2"), pay(3, T0 + 20, payee="p2")]
    first, second = engine.features(batch)
    assert (first[f.CUSTOMER_NB_TX_1D], second[f.CUSTOMER_NB_TX_1D]) == (2.0, 3.0)
    assert (first[f.NEW_PAYEE], second[f.NEW_PAYEE]) == (1.0, 0.0)
    assert engine.features(batch) == [first, second]  # nothing of the first call stayed
    assert engine.entity_count() == 2  # c1 and p1: p2's track went with the undo


def test_online_and_offline_agree_exactly() -> None:
    """The gate's path (features, then observe) and the replay give the same numbers."""
    rng = random.Random(7)
    events = []
    at_s = T0
    for n in range(3_000):
        at_s += rng.choice([0.0, 1.0, 30.0, 600.0, 3_600.0])
        events.append(
            PaymentEvent(
                f"e{n}",
                at_s,
                round(rng.uniform(1, 300), 2),
                f"c{rng.randrange(40)}",
                f"p{rng.randrange(25)}",
                device=rng.choice([None, "d1", "d2"]),
                ip=rng.choice([None, "10.0.0.1"]),
                channel=rng.choice([None, "card_present", "wallet", "fax"]),
                fraud=rng.random() < 0.1,
            )
        )
    online = FeatureEngine()
    rows = []
    for event in events:
        rows.append([one(online, event)[name] for name in ALL_FEATURES])
        online.observe(event)
    offline = FeatureEngine().replay(events, len(events))
    assert np.array_equal(np.array(rows), offline)


def test_a_payment_from_the_past_sees_only_what_came_before_it() -> None:
    engine = FeatureEngine()
    for n, at_s in enumerate([T0, T0 + 100, T0 + 200]):
        engine.observe(pay(n, at_s, amount=float(n + 1)))
    late = one(engine, pay(9, T0 + 150, amount=10.0))
    assert late[f.CUSTOMER_NB_TX_1D] == 3.0
    assert late[f.CUSTOMER_AVG_AMOUNT_1D] == pytest.approx((1 + 2 + 10) / 3)
    engine.observe(pay(9, T0 + 150, amount=10.0))
    now = one(engine, pay(10, T0 + 300, amount=4.0))
    assert now[f.CUSTOMER_NB_TX_1D] == 5.0
    assert now[f.CUSTOMER_AVG_AMOUNT_1D] == pytest.approx((1 + 2 + 10 + 3 + 4) / 5)


def test_velocity_amount_history_new_payee_and_channel() -> None:
    engine = FeatureEngine()
    for n, amount in enumerate([10.0, 20.0, 30.0]):
        engine.observe(pay(n, T0 + n * 60, amount=amount, device="d", ip="1.2.3.4"))
    row = one(engine, pay(9, T0 + 3_000, amount=60.0, payee="p9", device="d", channel="wallet"))
    assert row[f.velocity_name("customer", "count", "1h")] == 4.0
    assert row[f.velocity_name("customer", "sum", "1h")] == 120.0
    assert row[f.velocity_name("device", "count", "1d")] == 4.0
    assert row[f.velocity_name("ip", "count", "1d")] == 0.0  # unknown IP: no window
    assert row[f.velocity_name("payee", "count", "30d")] == 1.0
    assert row[f.AMOUNT_TO_MEAN_30D] == 3.0  # 60 against the earlier mean of 20
    assert row[f.AMOUNT_ZSCORE_30D] == pytest.approx(40.0 / (200.0 / 3 + 1.0) ** 0.5)
    assert row[f.NEW_PAYEE] == 1.0
    assert row[f.CHANNEL_CODE] == 1.0 + f.CHANNELS.index("wallet")
    again = one(engine, pay(10, T0 + 3_000, amount=20.0, payee="p1", channel="fax"))
    assert again[f.NEW_PAYEE] == 0.0
    assert again[f.CHANNEL_CODE] == f.CHANNEL_OTHER_CODE
    first = one(FeatureEngine(), pay(1, T0))
    assert (first[f.AMOUNT_TO_MEAN_30D], first[f.AMOUNT_ZSCORE_30D]) == (1.0, 0.0)
    assert first[f.CHANNEL_CODE] == 0.0


def test_memory_is_bounded_by_the_retention() -> None:
    engine = FeatureEngine()
    days = 120
    for day in range(days):
        for n in range(20):  # new customers and payees every day
            engine.observe(
                pay(day * 100 + n, T0 + day * DAY + n, customer=f"c{day}-{n}", payee=f"p{day}-{n}")
            )
    retained_days = f.RETENTION_S // 86_400 + 2
    assert engine.entity_count() <= 2 * 20 * retained_days
    assert len(engine._pairs) <= 20 * retained_days
    assert len(engine._where) <= 20 * retained_days


def test_an_entity_keeps_at_most_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f, "ENTITY_EVENTS_MAX", 16)
    engine = FeatureEngine()
    for n in range(100):
        engine.observe(pay(n, T0 + n))
    assert one(engine, pay(100, T0 + 100))[f.CUSTOMER_NB_TX_1D] <= 16 + 16 // 8 + 1


def test_observe_is_thread_safe() -> None:
    engine = FeatureEngine()

    def worker(k: int) -> None:
        for n in range(500):
            engine.observe(pay(k * 1_000 + n, T0 + n, customer="shared", payee=f"p{k}"))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    probe = pay(9_999, T0 + 600, customer="shared")
    assert one(engine, probe)[f.CUSTOMER_NB_TX_1D] == 2_001.0


def test_one_huge_payment_does_not_silence_the_windows_that_follow() -> None:
    """Found by an attacker: the windows are prefix sums of floats, so one retained payment of
    1e30 cancelled every later window's sum to 0 (amount_to_mean 1.0, the amount rules silent)
    for as long as it was kept. Amounts are clipped for the windows (FEATURE_AMOUNT_MAX)."""
    engine = FeatureEngine()
    start = 1_700_000_000.0
    engine.observe(PaymentEvent("huge", start, 1e30, "c1", "p1"))
    later = start + 31 * DAY_S
    for k in range(30):
        engine.observe(PaymentEvent(f"small{k}", later + k * 60.0, 10.0, "c1", "p1"))
    [row] = engine.features([PaymentEvent("next", later + 3_600.0, 5_000.0, "c1", "p_new")])
    assert row["customer_sum_1d"] == 300.0 + 5_000.0
    assert row["customer_count_30d"] == 31.0
    assert row["amount_to_mean_30d"] == 500.0
    assert row["new_payee"] == 1.0
    # The huge one itself is clipped where the windows and the amount feature hold it.
    [first] = FeatureEngine().features([PaymentEvent("h", start, 1e30, "c2", "p1")])
    assert first["amount"] == FEATURE_AMOUNT_MAX
