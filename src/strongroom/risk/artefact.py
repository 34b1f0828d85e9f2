"""A trained fraud model as one versioned file (docs/risk-models.md, "The artefact").

The file is JSON and nothing else: LightGBM's own model text, the feature names and kinds, the
categorical value->code mappings, the calibrator's two numbers, an isolation forest's trees as
arrays, reference histograms for drift, the hold-out metrics and a description of the training
data. Loading it parses JSON and hands a string to LightGBM; it never unpickles, so a model file
cannot run code. The version is `mdl_` and 16 hex digits of the SHA-256 of what decides a score
(model text, features, calibrator, anomaly trees): the same content always has the same version.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from scipy.special import expit

from strongroom.core.errors import InvalidRequest
from strongroom.risk.features import ALL_FEATURES
from strongroom.risk.model import Contribution
from strongroom.risk.modeltext import ModelTextError, check_model_text

FORMAT: Final = "strongroom.risk.model/1"
ARTEFACT_BYTES_MAX: Final = 512 * 1024 * 1024  # a file past this is refused before it is read
SCORE_THREADS: Final = 1  # one row or one batch: thread start-up costs more than it saves
HISTOGRAM_BINS: Final = 10

Matrix = npt.NDArray[np.float64]


class ModelFileError(InvalidRequest):
    """A model file that is missing, not ours, or damaged: nothing was loaded."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="invalid_model_file")


@dataclass(frozen=True, slots=True)
class Feature:
    """One input column: numeric, or categorical with its value->code mapping (the code is
    the value's index in `categories`; a value not in it is missing)."""

    name: str
    kind: str  # "numeric" | "categorical"
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        assert self.kind in ("numeric", "categorical"), self.kind
        assert self.kind == "categorical" or not self.categories


def category_key(value: object) -> str:
    """The one text form of a categorical value, used at training and at scoring alike."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))  # 3.0 read from a CSV with a missing value is the category 3
    return str(value)


def is_missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pandas NA
    except (TypeError, ValueError):
        return True


def _sigmoid(x: Matrix) -> Matrix:
    return np.asarray(expit(x), dtype=np.float64)


# The isolation forest: sklearn's trees, stored as arrays and walked here.


def average_path_length(n: npt.NDArray[np.float64]) -> Matrix:
    """c(n): the mean path length of an unsuccessful search in a binary search tree of n
    points (Liu, Ting and Zhou 2008), 0 for n <= 1 and 1 for n == 2."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    two = n == 2
    big = n > 2
    out[two] = 1.0
    m = n[big]
    out[big] = 2.0 * (np.log(m - 1.0) + np.euler_gamma) - 2.0 * (m - 1.0) / m
    return out


@dataclass(frozen=True, slots=True)
class IsolationTree:
    left: npt.NDArray[np.int64]  # -1 at a leaf
    right: npt.NDArray[np.int64]
    feature: npt.NDArray[np.int64]  # index into the model's features
    threshold: npt.NDArray[np.float64]  # go left when x[feature] <= threshold
    n_node_samples: npt.NDArray[np.float64]

    def path_lengths(self, x: Matrix) -> Matrix:
        """Each row's depth at its leaf plus c(samples left at that leaf)."""
        node = np.zeros(x.shape[0], dtype=np.int64)
        depth = np.zeros(x.shape[0], dtype=np.float64)
        rows = np.arange(x.shape[0])
        active = self.left[node] >= 0
        while active.any():
            idx = rows[active]
            at = node[idx]
            go_left = x[idx, self.feature[at]] <= self.threshold[at]
            node[idx] = np.where(go_left, self.left[at], self.right[at])
            depth[idx] += 1.0
            active[idx] = self.left[node[idx]] >= 0
        return depth + average_path_length(self.n_node_samples[node])


