"""The risk gate with real parts, through the HTTP app: the feature engine, a rules file, a
LightGBM model trained by risk.trainer on the engine's own features (tests/support/
risk_live.py), the case queue and labels. A payment is allowed with the model's score, blocked
by a rule, or held for review with tree SHAP contributions; an analyst's decline voids it and
labels it fraud, an approve posts it and labels it genuine. A rules file or a model that reads
a feature the engine does not compute is refused when the app starts."""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom import runtime
from strongroom.db import migrate
from strongroom.risk.artefact import ModelArtifact
from strongroom.risk.features import ALL_FEATURES, FeatureEngine
from strongroom.risk.policies import TenantPolicies, starter_rules
from strongroom.risk.registry import (
    ActiveModels,
    InvalidModelArtefact,
    RiskModelRegistry,
    artefact_describe,
)
from strongroom.settings import InvalidSettings, Settings
from tests.e2e.http_support import Api, Tenant, problem_code, running, seed_tenant
from tests.support import risk_live

RULES = """\
version: "test-live-1"
score:
  review: 0.5
  block: 0.99
rules:
  - id: huge_amount
    when: {feature: amount, op: ">", value: 5000}
    action: block
    reason: over the single-payment ceiling
  - id: large_to_new_payee
    when:
      all:
        - {feature: new_payee, op: "==", value: 1}
        - {feature: amount, op: ">=", value: 900}
    action: review
    reason: a large first payment to a payee
"""


@dataclass
class World:
    api: Api
    alpha: Tenant
    customer: str
    analyst: str  # cases:write, risk:read
    model: ModelArtifact


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return risk_live.trained(str(tmp_path_factory.mktemp("risk-model")))


