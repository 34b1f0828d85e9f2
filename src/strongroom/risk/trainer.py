"""The generic fraud-model trainer (docs/risk-models.md, "Training").

Any labelled table of payments (CSV, Parquet or an in-memory DataFrame): numeric and categorical
columns, a binary label, an optional time column and id column. The rows are put in time order
and the last HOLDOUT_FRACTION is kept aside as the hold-out; nothing below looks at it until the
model is chosen and refitted. Inside the training part, candidate LightGBM configurations are
compared on time-ordered validation folds (expanding window: train on everything before the
fold) with early stopping, by successive halving: every candidate on the most recent fold, the
best third on the others. The winner by mean validation average precision is refitted on all the
training rows; Platt scaling fitted on its out-of-time fold predictions calibrates it. A default
`lightgbm.LGBMClassifier()` is trained on the same split in the same run as the reference.
"""

from __future__ import annotations

import math
import time as clock
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import expit
from sklearn.ensemble import IsolationForest
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    roc_auc_score,
)

from strongroom.core.errors import InvalidRequest
from strongroom.risk.artefact import (
    AnomalyDetector,
    Feature,
    IsolationTree,
    Matrix,
    ModelArtifact,
    category_key,
    reference_histogram,
)

HOLDOUT_FRACTION: Final = 0.2  # the most recent fifth of the rows, by time (or file order)
ROWS_MIN: Final = 200
POSITIVES_MIN: Final = 20  # in the training part: fewer cannot be split into folds
HOLDOUT_POSITIVES_MIN: Final = 1
COLUMNS_MAX: Final = 2_000
CATEGORIES_MAX: Final = 1_000  # per column, the most frequent; rarer values are missing
# A numeric feature beyond this (or infinite) is refused: the reference histograms built from
# it would overflow (and JSON cannot hold an infinity).
NUMERIC_ABS_MAX: Final = 1e300

BUDGET_S_DEFAULT: Final = 600.0
# Without a budget asked for, min(default, floor + cells x rate): 300,000 rows x 30 columns get
# the whole default, a table of 20,000 x 20 about half a minute.
BUDGET_S_FLOOR: Final = 10.0
BUDGET_S_PER_CELL: Final = 600.0 / 9_000_000
SEARCH_SHARE: Final = 0.7  # of the budget, for the search; the rest: refit, baseline, extras
EXTRAS_SHARE: Final = 0.05  # of the budget, kept for the anomaly detector and the histograms
RUNG0_SHARE: Final = 0.45  # of the search time, for the first rung (all candidates, one fold)
CANDIDATES_MAX: Final = 60
ROUNDS_MAX: Final = 5_000
ROUNDS_FLOOR: Final = 100  # LightGBM's default n_estimators: no fit is cut shorter by time
REFIT_ROUNDS_FACTOR: Final = 1.1  # the full training part is larger than any fold's
FOLDS: Final = 3
FOLD_VALID_FRACTION: Final = 0.15  # each validation fold: this share of the training part
FOLD_POSITIVES_MIN: Final = 5
SMOOTH_ROUNDS: Final = 9  # the validation curve's moving average, in boosting rounds
PATIENCE_ROUNDS_MIN: Final = 40
PATIENCE_LR_ROUNDS: Final = 6.0  # patience = this / learning rate, at least the minimum

TRAIN_THREADS: Final = 2
ANOMALY_TREES: Final = 100
ANOMALY_MAX_SAMPLES: Final = 256

assert 0 < HOLDOUT_FRACTION < 0.5
assert FOLDS * FOLD_VALID_FRACTION <= 0.5  # the first fold still trains on half the rows
assert 0 < SEARCH_SHARE < 1
assert 0 < RUNG0_SHARE < 1

Progress = Callable[[str], None]
Labels = npt.NDArray[np.int8]


class TrainingDataError(InvalidRequest):
    """The training data cannot be used as given: nothing was trained or written."""

    def __init__(self, detail: str, *, param: str | None = None) -> None:
        super().__init__(detail, param=param, code="invalid_training_data")


def _quiet(_: str) -> None:
    return None


# Reading and checking the data.


