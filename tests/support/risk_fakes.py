"""Small fakes of the risk domain's ports (risk.model.FeatureSource and Policy), for the gate's
tests: the real feature engine and policy are other modules' (risk.features, risk.decide)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from strongroom.ledger.model import Verdict
from strongroom.risk.model import Contribution, PaymentEvent, Reason, RiskDecision

REVIEW_FROM: Final = 100.0  # major units: a payment of this much or more is held
BLOCK_FROM: Final = 1_000.0  # and of this much or more, blocked


class CountingSource:
    """Counts, per customer, the payments observed and those labelled fraud; its features are
    the amount and those counts (the earlier events of the same call counted as observed)."""

    names = ("amount", "customer_count", "customer_fraud")

    def __init__(self) -> None:
        self.observed: list[PaymentEvent] = []
        self.labels: dict[str, bool] = {}

    def observe(self, event: PaymentEvent) -> None:
        self.observed.append(event)
        if event.fraud is not None:
            self.labels[event.event_id] = event.fraud

    def label(self, event_id: str, fraud: bool) -> None:
        self.labels[event_id] = fraud

    def features(self, events: Sequence[PaymentEvent]) -> list[dict[str, float]]:
        out = []
        seen = list(self.observed)
        for event in events:
            mine = [e for e in seen if e.customer == event.customer]
            out.append(
                {
                    "amount": event.amount,
                    "customer_count": float(len(mine)),
                    "customer_fraud": float(sum(1 for e in mine if self.labels.get(e.event_id))),
                }
            )
            seen.append(event)
        return out


class AmountPolicy:
    """allow below REVIEW_FROM, review below BLOCK_FROM, block from it; `calls` counts the
    calls (the gate makes one per batch); `fail` makes every call raise."""

    def __init__(self) -> None:
        self.calls = 0
        self.rows_seen: list[int] = []
        self.fail = False

    def decide(
        self, rows: Sequence[Mapping[str, float]], *, explain: bool = True
    ) -> list[RiskDecision]:
        self.calls += 1
        self.rows_seen.append(len(rows))
        if self.fail:
            raise RuntimeError("the model is gone")
        out = []
        for row in rows:
            amount = row["amount"]
            if amount >= BLOCK_FROM:
                verdict, reasons = Verdict.BLOCK, (Reason("big_amount", "amount >= 1000"),)
            elif amount >= REVIEW_FROM:
                verdict, reasons = Verdict.REVIEW, (Reason("model_score", "score 0.5"),)
            else:
                verdict, reasons = Verdict.ALLOW, (Reason("model_score", "score 0.01"),)
            contributions = (
                (Contribution("amount", amount, 1.5),)
                if verdict is not Verdict.ALLOW and explain
                else ()
            )
            out.append(
                RiskDecision(
                    verdict=verdict,
                    score=0.5 if verdict is not Verdict.ALLOW else 0.01,
                    reasons=reasons,
                    model_version="m-test-1",
                    rules_version="r-test-1",
                    contributions=contributions,
                )
            )
        return out
