"""The risk domain's types, shared by the feature engine, the model, the rules, the gate and the
review queue. Pure: no I/O, no third-party imports."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from strongroom.ledger.model import Payment, Verdict


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """One payment as the feature engine sees it: online (a transfer the ledger is asked to
    post, or posted) or offline (a row of a history file). `amount` is in major units of the
    asset (the feature engine's own float, never money that moves)."""

    event_id: str  # the transfer id, or the file's id column
    at_s: float  # when, seconds since the epoch (UTC)
    amount: float
    customer: str
    payee: str | None = None
    device: str | None = None
    ip: str | None = None
    channel: str | None = None
    fraud: bool | None = None  # its label, once known


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a decision is what it is: a rule's id and reason, or the model's score."""

    code: str  # a rule id, or `model_score`, `anomaly_score`, `scoring_failed`
    text: str


@dataclass(frozen=True, slots=True)
class Contribution:
    """One feature's part in a model score (a tree SHAP value, in log-odds)."""

    feature: str
    value: float
    contribution: float


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The risk decision on one payment, and everything needed to explain and replay it."""

    verdict: Verdict
    score: float | None  # calibrated probability of fraud; None without a model
    reasons: tuple[Reason, ...]
    model_version: str | None
    rules_version: str | None
    features: Mapping[str, float] = field(default_factory=dict)
    contributions: tuple[Contribution, ...] = ()  # review and block only, or on read
    shadow_score: float | None = None  # the shadow model's score, acting on nothing
    shadow_version: str | None = None


# (tenant, the decision's model version, its features by name) -> the largest contributions
# (that model's explain of the row, risk.policies.TenantPolicies.explain), wired by the
# composition root where models are loaded; empty when no such model is found.
Explain = Callable[[str, str, Mapping[str, float]], Sequence[Contribution]]


class FeatureSource(Protocol):
    """Computes the features of payments as of their own time (risk.features.FeatureEngine)."""

    names: tuple[str, ...]

    def observe(self, event: PaymentEvent) -> None:
        """Add a posted payment to the windows."""

    def label(self, event_id: str, fraud: bool) -> None:
        """Record a payment's label once known (an analyst's decision, a chargeback)."""

    def features(self, events: Sequence[PaymentEvent]) -> list[dict[str, float]]:
        """Each event's features, in order; an event sees the earlier ones of the same call
        as if observed, and itself (as the handbook's windows include the current payment)."""
        ...


class Policy(Protocol):
    """Turns features into decisions (risk.decide.RiskPolicy): rules, then one model call for
    the whole batch, explanations for review and block only. The gate and `strongroom risk
    backtest` both decide through it, so a backtest replays exactly what the gate would do."""

    def decide(
        self, rows: Sequence[Mapping[str, float]], *, explain: bool = True
    ) -> list[RiskDecision]:
        """`explain=False`: the decisions carry no contributions (computed when read)."""
        ...


class Scorer(Protocol):
    """A trained model (risk.artefact.ModelArtifact): scores rows of features by name."""

    version: str
    feature_names: tuple[str, ...]

    def score(self, rows: Sequence[Mapping[str, float]]) -> list[float]:
        """Calibrated fraud probabilities, one per row, with one model call for all rows."""
        ...

    def explain(self, rows: Sequence[Mapping[str, float]], top: int) -> list[list[Contribution]]:
        """Each row's `top` largest tree SHAP contributions by absolute value."""
        ...


__all__ = [
    "Contribution",
    "Explain",
    "FeatureSource",
    "Payment",
    "PaymentEvent",
    "Policy",
    "Reason",
    "RiskDecision",
    "Scorer",
]
