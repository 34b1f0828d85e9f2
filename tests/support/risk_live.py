"""A real fraud model for tests of the live path: a synthetic payment history replayed through
the feature engine (risk.features, the gate's own code), labelled by a hidden pattern (large
night-time card-not-present payments at a few compromised payees), trained by risk.trainer
with a small budget. Built once per test session (a few seconds)."""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

import pandas as pd

from strongroom.risk.artefact import ModelArtifact
from strongroom.risk.features import ALL_FEATURES, FeatureEngine
from strongroom.risk.model import PaymentEvent
from strongroom.risk.trainer import train

START_S = 1_790_000_000.0  # 2026-09-21
ROWS = 6_000
COMPROMISED = ("pay_bad_1", "pay_bad_2", "pay_bad_3")


def history(rows: int = ROWS, seed: int = 7) -> list[PaymentEvent]:
    rng = random.Random(seed)
    out = []
    at = START_S
    for i in range(rows):
        at += rng.expovariate(1 / 300)
        payee = rng.choice(COMPROMISED) if rng.random() < 0.05 else f"pay_{rng.randrange(200)}"
        night = ((at // 3600) % 24) <= 6
        amount = round(rng.lognormvariate(3.5, 0.8), 2)
        fraud = payee in COMPROMISED and (night or amount > 60) and rng.random() < 0.9
        if fraud:
            amount = round(amount * 3, 2)
        out.append(
            PaymentEvent(
                event_id=f"h{i}",
                at_s=at,
                amount=amount,
                customer=f"c{rng.randrange(300)}",
                payee=payee,
                device=f"d{rng.randrange(400)}",
                channel="card_not_present",
                fraud=fraud,
            )
        )
    return out


@lru_cache(maxsize=1)
def trained(directory: str) -> Path:
    """The artefact's path (trained once per directory)."""
    events = history()
    matrix = FeatureEngine().replay(events, len(events))
    frame = pd.DataFrame(matrix, columns=list(ALL_FEATURES))
    frame["fraud"] = [int(bool(e.fraud)) for e in events]
    frame["time"] = [e.at_s for e in events]
    result = train(frame, "fraud", time="time", budget_s=10, candidates=2, threads=1)
    path = Path(directory) / "model.json"
    result.artefact.save(path)
    return path


def load(path: Path) -> ModelArtifact:
    return ModelArtifact.load(path)
