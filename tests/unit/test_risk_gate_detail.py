"""What the risk gate hands the case queue of a held payment (Scored.to_dict): the decision as
dataclasses.asdict gives it, without the keyed hashes the gate passes on to the risk sink."""

from __future__ import annotations

import dataclasses
import json

from strongroom.cases.model import detail_json
from strongroom.ledger.model import Verdict
from strongroom.risk.gate import Scored
from strongroom.risk.model import Contribution, Reason, RiskDecision


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
