"""The decision policy (risk.decide.RiskPolicy): severity, thresholds, allow rules, one model call
per batch, explanations for review and block only, and a shadow that acts on nothing."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from strongroom.ledger.model import Verdict
from strongroom.risk.decide import CONTRIBUTIONS_TOP, NonFiniteScoreError, RiskPolicy
from strongroom.risk.model import Contribution, Policy, RiskDecision
from strongroom.risk.rules import RuleSet


class FakeScorer:
    """Scores a row by its feature `p` (or `shadow_p`); records every call."""

    def __init__(self, version: str = "m1", feature: str = "p", *, fail: bool = False) -> None:
        self.version = version
        self.feature_names = (feature,)
        self.feature = feature
        self.fail = fail
        self.score_calls: list[int] = []
        self.explain_calls: list[tuple[list[dict[str, float]], int]] = []

    def score(self, rows: Sequence[Mapping[str, float]]) -> list[float]:
        self.score_calls.append(len(rows))
        if self.fail:
            raise RuntimeError("model down")
        return [row.get(self.feature, 0.0) for row in rows]

    def explain(self, rows: Sequence[Mapping[str, float]], top: int) -> list[list[Contribution]]:
        self.explain_calls.append(([dict(r) for r in rows], top))
        return [[Contribution(self.feature, row.get(self.feature, 0.0), 0.5)] for row in rows]


def rule(rule_id: str, feature: str, action: str, *, value: float = 1) -> dict[str, Any]:
    return {
        "id": rule_id,
        "when": {"feature": feature, "op": ">=", "value": value},
        "action": action,
        "reason": f"{rule_id} fired",
    }


RULES = RuleSet.from_document(
    {
        "version": "t",
        "score": {"review": 0.5, "block": 0.9, "anomaly_review": 3.0},
        "rules": [
            rule("watch", "watch", "review"),
            rule("deny", "deny", "block"),
            rule("trusted", "trusted", "allow"),
        ],
    }
)


def one(policy: RiskPolicy, **row: float) -> RiskDecision:
    return policy.decide([row])[0]


def codes(decision: RiskDecision) -> list[str]:
    return [reason.code for reason in decision.reasons]


def test_the_policy_is_a_policy() -> None:
    policy: Policy = RiskPolicy(RULES, FakeScorer())
    assert policy.decide([]) == []


@pytest.mark.parametrize(
    ("row", "verdict", "reasons"),
    [
        ({}, Verdict.ALLOW, []),
        ({"watch": 1}, Verdict.REVIEW, ["watch"]),
        ({"deny": 1}, Verdict.BLOCK, ["deny"]),
        ({"watch": 1, "deny": 1}, Verdict.BLOCK, ["watch", "deny"]),
        ({"p": 0.49}, Verdict.ALLOW, []),
        ({"p": 0.5}, Verdict.REVIEW, ["model_score"]),
        ({"p": 0.9}, Verdict.BLOCK, ["model_score"]),
        ({"p": 0.6, "deny": 1}, Verdict.BLOCK, ["deny", "model_score"]),
        ({"p": 0.95, "watch": 1}, Verdict.BLOCK, ["watch", "model_score"]),
        # An allow rule stops the score's review, and nothing else.
        ({"p": 0.6, "trusted": 1}, Verdict.ALLOW, ["trusted"]),
        ({"p": 0.95, "trusted": 1}, Verdict.BLOCK, ["trusted", "model_score"]),
        ({"watch": 1, "trusted": 1}, Verdict.REVIEW, ["watch", "trusted"]),
        ({"deny": 1, "trusted": 1}, Verdict.BLOCK, ["deny", "trusted"]),
        ({"trusted": 1}, Verdict.ALLOW, ["trusted"]),
    ],
)
def test_the_most_severe_of_rules_and_thresholds_wins(
    row: dict[str, float], verdict: Verdict, reasons: list[str]
) -> None:
    decision = one(RiskPolicy(RULES, FakeScorer()), **row)
    assert decision.verdict is verdict
    assert codes(decision) == reasons


def test_reasons_carry_the_rule_text_and_the_score() -> None:
    decision = one(RiskPolicy(RULES, FakeScorer()), watch=1, p=0.93)
    assert [(r.code, r.text) for r in decision.reasons] == [
        ("watch", "watch fired"),
        ("model_score", "model score 0.9300 >= block 0.9"),
    ]
    assert decision.score == 0.93
    assert decision.model_version == "m1"
    assert decision.rules_version == RULES.version
    assert decision.features == {"watch": 1, "p": 0.93}


def test_without_a_model_only_rules_act() -> None:
    policy = RiskPolicy(RULES, None)
    decision = one(policy, p=0.99)
    assert decision.verdict is Verdict.ALLOW
    assert decision.score is None
    assert decision.model_version is None
    assert decision.contributions == ()
    assert one(policy, deny=1).verdict is Verdict.BLOCK


def test_one_score_call_per_batch_and_one_explain_call_for_review_and_block_only() -> None:
    model = FakeScorer()
    rows = [{"p": 0.1}, {"p": 0.6}, {"deny": 1.0, "p": 0.0}, {"p": 0.2}, {"p": 0.99}]
    decisions = RiskPolicy(RULES, model).decide(rows)
    assert [d.verdict for d in decisions] == [
        Verdict.ALLOW,
        Verdict.REVIEW,
        Verdict.BLOCK,
        Verdict.ALLOW,
        Verdict.BLOCK,
    ]
    assert model.score_calls == [5]
    assert model.explain_calls == [([rows[1], rows[2], rows[4]], CONTRIBUTIONS_TOP)]
    assert [len(d.contributions) for d in decisions] == [0, 1, 1, 0, 1]
    assert decisions[4].contributions == (Contribution("p", 0.99, 0.5),)


def test_no_explain_call_when_every_row_is_allowed() -> None:
    model = FakeScorer()
    RiskPolicy(RULES, model).decide([{"p": 0.1}, {"p": 0.2}])
    assert model.score_calls == [2]
    assert model.explain_calls == []


def test_the_shadow_is_recorded_and_acts_on_nothing() -> None:
    rows = [
        {"p": 0.1, "shadow_p": 0.99},
        {"p": 0.6, "shadow_p": 0.0},
        {"deny": 1.0, "shadow_p": 0.7},
    ]
    live = RiskPolicy(RULES, FakeScorer()).decide(rows)
    shadow = FakeScorer("m2", "shadow_p")
    with_shadow = RiskPolicy(RULES, FakeScorer(), shadow=shadow).decide(rows)
    assert shadow.score_calls == [3]
    assert shadow.explain_calls == []
    assert [d.shadow_score for d in with_shadow] == [0.99, 0.0, 0.7]
    assert {d.shadow_version for d in with_shadow} == {"m2"}
    unshadowed = [
        dataclasses.replace(d, shadow_score=None, shadow_version=None) for d in with_shadow
    ]
    assert unshadowed == live


def test_a_failing_shadow_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    rows = [{"p": 0.6}, {"p": 0.1}]
    live = RiskPolicy(RULES, FakeScorer()).decide(rows)
    decisions = RiskPolicy(RULES, FakeScorer(), shadow=FakeScorer("m2", fail=True)).decide(rows)
    assert [d.shadow_score for d in decisions] == [None, None]
    assert [dataclasses.replace(d, shadow_version=None) for d in decisions] == live
    assert "shadow model m2 failed on a batch of 2 rows: RuntimeError" in caplog.text


def test_a_failing_live_model_propagates_for_the_gate_to_fail_safe() -> None:
    with pytest.raises(RuntimeError, match="model down"):
        RiskPolicy(RULES, FakeScorer(fail=True)).decide([{"p": 0.1}])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_live_score_is_a_failure_not_an_allow(bad: float) -> None:
    # NaN compares false with every threshold: taken as a score it would allow silently.
    with pytest.raises(NonFiniteScoreError, match="model m1"):
        RiskPolicy(RULES, FakeScorer()).decide([{"p": 0.1}, {"p": bad}])


def test_a_non_finite_anomaly_score_is_a_failure() -> None:
    def anomaly(rows: Sequence[Mapping[str, float]]) -> list[float]:
        return [float("nan")] * len(rows)

    with pytest.raises(NonFiniteScoreError, match="anomaly"):
        RiskPolicy(RULES, None, anomaly=anomaly).decide([{"a": 1.0}])


def test_a_non_finite_shadow_score_is_recorded_as_none(caplog: pytest.LogCaptureFixture) -> None:
    rows = [{"p": 0.6, "shadow_p": float("nan")}, {"p": 0.1, "shadow_p": 0.3}]
    decisions = RiskPolicy(RULES, FakeScorer(), shadow=FakeScorer("m2", "shadow_p")).decide(rows)
    assert [d.shadow_score for d in decisions] == [None, 0.3]
    assert [d.verdict for d in decisions] == [Verdict.REVIEW, Verdict.ALLOW]
    assert "shadow model m2 answered non-finite scores" in caplog.text


def test_the_anomaly_score_reviews_unless_an_allow_rule_hits() -> None:
    calls: list[int] = []

    def anomaly(rows: Sequence[Mapping[str, float]]) -> list[float]:
        calls.append(len(rows))
        return [row.get("a", 0.0) for row in rows]

    policy = RiskPolicy(RULES, None, anomaly=anomaly)
    decisions = policy.decide(
        [{"a": 2.9}, {"a": 3.0}, {"a": 5.0, "trusted": 1.0}, {"a": 4.0, "deny": 1.0}]
    )
    assert [d.verdict for d in decisions] == [
        Verdict.ALLOW,
        Verdict.REVIEW,
        Verdict.ALLOW,
        Verdict.BLOCK,
    ]
    assert codes(decisions[1]) == ["anomaly_score"]
    assert decisions[1].reasons[0].text == "anomaly score 3.0000 >= review 3"
    assert codes(decisions[3]) == ["deny", "anomaly_score"]
    assert calls == [4]
    no_threshold = RuleSet.from_document({"version": "t", "rules": []})
    RiskPolicy(no_threshold, None, anomaly=anomaly).decide([{"a": 9.0}])
    assert calls == [4]  # not called when no threshold would read it


def test_decisions_are_deterministic_and_independent_of_batching() -> None:
    rng = random.Random(11)
    rows = [
        {
            "p": rng.random(),
            "watch": float(rng.random() < 0.1),
            "deny": float(rng.random() < 0.05),
            "trusted": float(rng.random() < 0.2),
        }
        for _ in range(300)
    ]
    policy = RiskPolicy(RULES, FakeScorer())
    whole = policy.decide(rows)
    assert policy.decide(rows) == whole
    in_batches = [d for start in range(0, 300, 7) for d in policy.decide(rows[start : start + 7])]
    assert in_batches == whole
    assert {d.verdict for d in whole} == set(Verdict)