@dataclass(frozen=True, slots=True)
class AnomalyDetector:
    """Isolation forest scoring, written out: score = 2^(-E[h(x)] / c(max_samples)), in
    (0, 1], higher is more anomalous (sklearn's `-score_samples`). Missing inputs take the
    training median (`fill`), categorical codes are numbers, as at fit time."""

    trees: tuple[IsolationTree, ...]
    max_samples: int
    fill: npt.NDArray[np.float64]

    def score_matrix(self, x: Matrix) -> Matrix:
        # sklearn compares float32 inputs with its thresholds: do the same, to agree exactly.
        x = np.where(np.isnan(x), self.fill, x).astype(np.float32).astype(np.float64)
        total = np.zeros(x.shape[0], dtype=np.float64)
        for tree in self.trees:
            total += tree.path_lengths(x)
        mean = total / len(self.trees)
        norm = float(average_path_length(np.array([float(self.max_samples)]))[0])
        return np.asarray(2.0 ** (-mean / norm), dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        return {
            "max_samples": self.max_samples,
            "fill": [float(v) for v in self.fill],
            "trees": [
                {
                    "left": t.left.tolist(),
                    "right": t.right.tolist(),
                    "feature": t.feature.tolist(),
                    "threshold": t.threshold.tolist(),
                    "n_node_samples": t.n_node_samples.tolist(),
                }
                for t in self.trees
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], n_features: int) -> AnomalyDetector:
        trees = []
        for t in data["trees"]:
            tree = IsolationTree(
                left=np.asarray(t["left"], dtype=np.int64),
                right=np.asarray(t["right"], dtype=np.int64),
                feature=np.asarray(t["feature"], dtype=np.int64),
                threshold=np.asarray(t["threshold"], dtype=np.float64),
                n_node_samples=np.asarray(t["n_node_samples"], dtype=np.float64),
            )
            n = len(tree.left)
            if not (len(tree.right) == len(tree.feature) == len(tree.threshold) == n > 0):
                raise ModelFileError("an anomaly tree's arrays differ in length")
            inner = tree.left >= 0
            children = np.concatenate([tree.left[inner], tree.right[inner]])
            if children.size and (children.min() < 1 or children.max() >= n):
                raise ModelFileError("an anomaly tree points outside itself")
            if inner.any() and (
                tree.feature[inner].min() < 0 or tree.feature[inner].max() >= n_features
            ):
                raise ModelFileError("an anomaly tree names a feature the model does not have")
            parents = np.flatnonzero(inner)
            if np.any(tree.left[inner] <= parents) or np.any(tree.right[inner] <= parents):
                raise ModelFileError("an anomaly tree's child comes before its parent")
            trees.append(tree)
        fill = np.asarray(data["fill"], dtype=np.float64)
        if fill.shape != (n_features,) or int(data["max_samples"]) < 1 or not trees:
            raise ModelFileError("the anomaly detector does not match the model's features")
        return cls(trees=tuple(trees), max_samples=int(data["max_samples"]), fill=fill)


# Reference histograms, for the population stability index of features and score.


def reference_histogram(values: Matrix, *, categorical: bool = False) -> dict[str, Any]:
    """Bin edges (inner, ascending) and the share of non-missing values in each of the
    len(edges) + 1 bins, plus the share missing. Numeric: deciles; categorical: one bin per
    code of the first HISTOGRAM_BINS - 1 codes and one for the rest."""
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    missing = 1.0 - present.size / values.size if values.size else 0.0
    if categorical:
        edges = np.arange(HISTOGRAM_BINS - 1, dtype=np.float64) + 0.5
    elif present.size:
        qs = np.quantile(present, np.linspace(0, 1, HISTOGRAM_BINS + 1)[1:-1])
        edges = np.unique(qs)
    else:
        edges = np.zeros(0)
    return {
        "edges": [float(e) for e in edges],
        "proportions": [float(p) for p in bin_proportions(present, edges)],
        "missing": float(missing),
    }


def bin_proportions(values: Matrix, edges: Matrix | Sequence[float]) -> Matrix:
    """The share of `values` (no NaN) in each bin: (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    edges = np.asarray(edges, dtype=np.float64)
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
    total = counts.sum()
    return np.asarray(counts / total if total else counts.astype(np.float64), dtype=np.float64)


# One row at a time: LightGBM's single-row fast path, without Python's per-call set-up.

# LightGBM's public C API, through the handle its Python package loaded (not re-exported).
_LIB: Any = lgb.basic._LIB  # type: ignore[attr-defined]
_PREDICT_RAW: Final = 1  # C_API_PREDICT_RAW_SCORE
_PREDICT_CONTRIB: Final = 3  # C_API_PREDICT_CONTRIB
_DTYPE_FLOAT64: Final = 1  # C_API_DTYPE_FLOAT64


class _SingleRow:
    """A prepared single-row predictor (LGBM_BoosterPredictForMatSingleRowFast): a quarter of
    `Booster.predict`'s time on one row. Its C state is not thread-safe: a lock guards it."""

    def __init__(self, booster: lgb.Booster, n_features: int, predict_type: int) -> None:
        self._booster = booster  # the handle below lives as long as the booster
        self._handle = ctypes.c_void_p()
        self._width = n_features + 1 if predict_type == _PREDICT_CONTRIB else 1
        self._out = np.zeros(self._width, dtype=np.float64)
        self._out_len = ctypes.c_int64()
        self._n_features = n_features
        self._lock = threading.Lock()
        lgb.basic._safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(predict_type),
                ctypes.c_int(0),
                ctypes.c_int(-1),
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(n_features),
                lgb.basic._c_str(f"num_threads={SCORE_THREADS}"),
                ctypes.byref(self._handle),
            )
        )

    def predict(self, row: Matrix) -> Matrix:
        row = np.ascontiguousarray(row, dtype=np.float64)
        assert row.shape == (self._n_features,), row.shape
        with self._lock:
            lgb.basic._safe_call(
                _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                    self._handle,
                    row.ctypes.data_as(ctypes.c_void_p),
                    ctypes.byref(self._out_len),
                    self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                )
            )
            assert self._out_len.value == self._width, self._out_len.value
            return self._out.copy()

    def __del__(self) -> None:
        if getattr(self, "_handle", None) is not None and self._handle.value:
            _LIB.LGBM_FastConfigFree(self._handle)


