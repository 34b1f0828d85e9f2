"""The model artefact: one JSON file, no pickle, identical scores after a round trip, SHAP
values that sum to the margin, a monotone calibration, and an isolation forest walked by our
own code that agrees with scikit-learn."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest

from strongroom.risk.artefact import ModelArtifact, ModelFileError, from_bytes
from strongroom.risk.trainer import TrainResult, encode_frame, fit_anomaly, train
from tests.support.synthetic_fraud import synthetic_fraud


@pytest.fixture(scope="module")
def trained() -> tuple[TrainResult, pd.DataFrame]:
    frame = synthetic_fraud(7, rows=4_000, columns=8, positive_rate=0.03, categorical=2)
    result = train(frame, "is_fraud", "at", "payment_id", budget_s=4, threads=1, seed=3)
    return result, frame


def _rows(frame: pd.DataFrame, names: tuple[str, ...], n: int) -> list[dict[str, object]]:
    return [{k: row[k] for k in names} for row in frame.head(n).to_dict("records")]


def test_round_trip_gives_identical_scores(
    trained: tuple[TrainResult, pd.DataFrame], tmp_path: Path
) -> None:
    result, frame = trained
    model = result.artefact
    path = tmp_path / "model.json"
    model.save(path)
    loaded = ModelArtifact.load(path)
    rows = _rows(frame, model.feature_names, 300)
    assert loaded.version == model.version
    assert loaded.version.startswith("mdl_")
    assert len(loaded.version) == 4 + 16
    assert loaded.score(rows) == model.score(rows)
    assert loaded.anomaly_scores(rows) == model.anomaly_scores(rows)
    assert loaded.metrics == model.metrics
    x = encode_frame(frame.head(300), model.features)
    assert np.array_equal(loaded.score_matrix(x), np.asarray(model.score(rows)))


def test_the_file_is_json_without_pickle(
    trained: tuple[TrainResult, pd.DataFrame], tmp_path: Path
) -> None:
    path = tmp_path / "model.json"
    trained[0].artefact.save(path)
    raw = path.read_bytes()
    data = json.loads(raw)  # the whole file is one JSON document
    assert data["format"] == "strongroom.risk.model/1"
    assert b"\x80\x04" not in raw
    assert b"\x80\x05" not in raw
    assert "pickle" not in raw.decode().lower()
    assert set(data["reference"]["features"]) == set(trained[0].artefact.feature_names)
    for histogram in [*data["reference"]["features"].values(), data["reference"]["score"]]:
        assert len(histogram["proportions"]) == len(histogram["edges"]) + 1
        assert math.isclose(sum(histogram["proportions"]), 1.0, abs_tol=1e-9)


def test_a_changed_file_is_refused(
    trained: tuple[TrainResult, pd.DataFrame], tmp_path: Path
) -> None:
    path = tmp_path / "model.json"
    trained[0].artefact.save(path)
    data = json.loads(path.read_text())
    data["calibrator"]["a"] = data["calibrator"]["a"] * 2  # content no longer matches version
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="version"):
        ModelArtifact.load(path)
    path.write_bytes(b"\x80\x04\x95 not json")
    with pytest.raises(ModelFileError, match="not JSON"):
        ModelArtifact.load(path)
    with pytest.raises(ModelFileError, match="no model file"):
        ModelArtifact.load(tmp_path / "absent.json")
    path.write_text('{"format": ' + "[" * 200_000 + "]" * 200_000 + "}")  # past the stack
    with pytest.raises(ModelFileError, match="not JSON"):
        ModelArtifact.load(path)
    with pytest.raises(ModelFileError, match="not JSON"):
        from_bytes(path.read_bytes())


def test_explanations_sum_to_the_margin(trained: tuple[TrainResult, pd.DataFrame]) -> None:
    result, frame = trained
    model = result.artefact
    rows = _rows(frame, model.feature_names, 50)
    x = model.encode(rows)
    shap = model.contributions_matrix(x)
    assert np.allclose(shap.sum(axis=1), model.margin_matrix(x), atol=1e-9)
    explained = model.explain(rows, top=len(model.feature_names))
    for i, contributions in enumerate(explained):
        assert len(contributions) == len(model.feature_names)
        total = sum(c.contribution for c in contributions) + shap[i, -1]
        assert math.isclose(total, float(model.margin_matrix(x[i : i + 1])[0]), abs_tol=1e-9)
        magnitudes = [abs(c.contribution) for c in contributions]
        assert magnitudes == sorted(magnitudes, reverse=True)
    assert all(len(c) == 3 for c in model.explain(rows, top=3))


def test_calibration_is_monotone_and_near_the_base_rate(
    trained: tuple[TrainResult, pd.DataFrame],
) -> None:
    model = trained[0].artefact
    margins = np.linspace(-20, 20, 2_001)
    p = model.calibrate(margins)
    assert np.all(np.diff(p) >= 0)
    assert p[0] < p[-1]
    assert np.all((p >= 0) & (p <= 1))
    x = encode_frame(trained[1], model.features)
    # Calibrated on out-of-time folds: the mean score is near the positive rate.
    rate = trained[1]["is_fraud"].mean()
    assert 0.3 * rate < model.score_matrix(x).mean() < 3 * rate


def test_unseen_and_missing_categories_are_missing(
    trained: tuple[TrainResult, pd.DataFrame],
) -> None:
    model = trained[0].artefact
    row = _rows(trained[1], model.feature_names, 1)[0]
    categorical = [f.name for f in model.features if f.kind == "categorical"]
    assert categorical
    unseen = {**row, categorical[0]: "never-seen-value"}
    absent = {**row, categorical[0]: None}
    assert math.isnan(model.encode([unseen])[0, model.feature_names.index(categorical[0])])
    assert model.score([unseen]) == model.score([absent])


def test_isolation_forest_arrays_agree_with_sklearn() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3_000, 6))
    x[:20] += 6.0  # a few outliers
    x[rng.random(x.shape) < 0.01] = np.nan
    detector = fit_anomaly(x, seed=5, threads=1)
    filled = np.where(np.isnan(x), detector.fill, x)
    forest = IsolationForest(n_estimators=100, max_samples=256, random_state=5, n_jobs=1).fit(
        filled
    )
    ours = detector.score_matrix(x)
    assert np.allclose(ours, -forest.score_samples(filled), rtol=1e-12, atol=1e-12)
    assert ours[:20].mean() > ours[20:].mean() + 0.1  # the outliers stand out


def test_numeric_values_encode_alike_in_every_spelling(
    trained: tuple[TrainResult, pd.DataFrame],
) -> None:
    """The numeric columns are converted at once; a missing key, None and NaN are missing, an
    int, a bool and a numeric string are their float, in any mix; a value that is no number is
    refused as the cell-by-cell path refuses it."""
    model = trained[0].artefact
    base = _rows(trained[1], model.feature_names, 1)[0]
    numeric = [f.name for f in model.features if f.kind == "numeric"]
    first, second, third = numeric[:3]
    spellings: list[dict[str, object]] = [
        {k: v for k, v in base.items() if k != first},
        {**base, first: None, second: math.nan},
        {**base, first: 3, second: True, third: "2.5"},
        {**base, first: np.float32(1.5), second: pd.NA},
    ]
    x = model.encode(spellings)
    j1, j2, j3 = (model.feature_names.index(n) for n in (first, second, third))
    assert math.isnan(x[0, j1])
    assert math.isnan(x[1, j1])
    assert math.isnan(x[1, j2])
    assert (x[2, j1], x[2, j2], x[2, j3]) == (3.0, 1.0, 2.5)
    assert x[3, j1] == 1.5
    assert math.isnan(x[3, j2])  # pd.NA: the cell-by-cell path
    for i, row in enumerate(spellings):  # one row at a time answers the same
        assert np.array_equal(model.encode([row])[0], x[i], equal_nan=True)
    with pytest.raises(ValueError, match="could not convert"):
        model.encode([{**base, first: "not a number"}])
