"""The training loop from the ledger's own history to a live model, on SQLite and PostgreSQL
(docs/risk-training.md): payments posted through the HTTP app with risk scoring on (the real
feature engine and a rules file), some labelled through POST /v1/risk/labels; `strongroom risk
export`; `strongroom risk train` on the export (the feature engine's replay of it);
`strongroom risk models register` and `promote`; the next payments are scored by that model.
And no skew: the features the gate recorded for each payment equal, exactly, those the
training replay computes for it from the export (CSV and Parquet)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from strongroom.cli import app as cli_app
from strongroom.core.clock import MonotonicClock
from strongroom.core.clock import now_us as real_now_us
from strongroom.risk.artefact import ModelArtifact
from strongroom.risk.features import ALL_FEATURES
from strongroom.risk.gate import GATE_NAME
from strongroom.risk.history import engine_features
from strongroom.risk.policies import checked_model
from tests.e2e.http_support import Api, Tenant, running, seed_tenant

RULES = """\
version: "loop-1"
score: {review: 0.5, block: 0.9}
rules:
  - id: card_testing
    when: {feature: customer_count_1h, op: ">", value: 1000}
    action: block
    reason: more payments in an hour than any customer of this test makes
"""
PAYMENTS = 240  # before the model: the training history
FRAUD_EVERY = 6  # every sixth payment is a fraud: 40, enough for the trainer's folds
CUSTOMERS = 5
HISTORY_DAYS = 20  # the first payment's age
STEP_US = 97 * 60 * 1_000_000  # between two payments: 240 of them span about 16 days
DAY_US = 86_400 * 1_000_000
COMMIT_LAG_US = 1_500  # the commit comes after the scoring
PROMOTION_WAIT_S = 30.0  # a running server sees a promotion within about a second


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    settings = {"risk": True, "risk_rules": str(rules), "risk_budget_ms": 30_000}
    with running(db_url, keyring_path=str(tmp_path / "keyring.json"), **settings) as api:
        yield api


def cli(*args: str) -> str:
    result = CliRunner().invoke(cli_app, list(args))
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def pay(api: Api, t: Tenant, customer: str, i: int, fraud: bool) -> str:
    """A genuine payment is small, to one of a few shops, from the customer's phone; a fraud
    is large, to one shop, from another device, online."""
    payment = (
        {"payee": "shop-fence", "device": "dev-emulator", "channel": "card_not_present"}
        if fraud
        else {"payee": f"shop-{i % 4}", "device": f"dev-{customer}", "channel": "card_present"}
    )
    body = {
        "ledger_id": t.ledger,
        "debit_account_id": t.bank,
        "credit_account_id": t.alice,
        "amount": 90_000 + 37 * i if fraud else 1_000 + 13 * (i % 50),
        "payment": {"customer_id": customer, "ip": f"198.51.100.{i % 7}", **payment},
    }
    answer = api.ok("POST", "/v1/transfers", 201, key=t.write, json=body)
    assert answer["status"] == "posted", answer
    return str(answer["id"])


class ManualClock(MonotonicClock):
    """A clock the test moves by hand."""

    def __init__(self, start_us: int) -> None:
        super().__init__()
        self.t = start_us

    def now_us(self) -> int:
        return self.t

    def advance(self, us: int) -> None:
        self.t += us


class Lagging(MonotonicClock):
    """Another clock's time, `lag_us` later."""

    def __init__(self, clock: ManualClock, lag_us: int) -> None:
        super().__init__()
        self.clock = clock
        self.lag_us = lag_us

    def now_us(self) -> int:
        return self.clock.t + self.lag_us


def travel(api: Api, start_us: int) -> ManualClock:
    """The risk gate's clock and the ledger's, moved by the test: payments spread over weeks,
    so every window and the payee risk's label delay come into play. The ledger commits
    COMMIT_LAG_US after the gate scored, as it does a moment later in life."""
    clock = ManualClock(start_us)
    ledger = api.app.state.ledger
    ledger.clock = Lagging(clock, COMMIT_LAG_US)
    (gate,) = [g for g in ledger._gates.gates if g.name == GATE_NAME]
    gate.now_us = clock.now_us
    return clock


