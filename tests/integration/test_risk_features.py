"""The feature engine reproduces the Fraud Detection Handbook's own transformed features for
2018-09-01..07 (the features_oracle parquet) to a relative tolerance of 1e-9 (issue 11;
docs/risk-features.md, "The oracle")."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strongroom.risk import handbook as hb
from strongroom.risk.features import HANDBOOK_FEATURES
from tests.support import flags

ORACLE = "features_oracle_2018-09-01_to_07.parquet"
# The handbook's column for each of our features, in HANDBOOK_FEATURES order.
ORACLE_COLUMNS = (
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    "CUSTOMER_ID_NB_TX_1DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW",
    "CUSTOMER_ID_NB_TX_7DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW",
    "CUSTOMER_ID_NB_TX_30DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW",
    "TERMINAL_ID_NB_TX_1DAY_WINDOW",
    "TERMINAL_ID_RISK_1DAY_WINDOW",
    "TERMINAL_ID_NB_TX_7DAY_WINDOW",
    "TERMINAL_ID_RISK_7DAY_WINDOW",
    "TERMINAL_ID_NB_TX_30DAY_WINDOW",
    "TERMINAL_ID_RISK_30DAY_WINDOW",
)


@pytest.fixture
def handbook_dir(shared_data: Path) -> Path:
    path = shared_data / "fraud" / "fdh_simulated"
    if not (path / ORACLE).is_file():
        flags.skip_or_fail(f"handbook data not found at {path}", flags.REQUIRE_SHARED_DATA)
    return path


def test_the_engine_reproduces_the_handbook_features(handbook_dir: Path) -> None:
    # 37 days of history (30-day windows behind a 7-day label delay) before the first day.
    first, last = dt.date(2018, 9, 1), dt.date(2018, 9, 7)
    raw = hb.read_transactions(handbook_dir, first - hb.HISTORY_DAYS * hb.DAY, last)
    oracle = pd.read_parquet(handbook_dir / ORACLE)
    assert len(oracle) == 66_986
    # Payments of one second have no defined order: the handbook's unstable sort picked one,
    # which its file keeps. Replay those seconds in the file's order (2 rows of one customer
    # this week are tied; any order is right for the engine, the oracle fixed one).
    position = pd.Series(np.arange(len(oracle)), index=oracle.TRANSACTION_ID)
    order_key = raw.TRANSACTION_ID.map(position).fillna(-1).to_numpy()
    raw = raw.assign(order_key=order_key)
    raw = raw.sort_values(["TX_DATETIME", "order_key"], kind="stable").reset_index(drop=True)
    tied = raw.duplicated(["CUSTOMER_ID", "TX_DATETIME"], keep=False) & (raw.order_key >= 0)
    assert 0 < tied.sum() <= 4  # the case exists in this week, and stays rare

    ours = pd.DataFrame(hb.replay(raw), columns=list(HANDBOOK_FEATURES))
    ours["TRANSACTION_ID"] = raw.TRANSACTION_ID.to_numpy()
    both = oracle.merge(ours, on="TRANSACTION_ID", how="left", validate="one_to_one")
    assert len(both) == len(oracle)
    assert not both[list(HANDBOOK_FEATURES)].isna().any().any()
    for name, column in zip(HANDBOOK_FEATURES, ORACLE_COLUMNS, strict=True):
        expected = both[column].to_numpy(dtype=np.float64)
        actual = both[name].to_numpy(dtype=np.float64)
        np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=0, err_msg=name)


def test_the_protocol_folds_are_the_handbooks(handbook_dir: Path) -> None:
    """Which weeks each test-set fold trains and tests on, and that known-compromised customers
    are out of the test weeks (computed on the raw data, without features)."""
    raw = hb.read_transactions(handbook_dir, hb.FIRST_TRAIN_DATE, hb.LAST_TEST_DATE)
    data = hb.HandbookData(frame=raw, features=np.zeros((len(raw), 15)))
    folds = hb.folds(data)
    assert [(f.train_first.isoformat(), f.test_first.isoformat()) for f in folds] == [
        ("2018-08-15", "2018-08-29"),
        ("2018-08-08", "2018-08-22"),
        ("2018-08-01", "2018-08-15"),
        ("2018-07-25", "2018-08-08"),
    ]
    for fold in folds:
        train = raw.iloc[fold.train_rows]
        test = raw.iloc[fold.test_rows]
        assert train.TX_DATETIME.min().date() == fold.train_first
        assert train.TX_DATETIME.max().date() == fold.train_first + 6 * hb.DAY
        assert test.TX_DATETIME.min().date() == fold.test_first
        assert test.TX_DATETIME.max().date() == fold.test_first + 6 * hb.DAY
        # A customer with a fraud in the training week never appears in the test week.
        compromised = set(train.CUSTOMER_ID[train.TX_FRAUD == 1])
        assert compromised
        assert not compromised & set(test.CUSTOMER_ID)
        # Nor one with a fraud 8 days before a test day (its label known by then; the 7 days
        # before a test day are the delay).
        for day in sorted(test.TX_TIME_DAYS.unique()):
            known_day = raw[(day - 8 == raw.TX_TIME_DAYS) & (raw.TX_FRAUD == 1)].CUSTOMER_ID
            assert not set(known_day) & set(test[day == test.TX_TIME_DAYS].CUSTOMER_ID)
        whole_week = raw[(raw.TX_DATETIME.dt.date >= fold.test_first)]
        whole_week = whole_week[whole_week.TX_DATETIME.dt.date < fold.test_first + 7 * hb.DAY]
        assert 0.8 * len(whole_week) < len(test) < len(whole_week)


def test_card_precision_at_k_follows_the_handbook() -> None:
    """Per day: the top-k customers by max score; cards caught on a day are out of later days."""
    days = np.array([1, 1, 1, 1, 2, 2, 2])
    customers = np.array([10, 10, 11, 12, 10, 11, 12])
    fraud = np.array([0, 1, 0, 0, 1, 0, 1])
    scores = np.array([0.9, 0.1, 0.5, 0.2, 0.9, 0.8, 0.1])
    # Day 1, k=1: customer 10 (max 0.9) has a fraud: 1.0. Day 2: 10 is out; 11 tops: 0.0.
    assert hb.card_precision_at_k(days, customers, fraud, scores, k=1) == 0.5
    # k=2: day 1 catches 10 of {10, 11}: 0.5; day 2 ranks {11, 12}: 12 is a fraud: 0.5.
    assert hb.card_precision_at_k(days, customers, fraud, scores, k=2) == 0.5


@pytest.mark.slow
@pytest.mark.timeout(1_800)
def test_our_model_beats_the_handbook_on_its_protocol(handbook_dir: Path) -> None:
    """The whole protocol: replay 2018-06-18..09-04, four prequential folds, our model; the
    targets of issue 11 (the handbook's best published: XGBoost AP 0.687, AUC 0.870, CP@100
    0.303). Several minutes on 2 cores: marked slow."""
    data = hb.load(handbook_dir)
    result = hb.evaluate(hb.handbook_model(), data)
    assert [fold["test_rows"] > 50_000 for fold in result["folds"]] == [True] * hb.FOLDS
    mean = result["mean"]
    for metric, target in hb.TARGETS.items():
        assert mean[metric] >= target, (metric, mean[metric])