# The artefact.


def _content_version(content: Mapping[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "mdl_" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


class ModelArtifact:
    """A trained model, ready to score (implements risk.model.Scorer)."""

    version: str
    feature_names: tuple[str, ...]

    def __init__(
        self,
        *,
        model_text: str,
        features: Sequence[Feature],
        calibrator: Mapping[str, float],
        anomaly: AnomalyDetector | None,
        metrics: Mapping[str, Any],
        training: Mapping[str, Any],
        reference: Mapping[str, Any],
        created_at: str,
        version: str | None = None,
    ) -> None:
        self.model_text = model_text
        self.features = tuple(features)
        self.feature_names = tuple(f.name for f in self.features)
        self.calibrator = {"a": float(calibrator["a"]), "b": float(calibrator["b"])}
        a, b = self.calibrator["a"], self.calibrator["b"]
        if not (math.isfinite(a) and a > 0 and math.isfinite(b)):
            # A slope <= 0 turns the score upside down: every payment the model finds safe
            # would be scored as fraud, and every fraud as safe.
            raise ModelFileError(
                "the calibrator's slope must be positive, and both its numbers finite"
            )
        self.anomaly = anomaly
        self.metrics = dict(metrics)
        self.training = dict(training)
        self.reference = dict(reference)
        self.created_at = created_at
        try:
            # Before LightGBM's own loader, which a malformed tree crashes (modeltext.py).
            check_model_text(model_text, len(self.features))
        except ModelTextError as exc:
            raise ModelFileError(f"the model file's trees are unsound: {exc}") from None
        self.booster = lgb.Booster(model_str=model_text)
        if self.booster.num_feature() != len(self.features):
            raise ModelFileError("the model text and the feature list disagree")
        self._raw_row = _SingleRow(self.booster, len(self.features), _PREDICT_RAW)
        self._contrib_row = _SingleRow(self.booster, len(self.features), _PREDICT_CONTRIB)
        self._codes = [
            {c: float(i) for i, c in enumerate(f.categories)} if f.kind == "categorical" else None
            for f in self.features
        ]
        self._numeric = [j for j, codes in enumerate(self._codes) if codes is None]
        self._numeric_names = [self.feature_names[j] for j in self._numeric]
        computed = _content_version(self._content())
        if version is not None and version != computed:
            raise ModelFileError("the model file's version does not match its content")
        self.version = computed

    def _content(self) -> dict[str, Any]:
        return {
            "model": self.model_text,
            "features": [
                {"name": f.name, "kind": f.kind, "categories": list(f.categories)}
                for f in self.features
            ],
            "calibrator": {"kind": "platt", **self.calibrator},
            "anomaly": self.anomaly.to_json() if self.anomaly else None,
        }

    # Encoding: rows of named values -> the model's matrix.

    def encode(self, rows: Sequence[Mapping[str, object]]) -> Matrix:
        """Rows by feature name -> a float matrix in `feature_names` order. A missing key,
        None or NaN is missing; a categorical value is looked up in its mapping (unseen ->
        missing); a numeric value must be a number."""
        x = np.full((len(rows), len(self.features)), np.nan, dtype=np.float64)
        numeric = self._numeric
        done = False
        if numeric:
            # The numeric columns at once (None -> NaN, as below): the gate's hot path, about
            # a tenth of the loop's time. Anything numpy will not convert takes the loop.
            names = self._numeric_names
            try:
                x[:, numeric] = np.array(
                    [[row.get(name) for name in names] for row in rows], dtype=np.float64
                )
                done = True
            except (TypeError, ValueError):
                pass
            if done and len(numeric) == len(self.features):
                return x
        for j, (name, codes) in enumerate(zip(self.feature_names, self._codes, strict=True)):
            if codes is None and done:
                continue
            for i, row in enumerate(rows):
                value = row.get(name)
                if is_missing(value):
                    continue
                if codes is None:
                    x[i, j] = float(value)  # type: ignore[arg-type]
                else:
                    x[i, j] = codes.get(category_key(value), math.nan)
        return x

    # Scoring.

    def margin_matrix(self, x: Matrix) -> Matrix:
        """The booster's raw score (log-odds before calibration) for an encoded matrix."""
        if x.shape[0] == 1:
            return self._raw_row.predict(x[0])
        out = self.booster.predict(x, raw_score=True, num_threads=SCORE_THREADS)
        return np.asarray(out, dtype=np.float64)

    def calibrate(self, margin: Matrix) -> Matrix:
        """Platt scaling fitted on out-of-time validation margins: strictly increasing."""
        return _sigmoid(self.calibrator["a"] * margin + self.calibrator["b"])

    def score_matrix(self, x: Matrix) -> Matrix:
        return self.calibrate(self.margin_matrix(x))

    def score(self, rows: Sequence[Mapping[str, float]]) -> list[float]:
        if not rows:
            return []
        return [float(p) for p in self.score_matrix(self.encode(rows))]

    def contributions_matrix(self, x: Matrix) -> Matrix:
        """Tree SHAP values, (rows, features + 1): the last column is the expected margin;
        each row sums to its raw margin."""
        if x.shape[0] == 1:
            return self._contrib_row.predict(x[0])[None, :]
        out = self.booster.predict(x, pred_contrib=True, num_threads=SCORE_THREADS)
        return np.asarray(out, dtype=np.float64)

    def explain(self, rows: Sequence[Mapping[str, float]], top: int) -> list[list[Contribution]]:
        assert top >= 0, top
        if not rows:
            return []
        x = self.encode(rows)
        shap = self.contributions_matrix(x)[:, : len(self.features)]
        result = []
        for i in range(len(rows)):
            order = np.argsort(-np.abs(shap[i]), kind="stable")[:top]
            result.append(
                [
                    Contribution(
                        feature=self.feature_names[j],
                        value=float(x[i, j]),
                        contribution=float(shap[i, j]),
                    )
                    for j in order
                ]
            )
        return result

    def anomaly_matrix(self, x: Matrix) -> Matrix:
        assert self.anomaly is not None, "this model has no anomaly detector"
        return self.anomaly.score_matrix(x)

    def anomaly_scores(self, rows: Sequence[Mapping[str, float]]) -> list[float]:
        """Isolation-forest anomaly scores in (0, 1]; about 0.5 is ordinary, near 1 is odd."""
        if not rows:
            return []
        return [float(s) for s in self.anomaly_matrix(self.encode(rows))]

    # The file.

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "created_at": self.created_at,
            **self._content(),
            "metrics": self.metrics,
            "training": self.training,
            "reference": self.reference,
        }

    def save(self, path: Path) -> None:
        """Written to a temporary file beside `path`, then renamed: a reader never sees half."""
        text = json.dumps(self.to_json(), separators=(",", ":"), allow_nan=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> ModelArtifact:
        try:
            size = path.stat().st_size
        except OSError:
            raise ModelFileError(f"no model file at {path}") from None
        if size > ARTEFACT_BYTES_MAX:
            raise ModelFileError(f"the model file is larger than {ARTEFACT_BYTES_MAX} bytes")
        try:
            data = json.loads(path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ModelFileError(f"{path} is not a model file (not JSON)") from None
        return cls.from_json(data)

    @classmethod
    def from_json(cls, data: Any) -> ModelArtifact:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelFileError(f"not a model file of format {FORMAT}")
        try:
            features = []
            for f in data["features"]:
                kind, categories = str(f["kind"]), tuple(str(c) for c in f["categories"])
                if kind not in ("numeric", "categorical") or (kind == "numeric" and categories):
                    raise ModelFileError(f"unknown feature kind {kind!r}")
                features.append(Feature(name=str(f["name"]), kind=kind, categories=categories))
            calibrator = data["calibrator"]
            if calibrator.get("kind") != "platt":
                raise ModelFileError("unknown calibrator kind")
            anomaly = (
                AnomalyDetector.from_json(data["anomaly"], len(features))
                if data.get("anomaly")
                else None
            )
            return cls(
                model_text=str(data["model"]),
                features=features,
                calibrator=calibrator,
                anomaly=anomaly,
                metrics=data.get("metrics", {}),
                training=data.get("training", {}),
                reference=data.get("reference", {}),
                created_at=str(data["created_at"]),
                version=str(data["version"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError, lgb.basic.LightGBMError):
            raise ModelFileError("the model file is damaged or incomplete") from None


# What the model registry reads of an artefact (risk.registry.ArtefactInfo).


@dataclass(frozen=True, slots=True)
class Description:
    """An artefact's version, hold-out metrics and reference histograms, by name (the score's
    under `score`): name -> (inner bin edges, proportions)."""

    version: str
    metrics: Mapping[str, Any]
    reference: Mapping[str, tuple[Sequence[float], Sequence[float]]]


def from_bytes(raw: bytes) -> ModelArtifact:
    """An artefact from a file's bytes (the registry's column), checked as `load` checks it."""
    if len(raw) > ARTEFACT_BYTES_MAX:
        raise ModelFileError(f"the model file is larger than {ARTEFACT_BYTES_MAX} bytes")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: nesting
        raise ModelFileError("not a model file (not JSON)") from None
    return ModelArtifact.from_json(data)


def describe(raw: bytes) -> Description:
    """risk.registry's `describe`: the artefact is loaded (so a malformed one, or one that
    reads features the engine does not compute, is refused before anything is registered),
    then its reference histograms are read as the drift monitor wants them."""
    artefact = from_bytes(raw)
    # The registry serves what it holds to the gate: a model reading anything but the feature
    # engine's features (one trained on a file's own columns) could never score a payment.
    foreign = sorted(set(artefact.feature_names) - set(ALL_FEATURES))
    if foreign:
        raise ModelFileError(
            f"the model reads features the live feature engine does not compute: "
            f"{', '.join(foreign[:8])}; train it on the engine's features (strongroom risk "
            "train on a raw payment history, docs/risk-training.md)"
        )
    reference: dict[str, tuple[Sequence[float], Sequence[float]]] = {}
    features = artefact.reference.get("features", {})
    for name, histogram in features.items():
        reference[str(name)] = (histogram["edges"], histogram["proportions"])
    score = artefact.reference.get("score")
    if score is not None:
        reference["score"] = (score["edges"], score["proportions"])
    return Description(artefact.version, artefact.metrics, reference)
