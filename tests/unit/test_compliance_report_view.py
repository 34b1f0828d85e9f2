"""A tenant's view of a compliance report (model.Report.for_tenant): of a control of tenants'
data, its own findings, counts and facts, judged on those alone, even past the findings kept;
of a control of the deployment, the outcome without the evidence; the deployment's own tenant
sees the deployment's evidence and the findings no tenant owns."""

from __future__ import annotations

import json

from strongroom.compliance.controls.model import (
    DEPLOYMENT_TENANT,
    ControlResult,
    Finding,
    Outcome,
    Report,
    Scope,
)
from strongroom.core.limits import CONTROL_FINDINGS_MAX


def _report(*controls: ControlResult) -> Report:
    report = Report("crep_1", "2026-12-07T00:00:00Z", "2026-12-07T00:00:01Z", list(controls))
    return Report.from_dict(json.loads(report.to_json()))  # as stored and read back


def test_each_tenant_is_judged_on_its_own_findings_past_those_kept() -> None:
    cards = ControlResult("card_numbers_in_clear", "No card number in clear", Outcome.FAIL, "x")
    cards.add(Finding({"table": "job_leases", "key": "j"}))  # no tenant's
    for i in range(CONTROL_FINDINGS_MAX):  # the last one counted, not kept
        cards.add(Finding({"table": "transfers", "key": i}, "ten_a"))
    cards.add(Finding({"table": "transfers", "key": "b"}, "ten_b"))  # counted, not kept
    cards.facts = {"tables": 3, "columns": 9, "rows": 1_000, "values": 5_000}
    cards.shared_facts = ("tables", "columns")
    report = _report(cards)
    a, b, c = (report.for_tenant(t).controls[0] for t in ("ten_a", "ten_b", "ten_c"))
    assert (a.outcome, a.found, len(a.findings)) == (Outcome.FAIL, CONTROL_FINDINGS_MAX, 99)
    assert (b.outcome, b.found, b.findings) == (Outcome.FAIL, 1, [])
    assert (c.outcome, c.found, c.findings) == (Outcome.PASS, 0, [])
    assert c.facts == {"tables": 3, "columns": 9}
    assert c.summary == "No card number in clear: nothing found of this tenant"
    operator = report.for_tenant(DEPLOYMENT_TENANT).controls[0]
    assert (operator.outcome, operator.found) == (Outcome.FAIL, 1)
    assert [f.detail["table"] for f in operator.findings] == ["job_leases"]


def test_a_deployment_control_shows_its_outcome_not_its_evidence() -> None:
    keys = ControlResult("keys_rotated", "Every key rotated within its period", Outcome.FAIL,
                         "the active key-encryption key is older than 90 days")  # fmt: skip
    keys.scope = Scope.DEPLOYMENT
    keys.add(Finding({"key": "kek v3", "age_days": 120.0}))
    keys.facts = {"kms": "local", "versions": 3, "period_days": 90}
    keys.shared_facts = ("period_days",)
    report = _report(keys)
    seen = report.for_tenant("ten_a").controls[0]
    assert (seen.outcome, seen.findings, seen.facts) == (Outcome.FAIL, [], {"period_days": 90})
    assert "kek" not in seen.summary
    assert "90" not in seen.summary
    operator = report.for_tenant(DEPLOYMENT_TENANT).controls[0]
    assert operator.facts["kms"] == "local"
    assert [f.detail["key"] for f in operator.findings] == ["kek v3"]


def test_per_tenant_facts_go_to_their_tenant_only() -> None:
    staff = ControlResult("staff_second_factor", "Every staff user has a second factor",
                          Outcome.PASS, "each of 7 staff users has ...")  # fmt: skip
    staff.facts = {"staff_users": 7}
    staff.tenant_facts = {"ten_a": {"staff_users": 5}, "ten_b": {"staff_users": 2}}
    report = _report(staff)
    assert report.for_tenant("ten_a").controls[0].facts == {"staff_users": 5}
    assert report.for_tenant("ten_c").controls[0].facts == {}
    assert "7" not in report.for_tenant("ten_b").controls[0].summary
