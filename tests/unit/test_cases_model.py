"""The case queue's pure part: kinds, the decision transfer's id, the stored detail."""

from __future__ import annotations

import dataclasses
import json

from strongroom.cases.model import (
    Case,
    CaseStatus,
    decision_transfer_id,
    detail_json,
    kind_for_gate,
)
from strongroom.core.limits import CASE_DETAIL_BYTES_MAX


def test_a_gate_names_its_kind_of_case() -> None:
    assert kind_for_gate("risk") == "risk_review"
    assert kind_for_gate("sanctions") == "sanctions_review"


def test_the_decision_transfer_is_a_function_of_the_case() -> None:
    one = decision_transfer_id("case_01", 1_700_000_000_000_000)
    assert one == decision_transfer_id("case_01", 1_700_000_000_000_000)
    assert one != decision_transfer_id("case_02", 1_700_000_000_000_000)
    assert one.startswith("tr_")
    assert len(one) == len("tr_") + 26


class _Scalar:
    """A numpy scalar's shape: `.item()` gives the plain value."""

    def __init__(self, value: float) -> None:
        self.value = value

    def item(self) -> float:
        return self.value


def test_the_detail_is_canonical_json_within_its_bound() -> None:
    assert detail_json(None) is None
    assert detail_json({}) is None

    @dataclasses.dataclass(frozen=True)
    class Detail:
        score: float
        reasons: tuple[str, ...]

    assert detail_json(Detail(0.25, ("new_payee",))) == '{"reasons":["new_payee"],"score":0.25}'
    text = detail_json({"score": _Scalar(0.5), "reasons": ("a", "b"), "codes": {"x"}})
    assert text == '{"codes":["x"],"reasons":["a","b"],"score":0.5}'
    huge = {
        "score": 0.9,
        "reasons": ["r1"],
        "features": {f"f{i}": i for i in range(5_000)},  # far past the bound
    }
    stored = detail_json(huge)
    assert stored is not None
    assert len(stored.encode()) <= CASE_DETAIL_BYTES_MAX
    assert json.loads(stored) == {"score": 0.9, "reasons": ["r1"], "omitted": ["features"]}


def test_a_cases_detail_is_parsed_in_one_place() -> None:
    """`Case.detail_dict`: what the report, the case work and the sanctions hook read."""

    def case(detail: str | None) -> Case:
        return Case(
            "case_1", "ten_a", "sanctions_match", CaseStatus.OPEN, None, None, None, detail,
            0, None, None, None, None, None,
        )  # fmt: skip

    assert case(None).detail_dict() == {}
    stored = detail_json({"subject": "customer:cus_1", "evidence": {"entries": []}})
    assert case(stored).detail_dict() == {
        "subject": "customer:cus_1",
        "evidence": {"entries": []},
    }
    assert case(stored).to_dict()["decision"]["detail"] == case(stored).detail_dict()
