"""Synthetic labelled payment tables for the trainer's tests and docs/risk-models.md's figures:
sklearn's make_classification with a rare positive class, categorical columns derived from
informative ones (with noise), a time column over 90 days, and drift of some features over it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

DAY_S = 86_400


def synthetic_fraud(
    seed: int,
    *,
    rows: int = 20_000,
    columns: int = 20,
    positive_rate: float = 0.015,
    categorical: int = 3,
    drift: float = 0.5,
    class_sep: float = 0.8,
    flip_y: float = 0.005,
) -> pd.DataFrame:
    """`columns` feature columns (`categorical` of them text), `is_fraud` (0/1), `at` (ISO
    timestamps, shuffled order in the frame) and `payment_id`."""
    rng = np.random.default_rng(seed)
    numeric = columns - categorical
    x, y = make_classification(
        n_samples=rows,
        n_features=numeric,
        n_informative=max(3, numeric // 3),
        n_redundant=max(0, numeric // 6),
        n_clusters_per_class=3,
        weights=[1 - positive_rate],
        flip_y=flip_y,
        class_sep=class_sep,
        random_state=seed,
    )
    t = np.sort(rng.uniform(0, 90 * DAY_S, rows))
    order = rng.permutation(rows)  # make_classification's rows are in no order; time is random
    x, y = x[order], y[order]
    drifting = rng.choice(numeric, size=max(1, numeric // 4), replace=False)
    x[:, drifting] += drift * (t / t[-1])[:, None] * rng.normal(1.0, 0.3, size=len(drifting))
    frame = pd.DataFrame(x, columns=[f"n{i}" for i in range(numeric)])
    for c in range(categorical):
        source = x[:, c % numeric] + rng.normal(0, 0.5, rows)
        bins = np.quantile(source, np.linspace(0, 1, 6 + 2 * c)[1:-1])
        levels = np.array([f"c{c}_{k}" for k in range(len(bins) + 1)], dtype=object)
        values = levels[np.searchsorted(bins, source)]
        values[rng.random(rows) < 0.02] = None
        frame[f"cat{c}"] = values
    frame["is_fraud"] = y.astype(np.int64)
    stamps = pd.to_datetime(t, unit="s", origin=pd.Timestamp("2026-01-01"))
    frame["at"] = stamps.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame["payment_id"] = [f"pay_{seed}_{i}" for i in range(rows)]
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
