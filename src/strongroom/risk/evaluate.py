"""`strongroom risk evaluate`: a model against a labelled table, as a Markdown report with PNG
plots (precision-recall curve, score distribution by class, feature importance), drawn with
matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_curve,
    roc_auc_score,
)

from strongroom.risk.artefact import ModelArtifact, bin_proportions
from strongroom.risk.drift import psi
from strongroom.risk.trainer import TrainingDataError, binary_labels, encode_frame

IMPORTANCE_TOP: Final = 20
PRECISION_AT: Final = (100, 1_000)


@dataclass(frozen=True, slots=True)
class Evaluation:
    report_path: Path
    metrics: dict[str, Any]


def _precision_at(y: np.ndarray[Any, Any], scores: np.ndarray[Any, Any], k: int) -> float | None:
    if len(y) < k:
        return None
    top = np.argsort(-scores, kind="stable")[:k]
    return float(y[top].mean())


def evaluate(model: ModelArtifact, frame: pd.DataFrame, label: str, out_dir: Path) -> Evaluation:
    """Score `frame` with `model`, write out_dir/report.md and its plots, return the report's
    path and the metrics. Raises TrainingDataError for a table the model cannot read."""
    if label not in frame.columns:
        raise TrainingDataError(f"no column named {label!r}", param="label")
    missing = [n for n in model.feature_names if n not in frame.columns]
    if missing:
        raise TrainingDataError(f"the data lacks the model's features {missing[:5]}")
    y, _ = binary_labels(frame[label])
    x = encode_frame(frame, model.features)
    scores = model.score_matrix(x)
    metrics: dict[str, Any] = {
        "rows": len(y),
        "positives": int(y.sum()),
        "average_precision": float(average_precision_score(y, scores)),
        "roc_auc": float(roc_auc_score(y, scores)),
        "brier": float(brier_score_loss(y, scores)),
        "mean_score": float(scores.mean()),
        "positive_rate": float(y.mean()),
    }
    for k in PRECISION_AT:
        metrics[f"precision_at_{k}"] = _precision_at(y, scores, k)
    ref = model.reference.get("score")
    if ref:
        actual = bin_proportions(scores, ref["edges"])
        metrics["score_psi"] = psi(list(ref["proportions"]), [float(x) for x in actual])

    out_dir.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    precision, recall, _ = precision_recall_curve(y, scores)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(recall, precision, label=f"model (AP {metrics['average_precision']:.3f})")
    ax.axhline(y.mean(), color="grey", linestyle="--", label=f"chance ({y.mean():.4f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "precision_recall.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    bins = np.linspace(0.0, 1.0, 51).tolist()
    ax.hist(scores[y == 0], bins=bins, alpha=0.6, density=True, label="legitimate")
    ax.hist(scores[y == 1], bins=bins, alpha=0.6, density=True, label="fraud")
    ax.set_yscale("log")
    ax.set_xlabel("calibrated score")
    ax.set_ylabel("density (log)")
    ax.set_title("Score distribution by class")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "score_distribution.png", dpi=100)
    plt.close(fig)

    gain = np.asarray(model.booster.feature_importance(importance_type="gain"), dtype=float)
    order = np.argsort(-gain, kind="stable")[:IMPORTANCE_TOP]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(order) + 1.5))
    ax.barh([model.feature_names[i] for i in order][::-1], gain[order][::-1])
    ax.set_xlabel("total gain")
    ax.set_title("Feature importance")
    fig.tight_layout()
    fig.savefig(out_dir / "feature_importance.png", dpi=100)
    plt.close(fig)

    trained = model.metrics
    lines = [
        f"# Model {model.version}: evaluation",
        "",
        f"Evaluated {datetime.now(UTC).isoformat(timespec='seconds')} on {metrics['rows']} rows "
        f"({metrics['positives']} positives). Model created {model.created_at}.",
        "",
        "| metric | this data | training hold-out | default LightGBM (hold-out) |",
        "| --- | --- | --- | --- |",
        _row("average precision", metrics["average_precision"], trained, "average_precision"),
        _row("ROC AUC", metrics["roc_auc"], trained, "roc_auc"),
        _row("Brier score", metrics["brier"], trained, "brier"),
    ]
    for k in PRECISION_AT:
        value = metrics[f"precision_at_{k}"]
        if value is not None:
            lines.append(f"| precision at {k} | {value:.4f} | | |")
    if "score_psi" in metrics:
        lines.append(f"| score PSI vs reference | {metrics['score_psi']:.4f} | | |")
    lines += [
        "",
        f"Mean calibrated score {metrics['mean_score']:.4f}; positive rate "
        f"{metrics['positive_rate']:.4f}.",
        "",
        "![precision-recall](precision_recall.png)",
        "",
        "![score distribution](score_distribution.png)",
        "",
        "![feature importance](feature_importance.png)",
        "",
        "## Top features by gain",
        "",
        "| feature | kind | gain |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {model.feature_names[i]} | {model.features[i].kind} | {gain[i]:.1f} |" for i in order
    ]
    report_path = out_dir / "report.md"
    report_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Evaluation(report_path=report_path, metrics=metrics)


def _row(name: str, value: float, trained: dict[str, Any], key: str) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else ""

    baseline = fmt(trained.get("baseline_" + key))
    return f"| {name} | {value:.4f} | {fmt(trained.get(key))} | {baseline} |"