@pytest.fixture
def rules_path(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


@pytest.fixture
def w(db_url: str, model_path: Path, rules_path: Path) -> Iterator[World]:
    settings = {
        "risk": True,
        "risk_model": str(model_path),
        "risk_rules": str(rules_path),
        "risk_budget_ms": 30_000,
    }
    with running(db_url, **settings) as api:
        alpha = seed_tenant(api, "alpha")
        customer = api.ok("POST", "/v1/customers", 201, key=alpha.admin, json={"name": "Ada"})
        tenancy = api.app.state.tenancy
        analyst = tenancy.create_api_key("alpha", ["cases:write", "risk:read"])[1]
        yield World(api, alpha, customer["id"], analyst, ModelArtifact.load(model_path))


def _pay(w: World, minor: int, payee: str) -> Any:
    body = {
        "ledger_id": w.alpha.ledger,
        "debit_account_id": w.alpha.bank,
        "credit_account_id": w.alpha.alice,
        "amount": minor,
        "payment": {"customer_id": w.customer, "payee": payee, "channel": "card_not_present"},
    }
    return w.api.post("/v1/transfers", key=w.alpha.write, json=body)


def _fraud_label(api: Api, transfer_id: str) -> Any:
    with api.app.state.engine.connect() as conn:
        query = sa.text("SELECT fraud FROM risk_events WHERE transfer_id = :t")
        return conn.execute(query, {"t": transfer_id}).scalar_one()


def _open_case(w: World, transfer_id: str) -> dict[str, Any]:
    page = w.api.ok("GET", "/v1/cases?status=open", key=w.analyst)
    found = [c for c in page["data"] if c["transfer_id"] == transfer_id]
    assert len(found) == 1, page
    return found[0]


def test_an_allowed_payment_carries_the_models_score_and_versions(w: World) -> None:
    allowed = _pay(w, 2_500, "pay_5")  # 25.00 to a payee of the customer's first payment
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["status"] == "posted"
    decision = w.api.ok("GET", f"/v1/transfers/{allowed.json()['id']}/risk", key=w.analyst)
    assert decision["verdict"] == "allow"
    assert decision["model_version"] == w.model.version
    assert decision["rules_version"].startswith("test-live-1:")
    assert 0.0 <= decision["score"] < 0.5
    assert decision["features"]["amount"] == 25.0
    assert decision["features"]["new_payee"] == 1.0
    # An allow stored no explanation: it is computed when read, by the model that decided.
    assert decision["contributions"]
    assert {c["feature"] for c in decision["contributions"]} <= set(w.model.feature_names)


def test_a_rule_blocks_with_its_reason_and_nothing_posts(w: World) -> None:
    blocked = _pay(w, 600_000, "pay_6")  # 6,000.00
    assert (blocked.status_code, problem_code(blocked)) == (422, "risk_blocked")
    assert "huge_amount" in blocked.json()["detail"]
    listed = w.api.ok("GET", f"/v1/transfers?ledger_id={w.alpha.ledger}", key=w.alpha.read)
    assert all(t["amount"] != 600_000 for t in listed["data"])


def test_a_review_is_a_case_whose_decline_voids_and_labels_fraud(w: World) -> None:
    held = _pay(w, 120_000, "pay_new_1")  # 1,200.00 to a new payee
    assert held.status_code == 201, held.text
    body = held.json()
    assert (body["status"], body["risk"]["verdict"]) == ("pending", "review")
    assert "large_to_new_payee" in [r["code"] for r in body["risk"]["reasons"]]
    contributions = body["risk"]["contributions"]
    assert contributions, "a review carries the model's tree SHAP contributions"
    assert {c["feature"] for c in contributions} <= set(w.model.feature_names)
    case = _open_case(w, body["id"])
    assert case["kind"] == "risk_review"
    # The gate stored no explanation (it decides without tree SHAP, off the posting path):
    # the answer computed it after the commit, the case view computes it when read, and the
    # decision read too, each by the model that decided: the same contributions.
    assert case["decision"]["detail"]["decision"]["contributions"] == []
    with w.api.app.state.engine.connect() as conn:
        query = sa.text("SELECT contributions FROM risk_decisions WHERE transfer_id = :t")
        assert conn.execute(query, {"t": body["id"]}).scalar_one() is None
    viewed = w.api.ok("GET", f"/v1/cases/{case['id']}", key=w.analyst)
    assert viewed["decision"]["detail"]["decision"]["contributions"] == contributions
    # Computed once, on the first read, and kept with the decision: later reads use them.
    with w.api.app.state.engine.connect() as conn:
        assert json.loads(conn.execute(query, {"t": body["id"]}).scalar_one()) == contributions
    decision = w.api.ok("GET", f"/v1/transfers/{body['id']}/risk", key=w.analyst)
    assert decision["contributions"] == contributions
    # The case's report draft shows the case as its view does, explanation included.
    drafted = w.api.ok("GET", f"/v1/cases/{case['id']}/report", key=w.analyst)
    assert drafted["case"]["decision"]["detail"]["decision"]["contributions"] == contributions
    # Its subject is the paying customer, masked.
    assert (drafted["subject"]["id"], drafted["subject"]["name"]) == (w.customer, "A**")
    page = w.api.get(
        f"/v1/cases/{case['id']}/report", key=w.analyst, headers={"accept": "text/html"}
    )
    assert page.status_code == 200
    assert "contributions" in page.text
    assert all(html.escape(c["feature"]) in page.text for c in contributions)
    w.api.ok("POST", f"/v1/cases/{case['id']}/decline", key=w.analyst, json={"reason": "stolen"})
    transfer = w.api.ok("GET", f"/v1/transfers/{body['id']}", key=w.alpha.read)
    assert transfer["status"] == "voided"
    assert _fraud_label(w.api, body["id"]) in (True, 1)


def test_an_approved_review_posts_and_labels_genuine(w: World) -> None:
    held = _pay(w, 95_000, "pay_new_2")
    assert held.status_code == 201, held.text
    # No other door releases it: a ledger key's post is refused while the case is open.
    bypass = w.api.post(f"/v1/transfers/{held.json()['id']}/post", key=w.alpha.write, json={})
    assert (bypass.status_code, problem_code(bypass)) == (422, "held_for_review")
    still = w.api.ok("GET", f"/v1/transfers/{held.json()['id']}", key=w.alpha.read)
    assert still["status"] == "pending"
    case = _open_case(w, held.json()["id"])
    w.api.ok("POST", f"/v1/cases/{case['id']}/approve", key=w.analyst, json={})
    transfer = w.api.ok("GET", f"/v1/transfers/{held.json()['id']}", key=w.alpha.read)
    assert transfer["status"] == "posted"
    assert _fraud_label(w.api, held.json()["id"]) in (False, 0)


def _edit(w: World, statement: str, **params: object) -> None:
    """A hand edit of the database, as an attacker with write access to it would make."""
    with w.api.app.state.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def test_hand_edited_decision_and_case_rows_are_read_and_decided_without_a_500(w: World) -> None:
    held = _pay(w, 93_000, "pay_new_3")
    assert held.status_code == 201, held.text
    transfer_id = held.json()["id"]
    contributions = held.json()["risk"]["contributions"]
    case = _open_case(w, transfer_id)
    # A stored explanation that is not one: the reads compute it again.
    _edit(
        w,
        "UPDATE risk_decisions SET contributions = 'not json' WHERE transfer_id = :t",
        t=transfer_id,
    )
    decision = w.api.ok("GET", f"/v1/transfers/{transfer_id}/risk", key=w.analyst)
    assert decision["contributions"] == contributions
    # A case detail that is not a JSON object: the case is still listed, read and decided.
    _edit(w, "UPDATE cases SET detail = '[1, 2]' WHERE id = :c", c=case["id"])
    listed = w.api.ok("GET", "/v1/cases?limit=100", key=w.analyst)
    assert case["id"] in [c["id"] for c in listed["data"]]
    viewed = w.api.ok("GET", f"/v1/cases/{case['id']}", key=w.analyst)
    assert viewed["decision"]["detail"] == {}
    # A decision row whose features are damaged: the approve commits, and its answer explains
    # the case's own copy of the decision (the stored row's features read as empty).
    _edit(w, "UPDATE risk_decisions SET features = 'xx' WHERE transfer_id = :t", t=transfer_id)
    _edit(
        w,
        "UPDATE cases SET detail = :d WHERE id = :c",
        d=json.dumps(case["decision"]["detail"]),
        c=case["id"],
    )
    approved = w.api.ok("POST", f"/v1/cases/{case['id']}/approve", key=w.analyst, json={})
    assert approved["status"] == "approved"
    assert approved["decision"]["detail"]["decision"]["contributions"] == contributions
    posted = w.api.ok("GET", f"/v1/transfers/{transfer_id}", key=w.alpha.read)
    assert posted["status"] == "posted"


def test_a_case_edited_to_name_another_tenants_transfer_neither_shows_nor_moves_it(
    w: World,
) -> None:
    beta = seed_tenant(w.api, "beta")
    payer = w.api.ok("POST", "/v1/customers", 201, key=beta.admin, json={"name": "Bea"})
    body = {
        "ledger_id": beta.ledger,
        "debit_account_id": beta.bank,
        "credit_account_id": beta.alice,
        "amount": 91_000,
        "payment": {"customer_id": payer["id"], "payee": "pay_b", "channel": "card_not_present"},
    }
    theirs = w.api.post("/v1/transfers", key=beta.write, json=body)
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["status"] == "pending"
    mine = _pay(w, 92_000, "pay_new_4")
    case = _open_case(w, mine.json()["id"])
    # alpha's case now names beta's held payment (another kind: one case per transfer and kind).
    _edit(
        w,
        "UPDATE cases SET transfer_id = :t, kind = 'fx_review' WHERE id = :c",
        t=theirs.json()["id"],
        c=case["id"],
    )
    viewed = w.api.ok("GET", f"/v1/cases/{case['id']}", key=w.analyst)
    assert viewed["transfer"] is None
    refused = w.api.post(f"/v1/cases/{case['id']}/approve", key=w.analyst, json={})
    assert (refused.status_code, problem_code(refused)) == (422, "case_transfer_refused")
    still = w.api.ok("GET", f"/v1/transfers/{theirs.json()['id']}", key=beta.read)
    assert still["status"] == "pending"


def test_rules_or_a_model_on_features_the_engine_lacks_are_refused_at_start(
    tmp_path: Path, model_path: Path
) -> None:
    engine = sa.create_engine("sqlite://")
    rules = tmp_path / "bad.yaml"
    rules.write_text(RULES.replace("feature: new_payee", "feature: TX_AMOUNT"))
    with pytest.raises(InvalidSettings, match="TX_AMOUNT"):
        runtime.make_policy(Settings(risk=True, risk_rules=str(rules)), engine)
    # The same model, its first feature renamed: trained on a file's own columns, say.
    a = ModelArtifact.load(model_path)
    renamed = (dataclasses.replace(a.features[0], name="TX_AMOUNT"), *a.features[1:])
    foreign = ModelArtifact(
        model_text=a.model_text,
        features=renamed,
        calibrator=a.calibrator,
        anomaly=a.anomaly,
        metrics=a.metrics,
        training=a.training,
        reference=a.reference,
        created_at=a.created_at,
    )
    path = tmp_path / "foreign.json"
    foreign.save(path)
    with pytest.raises(InvalidSettings, match="TX_AMOUNT"):
        runtime.make_policy(Settings(risk=True, risk_model=str(path)), engine)
    # Nor does the model registry take it: it would serve it to the gate.
    migrate.upgrade(engine)
    registry = RiskModelRegistry(engine, artefact_describe)
    with pytest.raises(InvalidModelArtefact, match="TX_AMOUNT"):
        registry.register("ten_default", path.read_bytes(), actor="cli")
    assert registry.list_models("ten_default").data == []


def test_a_decision_is_explained_by_its_model_after_that_model_stopped_serving(
    db_engine: Engine, model_path: Path
) -> None:
    """A model of the registry that is neither live nor shadow any more (here registered
    only) still explains the decisions it made, read later; another tenant's version is none."""
    registry = RiskModelRegistry(db_engine, artefact_describe)
    model, _ = registry.register("ten_a", model_path.read_bytes(), actor="cli")
    policies = TenantPolicies(starter_rules(), ALL_FEATURES)
    policies.active = ActiveModels(registry, policies.load)
    assert policies.active.get("ten_a").live is None
    events = risk_live.history(rows=50)
    row = FeatureEngine().features(events)[-1]
    explained = policies.explain("ten_a", model.version, row)
    assert explained
    assert explained == ModelArtifact.load(model_path).explain([row], 5)[0]
    assert policies.explain("ten_b", model.version, row) == []
    assert policies.explain("ten_a", "mdl_0000000000000000", row) == []
