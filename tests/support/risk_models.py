"""A tiny fake model artefact (JSON: a version, metrics, reference histograms) and its
`describe`, for tests of the model registry that need no trained model (risk/registry.py
takes the artefact's `describe` as a parameter)."""

from __future__ import annotations

import json
from typing import Any

from strongroom.risk.drift import SCORE
from strongroom.risk.registry import ArtefactInfo, Described

REFERENCE = {"amount": ([0.0, 10.0, 20.0], [0.5, 0.5]), SCORE: ([0.0, 0.5, 1.0], [0.9, 0.1])}


def artefact(version: str, ap: float = 0.7, **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "version": version,
        "metrics": {"average_precision": ap, "roc_auc": 0.9},
        "reference": {k: [list(e), list(p)] for k, (e, p) in REFERENCE.items()},
    }
    body.update(extra)
    return json.dumps(body).encode()


def describe(raw: bytes) -> ArtefactInfo:
    body = json.loads(raw)
    reference = {k: (v[0], v[1]) for k, v in body["reference"].items()}
    return Described(body["version"], body["metrics"], reference)