def load_frame(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file (by its suffix; `.csv.gz` too) as a DataFrame."""
    if not path.is_file():
        raise TrainingDataError(f"no data file at {path}", param="data")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".csv", ".csv.gz", ".txt")):
            return pd.read_csv(path, low_memory=False)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingDataError(f"cannot read {path.name}: {reason[:200]}", param="data") from None
    raise TrainingDataError(
        f"{path.name}: unknown file type (expected .csv or .parquet)", param="data"
    )


_TRUE: Final = frozenset({"1", "true", "t", "yes", "y"})
_FALSE: Final = frozenset({"0", "false", "f", "no", "n"})


def binary_labels(column: pd.Series) -> tuple[Labels, str]:
    """The label column as 0/1 and the text of the value taken as positive. Accepted: two
    numbers (the larger is positive), booleans, true/false, yes/no; two other values: the
    rarer is positive (fraud is the rare class). Missing labels and a third value are refused."""
    if column.isna().any():
        raise TrainingDataError(
            f"the label column has {int(column.isna().sum())} missing values", param="label"
        )
    values = pd.unique(column)
    if len(values) > 2:
        shown = ", ".join(repr(v) for v in list(values)[:4])
        raise TrainingDataError(
            f"the label must be binary; it has {len(values)} distinct values ({shown}, ...)",
            param="label",
        )
    if len(values) < 2:
        raise TrainingDataError(
            f"the label has a single class ({values[0]!r}): need both", param="label"
        )
    if pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.int8), "true"
    if pd.api.types.is_numeric_dtype(column):
        positive = max(values)
        return (column.to_numpy() == positive).astype(np.int8), category_key(positive)
    keys = {str(v).strip().lower() for v in values}
    if keys <= _TRUE | _FALSE and len(keys & _TRUE) == 1:
        (positive_key,) = keys & _TRUE
        y = column.map(lambda v: str(v).strip().lower() == positive_key).to_numpy(np.int8)
        return y, positive_key
    counts = column.value_counts()
    positive = counts.index[-1] if counts.iloc[-1] < counts.iloc[0] else sorted(map(str, values))[1]
    return (column.astype(str) == str(positive)).to_numpy(np.int8), str(positive)


def time_seconds(column: pd.Series) -> npt.NDArray[np.float64]:
    """A time column as seconds since the epoch: a number of seconds, a datetime, or text in
    ISO 8601. Missing or unreadable times are refused (the split is by time)."""
    if pd.api.types.is_bool_dtype(column):
        raise TrainingDataError("the time column is boolean", param="time")
    if pd.api.types.is_numeric_dtype(column):
        seconds = column.to_numpy(dtype=np.float64)
    else:
        if pd.api.types.is_datetime64_any_dtype(column):
            stamps = column
        else:
            stamps = pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")
        if getattr(stamps.dt, "tz", None) is None:
            stamps = stamps.dt.tz_localize("UTC")
        stamps = stamps.dt.tz_convert("UTC")
        seconds = _epoch_seconds(stamps)
    bad = int((~np.isfinite(seconds)).sum())
    if bad:
        raise TrainingDataError(
            f"the time column has {bad} missing, unreadable or infinite values", param="time"
        )
    return np.asarray(seconds, dtype=np.float64)


def _out_of_range(*columns: pd.Series) -> bool:
    for column in columns:
        if pd.api.types.is_datetime64_any_dtype(column):
            continue
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        if bool((np.abs(values) > NUMERIC_ABS_MAX).any()):  # NaN compares False: missing
            return True
    return False


def _column_kind(column: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        if pd.api.types.is_datetime64_any_dtype(column):
            return "datetime"
        return "categorical"
    return "numeric"


def _categories(column: pd.Series) -> tuple[str, ...]:
    keys = column.dropna().map(category_key)
    counts = keys.value_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:CATEGORIES_MAX]
    return tuple(k for k, _ in ranked)


def encode_frame(frame: pd.DataFrame, features: Sequence[Feature]) -> Matrix:
    """The feature columns as one float matrix: numbers as they are (datetimes as epoch
    seconds), categories as codes (unseen or missing: NaN, LightGBM's missing)."""
    x = np.full((len(frame), len(features)), np.nan, dtype=np.float64)
    for j, f in enumerate(features):
        column = frame[f.name]
        if f.kind == "categorical":
            codes = {c: float(i) for i, c in enumerate(f.categories)}
            present = column.notna().to_numpy()
            keys = column[present].map(category_key)
            x[present, j] = keys.map(lambda k, c=codes: c.get(k, math.nan)).to_numpy(np.float64)
        elif pd.api.types.is_datetime64_any_dtype(column):
            x[:, j] = time_seconds(column) if column.notna().all() else _datetime_or_nan(column)
        else:
            x[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
    return x


def _datetime_or_nan(column: pd.Series) -> npt.NDArray[np.float64]:
    stamps = column.dt.tz_localize("UTC") if column.dt.tz is None else column.dt.tz_convert("UTC")
    return _epoch_seconds(stamps)


_EPOCH: Final = pd.Timestamp(0, tz="UTC")


def _epoch_seconds(stamps: pd.Series) -> npt.NDArray[np.float64]:
    """UTC timestamps as float seconds, whatever their resolution (ns, us, s); NaT -> NaN."""
    seconds = (stamps - _EPOCH) / pd.Timedelta(seconds=1)
    return np.asarray(seconds.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Prepared:
    """One table, checked and encoded: in time order, labels 0/1."""

    x: Matrix
    y: Labels
    t: npt.NDArray[np.float64]


def _check_columns(frame: pd.DataFrame, label: str, time: str | None, id: str | None) -> None:
    if len(frame) == 0:
        raise TrainingDataError("the data has no rows")
    if len(frame.columns) > COLUMNS_MAX:
        raise TrainingDataError(f"the data has more than {COLUMNS_MAX} columns")
    if frame.columns.duplicated().any():
        raise TrainingDataError("the data has two columns of the same name")
    for param, name in (("label", label), ("time", time), ("id", id)):
        if name is not None and name not in frame.columns:
            raise TrainingDataError(f"no column named {name!r}", param=param)


def _prepare(
    frame: pd.DataFrame, y: Labels, time: str | None, features: Sequence[Feature]
) -> Prepared:
    t = time_seconds(frame[time]) if time else np.arange(len(frame), dtype=np.float64)
    order = np.argsort(t, kind="stable")
    return Prepared(x=encode_frame(frame, features)[order], y=y[order], t=t[order])


# The search.

Params = dict[str, Any]


def default_like() -> list[Params]:
    """LightGBM's defaults (then at half the learning rate): the search starts where the
    reference stands, so it can only choose something else by doing better on validation."""
    base: Params = {
        "num_leaves": 31,
        "learning_rate": 0.1,
        "min_child_samples": 20,
        "feature_fraction": 1.0,
        "bagging_fraction": 1.0,
        "lambda_l1": 0.0,
        "lambda_l2": 0.0,
        "scale_pos_weight": 1.0,
    }
    return [base, {**base, "learning_rate": 0.05}]


def sample_params(rng: np.random.Generator, imbalance: float) -> Params:
    """One random configuration. Class weights up to sqrt(negatives / positives): full
    balancing flattens the ranking at the top, where average precision is earned."""

    def log_uniform(lo: float, hi: float) -> float:
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    weights = [1.0, 1.0, 2.0, max(1.0, math.sqrt(imbalance))]
    return {
        "num_leaves": int(rng.choice([7, 15, 31, 31, 63, 127])),
        "learning_rate": log_uniform(0.02, 0.12),
        "min_child_samples": int(rng.choice([5, 10, 20, 40, 80, 160])),
        "feature_fraction": float(rng.choice([0.5, 0.7, 0.85, 1.0])),
        "bagging_fraction": float(rng.choice([0.6, 0.8, 1.0])),
        "lambda_l1": 0.0 if rng.random() < 0.5 else log_uniform(1e-3, 5.0),
        "lambda_l2": 0.0 if rng.random() < 0.4 else log_uniform(1e-3, 20.0),
        "scale_pos_weight": float(rng.choice(weights)),
    }


def booster_params(p: Params, *, seed: int, threads: int) -> Params:
    return {
        "objective": "binary",
        "metric": "average_precision",
        "verbose": -1,
        "seed": seed,
        "num_threads": threads,
        "force_col_wise": True,
        "bagging_freq": 1 if p["bagging_fraction"] < 1.0 else 0,
        **p,
    }


DATASET_PARAMS: Final = {"feature_pre_filter": False, "verbose": -1}


@dataclass
class Fold:
    train: lgb.Dataset
    valid: lgb.Dataset
    y_valid: Labels
    train_rows: int


@dataclass
class Trial:
    """One configuration's validation AP after each boosting round, per fold. It is judged by
    the mean of its folds' curves, smoothed over SMOOTH_ROUNDS: a single fold's best round on a
    few dozen positives is mostly noise, and choosing it overfits the validation."""

    params: Params
    curves: dict[int, Matrix] = field(default_factory=dict)  # by fold
    boosters: dict[int, lgb.Booster] = field(default_factory=dict)

    def _mean_curve(self) -> Matrix:
        length = max(len(c) for c in self.curves.values())
        padded = [np.pad(c, (0, length - len(c)), mode="edge") for c in self.curves.values()]
        mean = np.mean(padded, axis=0)
        window = np.ones(min(SMOOTH_ROUNDS, length)) / min(SMOOTH_ROUNDS, length)
        # Centred moving average; the ends average over what they have.
        weight = np.convolve(np.ones(length), window, mode="same")
        return np.asarray(np.convolve(mean, window, mode="same") / weight, dtype=np.float64)

    @property
    def score(self) -> float:
        return float(self._mean_curve().max())

    @property
    def rounds(self) -> int:
        return int(np.argmax(self._mean_curve())) + 1

    def margins(self, folds: Sequence[Fold]) -> tuple[Matrix, Labels]:
        """Out-of-time margins of each fold's model at the chosen round, and their labels."""
        keys = sorted(self.boosters)
        margins = [
            np.asarray(
                self.boosters[k].predict(
                    folds[k].valid.get_data(), raw_score=True, num_iteration=self.rounds
                ),
                dtype=np.float64,
            )
            for k in keys
        ]
        return np.concatenate(margins), np.concatenate([folds[k].y_valid for k in keys])


def _make_folds(x: Matrix, y: Labels, categorical: list[int]) -> list[Fold]:
    """Expanding-window folds, most recent last; a fold with too few positives is skipped."""
    n = len(y)
    folds = []
    for k in range(FOLDS):
        lo = int(n * (1 - (FOLDS - k) * FOLD_VALID_FRACTION))
        hi = int(n * (1 - (FOLDS - k - 1) * FOLD_VALID_FRACTION))
        if y[lo:hi].sum() < FOLD_POSITIVES_MIN or y[:lo].sum() < FOLD_POSITIVES_MIN:
            continue
        train = lgb.Dataset(
            x[:lo],
            y[:lo],
            categorical_feature=categorical,
            params=DATASET_PARAMS,
            free_raw_data=False,
        )
        valid = lgb.Dataset(
            x[lo:hi],
            y[lo:hi],
            reference=train,
            categorical_feature=categorical,
            params=DATASET_PARAMS,
            free_raw_data=False,
        )
        folds.append(Fold(train=train, valid=valid, y_valid=y[lo:hi], train_rows=lo))
    if not folds:  # rare positives, bunched: one fold over the last fifth
        lo = int(n * 0.8)
        train = lgb.Dataset(
            x[:lo],
            y[:lo],
            categorical_feature=categorical,
            params=DATASET_PARAMS,
            free_raw_data=False,
        )
        valid = lgb.Dataset(
            x[lo:],
            y[lo:],
            reference=train,
            categorical_feature=categorical,
            params=DATASET_PARAMS,
            free_raw_data=False,
        )
        if y[lo:].sum() == 0 or y[:lo].sum() == 0:
            raise TrainingDataError("too few positives to validate on: the positives are bunched")
        folds.append(Fold(train=train, valid=valid, y_valid=y[lo:], train_rows=lo))
    return folds


def _deadline(at: float) -> Callable[[Any], None]:
    """A LightGBM callback that ends training once the monotonic clock passes `at` (the model
    keeps the rounds it has), but never before ROUNDS_FLOOR rounds: a fit cut shorter than the
    default's 100 rounds would judge its configuration, or refit the winner, on a model worse
    than the reference. The budget can be overrun by at most that much work."""

    def callback(env: Any) -> None:
        if env.iteration + 1 >= ROUNDS_FLOOR and clock.monotonic() > at:
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list or [])

    callback.order = 40  # type: ignore[attr-defined]  # after early stopping's (30)
    return callback


def _run_trial(
    trial: Trial, k: int, fold: Fold, *, seed: int, threads: int, deadline: float
) -> None:
    params = booster_params(trial.params, seed=seed, threads=threads)
    patience = max(PATIENCE_ROUNDS_MIN, round(PATIENCE_LR_ROUNDS / trial.params["learning_rate"]))
    history: dict[str, Any] = {}
    booster = lgb.train(
        params,
        fold.train,
        num_boost_round=ROUNDS_MAX,
        valid_sets=[fold.valid],
        valid_names=["valid"],
        callbacks=[
            lgb.early_stopping(patience, first_metric_only=True, verbose=False),
            lgb.record_evaluation(history),
            _deadline(deadline),
        ],
    )
    curve = np.asarray(history["valid"]["average_precision"], dtype=np.float64)
    trial.curves[k] = curve
    trial.boosters[k] = booster


def search(
    x: Matrix,
    y: Labels,
    categorical: list[int],
    *,
    budget_s: float,
    seed: int,
    threads: int,
    progress: Progress,
    candidates: int = CANDIDATES_MAX,
) -> tuple[Trial, list[Fold], int]:
    """Successive halving under a time budget. Returns the chosen trial, the folds and the
    number of candidates tried."""
    start = clock.monotonic()
    folds = _make_folds(x, y, categorical)
    last = len(folds) - 1
    imbalance = float((len(y) - y.sum()) / max(1, y.sum()))
    rng = np.random.default_rng(seed)
    trials = [Trial(p) for p in default_like()]
    trials += [Trial(sample_params(rng, imbalance)) for _ in range(candidates - len(trials))]

    def elapsed() -> float:
        return clock.monotonic() - start

    # Rung 0: candidates on the most recent fold while its share of the budget lasts; the
    # default-like pair always runs.
    done: list[Trial] = []
    for i, trial in enumerate(trials):
        if i >= 2 and elapsed() > RUNG0_SHARE * budget_s:
            break
        # The default-like pair shares the rung's time; the others stop at its end.
        share = RUNG0_SHARE * budget_s * (min(i + 1, 2) / 2)
        _run_trial(trial, last, folds[last], seed=seed, threads=threads, deadline=start + share)
        done.append(trial)
        best = max(t.score for t in done)
        progress(f"search: {len(done)} candidates, best validation AP {best:.4f}")
    ranked = sorted(done, key=lambda t: -t.score)
    # Rung 1: the best third on the earlier folds, best first, while the budget lasts.
    keep = ranked[: max(2, math.ceil(len(ranked) / 3))] if len(folds) > 1 else []
    # Out of the race: their models freed. Never the best: with one fold (or no finalist done
    # in time) it is the one chosen, and its fold's model calibrates the score.
    for trial in ranked[max(1, len(keep)) :]:
        trial.boosters.clear()
    complete: list[Trial] = []
    for trial in keep:
        if elapsed() > budget_s:
            break
        for k in range(last):
            _run_trial(trial, k, folds[k], seed=seed, threads=threads, deadline=start + budget_s)
        complete.append(trial)
        progress(f"search: {len(complete)}/{len(keep)} finalists on {len(folds)} folds")
    # Out of time before any finalist finished: the best on the most recent fold.
    chosen = max(complete, key=lambda t: t.score) if complete else ranked[0]
    return chosen, folds, len(done)


# Calibration.


def fit_platt(margins: Matrix, y: Labels) -> dict[str, float]:
    """Platt scaling: p = sigmoid(a * margin + b), fitted by damped Newton steps on the log
    loss with Platt's smoothed targets. a > 0 is kept, so calibration never reorders scores."""
    n_pos = float(y.sum())
    n_neg = float(len(y) - n_pos)
    target = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(a: float, b: float) -> float:
        z = a * margins + b
        # -[t log p + (1 - t) log(1 - p)] = log(1 + e^z) - t z, computed without overflow
        return float(np.sum(np.logaddexp(0.0, z) - target * z))

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(100):
        p = expit(a * margins + b)
        w = np.maximum(p * (1 - p), 1e-12)
        g = np.array([np.sum((p - target) * margins), np.sum(p - target)])
        h = np.array(
            [[np.sum(w * margins * margins), np.sum(w * margins)], [np.sum(w * margins), w.sum()]]
        )
        step = np.linalg.solve(h + 1e-9 * np.eye(2), g)
        scale = 1.0
        while scale > 1e-6:  # halve the step until the loss goes down
            new = loss(a - scale * float(step[0]), b - scale * float(step[1]))
            if new <= current:
                break
            scale /= 2
        else:
            break
        a, b = a - scale * float(step[0]), b - scale * float(step[1])
        if current - new < 1e-12 * max(1.0, abs(current)):
            current = new
            break
        current = new
    if not (a > 0 and math.isfinite(a) and math.isfinite(b)):
        a, b = 1.0, 0.0  # a model no better than chance on validation: leave it as it is
    return {"a": a, "b": b}


# The isolation forest.


def fit_anomaly(x: Matrix, *, seed: int, threads: int) -> AnomalyDetector:
    fill = np.nanmedian(np.where(np.isnan(x).all(axis=0), 0.0, x), axis=0)
    fill = np.where(np.isnan(fill), 0.0, fill)
    filled = np.where(np.isnan(x), fill, x)
    forest = IsolationForest(
        n_estimators=ANOMALY_TREES,
        max_samples=min(ANOMALY_MAX_SAMPLES, len(x)),
        random_state=seed,
        n_jobs=threads,
    ).fit(filled)
    trees = []
    for est, cols in zip(forest.estimators_, forest.estimators_features_, strict=True):
        t = est.tree_
        feature = np.where(t.children_left >= 0, np.asarray(cols)[np.maximum(t.feature, 0)], 0)
        trees.append(
            IsolationTree(
                left=t.children_left.astype(np.int64),
                right=t.children_right.astype(np.int64),
                feature=feature.astype(np.int64),
                threshold=t.threshold.astype(np.float64),
                n_node_samples=t.n_node_samples.astype(np.float64),
            )
        )
    return AnomalyDetector(
        trees=tuple(trees), max_samples=int(forest.max_samples_), fill=fill.astype(np.float64)
    )


# The whole run.


@dataclass(frozen=True, slots=True)
class TrainResult:
    artefact: ModelArtifact
    report: dict[str, Any]  # what `strongroom risk train --json` prints


def _split_description(y: Labels) -> dict[str, int]:
    return {"rows": len(y), "positives": int(y.sum())}


def budget_for(rows: int, columns: int, asked_s: float | None) -> float:
    """The budget asked for, or by default one scaled to the table, at most BUDGET_S_DEFAULT."""
    if asked_s is not None:
        return asked_s
    return min(BUDGET_S_DEFAULT, BUDGET_S_FLOOR + rows * columns * BUDGET_S_PER_CELL)


def train(
    frame: pd.DataFrame,
    label: str,
    time: str | None = None,
    id: str | None = None,
    budget_s: float | None = None,
    progress: Progress = _quiet,
    *,
    holdout: pd.DataFrame | None = None,
    seed: int = 0,
    threads: int = TRAIN_THREADS,
    source: str | None = None,
    candidates: int = CANDIDATES_MAX,
) -> TrainResult:
    """Train, calibrate and evaluate a model on `frame`. With `holdout`, that table (same
    columns) is the hold-out and all of `frame` trains; otherwise the last HOLDOUT_FRACTION of
    `frame` by time is. `candidates` caps the search (the budget caps it too; a test that
    wants the same answer on any machine caps it here). Raises TrainingDataError, having done
    nothing, for unusable data."""
    assert budget_s is None or budget_s > 0
    assert threads >= 1
    assert 2 <= candidates <= CANDIDATES_MAX
    started = clock.monotonic()
    _check_columns(frame, label, time, id)
    if holdout is not None:
        _check_columns(holdout, label, time, id)
        missing = set(frame.columns) - set(holdout.columns)
        if missing:
            raise TrainingDataError(f"the hold-out lacks columns {sorted(missing)[:5]}")
    if holdout is None and len(frame) < ROWS_MIN:
        raise TrainingDataError(f"too few rows: {len(frame)} (at least {ROWS_MIN})")
    names = [c for c in frame.columns if c not in {label, time, id}]
    if not names:
        raise TrainingDataError("no feature columns beside the label, time and id")
    for name in names:
        if not isinstance(name, str):
            raise TrainingDataError(f"column names must be text, not {name!r}")
    if holdout is None:
        labels, positive = binary_labels(frame[label])
        t_all = time_seconds(frame[time]) if time else np.arange(len(frame), dtype=np.float64)
        order = np.argsort(t_all, kind="stable")
        cut = int(len(frame) * (1 - HOLDOUT_FRACTION))
        train_frame, y_train = frame.iloc[order[:cut]], labels[order[:cut]]
        hold_frame, y_hold = frame.iloc[order[cut:]], labels[order[cut:]]
    else:
        # One mapping for both tables, so the positive value means the same in each.
        labels, positive = binary_labels(pd.concat([frame[label], holdout[label]]))
        train_frame, y_train = frame, labels[: len(frame)]
        hold_frame, y_hold = holdout, labels[len(frame) :]

    kinds = {n: _column_kind(train_frame[n]) for n in names}
    features = [
        Feature(n, "categorical", _categories(train_frame[n]))
        if kinds[n] == "categorical"
        else Feature(n, "numeric")
        for n in names
    ]
    categorical = [j for j, f in enumerate(features) if f.kind == "categorical"]
    for f in features:
        if f.kind == "numeric" and _out_of_range(train_frame[f.name], hold_frame[f.name]):
            # The model's reference histograms (and JSON) cannot hold them.
            raise TrainingDataError(
                f"column {f.name!r} has infinite values or values beyond +-{NUMERIC_ABS_MAX:g}",
                param="data",
            )
    if y_hold.sum() < HOLDOUT_POSITIVES_MIN or y_hold.sum() == len(y_hold):
        raise TrainingDataError(
            "the hold-out (the most recent rows) needs positives and negatives: it has "
            f"{int(y_hold.sum())} positives of {len(y_hold)} rows",
            param="label",
        )
    if int(y_train.sum()) < POSITIVES_MIN:
        raise TrainingDataError(
            f"too few positives to train on: {int(y_train.sum())} in the training part "
            f"(at least {POSITIVES_MIN})",
            param="label",
        )
    tr = _prepare(train_frame, y_train, time, features)
    ho = _prepare(hold_frame, y_hold, time, features)
    budget = budget_for(len(tr.y) + len(ho.y), len(features), budget_s)
    progress(f"{len(tr.y)} training rows, {len(ho.y)} hold-out rows; budget {budget:.0f} s")

    # The reference: LightGBM's defaults, same split, same categorical columns.
    progress("reference: a default LGBMClassifier")
    t0 = clock.monotonic()
    baseline = lgb.LGBMClassifier(n_jobs=threads, verbose=-1)
    baseline.fit(tr.x, tr.y, categorical_feature=categorical or "auto")
    base_p = np.asarray(baseline.predict_proba(ho.x), dtype=np.float64)[:, 1]
    baseline_s = clock.monotonic() - t0

    spent = clock.monotonic() - started
    search_s = max(1.0, SEARCH_SHARE * budget - spent - baseline_s)  # the refit costs ~ one
    chosen, folds, tried = search(
        tr.x,
        tr.y,
        categorical,
        budget_s=search_s,
        seed=seed,
        threads=threads,
        progress=progress,
        candidates=candidates,
    )
    fold_rows = float(np.mean([folds[k].train_rows for k in chosen.curves]))
    rounds = max(1, round(chosen.rounds * min(REFIT_ROUNDS_FACTOR, len(tr.y) / fold_rows)))
    progress(f"refit: up to {rounds} rounds on all {len(tr.y)} training rows")
    full = lgb.Dataset(
        tr.x, tr.y, categorical_feature=categorical, params=DATASET_PARAMS, free_raw_data=False
    )
    # The refit stops at the budget's end (less what the extras after it need), never below
    # ROUNDS_FLOOR rounds.
    booster = lgb.train(
        booster_params(chosen.params, seed=seed, threads=threads),
        full,
        num_boost_round=rounds,
        callbacks=[_deadline(started + budget * (1 - EXTRAS_SHARE))],
    )
    capped = booster.current_iteration() < rounds
    rounds = booster.current_iteration()
    calibrator = fit_platt(*chosen.margins(folds))

    progress("anomaly detector and reference histograms")
    anomaly = fit_anomaly(tr.x, seed=seed, threads=threads)
    margin_ho = np.asarray(booster.predict(ho.x, raw_score=True), dtype=np.float64)
    a, b = calibrator["a"], calibrator["b"]
    p_ho = expit(a * margin_ho + b)
    metrics = {
        "average_precision": float(average_precision_score(ho.y, p_ho)),
        "roc_auc": float(roc_auc_score(ho.y, p_ho)),
        "brier": float(brier_score_loss(ho.y, p_ho)),
        "baseline_average_precision": float(average_precision_score(ho.y, base_p)),
        "baseline_roc_auc": float(roc_auc_score(ho.y, base_p)),
        "baseline_brier": float(brier_score_loss(ho.y, base_p)),
        "validation_average_precision": chosen.score,
    }
    reference = {
        "features": {
            f.name: reference_histogram(tr.x[:, j], categorical=f.kind == "categorical")
            for j, f in enumerate(features)
        },
        # The score's reference is the hold-out's: out-of-time, as live scores will be (the
        # training rows' own scores are overfitted).
        "score": reference_histogram(p_ho),
        "score_source": "holdout",
    }
    seconds = clock.monotonic() - started
    training = {
        "source": source,
        "label": label,
        "positive_label": positive,
        "time": time,
        "id": id,
        "train": {**_split_description(tr.y), "from_s": float(tr.t[0]), "to_s": float(tr.t[-1])},
        "holdout": {**_split_description(ho.y), "from_s": float(ho.t[0]), "to_s": float(ho.t[-1])},
        "params": chosen.params,
        "rounds": rounds,
        "rounds_capped_by_budget": capped,
        "candidates": tried,
        "folds": len(folds),
        "budget_s": budget,
        "seconds": seconds,
        "baseline_seconds": baseline_s,
        "threads": threads,
        "seed": seed,
    }
    artefact = ModelArtifact(
        model_text=booster.model_to_string(),
        features=features,
        calibrator=calibrator,
        anomaly=anomaly,
        metrics=metrics,
        training=training,
        reference=reference,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    report = {
        "model_version": artefact.version,
        **metrics,
        "train": _split_description(tr.y),
        "holdout": _split_description(ho.y),
        "features": {"numeric": len(features) - len(categorical), "categorical": len(categorical)},
        "best_params": chosen.params,
        "rounds": rounds,
        "rounds_capped_by_budget": capped,
        "candidates": tried,
        "folds": len(folds),
        "budget_s": round(budget, 1),
        "seconds": round(seconds, 1),
    }
    return TrainResult(artefact=artefact, report=report)


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The human form of the report: ours beside the default LightGBM's."""
    return [
        f"model {report['model_version']}: {report['candidates']} candidates, "
        f"{report['rounds']} rounds, {report['seconds']} s (budget {report['budget_s']} s)",
        f"train   {report['train']['rows']:>9} rows {report['train']['positives']:>7} positives",
        f"holdout {report['holdout']['rows']:>9} rows "
        f"{report['holdout']['positives']:>7} positives",
        "hold-out          trained   default LightGBM",
        f"average precision {report['average_precision']:.4f}    "
        f"{report['baseline_average_precision']:.4f}",
        f"ROC AUC           {report['roc_auc']:.4f}    {report['baseline_roc_auc']:.4f}",
    ]
