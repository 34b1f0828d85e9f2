"""The Fraud Detection Handbook's evaluation (Le Borgne et al., ULB 2022; docs/risk-features.md):
its simulated card transactions, replayed through our FeatureEngine, scored with the handbook's
own protocol so that our numbers sit beside its published ones.

Protocol (the handbook's Ch.5 "Model selection", TEST-set results), reproduced from its prose and
definitions: the 15 features; prequential validation with 4 folds of a 7-day training week, a
7-day delay and a 7-day test week. The test-set folds start from 2018-07-25 + 3 x 7 days =
2018-08-15 and step back a week per fold: fold k trains on [08-15 - 7k, +7 d) and tests on the 7
days starting 14 days after its training start. From each test day, the transactions of customers
already known compromised are removed: those with a fraud in the training week, or on a day up to
the test day minus 8 days (the delay period, growing one day per test day). Metrics per fold, then
their mean: ROC AUC, average precision, and card precision@100 (each test day: the 100 customers
with the highest max score, the share of them with a fraud; cards found compromised on an earlier
test day of the fold are removed from the later days; the mean over the 7 days).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from strongroom.risk.features import HANDBOOK_FEATURES, LABEL_DELAY_DAYS, RETENTION_S, FeatureEngine
from strongroom.risk.model import PaymentEvent

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Predict = Callable[[FloatArray], FloatArray]
Fit = Callable[[FloatArray, IntArray], Predict]

DEFAULT_DATA_DIR: Final = Path("../shared/data/fraud/fdh_simulated")
FOLDS: Final = 4
START_DATE: Final = dt.date(2018, 7, 25)
TRAIN_DAYS: Final = 7
DELAY_DAYS: Final = 7
TEST_DAYS: Final = 7
TOP_K: Final = 100
assert DELAY_DAYS == LABEL_DELAY_DAYS
DAY: Final = dt.timedelta(days=1)
# The test-set folds: the first training week starts (FOLDS - 1) test weeks after START_DATE.
TEST_START_DATE: Final = START_DATE + (FOLDS - 1) * TEST_DAYS * DAY
FIRST_TRAIN_DATE: Final = TEST_START_DATE - (FOLDS - 1) * TEST_DAYS * DAY
LAST_TEST_DATE: Final = TEST_START_DATE + (TRAIN_DAYS + DELAY_DAYS + TEST_DAYS - 1) * DAY
# Replay from this far before the first day scored, so every window is full (30 d + 7 d delay).
HISTORY_DAYS: Final = RETENTION_S // 86_400
SIMULATION_START: Final = dt.date(2018, 4, 1)  # TX_TIME_DAYS counts days from here

# The handbook's published TEST-set results (Ch.5 "Model selection"; Ch.7 for the networks).
PUBLISHED: Final = (
    ("decision tree", 0.797, 0.579, 0.284),
    ("logistic regression", 0.868, 0.623, 0.297),
    ("random forest", 0.870, 0.678, 0.299),
    ("XGBoost", 0.870, 0.687, 0.303),
    ("feed-forward NN (Ch.7)", 0.876, 0.675, 0.303),
    ("LSTM (Ch.7)", 0.872, 0.599, 0.288),
)
TARGETS: Final = {"average_precision": 0.70, "roc_auc": 0.87, "card_precision_at_100": 0.30}

_COLUMNS: Final = [
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_TIME_DAYS",
    "TX_FRAUD",
]


@dataclass(frozen=True)
class HandbookData:
    """The transactions of the replayed period with our 15 features (HANDBOOK_FEATURES order)."""

    frame: pd.DataFrame  # TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TX_TIME_DAYS, TX_FRAUD, ...
    features: FloatArray  # a row per frame row


def read_transactions(data_dir: Path, first: dt.date, last: dt.date) -> pd.DataFrame:
    """The raw transactions of days first..last (inclusive), time-ordered (file order on ties)."""
    months = pd.period_range(first, last, freq="M")
    paths = [data_dir / f"transactions_{month.strftime('%Y-%m')}.parquet" for month in months]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"handbook data not found: {', '.join(missing)}")
    frame = pd.concat([pd.read_parquet(path, columns=_COLUMNS) for path in paths])
    start, end = pd.Timestamp(first), pd.Timestamp(last + DAY)
    frame = frame[(start <= frame.TX_DATETIME) & (end > frame.TX_DATETIME)]
    return frame.sort_values("TX_DATETIME", kind="stable").reset_index(drop=True)


def payment_events(frame: pd.DataFrame) -> Iterator[PaymentEvent]:
    """The frame's rows as PaymentEvents: customer, terminal as payee, label known at once."""
    at_s = frame.TX_DATETIME.to_numpy().astype("datetime64[s]").astype(np.int64).tolist()
    columns = zip(
        frame.TRANSACTION_ID.tolist(),
        at_s,
        frame.TX_AMOUNT.tolist(),
        frame.CUSTOMER_ID.tolist(),
        frame.TERMINAL_ID.tolist(),
        frame.TX_FRAUD.tolist(),
        strict=True,
    )
    for tx_id, seconds, amount, customer, terminal, fraud in columns:
        yield PaymentEvent(
            event_id=str(tx_id),
            at_s=float(seconds),
            amount=amount,
            customer=str(customer),
            payee=str(terminal),
            fraud=bool(fraud),
        )


