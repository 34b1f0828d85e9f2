"""What the risk gate hands the case queue of a held payment (Scored.to_dict): the decision as
dataclasses.asdict gives it, without the keyed hashes the gate passes on to the risk sink."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from typing import cast

import pytest
from sqlalchemy.engine import Engine

from strongroom.cases.model import detail_json
from strongroom.ledger.model import Verdict
from strongroom.risk.gate import Scored
from strongroom.risk.model import Contribution, Reason, RiskDecision
from strongroom.risk.service import RiskService


def test_the_case_detail_is_the_decision_as_asdict_gives_it_without_keyed_hashes() -> None:
    decision = RiskDecision(
        verdict=Verdict.REVIEW,
        score=0.625,
        reasons=(Reason("amount_spike", "amount far above"), Reason("model_score", "0.6")),
        model_version="mdl_0123456789abcdef",
        rules_version="rules-1",
        features={"amount": 120.5, "customer_nb_tx_1d": 3.0},
        contributions=(Contribution("amount", 120.5, 1.25), Contribution("new_payee", 1.0, -0.5)),
        shadow_score=0.5,
        shadow_version="mdl_fedcba9876543210",
    )
    scored = Scored("ten_a", decision, keyed=("ab" * 16, None, "cd" * 16))
    as_before = {"tenant_id": "ten_a", "decision": dataclasses.asdict(decision)}
    text = detail_json(scored)
    assert text is not None
    assert json.loads(text) == json.loads(json.dumps(as_before))
    assert "abab" not in text
    assert "keyed" not in text
    bare = RiskDecision(Verdict.BLOCK, None, (), None, None)
    assert json.loads(detail_json(Scored("ten_a", bare)) or "") == json.loads(
        json.dumps({"tenant_id": "ten_a", "decision": dataclasses.asdict(bare)})
    )


def test_an_answer_explains_a_held_decision_by_its_model_and_an_allow_never() -> None:
    asked: list[tuple[str, str, dict[str, float]]] = []

    def explain(tenant: str, version: str, row: Mapping[str, float]) -> list[Contribution]:
        asked.append((tenant, version, dict(row)))
        return [Contribution("amount", row["amount"], 0.75)]

    features = {"amount": 120.5, "new_payee": 1.0}
    held = RiskDecision(Verdict.REVIEW, 0.6, (), "mdl_1", "rules-1", features=features)
    answer = Scored("ten_a", held, explain=explain).answer()
    assert answer["contributions"] == [{"feature": "amount", "value": 120.5, "contribution": 0.75}]
    assert asked == [("ten_a", "mdl_1", features)]
    # The case keeps what the gate decided (no explanation): its view computes one when read.
    assert (
        json.loads(detail_json(Scored("ten_a", held, explain=explain)) or "")["decision"][
            "contributions"
        ]
        == []
    )
    # Carried contributions are answered as they are; an allow, or a decision of no model, is
    # never explained.
    carried = dataclasses.replace(held, contributions=(Contribution("x", 1.0, 2.0),))
    assert Scored("ten_a", carried, explain=explain).answer()["contributions"] == [
        {"feature": "x", "value": 1.0, "contribution": 2.0}
    ]
    allow = dataclasses.replace(held, verdict=Verdict.ALLOW)
    no_model = dataclasses.replace(held, model_version=None)
    for decision in (allow, no_model):
        assert Scored("ten_a", decision, explain=explain).answer()["contributions"] == []
    assert len(asked) == 1


def test_an_explainer_that_fails_leaves_the_answer_and_the_case_view_without_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The transfer has committed when its answer is built, and a case read or decision must
    not fail for want of an explanation: both stand without contributions, with a WARNING."""

    def broken(tenant: str, version: str, row: Mapping[str, float]) -> list[Contribution]:
        raise RuntimeError("the registry is unreachable")

    held = RiskDecision(Verdict.BLOCK, 0.95, (), "mdl_1", "rules-1", features={"amount": 9.0})
    with caplog.at_level(logging.WARNING):
        assert Scored("ten_a", held, explain=broken).answer()["contributions"] == []
        detail = json.loads(detail_json(Scored("ten_a", held)) or "")
        service = RiskService(cast(Engine, None), explain=broken)
        assert service.explain_case("ten_a", None, detail) == detail
        # The decision read's path too (GET /v1/transfers/{id}/risk): no 500 for want of one.
        assert service._explained("ten_a", "mdl_1", {"amount": 9.0}) is None
    # A stored row edited by hand (features not an object, no version) is not explained.
    for features, version in (([1, 2], "mdl_1"), ("abc", "mdl_1"), ({"amount": 1.0}, 7)):
        assert service._explained("ten_a", version, features) is None
    assert len([r for r in caplog.records if "could not explain" in r.getMessage()]) == 3
    assert "registry is unreachable" not in caplog.text  # the exception's type only