def label(api: Api, key: str, transfer_id: str, *, fraud: bool) -> None:
    body = {"transfer_id": transfer_id, "fraud": fraud}
    api.ok("POST", "/v1/risk/labels", 201, key=key, json=body)


def recorded_features(api: Api) -> dict[str, dict[str, float]]:
    with api.app.state.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT transfer_id, features FROM risk_decisions"))
        return {r[0]: json.loads(r[1]) for r in rows}


def replayed_times(path: Path) -> dict[str, float]:
    table = engine_features(path)
    return dict(zip(table["id"], table["time"], strict=True))


def replayed_features(path: Path) -> dict[str, dict[str, float]]:
    table = engine_features(path)
    return {
        row["id"]: {name: row[name] for name in ALL_FEATURES}
        for row in table.to_dict(orient="records")
    }


def test_the_ledger_history_trains_the_live_model_without_skew(
    api: Api, db_url: str, tmp_path: Path
) -> None:
    t = seed_tenant(api, "alpha")
    customers = [
        api.ok("POST", "/v1/customers", 201, key=t.admin, json={"name": f"c{n}"})["id"]
        for n in range(CUSTOMERS)
    ]
    risk_key = api.app.state.tenancy.create_api_key("alpha", ["risk:read", "risk:write"])[1]
    clock = travel(api, real_now_us() - HISTORY_DAYS * DAY_US)
    ids, frauds, times = [], set(), []
    for i in range(PAYMENTS):
        clock.advance(STEP_US)
        fraud = i % FRAUD_EVERY == FRAUD_EVERY - 1
        ids.append(pay(api, t, customers[i % CUSTOMERS], i, fraud))
        times.append(clock.t)
        if fraud:  # a chargeback, within the label delay: the next payments' payee risk sees it
            frauds.add(ids[-1])
            label(api, risk_key, ids[-1], fraud=True)
    # An analyst's word that two payments were genuine.
    label(api, risk_key, ids[0], fraud=False)
    label(api, risk_key, ids[1], fraud=False)
    first = api.ok("GET", f"/v1/transfers/{ids[0]}/risk", key=risk_key)
    assert (first["verdict"], first["model_version"], first["score"]) == ("allow", None, None)
    # The labels as the route wrote them match their leaves; one relabelled by hand is named.
    records = "compliance_records_audited"
    relabelled = next(x for x in ids if x in frauds)
    report = api.app.state.compliance_controls.run(actor="test")
    (audited,) = [r for r in report.controls if r.name == records]
    assert (audited.findings, audited.facts["risk_labels"]) == ([], len(frauds) + 2)
    with api.app.state.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE risk_events SET fraud = :f WHERE transfer_id = :t"),
            {"f": False, "t": relabelled},
        )
    report = api.app.state.compliance_controls.run(actor="test")
    (audited,) = [r for r in report.controls if r.name == records]
    assert [(f.detail["transfer_id"], f.detail["problem"]) for f in audited.findings] == [
        (relabelled, "labelled genuine, but its last label leaf says fraud")
    ]
    with api.app.state.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE risk_events SET fraud = :f WHERE transfer_id = :t"),
            {"f": True, "t": relabelled},
        )
    recorded = recorded_features(api)
    assert recorded[ids[5]]["payee_risk_7d"] == 0.0  # the shop's first fraud: nothing known
    assert recorded[ids[-1]]["payee_risk_7d"] == 1.0  # its frauds, labelled, past the delay

    # The export: with the default label delay the payments nobody labelled are too recent to
    # count as genuine (blank); with no delay they are genuine.
    db = ("--database-url", db_url, "--tenant", "alpha")
    pending = json.loads(cli("risk", "export", "--out", str(tmp_path / "p.csv"), *db, "--json"))
    cutoff_us = real_now_us() - 7 * DAY_US
    recent = {x for x, at_us in zip(ids, times, strict=True) if at_us > cutoff_us} - frauds
    assert (pending["rows"], pending["frauds"]) == (PAYMENTS, len(frauds))
    assert (pending["genuine"], pending["unlabelled"]) == (PAYMENTS - len(frauds) - len(recent),
                                                           len(recent))  # fmt: skip
    assert 0 < len(recent) < PAYMENTS - len(frauds)
    history = tmp_path / "history.parquet"
    flat = tmp_path / "history.csv"
    for path in (history, flat):
        summary = json.loads(
            cli("risk", "export", "--out", str(path), *db, "--label-delay-days", "0", "--json")
        )
        assert (summary["rows"], summary["frauds"]) == (PAYMENTS, len(frauds))
        assert summary["unlabelled"] == 0
    # The backtest reads the export as it is.
    backtest = json.loads(
        cli("risk", "backtest", str(tmp_path / "rules.yaml"), "--data", str(history), "--json")
    )
    assert (backtest["data"], backtest["rows"], backtest["positives"]) == (
        "raw", PAYMENTS, len(frauds),
    )  # fmt: skip
    # Each payment's time is when the gate computed its features, not the later commit's.
    exported = replayed_times(flat)
    assert [exported[x] for x in ids] == [at_us / 1_000_000 for at_us in times]
    text = flat.read_text()
    assert text.splitlines()[0] == "id,time,customer,amount,payee,device,ip,channel,label"
    for clear in ("shop-fence", "dev-emulator", "198.51.100."):
        assert clear not in text  # payees, devices and IPs are keyed hashes
    # Training reads the recent unlabelled payments (their neighbours' features need them)
    # but does not train on them.
    labelled = replayed_features(tmp_path / "p.csv")
    assert set(labelled) == set(ids) - recent
    recorded = recorded_features(api)
    assert all(recorded[transfer_id] == labelled[transfer_id] for transfer_id in labelled)

    trained = json.loads(
        cli("risk", "train", "--data", str(history), "--label", "label", "--budget-s", "5",
            "--out", str(tmp_path / "model.json"), "--json")
    )  # fmt: skip
    assert trained["holdout"]["positives"] >= 1
    registered = json.loads(
        cli("risk", "models", "register", str(tmp_path / "model.json"), *db, "--json")
    )
    version = registered["version"]
    assert version == trained["model_version"]
    assert registered["created"] is True
    model = ModelArtifact.load(tmp_path / "model.json")
    assert checked_model(model, ALL_FEATURES, "the export") is model  # usable live
    assert set(model.feature_names) == set(ALL_FEATURES)
    assert cli("risk", "models", "promote", version, *db) == f"{version}: live\n"

    # The next payments are scored by the promoted model (seen within about a second).
    deadline = time.monotonic() + PROMOTION_WAIT_S
    decision: dict[str, Any] = {}
    i = PAYMENTS
    while decision.get("model_version") != version:
        assert time.monotonic() < deadline, decision
        clock.advance(STEP_US)
        transfer_id = pay(api, t, customers[i % CUSTOMERS], i, fraud=False)
        decision = api.ok("GET", f"/v1/transfers/{transfer_id}/risk", key=risk_key)
        i += 1
        time.sleep(0.05)
    genuine_score = decision["score"]
    assert isinstance(genuine_score, float)
    assert 0.0 <= genuine_score <= 1.0

    # No skew: what the gate recorded for every payment, before the model and after, is what
    # the training replay computes from the export, float for float.
    for path in (history, flat):
        cli("risk", "export", "--out", str(path), *db, "--label-delay-days", "0")
    recorded = recorded_features(api)
    assert len(recorded) == i
    for path in (history, flat):
        replayed = replayed_features(path)
        assert set(replayed) == set(recorded)
        for transfer_id, features in recorded.items():
            assert set(features) == set(ALL_FEATURES)
            assert all(math.isfinite(v) for v in features.values())
            assert replayed[transfer_id] == features, (path.name, transfer_id)

    # A payment like the frauds scores higher than the genuine one: held or blocked.
    body = {
        "ledger_id": t.ledger,
        "debit_account_id": t.bank,
        "credit_account_id": t.alice,
        "amount": 95_000,
        "payment": {"customer_id": customers[0], "payee": "shop-fence", "device": "dev-emulator",
                    "channel": "card_not_present", "ip": "198.51.100.3"},
    }  # fmt: skip
    clock.advance(STEP_US)
    answer = api.post("/v1/transfers", key=t.write, json=body)
    assert answer.status_code in (201, 422), answer.text
    with api.app.state.engine.connect() as conn:
        score, model_version = conn.execute(
            sa.text("SELECT score, model_version FROM risk_decisions ORDER BY created_at DESC")
        ).first()
    assert model_version == version
    assert score > genuine_score
