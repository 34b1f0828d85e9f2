"""The review queue through the HTTP app `serve` builds, on SQLite and PostgreSQL: a review
gate (a fake, installed where the composition root installs gates) holds a transfer, a case
opens in the posting transaction; approving posts the transfer, declining voids it, each an
audit leaf, an event and a label; a case decided once cannot be decided again; an approve
racing a decline has exactly one winner; a crash between the ledger's post and the case's
update is completed by a retry; another tenant neither sees nor decides it; a transfer posted
or voided by another door closes its case."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from strongroom import runtime
from strongroom.cases.service import CaseService
from strongroom.client import AsyncClient, CaseNotOpenError, Client, NotFoundError
from strongroom.core.errors import ErrorCode
from strongroom.ledger.model import GateDecision, NewTransfer, Verdict
from strongroom.security.rbac import Role, role_scopes
from tests.e2e.http_support import (
    Api,
    Served,
    Tenant,
    balances,
    build_app,
    running,
    seed_tenant,
)

DETAIL: Mapping[str, Any] = {
    "score": 0.91,
    "reasons": ["amount_far_above_customer_history", "new_payee"],
    "model_version": "m-2026-12-01",
    "rules_version": "r-7",
    "features": {"amount": 700, "count_1h": 3},
    "contributions": {"amount": 1.7, "count_1h": 0.4},
}


@dataclass(frozen=True)
class DetailedDecision(GateDecision):
    """A decision with the optional detail the risk gate hands over (score, reasons, ...), for
    a GateDecision that has no `detail` of its own."""

    detail: Mapping[str, Any] | None = None


def _review(gate: str) -> GateDecision:
    if "detail" in {f.name for f in dataclasses.fields(GateDecision)}:
        made: GateDecision = GateDecision(gate, Verdict.REVIEW, "risk_review", detail=DETAIL)  # type: ignore[call-arg,unused-ignore]
        return made
    return DetailedDecision(gate, Verdict.REVIEW, "risk_review", DETAIL)


@dataclass
class ReviewGate:
    """Holds for review the transfers whose metadata says `"gate": "review"`, with a detail;
    allows the rest (and every post and void)."""

    name: str = "risk"
    budget_ms: int = 2_000
    fail_open: bool = False
    errors: tuple[ErrorCode, ...] = ()
    seen: list[str] = field(default_factory=list)

    def decide(
        self, batch: Sequence[NewTransfer], actor: str | None
    ) -> Sequence[GateDecision | None]:
        out: list[GateDecision | None] = []
        for t in batch:
            self.seen.append(t.id)
            wish = json.loads(t.metadata).get("gate") if t.metadata else None
            if wish == "review":
                out.append(_review(self.name))
            else:
                out.append(None)
        return out


@dataclass
class World:
    api: Api
    acme: Tenant
    beta: Tenant
    analyst: str  # a fraud_analyst's key of acme
    acme_id: str


@pytest.fixture
def w(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setattr(runtime, "installed_gates", lambda settings, **_: [ReviewGate()])
    with running(db_url, dispatcher=False) as api:
        acme, beta = seed_tenant(api, "acme"), seed_tenant(api, "beta")
        tenancy = api.app.state.tenancy
        scopes = sorted(s.value for s in role_scopes(Role.FRAUD_ANALYST))
        analyst = tenancy.create_api_key("acme", scopes, role=Role.FRAUD_ANALYST.value)[1]
        yield World(api, acme, beta, analyst, tenancy.ensure_tenant("acme").id)


def _hold(w: World, amount: int = 70, tenant: Tenant | None = None) -> dict[str, Any]:
    """A transfer bank -> alice the gate holds: 201, pending, with the decision."""
    t = tenant or w.acme
    body = {
        "ledger_id": t.ledger,
        "debit_account_id": t.bank,
        "credit_account_id": t.alice,
        "amount": amount,
        "metadata": {"gate": "review"},
    }
    return w.api.ok("POST", "/v1/transfers", 201, key=t.write, json=body)


def _case_of(w: World, transfer_id: str, key: str | None = None) -> dict[str, Any]:
    found = [
        c
        for c in w.api.ok("GET", "/v1/cases", key=key or w.analyst, params={"limit": 100})["data"]
        if c["transfer_id"] == transfer_id
    ]
    assert len(found) == 1, found
    return found[0]


def _case_leaves(w: World) -> list[dict[str, Any]]:
    leaves, _ = w.api.app.state.audit.leaves(w.acme_id, 0, 10_000)
    return [x for x in leaves if x["type"].startswith("case.")]


def _case_events(w: World) -> list[tuple[str, dict[str, Any]]]:
    events = w.api.app.state.events.list_events(tenant_id=w.acme_id, limit=100).data
    return [(e.type, json.loads(e.data)) for e in events if e.type.startswith("case.")]


def test_a_held_transfer_opens_a_case_and_approving_it_posts_the_transfer(w: World) -> None:
    api = w.api
    before = balances(api, w.acme, w.acme.alice)
    held = _hold(w)
    assert held["status"] == "pending"
    case = _case_of(w, held["id"])
    assert case["status"] == "open"
    assert case["kind"] == "risk_review"
    assert case["decision"] == {"gate": "risk", "code": "risk_review", "detail": dict(DETAIL)}
    assert case["label"] is None
    assert case["id"].startswith("case_")
    assert case["transfer"] is None  # the listing leaves the transfer out

    got = api.ok("GET", f"/v1/cases/{case['id']}", key=w.analyst)
    assert got["transfer"]["amount"] == 70
    assert got["transfer"]["status"] == "pending"
    assert got["transfer"]["debit_account_id"] == w.acme.bank
    assert got["transfer"]["credit_account_id"] == w.acme.alice
    assert got["decision"]["detail"]["contributions"] == DETAIL["contributions"]
    assert balances(api, w.acme, w.acme.alice)["credits_posted"] == before["credits_posted"]

    approved = api.ok(
        "POST",
        f"/v1/cases/{case['id']}/approve",
        key=w.analyst,
        json={"reason": "customer confirmed by phone"},
    )
    assert approved["status"] == "approved"
    assert approved["label"] == "genuine"
    assert approved["reason"] == "customer confirmed by phone"
    assert approved["decided_by"].startswith("api_key:")
    assert approved["transfer"]["status"] == "posted"
    after = balances(api, w.acme, w.acme.alice)
    assert after["credits_posted"] == before["credits_posted"] + 70

    assert [x["type"] for x in _case_leaves(w)] == ["case.created", "case.approved"]
    leaf = _case_leaves(w)[1]["content"]
    assert leaf["actor"] == approved["decided_by"]
    assert leaf["data"]["case_id"] == case["id"]
    assert "customer confirmed" not in json.dumps(_case_leaves(w))  # free text stays out
    events = _case_events(w)
    assert sorted(t for t, _ in events) == ["case.approved", "case.created"]
    for _, data in events:
        assert data["id"] == case["id"]
        assert data["transfer_id"] == held["id"]
        assert "detail" not in data
        assert "score" not in json.dumps(data)

    # Decided once: a second decision, either way, is a 409 and writes nothing.
    for action in ("approve", "decline"):
        again = api.post(f"/v1/cases/{case['id']}/{action}", key=w.analyst, json={})
        assert (again.status_code, again.json()["code"]) == (409, "case_not_open")
    assert len(_case_leaves(w)) == 2
    assert balances(api, w.acme, w.acme.alice) == after
    # The log with the cases' leaves among the transfers' still verifies, as does the ledger.
    assert not api.app.state.audit.verify().problems
    assert api.app.state.ledger.verify().problems == []


def test_declining_voids_the_transfer_and_labels_it(w: World) -> None:
    api = w.api
    before = balances(api, w.acme, w.acme.alice)
    recorded: list[tuple[str, str, bool]] = []
    cases: CaseService = api.app.state.cases
    cases.labels = lambda uow, tenant, transfer, fraud: recorded.append((tenant, transfer, fraud))
    fraud, other = _hold(w, 30), _hold(w, 40)
    assert balances(api, w.acme, w.acme.alice)["credits_pending"] == before["credits_pending"] + 70
    first, second = _case_of(w, fraud["id"]), _case_of(w, other["id"])
    declined = api.ok("POST", f"/v1/cases/{first['id']}/decline", key=w.analyst)
    assert (declined["status"], declined["label"]) == ("declined", "fraud")
    assert declined["transfer"]["status"] == "voided"
    kept = api.ok(
        "POST",
        f"/v1/cases/{second['id']}/decline",
        key=w.analyst,
        json={"fraud": False, "reason": "duplicate order"},
    )
    assert (kept["status"], kept["label"]) == ("declined", "genuine")
    assert balances(api, w.acme, w.acme.alice) == before  # both holds released, nothing posted
    assert recorded == [(w.acme_id, fraud["id"], True), (w.acme_id, other["id"], False)]
    listed = api.ok("GET", "/v1/cases", key=w.analyst, params={"status": "declined"})["data"]
    assert {c["id"] for c in listed} == {first["id"], second["id"]}
    assert api.ok("GET", "/v1/cases", key=w.analyst, params={"status": "open"})["data"] == []
    assert api.ok("GET", "/v1/cases", key=w.analyst, params={"kind": "other_review"})["data"] == []
    too_long = api.post(
        f"/v1/cases/{first['id']}/decline", key=w.analyst, json={"reason": "x" * 501}
    )
    assert too_long.status_code == 400


def test_the_listing_pages_newest_first(w: World) -> None:
    held = [_hold(w, 1 + i)["id"] for i in range(5)]
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 2, "status": "open"}
        if after is not None:
            params["starting_after"] = after
        page = w.api.ok("GET", "/v1/cases", key=w.analyst, params=params)
        seen += [c["transfer_id"] for c in page["data"]]
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    assert seen == held[::-1]


def test_an_approve_racing_a_decline_has_exactly_one_winner(w: World) -> None:
    api = w.api
    for _ in range(3):
        before = balances(api, w.acme, w.acme.alice)
        case = _case_of(w, _hold(w, 11)["id"])
        path = f"/v1/cases/{case['id']}"
        approve, decline = api.gather(
            [
                api.arequest("POST", f"{path}/approve", key=w.analyst, json={}),
                api.arequest("POST", f"{path}/decline", key=w.analyst, json={}),
            ]
        )
        codes = sorted([approve.status_code, decline.status_code])
        assert codes == [200, 409], (approve.text, decline.text)
        loser = approve if approve.status_code == 409 else decline
        assert loser.json()["code"] == "case_not_open"
        final = api.ok("GET", path, key=w.analyst)
        won_approve = approve.status_code == 200
        assert final["status"] == ("approved" if won_approve else "declined")
        assert final["transfer"]["status"] == ("posted" if won_approve else "voided")
        moved = balances(api, w.acme, w.acme.alice)["credits_posted"] - before["credits_posted"]
        assert moved == (11 if won_approve else 0)
    decided = [x["type"] for x in _case_leaves(w) if x["type"] != "case.created"]
    assert len(decided) == 3  # one decision per case, never two


def test_a_crash_between_the_ledger_and_the_case_is_completed_by_a_retry(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = w.api
    before = balances(api, w.acme, w.acme.alice)
    held = _hold(w, 25)
    case = _case_of(w, held["id"])
    real = CaseService._record_decision

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the process died after the ledger committed")

    monkeypatch.setattr(CaseService, "_record_decision", crash)
    failed = api.post(f"/v1/cases/{case['id']}/approve", key=w.analyst, json={})
    assert failed.status_code == 500
    # The ledger committed its post; the case is still open.
    assert api.ok("GET", f"/v1/transfers/{held['id']}", key=w.acme.read)["status"] == "posted"
    assert api.ok("GET", f"/v1/cases/{case['id']}", key=w.analyst)["status"] == "open"
    # A decline now would contradict the ledger: refused, nothing written.
    monkeypatch.setattr(CaseService, "_record_decision", real)
    contrary = api.post(f"/v1/cases/{case['id']}/decline", key=w.analyst, json={})
    assert (contrary.status_code, contrary.json()["code"]) == (409, "case_not_open")
    retried = api.ok("POST", f"/v1/cases/{case['id']}/approve", key=w.analyst, json={})
    assert (retried["status"], retried["label"]) == ("approved", "genuine")
    after = balances(api, w.acme, w.acme.alice)
    assert after["credits_posted"] == before["credits_posted"] + 25  # posted once
    assert [x["type"] for x in _case_leaves(w)] == ["case.created", "case.approved"]


def test_another_tenant_neither_sees_nor_decides_a_case(w: World) -> None:
    api = w.api
    held = _hold(w, 9)
    case = _case_of(w, held["id"])
    theirs = w.beta.admin
    assert api.ok("GET", "/v1/cases", key=theirs)["data"] == []
    for method, suffix in (("GET", ""), ("POST", "/approve"), ("POST", "/decline")):
        response = api.request(
            method,
            f"/v1/cases/{case['id']}{suffix}",
            key=theirs,
            json={} if method == "POST" else None,
        )
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert api.ok("GET", f"/v1/cases/{case['id']}", key=w.analyst)["status"] == "open"
    # A key of the tenant without cases:write may not decide it.
    refused = api.post(f"/v1/cases/{case['id']}/approve", key=w.acme.write, json={})
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")


def test_a_transfer_voided_or_posted_by_another_door_closes_its_case(w: World) -> None:
    api = w.api
    voided, posted = _hold(w, 5), _hold(w, 6)
    api.ok("POST", f"/v1/transfers/{voided['id']}/void", 201, key=w.acme.write)
    api.ok("POST", f"/v1/transfers/{posted['id']}/post", 201, key=w.acme.write, json={})
    for held, how in ((voided, "transfer_voided"), (posted, "transfer_posted")):
        case = _case_of(w, held["id"])
        assert case["status"] == "closed"
        assert case["reason"] == how
        assert case["label"] is None
        assert case["decided_by"].startswith("api_key:")
        refused = api.post(f"/v1/cases/{case['id']}/approve", key=w.analyst, json={})
        assert (refused.status_code, refused.json()["code"]) == (409, "case_not_open")
    closed = [x for x in _case_leaves(w) if x["type"] == "case.closed"]
    assert {x["content"]["data"]["transfer_id"] for x in closed} == {voided["id"], posted["id"]}
    assert sum(1 for t, _ in _case_events(w) if t == "case.closed") == 2
    assert not api.app.state.audit.verify().problems


def test_the_review_queue_through_both_clients(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "installed_gates", lambda settings, **_: [ReviewGate()])
    app = build_app(sqlite_url, dispatcher=False)
    tenancy = app.state.tenancy
    writer = tenancy.create_api_key("acme", ["ledger:write"])[1]
    analyst = tenancy.create_api_key("acme", ["cases:write"])[1]
    with Served(app) as served, Client(served.base_url, writer) as sr:
        ledger = sr.create_ledger("main")
        bank = sr.create_account(ledger.id, "USD", "debit")
        alice = sr.create_account(ledger.id, "USD", "credit")
        held = [
            sr.create_transfer(
                ledger.id,
                debit_account_id=bank.id,
                credit_account_id=alice.id,
                amount=10 + i,
                metadata={"gate": "review"},
            )
            for i in range(3)
        ]
        assert {t.status for t in held} == {"pending"}
        with Client(served.base_url, analyst) as queue:
            cases = list(queue.iter_cases(status="open", limit=2))
            assert [c.transfer_id for c in cases] == [t.id for t in held][::-1]
            assert cases[0].decision.detail["score"] == DETAIL["score"]
            approved = queue.approve_case(cases[0].id, reason="known customer")
            assert approved.status == "approved"
            assert approved.transfer is not None
            assert approved.transfer.status == "posted"
            with pytest.raises(CaseNotOpenError) as refused:
                queue.decline_case(cases[0].id)
            assert refused.value.code == "case_not_open"
            with pytest.raises(NotFoundError):
                queue.get_case("case_missing")

            async def decline() -> tuple[str, str | None]:
                async with AsyncClient(served.base_url, analyst) as aq:
                    found = [c.id async for c in aq.iter_cases(kind="risk_review")]
                    assert len(found) == 3
                    out = await aq.decline_case(cases[1].id, fraud=False, reason="duplicate")
                    return out.status, out.label

            assert asyncio.run(decline()) == ("declined", "genuine")
        assert sr.get_transfer(held[1].id).status == "voided"
