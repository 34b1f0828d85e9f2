"""Working a case through the HTTP app `serve` builds, on SQLite and PostgreSQL: an alert
(raised by compliance in its own transaction) is assigned to a staff user of the tenant, noted
and reported as a suspicious-activity report draft (JSON and HTML) naming its transfers and its
subject, masked unless revealed with pii:read; deciding it runs the hook its kind registered,
in the decision's transaction. Another tenant sees none of it; notes stay out of leaves and
events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from strongroom.cases.model import Alert, Case, CaseStatus
from strongroom.cases.service import CaseService
from strongroom.compliance.aml.typologies import Hit, Typology
from strongroom.db.uow import UnitOfWork
from strongroom.security.rbac import Role, role_scopes
from tests.e2e.http_support import Api, Tenant, running, seed_tenant


@dataclass
class World:
    api: Api
    acme: Tenant
    beta: Tenant
    acme_id: str
    officer: str  # a compliance officer's key of acme
    staff: str  # a staff user of acme
    beta_staff: str
    customer: str
    case: str


def _alert(api: Api, tenant_id: str, customer: str, transfers: list[str]) -> Case:
    cases: CaseService = api.app.state.cases
    with UnitOfWork(api.app.state.engine) as uow:
        [case] = cases.open_alerts(
            uow,
            tenant_id,
            [
                Alert(
                    "aml_structuring",
                    f"customer:{customer}",
                    # The evidence as AML writes it (a detector's Hit), so the report reads
                    # what compliance actually records.
                    Hit(
                        Typology.STRUCTURING, "acc_x", "USD", 2, 1, 0.9, 29_700, tuple(transfers)
                    ).evidence(),
                    code="structuring",
                )
            ],
            actor="system:aml",
        )
        uow.commit()
    return case


@pytest.fixture
def w(db_url: str) -> Iterator[World]:
    with running(db_url, dispatcher=False) as api:
        acme, beta = seed_tenant(api, "acme"), seed_tenant(api, "beta")
        tenancy = api.app.state.tenancy
        acme_id, beta_id = tenancy.ensure_tenant("acme").id, tenancy.ensure_tenant("beta").id
        scopes = sorted(s.value for s in role_scopes(Role.COMPLIANCE_OFFICER))
        officer = tenancy.create_api_key("acme", scopes, role=Role.COMPLIANCE_OFFICER.value)[1]
        users = api.app.state.users
        staff = users.create_user(
            acme_id, "officer@acme.example", "compliance_officer", None, actor="t"
        )
        beta_staff = users.create_user(
            beta_id, "officer@beta.example", "compliance_officer", None, actor="t"
        )
        customer = api.ok(
            "POST",
            "/v1/customers",
            201,
            key=acme.admin,
            json={"kind": "person", "name": "Ada Lovelace", "email": "ada@example.com"},
        )["id"]
        transfers = [acme.posted]
        case = _alert(api, acme_id, customer, [*transfers, beta.posted, "tr_absent"])
        yield World(api, acme, beta, acme_id, officer, staff.id, beta_staff.id, customer, case.id)


def _leaves_and_events(w: World) -> str:
    leaves, _ = w.api.app.state.audit.leaves(w.acme_id, 0, 10_000)
    events = w.api.app.state.events.list_events(tenant_id=w.acme_id, limit=100).data
    return json.dumps([x for x in leaves if x["type"].startswith("case.")]) + json.dumps(
        [(e.type, e.data) for e in events if e.type.startswith("case.")]
    )


def test_an_alert_is_assigned_noted_and_reported(w: World) -> None:
    api, path = w.api, f"/v1/cases/{w.case}"
    got = api.ok("GET", path, key=w.officer)
    assert (got["kind"], got["status"], got["assignee"]) == ("aml_structuring", "open", None)
    assert got["decision"]["detail"]["subject"] == f"customer:{w.customer}"

    assigned = api.ok("POST", f"{path}/assign", key=w.officer, json={"assignee": w.staff})
    assert assigned["assignee"] == w.staff
    mine = api.ok("GET", "/v1/cases", key=w.officer, params={"assignee": w.staff})["data"]
    assert [c["id"] for c in mine] == [w.case]
    # Another tenant's staff user is no assignee here, and nothing changes.
    foreign = api.post(f"{path}/assign", key=w.officer, json={"assignee": w.beta_staff})
    assert (foreign.status_code, foreign.json()["code"]) == (404, "not_found")
    assert api.ok("GET", path, key=w.officer)["assignee"] == w.staff

    first = api.ok(
        "POST", f"{path}/notes", 201, key=w.officer, json={"body": "Five deposits of 9,900."}
    )
    api.ok("POST", f"{path}/notes", 201, key=w.officer, json={"body": "<script>x()</script>"})
    notes = api.ok("GET", f"{path}/notes", key=w.officer)["data"]
    assert [n["body"] for n in notes] == ["Five deposits of 9,900.", "<script>x()</script>"]
    assert notes[0]["id"] == first["id"]
    assert notes[0]["author"].startswith("api_key:")
    for bad in ({"body": ""}, {"body": "x" * 10_001}, {"body": 7}):
        assert api.post(f"{path}/notes", key=w.officer, json=bad).status_code == 400
    assert len(api.ok("GET", f"{path}/notes", key=w.officer)["data"]) == 2

    report = api.ok("GET", f"{path}/report", key=w.officer)
    assert report["object"] == "suspicious_activity_report_draft"
    assert report["status"] == "draft"
    activity = report["suspicious_activity"]
    assert activity["category"] == "aml_structuring"
    assert activity["code"] == "structuring"
    # Its own tenant's transfer only: another tenant's and an unknown id are left out.
    assert [t["id"] for t in activity["transfers"]] == [w.acme.posted]
    assert activity["totals"] == [{"asset": "USD", "amount": activity["transfers"][0]["amount"]}]
    assert report["subject"]["id"] == w.customer
    assert report["subject"]["name"] != "Ada Lovelace"  # masked
    assert "personal_data" not in report["subject"]
    assert [n["body"] for n in report["narrative"]] == [n["body"] for n in notes]
    assert report["officer"] == w.staff

    page = api.get(f"{path}/report", key=w.officer, headers={"accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "&lt;script&gt;x()&lt;/script&gt;" in page.text
    assert "<script>" not in page.text
    assert w.acme.posted in page.text

    # The note's text never reaches a leaf or an event; their ids do.
    recorded = _leaves_and_events(w)
    assert "Five deposits" not in recorded
    assert first["id"] in recorded
    assert "case.assigned" in recorded


def test_revealing_the_subject_needs_pii_read_and_is_a_leaf(w: World) -> None:
    api, path = w.api, f"/v1/cases/{w.case}/report"
    admin = api.get(path, key=w.acme.admin, params={"reveal": "true"})
    assert (admin.status_code, admin.json()["code"]) == (403, "insufficient_scope")
    revealed = api.ok("GET", path, key=w.officer, params={"reveal": "true"})
    assert revealed["subject"]["personal_data"]["name"] == "Ada Lovelace"
    leaves, _ = api.app.state.audit.leaves(w.acme_id, 0, 10_000)
    assert any(x["type"] == "customer.pii_revealed" for x in leaves)


def test_another_tenant_neither_sees_nor_works_the_case(w: World) -> None:
    api, path = w.api, f"/v1/cases/{w.case}"
    beta = w.beta.admin
    for method, suffix, body in (
        ("GET", "", None),
        ("GET", "/notes", None),
        ("GET", "/report", None),
        ("POST", "/notes", {"body": "hi"}),
        ("POST", "/assign", {"assignee": w.beta_staff}),
    ):
        answer = api.request(method, f"{path}{suffix}", key=beta, json=body)
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found"), suffix
    assert api.ok("GET", f"{path}/notes", key=w.officer)["data"] == []


def test_deciding_an_alert_runs_its_kinds_hook_in_the_decision(w: World) -> None:
    api, path = w.api, f"/v1/cases/{w.case}"
    cases: CaseService = api.app.state.cases
    seen: list[tuple[str, CaseStatus, str]] = []

    def hook(uow: UnitOfWork, case: Case, status: CaseStatus, actor: str) -> None:
        seen.append((case.id, status, actor))
        if len(seen) == 1:
            raise RuntimeError("the first attempt fails: the decision must not stand")

    cases.on_decided("aml_structuring", hook)
    failed = api.post(f"{path}/decline", key=w.officer, json={"reason": "reported"})
    assert failed.status_code == 500
    assert api.ok("GET", path, key=w.officer)["status"] == "open"  # undone with the hook
    declined = api.ok("POST", f"{path}/decline", key=w.officer, json={"reason": "reported"})
    assert declined["status"] == "declined"
    assert [s for _, s, _ in seen] == [CaseStatus.DECLINED, CaseStatus.DECLINED]
    assert api.ok("GET", f"/v1/transfers/{w.acme.posted}", key=w.acme.read)["status"] == "posted"
    closed = api.post(f"{path}/assign", key=w.officer, json={"assignee": w.staff})
    assert (closed.status_code, closed.json()["code"]) == (409, "case_not_open")
