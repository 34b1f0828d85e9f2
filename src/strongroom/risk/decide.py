"""The decision policy (docs/risk-rules.md, "Severity"): rules, then one model call for the whole
batch, explanations for review and block only. The gate (risk.gate) and `strongroom risk
backtest` (risk.backtest) both decide through `RiskPolicy.decide`, so a backtest replays exactly
what the gate would have decided on the same rows.

How the verdict is made, for each row:
1. Every rule is evaluated; each hit is a reason (`code` = the rule id, `text` = its reason).
2. The verdict is the most severe of the hit rules' actions (block > review > allow) and of the
   score thresholds that fired: the model's calibrated score at or past `score.block` blocks,
   at or past `score.review` reviews; the anomaly score at or past `score.anomaly_review`
   reviews. A threshold that fires adds a `model_score` (or `anomaly_score`) reason.
3. An `allow` rule is a whitelist of the score's *review* only: a row that hits one is not sent
   to review by the model or the anomaly score. It never overrides another rule's review or
   block, nor a model score past `score.block` (a whitelist must not let a near-certain fraud
   through; to exempt a population from a block rule, narrow that rule's condition).
4. The shadow model, if any, is scored with one call for the batch and recorded beside the
   decision; it acts on nothing, and its failure only logs.
5. A live model or anomaly score that is not a finite number (a damaged artefact: NaN leaves)
   is a failure of the policy, never a low score: NaN compares false with every threshold and
   would allow the payment silently, so `decide` raises and the gate fails safe as
   STRONGROOM_RISK_FAIL says. A shadow's non-finite score is recorded as none.

Pure and deterministic: the same rows give the same decisions, whatever the batch they come in
(given a model whose score of a row does not depend on the other rows of the call).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from strongroom.ledger.model import Verdict
from strongroom.risk.model import Contribution, Reason, RiskDecision, Scorer
from strongroom.risk.rules import SEVERITY, RuleSet

CONTRIBUTIONS_TOP: Final = 5  # tree SHAP contributions kept per review or block decision

AnomalyScorer = Callable[[Sequence[Mapping[str, float]]], Sequence[float]]

log = logging.getLogger("strongroom.risk")

_VERDICTS: Final = {severity: verdict for verdict, severity in SEVERITY.items()}
_ALLOW: Final = SEVERITY[Verdict.ALLOW]
_REVIEW: Final = SEVERITY[Verdict.REVIEW]
_BLOCK: Final = SEVERITY[Verdict.BLOCK]


class RiskPolicy:
    """Implements risk.model.Policy. `anomaly` scores a batch of rows (higher is more
    anomalous) with one call; it is called only when the rules set `score.anomaly_review`."""

    def __init__(
        self,
        rules: RuleSet,
        model: Scorer | None,
        shadow: Scorer | None = None,
        anomaly: AnomalyScorer | None = None,
    ) -> None:
        self.rules = rules
        self.model = model
        self.shadow = shadow
        self.anomaly = anomaly
        self._review = rules.score.review if model is not None else None
        self._block = rules.score.block if model is not None else None
        self._anomaly_review = rules.score.anomaly_review if anomaly is not None else None
        # Each rule's test, its reason (made once, shared by every decision) and its severity.
        self._rules = tuple(
            (rule.test, Reason(rule.id, rule.reason), SEVERITY[rule.action]) for rule in rules.rules
        )

    @property
    def model_version(self) -> str | None:
        return self.model.version if self.model is not None else None

    def decide(
        self, rows: Sequence[Mapping[str, float]], *, explain: bool = True
    ) -> list[RiskDecision]:
        """`explain=False`: no tree SHAP here (the gate's way: a review's or block's
        explanation is computed when its answer or its case is read, off the posting path)."""
        if not rows:
            return []
        scores = self._score(rows)
        shadow_scores = self._shadow_scores(rows)
        anomalies = self._anomalies(rows)
        model_version = self.model_version
        shadow_version = self.shadow.version if self.shadow is not None else None
        rules_version = self.rules.version
        review, block, anomaly_review = self._review, self._block, self._anomaly_review

        verdicts: list[Verdict] = []
        reasons_of: list[tuple[Reason, ...]] = []
        explain_at: list[int] = []
        for i, row in enumerate(rows):
            severity, allowed = _ALLOW, False
            reasons: list[Reason] = []
            for test, reason, rule_severity in self._rules:
                if test(row):
                    reasons.append(reason)
                    severity = max(severity, rule_severity)
                    allowed = allowed or rule_severity == _ALLOW
            if scores is not None:
                score = scores[i]
                if block is not None and score >= block:
                    severity = _BLOCK
                    reasons.append(
                        Reason("model_score", f"model score {score:.4f} >= block {block:g}")
                    )
                elif review is not None and score >= review and not allowed:
                    severity = max(severity, _REVIEW)
                    reasons.append(
                        Reason("model_score", f"model score {score:.4f} >= review {review:g}")
                    )
            if anomalies is not None and anomaly_review is not None and not allowed:
                anomaly = anomalies[i]
                if anomaly >= anomaly_review:
                    severity = max(severity, _REVIEW)
                    reasons.append(
                        Reason(
                            "anomaly_score",
                            f"anomaly score {anomaly:.4f} >= review {anomaly_review:g}",
                        )
                    )
            if severity != _ALLOW:
                explain_at.append(i)
            verdicts.append(_VERDICTS[severity])
            reasons_of.append(tuple(reasons))

        contributions: dict[int, tuple[Contribution, ...]] = {}
        if explain and explain_at and self.model is not None:
            explained = self.model.explain([rows[i] for i in explain_at], CONTRIBUTIONS_TOP)
            assert len(explained) == len(explain_at), "one explanation per row"
            contributions = {i: tuple(c) for i, c in zip(explain_at, explained, strict=True)}

        return [
            RiskDecision(
                verdict=verdicts[i],
                score=scores[i] if scores is not None else None,
                reasons=reasons_of[i],
                model_version=model_version,
                rules_version=rules_version,
                features=dict(row),
                contributions=contributions.get(i, ()),
                shadow_score=shadow_scores[i] if shadow_scores is not None else None,
                shadow_version=shadow_version,
            )
            for i, row in enumerate(rows)
        ]

    def _score(self, rows: Sequence[Mapping[str, float]]) -> list[float] | None:
        """The live model's scores; its failure propagates (the gate fails safe, as configured)."""
        if self.model is None:
            return None
        scores = [float(s) for s in self.model.score(rows)]
        assert len(scores) == len(rows), "one score per row"
        _require_finite(scores, f"model {self.model.version}")
        return scores

    def _shadow_scores(self, rows: Sequence[Mapping[str, float]]) -> list[float | None] | None:
        if self.shadow is None:
            return None
        try:
            scores: list[float | None] = [float(s) for s in self.shadow.score(rows)]
        except Exception as exc:  # the shadow acts on nothing, its failure included
            log.warning(
                "shadow model %s failed on a batch of %d rows: %s",
                self.shadow.version,
                len(rows),
                type(exc).__name__,
            )
            return [None] * len(rows)
        assert len(scores) == len(rows), "one shadow score per row"
        if not all(math.isfinite(s) for s in scores if s is not None):
            log.warning("shadow model %s answered non-finite scores", self.shadow.version)
            scores = [s if s is not None and math.isfinite(s) else None for s in scores]
        return scores

    def _anomalies(self, rows: Sequence[Mapping[str, float]]) -> list[float] | None:
        if self.anomaly is None or self._anomaly_review is None:
            return None
        anomalies = [float(s) for s in self.anomaly(rows)]
        assert len(anomalies) == len(rows), "one anomaly score per row"
        _require_finite(anomalies, "the anomaly detector")
        return anomalies


class NonFiniteScoreError(ValueError):
    """A scorer answered NaN or an infinity: the policy cannot decide (the gate fails safe)."""


def _require_finite(scores: Sequence[float], what: str) -> None:
    if not all(math.isfinite(s) for s in scores):
        raise NonFiniteScoreError(f"{what} answered a score that is not a finite number")


__all__ = ["CONTRIBUTIONS_TOP", "AnomalyScorer", "NonFiniteScoreError", "RiskPolicy"]