def replay(
    frame: pd.DataFrame,
    columns: Sequence[str] = HANDBOOK_FEATURES,
    engine: FeatureEngine | None = None,
) -> FloatArray:
    """Each row's features as of its own time, by replaying the frame through a FeatureEngine."""
    engine = FeatureEngine() if engine is None else engine
    return engine.replay(payment_events(frame), len(frame), columns)


def load(
    data_dir: Path = DEFAULT_DATA_DIR,
    first: dt.date = FIRST_TRAIN_DATE,
    last: dt.date = LAST_TEST_DATE,
) -> HandbookData:
    """Days first..last with their features, replayed from HISTORY_DAYS before `first`."""
    raw = read_transactions(data_dir, first - HISTORY_DAYS * DAY, last)
    features = replay(raw)
    keep = (pd.Timestamp(first) <= raw.TX_DATETIME).to_numpy()
    return HandbookData(frame=raw[keep].reset_index(drop=True), features=features[keep])


@dataclass(frozen=True)
class Fold:
    index: int
    train_first: dt.date
    test_first: dt.date
    train_rows: IntArray  # row positions in HandbookData
    test_rows: IntArray


def folds(data: HandbookData) -> list[Fold]:
    """The handbook's prequential test-set folds (module docstring)."""
    frame = data.frame
    day_of = frame.TX_TIME_DAYS.to_numpy()
    fraud = frame.TX_FRAUD.to_numpy() == 1
    customers = frame.CUSTOMER_ID.to_numpy()
    out: list[Fold] = []
    for index in range(FOLDS):
        train_first = TEST_START_DATE - index * TEST_DAYS * DAY
        first_day = (train_first - SIMULATION_START).days
        train_mask = (day_of >= first_day) & (day_of < first_day + TRAIN_DAYS)
        known = set(customers[train_mask & fraud].tolist())
        test_parts: list[IntArray] = []
        for day in range(TEST_DAYS):
            delay_day = first_day + TRAIN_DAYS + day - 1  # the last day whose frauds are known
            known.update(customers[(day_of == delay_day) & fraud].tolist())
            today = np.flatnonzero(day_of == first_day + TRAIN_DAYS + DELAY_DAYS + day)
            fresh = ~np.isin(customers[today], np.fromiter(known, dtype=customers.dtype))
            test_parts.append(today[fresh])
        test_first = train_first + (TRAIN_DAYS + DELAY_DAYS) * DAY
        out.append(
            Fold(
                index,
                train_first,
                test_first,
                np.flatnonzero(train_mask),
                np.concatenate(test_parts),
            )
        )
    return out


def card_precision_at_k(
    days: npt.NDArray[Any],
    customers: npt.NDArray[Any],
    fraud: IntArray,
    scores: FloatArray,
    k: int = TOP_K,
) -> float:
    """The handbook's card precision@k: per day, the k customers with the highest max score and
    the share of them with a fraud that day; cards found on an earlier day are removed from later
    days; the mean over the days. Ties in score keep customer-id order (a stable sort)."""
    frame = pd.DataFrame({"day": days, "customer": customers, "fraud": fraud, "score": scores})
    found: set[Any] = set()
    precisions: list[float] = []
    for _day, rows in frame.groupby("day", sort=True):
        rows = rows[~rows.customer.isin(found)]
        cards = rows.groupby("customer", sort=True).agg(
            score=("score", "max"), fraud=("fraud", "max")
        )
        top = cards.sort_values("score", ascending=False, kind="stable").head(k)
        caught = top.index[top.fraud.to_numpy() == 1]
        precisions.append(len(caught) / k)
        found.update(caught.tolist())
    return float(np.mean(precisions))


def evaluate(
    fit: Fit, data: HandbookData | None = None, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Train `fit` on each fold's training week (X: HANDBOOK_FEATURES columns, y: 0/1) and score
    its test week: per-fold and mean ROC AUC, average precision and card precision@100."""
    from sklearn.metrics import (
        average_precision_score,
        roc_auc_score,
    )

    data = load() if data is None else data
    frame = data.frame
    labels = frame.TX_FRAUD.to_numpy().astype(np.int64)
    results: list[dict[str, Any]] = []
    for fold in folds(data):
        predict = fit(data.features[fold.train_rows], labels[fold.train_rows])
        test = fold.test_rows
        scores = np.asarray(predict(data.features[test]), dtype=np.float64)
        y = labels[test]
        result = {
            "fold": fold.index,
            "train_first": fold.train_first.isoformat(),
            "test_first": fold.test_first.isoformat(),
            "train_rows": len(fold.train_rows),
            "train_frauds": int(labels[fold.train_rows].sum()),
            "test_rows": len(test),
            "test_frauds": int(y.sum()),
            "roc_auc": float(roc_auc_score(y, scores)),
            "average_precision": float(average_precision_score(y, scores)),
            "card_precision_at_100": card_precision_at_k(
                frame.TX_TIME_DAYS.to_numpy()[test], frame.CUSTOMER_ID.to_numpy()[test], y, scores
            ),
        }
        results.append(result)
        if progress is not None:
            progress(
                f"fold {fold.index}: AP {result['average_precision']:.3f} "
                f"AUC {result['roc_auc']:.3f} CP@100 {result['card_precision_at_100']:.3f}"
            )
    metrics = ("roc_auc", "average_precision", "card_precision_at_100")
    mean = {name: float(np.mean([r[name] for r in results])) for name in metrics}
    return {"folds": results, "mean": mean}


# --- the model ----------------------------------------------------------------------------------

_AMOUNT = HANDBOOK_FEATURES.index("amount")
_NB = [HANDBOOK_FEATURES.index(f"customer_nb_tx_{d}d") for d in (1, 7, 30)]
_AVG = [HANDBOOK_FEATURES.index(f"customer_avg_amount_{d}d") for d in (1, 7, 30)]

MODEL_DESCRIPTION: Final = (
    "the mean of two fraud probabilities: a random forest (100 trees, depth 20) and a LightGBM "
    "(learning rate 0.02, 15 leaves, 400 trees, min child samples 100, bagging 0.8, feature "
    "fraction 0.7, L2 5), both on the 15 features plus 6 ratios derived from them (amount / "
    "customer mean 7 d and 30 d; customer mean 1 d and 7 d / 30 d; customer count 1 d and 7 d "
    "against the 30-day daily rate)"
)
LIGHTGBM_PARAMETERS: Final[dict[str, Any]] = {
    "learning_rate": 0.02,
    "num_leaves": 15,
    "n_estimators": 400,
    "min_child_samples": 100,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.7,
    "reg_lambda": 5.0,
}


def _ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    out = np.ones_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def with_ratios(x: FloatArray) -> FloatArray:
    """The 15 handbook features and 6 ratios computed from them, row by row: how this payment and
    the customer's last day and week compare with the customer's own 30 days (the compromised-
    customer scenario multiplies amounts; trees split on one feature at a time, so they see such
    ratios only when given them). A function of the 15 features alone: no other input."""
    amount = x[:, _AMOUNT]
    nb_1d, nb_7d, nb_30d = (x[:, i] for i in _NB)
    avg_1d, avg_7d, avg_30d = (x[:, i] for i in _AVG)
    daily_30d = nb_30d / 30.0
    ratios = (
        _ratio(amount, avg_30d),
        _ratio(amount, avg_7d),
        _ratio(avg_1d, avg_30d),
        _ratio(avg_7d, avg_30d),
        _ratio(nb_1d, daily_30d),
        _ratio(nb_7d, 7.0 * daily_30d),
    )
    return np.column_stack([x, *ratios])


def handbook_model(seed: int = 0) -> Fit:
    """Our model for the handbook protocol (MODEL_DESCRIPTION); beats the published results. The
    score of a row depends on that row alone (a mean of probabilities, not of batch ranks)."""

    def fit(x: FloatArray, y: IntArray) -> Predict:
        import lightgbm
        from sklearn.ensemble import RandomForestClassifier

        rows = with_ratios(x)
        forest = RandomForestClassifier(n_estimators=100, max_depth=20, n_jobs=2, random_state=seed)
        forest.fit(rows, y)
        booster = lightgbm.LGBMClassifier(
            verbose=-1, n_jobs=2, random_state=seed, **LIGHTGBM_PARAMETERS
        )
        booster.fit(rows, y)

        def predict(batch: FloatArray) -> FloatArray:
            derived = with_ratios(batch)
            first = np.asarray(forest.predict_proba(derived), dtype=np.float64)[:, 1]
            second = np.asarray(booster.predict_proba(derived), dtype=np.float64)[:, 1]
            return (first + second) / 2.0

        return predict

    return fit


def default_lightgbm() -> Fit:
    """A plain LightGBM (library defaults, the 15 features): a reference point."""

    def fit(x: FloatArray, y: IntArray) -> Predict:
        import lightgbm

        model = lightgbm.LGBMClassifier(verbose=-1, n_jobs=2, random_state=0)
        model.fit(x, y)

        def predict(rows: FloatArray) -> FloatArray:
            return np.asarray(model.predict_proba(rows), dtype=np.float64)[:, 1]

        return predict

    return fit


__all__ = [
    "FOLDS",
    "PUBLISHED",
    "TARGETS",
    "HandbookData",
    "card_precision_at_k",
    "default_lightgbm",
    "evaluate",
    "folds",
    "handbook_model",
    "load",
    "payment_events",
    "read_transactions",
    "replay",
    "with_ratios",
]
