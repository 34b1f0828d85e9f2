"""Sanctions screening through the HTTP app `serve` builds, on SQLite and PostgreSQL: ad-hoc
screening answers ranked, explained matches (503 before any list is loaded); a customer created
with a listed name is screened in its creating transaction and alerts once (a case in the
queue); a dismissal holds until the name changes; a confirmation marks the subject; another
tenant's subject answers 404; the Python client's methods do the same; nothing of the screened
name reaches the logs. The payee gate never waits for a screener to build (at start, on a new
version); the screening door decides the alert cases of its matches; names with nothing to
screen, impossible dates and unknown countries are refused; customers are screened with their
date of birth; a payee-name case names what matched; a sanctions_review decline labels nothing
for risk training; a re-screening a crashed load left owed is completed by the next server in
the background after its start."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from strongroom.cases.model import Alert
from strongroom.cases.service import CaseService
from strongroom.client import Client, NotFoundError
from strongroom.compliance.aml import store as aml_store
from strongroom.compliance.aml.store import AlertKey
from strongroom.compliance.sanctions.match import build as build_screener
from strongroom.compliance.sanctions.model import Entry, EntryKind, ListSource, Screener
from strongroom.compliance.sanctions.service import SanctionsService
from strongroom.db.engine import create_engine
from strongroom.db.uow import UnitOfWork
from tests.e2e.http_support import (
    Api,
    Served,
    build_app,
    problem_code,
    running,
    seed_tenant,
)

LIST = [
    Entry(ListSource.OFAC_SDN, "200", EntryKind.PERSON, ("Viktor BOUT", "Victor Butt")),
    Entry(ListSource.OFAC_SDN, "300", EntryKind.ORGANIZATION, ("ACME TRADING LLC",)),
]


def test_screening_route_subjects_dismissals_and_tenancy(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with running(db_url) as api:
        a, b = seed_tenant(api, "acme"), seed_tenant(api, "bravo")
        answer = api.request("POST", "/v1/screenings", key=a.admin, json={"name": "Viktor Bout"})
        assert answer.status_code == 409
        assert answer.json()["code"] == "sanctions_lists_not_loaded"
        api.app.state.sanctions.load(ListSource.OFAC_SDN, LIST, actor="cli")

        found = api.ok(
            "POST",
            "/v1/screenings",
            key=a.admin,
            json={"name": "Wiktor Bout", "type": "person", "country": "RU", "limit": 3},
        )
        assert found["hit"] is True
        assert found["lists"] == {"ofac_sdn": 1}
        best = found["matches"][0]
        assert (best["list"], best["entry_id"], best["entry_name"]) == (
            "ofac_sdn",
            "200",
            "Viktor BOUT",
        )
        assert {t["entry"] for t in best["explanation"]["tokens"]} == {"viktor", "bout"}
        assert all(m["kind"] == "person" for m in found["matches"])
        # Bounded inputs: refused before anything is screened.
        for body in ({"name": ""}, {"name": "x" * 501}, {"name": "x", "limit": 51},
                     {"name": "x", "country": "Russia"},
                     {"name": "x", "date_of_birth": "1967/1/13"},
                     {"name": "x", "extra": 1}):  # fmt: skip
            refused = api.request("POST", "/v1/screenings", key=a.admin, json=body)
            assert refused.status_code in (400, 422), body
        # A read-only compliance key may not screen.
        reader = api.app.state.tenancy.create_api_key("acme", ["compliance:read"])[1]
        denied = api.request("POST", "/v1/screenings", key=reader, json={"name": "x"})
        assert denied.status_code == 403

        # A customer with a listed name: screened when created, one alert case.
        customer = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Viktor Bout"})
        subject = api.ok("GET", f"/v1/screenings/subjects/{customer['id']}", key=reader)
        assert subject["status"] == "probable"
        (match,) = subject["matches"]
        assert (match["entry_id"], match["dismissed"]) == ("200", False)
        assert match["case_id"]
        cases = api.ok("GET", "/v1/cases", key=a.admin, params={"kind": "sanctions_match"})
        assert [c["id"] for c in cases["data"]] == [match["case_id"]]
        assert "Viktor" not in str(cases)
        # B sees neither the subject nor may dismiss its match: as one never screened.
        for response in (
            api.request("GET", f"/v1/screenings/subjects/{customer['id']}", key=b.admin),
            api.request(
                "POST", "/v1/screenings/dismissals", key=b.admin,
                json={"subject_id": customer["id"], "list": "ofac_sdn", "entry_id": "200"},
            ),
        ):  # fmt: skip
            assert (response.status_code, response.json()["code"]) == (404, "not_found")

        dismissal = api.ok(
            "POST", "/v1/screenings/dismissals", 201, key=a.admin,
            json={"subject_id": customer["id"], "list": "ofac_sdn", "entry_id": "200",
                  "reason": "date of birth differs"},
        )  # fmt: skip
        assert dismissal["reason"] == "date of birth differs"
        after = api.ok("GET", f"/v1/screenings/subjects/{customer['id']}", key=reader)
        assert after["status"] == "clear"
        assert after["matches"][0]["dismissed"] is True
        # An unrelated update screens again: no new alert. A new name: a new alert.
        api.ok(
            "PATCH", f"/v1/customers/{customer['id']}", key=a.admin, json={"email": "v@example.com"}
        )
        api.ok(
            "PATCH", f"/v1/customers/{customer['id']}", key=a.admin, json={"name": "Viktor Bout"}
        )
        cases = api.ok("GET", "/v1/cases", key=a.admin, params={"kind": "sanctions_match"})
        assert len(cases["data"]) == 1
        api.ok(
            "PATCH", f"/v1/customers/{customer['id']}", key=a.admin, json={"name": "Victor Butt"}
        )
        cases = api.ok("GET", "/v1/cases", key=a.admin, params={"kind": "sanctions_match"})
        assert len(cases["data"]) == 2

        confirmed = api.ok(
            "POST", "/v1/screenings/confirmations", key=a.admin,
            json={"subject_id": customer["id"], "list": "ofac_sdn", "entry_id": "200"},
        )  # fmt: skip
        assert confirmed["status"] == "confirmed"

        # A counterparty is screened at creation too.
        payee = api.ok(
            "POST", "/v1/counterparties", 201, key=a.admin,
            json={"name": "Acme Trading LLC", "account_identifier": "GB29NWBK60161331926819",
                  "country": "GB"},
        )  # fmt: skip
        seen = api.ok("GET", f"/v1/screenings/subjects/{payee['id']}", key=reader)
        assert seen["status"] == "probable"
        assert seen["matches"][0]["entry_id"] == "300"

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Wiktor" not in logged
    assert "Victor Butt" not in logged


def test_the_client_screens_reads_and_dismisses(sqlite_url: str) -> None:
    app = build_app(sqlite_url)
    app.state.sanctions.load(ListSource.OFAC_SDN, LIST, actor="cli")
    key = app.state.tenancy.create_api_key("acme", ["admin"])[1]
    with Served(app) as served, Client(served.base_url, key) as sr:
        screened = sr.create_screening("Victor Butt", type="person")
        assert screened.hit
        assert screened.matches[0].entry_id == "200"
        payee = sr.create_counterparty("Acme Trading LLC", "GB29NWBK60161331926819", "GB")
        assert sr.get_screening_subject(payee.id).status == "probable"
        with pytest.raises(NotFoundError):
            sr.dismiss_screening_match(payee.id, "ofac_sdn", "200")
        dismissed = sr.dismiss_screening_match(payee.id, "ofac_sdn", "300", reason="a namesake")
        assert (dismissed.subject_id, dismissed.reason) == (payee.id, "a namesake")
        assert sr.get_screening_subject(payee.id).status == "clear"


def test_the_payee_gate_holds_probable_and_blocks_confirmed_payees(db_url: str) -> None:
    with running(db_url, screening=True) as api:
        a = seed_tenant(api, "acme")
        api.app.state.sanctions.load(ListSource.OFAC_SDN, LIST, actor="cli")
        payer = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Ada Lovelace"})

        def payee(name: str) -> str:
            body = {"name": name, "account_identifier": "GB29NWBK60161331926819", "country": "GB"}
            return str(api.ok("POST", "/v1/counterparties", 201, key=a.admin, json=body)["id"])

        clear, probable, confirmed = payee("Jane Roe"), payee("Viktor Bout"), payee("Acme Trading")
        api.ok(
            "POST", "/v1/screenings/confirmations", key=a.admin,
            json={"subject_id": confirmed, "list": "ofac_sdn", "entry_id": "300"},
        )  # fmt: skip

        def pay(to: str) -> Any:
            body = {
                "ledger_id": a.ledger, "debit_account_id": a.bank, "credit_account_id": a.alice,
                "amount": 100, "payment": {"customer_id": payer["id"], "payee": to},
            }  # fmt: skip
            return api.post("/v1/transfers", key=a.write, json=body)

        allowed = pay(clear)
        assert allowed.status_code == 201, allowed.text
        assert allowed.json()["status"] == "posted"
        held = pay(probable)
        assert held.status_code == 201, held.text
        assert held.json()["status"] == "pending"
        cases = api.ok("GET", "/v1/cases", key=a.admin, params={"kind": "sanctions_review"})
        assert [c["transfer_id"] for c in cases["data"]] == [held.json()["id"]]
        blocked = pay(confirmed)
        assert (blocked.status_code, problem_code(blocked)) == (422, "sanctions_blocked")
        assert confirmed not in blocked.text
        # A payee dismissed as a false positive passes.
        api.ok(
            "POST", "/v1/screenings/dismissals", 201, key=a.admin,
            json={"subject_id": probable, "list": "ofac_sdn", "entry_id": "200"},
        )  # fmt: skip
        assert pay(probable).json()["status"] == "posted"
        # A payee Strongroom does not know, by name: screened in memory, never stored. Its
        # case names what matched (the list entry: public list data), not the name typed.
        body: dict[str, Any] = {
            "ledger_id": a.ledger, "debit_account_id": a.bank, "credit_account_id": a.alice,
            "amount": 100,
            "payment": {"customer_id": payer["id"], "payee": "iban_x", "payee_name": "Wiktor Bout"},
        }  # fmt: skip
        named = api.post("/v1/transfers", key=a.write, json=body)
        assert named.status_code == 201, named.text
        assert named.json()["status"] == "pending"
        assert "Wiktor" not in named.text
        (case,) = [
            c for c in api.ok("GET", "/v1/cases", key=a.admin, params={"kind": "sanctions_review"})[
                "data"
            ] if c["transfer_id"] == named.json()["id"]
        ]  # fmt: skip
        evidence = case["decision"]["detail"]["payee_name"]
        assert (evidence["list"], evidence["entry_id"], evidence["entry_name"]) == (
            "ofac_sdn", "200", "Viktor BOUT",
        )  # fmt: skip
        assert evidence["score"] >= 0.7
        assert evidence["list_version"] == 1
        # A payee's stored screening held it: the case names the subject.
        (first,) = [c for c in cases["data"] if c["transfer_id"] == held.json()["id"]]
        held_case = api.ok("GET", f"/v1/cases/{first['id']}", key=a.admin)
        assert held_case["decision"]["detail"]["payee"] == {
            "subject": f"counterparty:{probable}", "status": "probable",
        }  # fmt: skip
        body["payment"]["payee_name"] = "Jane Roe"
        assert api.post("/v1/transfers", key=a.write, json=body).json()["status"] == "posted"
        body["payment"]["payee_name"] = "x" * 501
        refused = api.post("/v1/transfers", key=a.write, json=body)
        assert refused.status_code == 400
        with api.app.state.engine.connect() as conn:
            for table in ("cases", "sanctions_subjects", "events"):
                dump = str(conn.execute(sa.text(f"SELECT * FROM {table}")).fetchall())
                assert "Wiktor" not in dump, table


def _written(api: Any) -> tuple[int, int, int]:
    """What a write leaves: the audit logs' sizes, the events, the frozen accounts."""
    with api.app.state.engine.connect() as conn:
        return (
            int(conn.execute(sa.text("SELECT COALESCE(SUM(size), 0) FROM audit_logs")).scalar()),
            int(conn.execute(sa.text("SELECT COUNT(*) FROM events")).scalar()),
            int(conn.execute(sa.text("SELECT COUNT(*) FROM accounts WHERE frozen")).scalar()),
        )


def test_an_officer_decides_a_sanctions_alert_in_the_case_queue(db_url: str) -> None:
    """Declining a `sanctions_match` case confirms the match and freezes the customer's
    accounts, in the decision's transaction (a failing freeze undoes the decision); approving
    another dismisses its match, so the same name does not alert again. A confirmed customer's
    account is not unfrozen, and no new one is opened for them (409 sanctions_confirmed)."""
    with running(db_url) as api:
        a = seed_tenant(api, "acme")
        api.app.state.sanctions.load(ListSource.OFAC_SDN, LIST, actor="cli")
        bout = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Viktor Bout"})
        acme = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Victor Butt"})
        account = api.ok(
            "POST",
            "/v1/accounts",
            201,
            key=a.write,
            json={"ledger_id": a.ledger, "asset": "USD", "normal_balance": "credit",
                  "customer_id": bout["id"]},
        )["id"]  # fmt: skip
        cases = api.ok("GET", "/v1/cases", key=a.admin, params={"kind": "sanctions_match"})
        by_subject = {c["decision"]["detail"]["subject"]: c["id"] for c in cases["data"]}
        assert set(by_subject) == {f"customer:{bout['id']}", f"customer:{acme['id']}"}
        bout_case, acme_case = (by_subject[f"customer:{x['id']}"] for x in (bout, acme))

        # A fraud analyst works the queue (cases:write) but decides no sanctions alert.
        tenancy = api.app.state.tenancy
        analyst = tenancy.create_api_key("acme", ["cases:write"], role="fraud_analyst")[1]
        for action in ("decline", "approve"):
            refused = api.request("POST", f"/v1/cases/{bout_case}/{action}", key=analyst, json={})
            assert (refused.status_code, problem_code(refused)) == (403, "insufficient_scope")
        assert api.ok("GET", f"/v1/cases/{bout_case}", key=a.admin)["status"] == "open"

        # The freeze fails (after freezing the account): the decision, the confirmation and
        # the freeze are one transaction, so the case is still open and nothing was written.
        sanctions = api.app.state.sanctions
        freeze = sanctions.freeze_customer

        def failing(*args: Any) -> None:
            freeze(*args)
            raise RuntimeError("the freeze failed")

        before = _written(api)
        sanctions.freeze_customer = failing
        try:
            failed = api.request(
                "POST", f"/v1/cases/{bout_case}/decline", key=a.admin, json={"reason": "listed"}
            )
        finally:
            sanctions.freeze_customer = freeze
        assert failed.status_code == 500
        assert api.ok("GET", f"/v1/cases/{bout_case}", key=a.admin)["status"] == "open"
        subject = api.ok("GET", f"/v1/screenings/subjects/{bout['id']}", key=a.admin)
        assert subject["status"] == "probable"
        assert api.ok("GET", f"/v1/accounts/{account}", key=a.read)["frozen"] is False
        assert _written(api) == before

        declined = api.ok(
            "POST", f"/v1/cases/{bout_case}/decline",
            key=a.admin, json={"reason": "the listed person"},
        )  # fmt: skip
        assert declined["status"] == "declined"
        subject = api.ok("GET", f"/v1/screenings/subjects/{bout['id']}", key=a.admin)
        assert subject["status"] == "confirmed"
        assert api.ok("GET", f"/v1/accounts/{account}", key=a.read)["frozen"] is True
        frozen = api.request(
            "POST",
            "/v1/transfers",
            key=a.write,
            json={"ledger_id": a.ledger, "debit_account_id": a.bank,
                  "credit_account_id": account, "amount": 5},
        )  # fmt: skip
        assert (frozen.status_code, problem_code(frozen)) == (422, "account_frozen")
        # Confirmed: the account stays frozen and no other is opened for the customer.
        before = _written(api)
        kept = api.post(f"/v1/accounts/{account}/unfreeze", key=a.admin)
        assert (kept.status_code, problem_code(kept)) == (409, "sanctions_confirmed")
        assert api.ok("GET", f"/v1/accounts/{account}", key=a.read)["frozen"] is True
        opened = api.post(
            "/v1/accounts",
            key=a.write,
            json={"ledger_id": a.ledger, "asset": "USD", "normal_balance": "credit",
                  "customer_id": bout["id"]},
        )  # fmt: skip
        assert (opened.status_code, problem_code(opened)) == (409, "sanctions_confirmed")
        owned = api.ok("GET", f"/v1/customers/{bout['id']}/accounts", key=a.admin)["data"]
        assert [x["id"] for x in owned] == [account]
        assert _written(api) == before

        approved = api.ok(
            "POST", f"/v1/cases/{acme_case}/approve",
            key=a.admin, json={"reason": "another person"},
        )  # fmt: skip
        assert approved["status"] == "approved"
        cleared = api.ok("GET", f"/v1/screenings/subjects/{acme['id']}", key=a.admin)
        assert cleared["status"] == "clear"
        # Screened again under the same name (an update that keeps it): no new alert.
        api.ok("PATCH", f"/v1/customers/{acme['id']}", key=a.admin, json={"name": "Victor Butt"})
        again = api.ok("GET", "/v1/cases", key=a.admin, params={"kind": "sanctions_match"})
        assert len(again["data"]) == 2


def test_a_listed_person_registered_as_a_business_is_still_found(sqlite_url: str) -> None:
    """A customer's kind is the caller's claim: it narrows no candidate."""
    with running(sqlite_url) as api:
        a = seed_tenant(api, "acme")
        api.app.state.sanctions.load(ListSource.OFAC_SDN, LIST, actor="cli")
        body = {"kind": "business", "name": "Viktor Bout"}
        made = api.ok("POST", "/v1/customers", 201, key=a.admin, json=body)
        subject = api.ok("GET", f"/v1/screenings/subjects/{made['id']}", key=a.admin)
        assert subject["status"] == "probable"


def test_a_renamed_subject_keeps_its_open_alert(db_url: str) -> None:
    """Renaming a customer whose match is alerted and undecided neither clears
    it nor orphans the alert: the subject stays `probable` (the payee gate still holds it), a
    name that hits another entry adds its alert, and deciding the first alert works from its
    own evidence (the list and entry it names), whatever the name is now."""
    with running(db_url) as api:
        a = seed_tenant(api, "acme")
        api.app.state.sanctions.load(ListSource.OFAC_SDN, LIST, actor="cli")

        def subject(subject_id: str) -> dict[str, Any]:
            return api.ok("GET", f"/v1/screenings/subjects/{subject_id}", key=a.admin)

        def alerts() -> dict[str, str]:
            cases = api.ok("GET", "/v1/cases", key=a.admin, params={"kind": "sanctions_match"})
            return {c["id"]: c["status"] for c in cases["data"]}

        bout = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Viktor Bout"})
        (first,) = alerts()
        api.ok("PATCH", f"/v1/customers/{bout['id']}", key=a.admin, json={"name": "Jane Roe"})
        renamed = subject(bout["id"])
        assert renamed["status"] == "probable"
        assert [(m["entry_id"], m["case_id"]) for m in renamed["matches"]] == [("200", first)]
        assert alerts() == {first: "open"}
        # Screened again under the clean name: still kept, no new alert.
        api.ok("PATCH", f"/v1/customers/{bout['id']}", key=a.admin, json={"name": "Jane Roe"})
        assert subject(bout["id"])["status"] == "probable"
        declined = api.ok("POST", f"/v1/cases/{first}/decline", key=a.admin, json={})
        assert declined["status"] == "declined"
        assert subject(bout["id"])["status"] == "confirmed"

        # Renamed to a name that hits another entry: both alerts, each decided on its own.
        butt = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Victor Butt"})
        (second,) = set(alerts()) - {first}
        rename = {"name": "Acme Trading LLC"}
        api.ok("PATCH", f"/v1/customers/{butt['id']}", key=a.admin, json=rename)
        (third,) = set(alerts()) - {first, second}
        matches = {m["entry_id"]: m["case_id"] for m in subject(butt["id"])["matches"]}
        assert matches == {"200": second, "300": third}
        approved = api.ok("POST", f"/v1/cases/{second}/approve", key=a.admin, json={})
        assert approved["status"] == "approved"
        after = subject(butt["id"])
        assert after["status"] == "probable"  # the other alert is open
        dismissed = {m["entry_id"]: m["dismissed"] for m in after["matches"]}
        assert dismissed == {"200": True, "300": False}
        api.ok("POST", f"/v1/cases/{third}/approve", key=a.admin, json={})
        assert subject(butt["id"])["status"] == "clear"
        # Decided, the old name's match is dropped at the next screening; no alert comes back.
        api.ok("PATCH", f"/v1/customers/{butt['id']}", key=a.admin, json=rename)
        final = subject(butt["id"])
        assert (final["status"], [m["entry_id"] for m in final["matches"]]) == ("clear", ["300"])
        assert len(alerts()) == 3


def _screening_rows(api: Any, subject: str) -> dict[str, list[Any]]:
    with api.app.state.engine.connect() as conn:
        return {
            table: [
                tuple(r)
                for r in conn.execute(
                    sa.text(f"SELECT * FROM {table} WHERE subject = :s"), {"s": subject}
                )
            ]
            for table in (
                "sanctions_subjects", "sanctions_results", "sanctions_dismissals",
                "sanctions_subject_keys",
            )
        }  # fmt: skip


def test_erasure_waits_for_open_alerts_and_forgets_the_screening(db_url: str) -> None:
    """A customer with no account (no AML retention) but an open sanctions alert is not erased
    (409 `legal_hold`, naming the case, not its kind: tipping-off); once the alert is decided,
    erasure deletes what screening stored of the customer (keyed hashes of its name, its
    matches, dismissals and their free-text reasons). A confirmed match keeps its status, with
    no name digest, so the payee gate still blocks it. Counterparties likewise."""
    with running(db_url, aml_retention_days=0) as api:
        a = seed_tenant(api, "acme")
        api.app.state.sanctions.load(ListSource.OFAC_SDN, LIST, actor="cli")

        def alerts() -> list[str]:
            cases = api.ok("GET", "/v1/cases", key=a.admin, params={"kind": "sanctions_match"})
            return [c["id"] for c in cases["data"] if c["status"] == "open"]

        bout = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Viktor Bout"})
        (case,) = alerts()
        erase = f"/v1/customers/{bout['id']}/personal-data"
        refused = api.request("DELETE", erase, key=a.admin)
        assert (refused.status_code, problem_code(refused)) == (409, "legal_hold")
        detail = refused.json()["detail"]
        assert case in detail
        assert "open compliance case" in detail
        assert "sanction" not in detail.lower()
        assert api.ok("GET", f"/v1/customers/{bout['id']}", key=a.admin)["erased"] is False
        api.ok("POST", f"/v1/cases/{case}/approve", key=a.admin, json={"reason": "a namesake"})
        subject = f"customer:{bout['id']}"
        assert _screening_rows(api, subject)["sanctions_dismissals"]
        assert api.ok("DELETE", erase, key=a.admin)["erased"] is True
        assert _screening_rows(api, subject) == {
            "sanctions_subjects": [], "sanctions_results": [], "sanctions_dismissals": [],
            "sanctions_subject_keys": [],
        }  # fmt: skip

        # Confirmed, then erased: the status stays (the gate blocks it), the name digest not.
        butt = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Victor Butt"})
        (case,) = alerts()
        api.ok("POST", f"/v1/cases/{case}/decline", key=a.admin, json={})
        api.ok("DELETE", f"/v1/customers/{butt['id']}/personal-data", key=a.admin)
        rows = _screening_rows(api, f"customer:{butt['id']}")
        ((_, _, digest, status, _, _),) = rows.pop("sanctions_subjects")
        assert (digest, status) == ("", "confirmed")
        assert rows == {"sanctions_results": [], "sanctions_dismissals": [],
                        "sanctions_subject_keys": []}  # fmt: skip

        # A counterparty with an open alert: the same refusal, the same forgetting after.
        body = {"name": "Acme Trading LLC", "account_identifier": "GB29NWBK60161331926819",
                "country": "GB"}  # fmt: skip
        payee = api.ok("POST", "/v1/counterparties", 201, key=a.admin, json=body)
        (case,) = alerts()
        erase = f"/v1/counterparties/{payee['id']}/personal-data"
        refused = api.request("DELETE", erase, key=a.admin)
        assert (refused.status_code, problem_code(refused)) == (409, "legal_hold")
        assert case in refused.json()["detail"]
        api.ok("POST", f"/v1/cases/{case}/approve", key=a.admin, json={})
        api.ok("DELETE", erase, key=a.admin)
        assert not any(_screening_rows(api, f"counterparty:{payee['id']}").values())


def test_an_open_aml_alert_holds_an_erasure(db_url: str) -> None:
    """A customer whose accounts are all closed (no retention period here) is erasable, unless
    an AML alert on one of its accounts is still open."""
    with running(db_url, aml_retention_days=0) as api:
        a = seed_tenant(api, "acme")
        tenant_id = api.app.state.tenancy.ensure_tenant("acme").id
        customer = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Jane Roe"})
        account = api.ok(
            "POST", "/v1/accounts", 201, key=a.write,
            json={"ledger_id": a.ledger, "asset": "USD", "normal_balance": "credit",
                  "customer_id": customer["id"]},
        )["id"]  # fmt: skip
        api.app.state.ledger.close_account(account)
        cases: CaseService = api.app.state.cases
        with UnitOfWork(api.app.state.engine) as uow:
            (case,) = cases.open_alerts(
                uow, tenant_id,
                [Alert("aml_structuring", f"account:{account}", {"transfers": []},
                       code="structuring")],
                actor="system:aml",
            )  # fmt: skip
            aml_store.claim(uow, AlertKey(tenant_id, account, "structuring", 0), case.id, 0)
            uow.commit()
        erase = f"/v1/customers/{customer['id']}/personal-data"
        refused = api.request("DELETE", erase, key=a.admin)
        assert (refused.status_code, problem_code(refused)) == (409, "legal_hold")
        assert case.id in refused.json()["detail"]
        api.ok("POST", f"/v1/cases/{case.id}/approve", key=a.admin, json={})
        assert api.ok("DELETE", erase, key=a.admin)["erased"] is True


class GatedFactory:
    """The matcher's factory, made to wait while `open` is clear: a screener that takes as
    long to build as the test says, whatever the machine."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()
        self.calls = 0

    def __call__(self, entries: Sequence[Entry]) -> Screener:
        self.calls += 1
        assert self.open.wait(timeout=60), "the test never let the build finish"
        return build_screener(entries)


def test_the_payee_gate_never_waits_for_a_screener_to_build(sqlite_url: str) -> None:
    """Right after a start and right after a new list version, a payment with a payee name is
    screened at once (never `gate_unavailable` while a screener builds): the server builds
    the screener before its first request, and a new version's in the background while the
    previous one keeps answering, swapped in when ready."""
    app = build_app(sqlite_url, screening=True)
    SanctionsService(app.state.engine).load(ListSource.OFAC_SDN, LIST, actor="cli")  # before
    screeners = app.state.sanctions.screeners
    factory = GatedFactory()
    screeners.factory = factory
    api = Api(app)  # the startup: the screener is built before any request
    try:
        assert (factory.calls, screeners.builds) == (1, 1)
        a = seed_tenant(api, "acme")
        payer = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Ada Lovelace"})

        def pay(name: str) -> Any:
            body = {
                "ledger_id": a.ledger, "debit_account_id": a.bank, "credit_account_id": a.alice,
                "amount": 10,
                "payment": {"customer_id": payer["id"], "payee": "iban_x", "payee_name": name},
            }  # fmt: skip
            answer = api.post("/v1/transfers", key=a.write, json=body)
            assert answer.status_code == 201, answer.text  # never 422 gate_unavailable
            return answer.json()["status"]

        factory.open.clear()  # from here, a build waits until the test lets it finish
        assert pay("Wiktor Bout") == "pending"
        # Another process loads a new version (an entry added); this server notices it at
        # its next read of the versions (made immediate here) and builds in the background.
        v2 = [*LIST, Entry(ListSource.OFAC_SDN, "400", EntryKind.PERSON, ("Ali HASSAN",))]
        SanctionsService(app.state.engine).load(ListSource.OFAC_SDN, v2, actor="cli")
        screeners.refresh_s = 0.0
        assert pay("Wiktor Bout") == "pending"  # the previous screener, while the new builds
        assert pay("Ali Hassan") == "posted"  # not in the previous version
        assert screeners.builds == 1
        factory.open.set()
        screeners.join()
        assert screeners.builds == 2
        assert pay("Ali Hassan") == "pending"  # the new version's, swapped in
        screened = api.ok("POST", "/v1/screenings", key=a.admin, json={"name": "Ali Hassan"})
        assert screened["lists"] == {"ofac_sdn": 2}
    finally:
        factory.open.set()
        api.close()


def _case(api: Any, key: str, case_id: str) -> dict[str, Any]:
    return api.ok("GET", f"/v1/cases/{case_id}", key=key)


def test_the_screening_door_decides_the_alert_case_of_its_match(db_url: str) -> None:
    """A match dismissed or confirmed through /v1/screenings leaves no open alert behind (it
    would trip the case service level): its `sanctions_match` case is approved (dismissed) or
    declined (confirmed) in the same transaction, by the reviewer, with the reason, an audit
    leaf and an event. A confirmed subject is not alerted again when a new list version
    changes the entry it was confirmed for."""
    with running(db_url) as api:
        a = seed_tenant(api, "acme")
        sanctions = api.app.state.sanctions
        sanctions.load(ListSource.OFAC_SDN, LIST, actor="cli")
        bout = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Viktor Bout"})
        acme = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Victor Butt"})

        def alert_of(customer: dict[str, Any]) -> str:
            subject = api.ok("GET", f"/v1/screenings/subjects/{customer['id']}", key=a.admin)
            (match,) = subject["matches"]
            return str(match["case_id"])

        dismissed_case, confirmed_case = alert_of(acme), alert_of(bout)
        api.ok(
            "POST", "/v1/screenings/dismissals", 201, key=a.admin,
            json={"subject_id": acme["id"], "list": "ofac_sdn", "entry_id": "200",
                  "reason": "another date of birth"},
        )  # fmt: skip
        approved = _case(api, a.admin, dismissed_case)
        assert (approved["status"], approved["reason"]) == ("approved", "another date of birth")
        reviewer = approved["decided_by"]
        assert reviewer.startswith("api_key:")
        dismissal = api.ok("GET", f"/v1/screenings/subjects/{acme['id']}", key=a.admin)
        assert dismissal["status"] == "clear"
        api.ok(
            "POST", "/v1/screenings/confirmations", key=a.admin,
            json={"subject_id": bout["id"], "list": "ofac_sdn", "entry_id": "200"},
        )  # fmt: skip
        declined = _case(api, a.admin, confirmed_case)
        assert (declined["status"], declined["decided_by"]) == ("declined", reviewer)
        assert "confirmations" in declined["reason"]
        assert api.ok("GET", "/v1/cases", key=a.admin, params={"status": "open"})["data"] == []
        tenant_id = api.app.state.tenancy.ensure_tenant("acme").id
        leaves, _ = api.app.state.audit.leaves(tenant_id, 0, 10_000)
        decided = {
            (x["type"], x["content"]["actor"], x["content"]["data"]["case_id"])
            for x in leaves
            if x["type"] in ("case.approved", "case.declined")
        }
        assert decided == {
            ("case.approved", reviewer, dismissed_case), ("case.declined", reviewer, confirmed_case)
        }  # fmt: skip
        # Deciding it again through the queue: not open any more.
        again = api.request("POST", f"/v1/cases/{confirmed_case}/approve", key=a.admin, json={})
        assert (again.status_code, problem_code(again)) == (409, "case_not_open")

        # A new version changes the confirmed entry: the confirmed subject is not alerted
        # again (the dismissed one is: its dismissal was for the entry as it was).
        changed = [replace(LIST[0], programs=("UKRAINE-EO13660",)), LIST[1]]
        sanctions.load(ListSource.OFAC_SDN, changed, actor="cli")
        alerts = api.ok("GET", "/v1/cases", key=a.admin, params={"kind": "sanctions_match"})
        fresh = [c for c in alerts["data"] if c["status"] == "open"]
        assert [c["decision"]["detail"]["subject"] for c in fresh] == [f"customer:{acme['id']}"]
        subject = api.ok("GET", f"/v1/screenings/subjects/{bout['id']}", key=a.admin)
        assert subject["status"] == "confirmed"
        assert [m["case_id"] for m in subject["matches"]] == [confirmed_case]


def test_a_name_with_nothing_to_screen_is_refused(sqlite_url: str) -> None:
    """`"   "`, `"!!!"`: 400 `invalid_name` at the ad-hoc door, and a customer or counterparty
    of such a name is not created (nor renamed to one), rather than screened as clear."""
    with running(sqlite_url) as api:
        a = seed_tenant(api, "acme")
        api.app.state.sanctions.load(ListSource.OFAC_SDN, LIST, actor="cli")
        for name in ("   ", "!!!", "---", "\u2026"):
            refused = api.request("POST", "/v1/screenings", key=a.admin, json={"name": name})
            assert (refused.status_code, problem_code(refused)) == (400, "invalid_name"), name
            assert refused.json()["param"] == "name"
        made = api.request("POST", "/v1/customers", key=a.admin, json={"name": "!!!"})
        assert (made.status_code, problem_code(made)) == (400, "invalid_name")
        body = {"name": "---", "account_identifier": "GB29NWBK60161331926819", "country": "GB"}
        payee = api.request("POST", "/v1/counterparties", key=a.admin, json=body)
        assert (payee.status_code, problem_code(payee)) == (400, "invalid_name")
        assert api.ok("GET", "/v1/customers", key=a.admin)["data"] == []
        jane = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Jane Roe"})
        renamed = api.request(
            "PATCH", f"/v1/customers/{jane['id']}", key=a.admin, json={"name": "..."}
        )
        assert (renamed.status_code, problem_code(renamed)) == (400, "invalid_name")
        kept = api.ok("GET", f"/v1/customers/{jane['id']}", key=a.admin)
        assert kept["name"] == "J*** R**"


def test_a_query_date_of_birth_and_country_are_checked(sqlite_url: str) -> None:
    """A date that does not exist is not compared as a near year, and a country that is no
    ISO 3166-1 alpha-2 code is not ignored: both are 400, naming the field."""
    with running(sqlite_url) as api:
        a = seed_tenant(api, "acme")
        api.app.state.sanctions.load(ListSource.OFAC_SDN, LIST, actor="cli")
        for dob in ("1967-13-45", "1967-02-30", "1967-13", "1967-00", "0000", "2999"):
            refused = api.request(
                "POST", "/v1/screenings", key=a.admin,
                json={"name": "Viktor Bout", "date_of_birth": dob},
            )  # fmt: skip
            assert (refused.status_code, problem_code(refused)) == (400, "invalid_request"), dob
            assert refused.json()["param"] == "date_of_birth"
        refused = api.request(
            "POST", "/v1/screenings", key=a.admin, json={"name": "Viktor Bout", "country": "XX"}
        )
        assert (refused.status_code, problem_code(refused)) == (400, "invalid_country")
        assert refused.json()["param"] == "country"
        for dob, country in (("1967", "RU"), ("1967-01", "XK"), ("1967-01-13", "PR")):
            api.ok(
                "POST", "/v1/screenings", key=a.admin,
                json={"name": "Viktor Bout", "date_of_birth": dob, "country": country},
            )  # fmt: skip


def test_a_customer_is_screened_with_their_date_of_birth(db_url: str, caplog: Any) -> None:
    """A person's date of birth is evidence, as at the ad-hoc door: a near name with the
    listed date is a probable match, the listed name with another date is not; changing the
    date screens again. The date is never stored in the screening tables or logged."""
    caplog.set_level(logging.DEBUG)
    dated = [Entry(ListSource.OFAC_SDN, "200", EntryKind.PERSON, ("Viktor BOUT", "Victor Butt"),
                   dates_of_birth=("1967-01-13",))]  # fmt: skip
    with running(db_url) as api:
        a = seed_tenant(api, "acme")
        api.app.state.sanctions.load(ListSource.OFAC_SDN, dated, actor="cli")

        def status(customer: dict[str, Any]) -> str:
            found = api.ok("GET", f"/v1/screenings/subjects/{customer['id']}", key=a.admin)
            return str(found["status"])

        # "Viktar Bot" alone scores under the threshold; with the listed date, over it.
        near = api.ok(
            "POST", "/v1/customers", 201, key=a.admin,
            json={"name": "Viktar Bot", "date_of_birth": "1967-01-13"},
        )  # fmt: skip
        assert status(near) == "probable"
        other = api.ok(
            "POST", "/v1/customers", 201, key=a.admin,
            json={"name": "Wiktor Bout", "date_of_birth": "1990-05-05"},
        )  # fmt: skip
        assert status(other) == "clear"
        api.ok(
            "PATCH", f"/v1/customers/{other['id']}", key=a.admin,
            json={"date_of_birth": "1967-01-13"},
        )  # fmt: skip
        assert status(other) == "probable"
        # A new list version re-screens them with their dates too.
        changed = [replace(dated[0], programs=("UKRAINE-EO13660",))]
        api.app.state.sanctions.load(ListSource.OFAC_SDN, changed, actor="cli")
        assert (status(near), status(other)) == ("probable", "probable")
        with api.app.state.engine.connect() as conn:
            for table in (
                "sanctions_subjects", "sanctions_results", "sanctions_subject_keys", "cases",
                "events",
            ):  # fmt: skip
                dump = str(conn.execute(sa.text(f"SELECT * FROM {table}")).fetchall())
                assert "1967-01-13" not in dump, table
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "1990-05-05" not in logged


def test_declining_a_sanctions_review_labels_no_payment_for_risk_training(sqlite_url: str) -> None:
    """A payment held because its payee matched a list is declined for that reason, not for
    fraud: the case voids it, and nothing reaches the risk domain's training labels (only a
    `risk_review` case's decision does)."""
    with running(sqlite_url, screening=True) as api:
        a = seed_tenant(api, "acme")
        api.app.state.sanctions.load(ListSource.OFAC_SDN, LIST, actor="cli")
        payer = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Ada Lovelace"})
        recorded: list[tuple[str, str, bool]] = []
        cases: CaseService = api.app.state.cases
        cases.labels = lambda uow, tenant, transfer, fraud: recorded.append(
            (tenant, transfer, fraud)
        )
        body = {
            "ledger_id": a.ledger, "debit_account_id": a.bank, "credit_account_id": a.alice,
            "amount": 100,
            "payment": {"customer_id": payer["id"], "payee": "iban_x", "payee_name": "Viktor Bout"},
        }  # fmt: skip
        held = api.ok("POST", "/v1/transfers", 201, key=a.write, json=body)
        assert held["status"] == "pending"
        (case,) = api.ok("GET", "/v1/cases", key=a.admin, params={"kind": "sanctions_review"})[
            "data"
        ]
        declined = api.ok(
            "POST", f"/v1/cases/{case['id']}/decline", key=a.admin, json={"reason": "listed"}
        )
        assert declined["transfer"]["status"] == "voided"
        assert recorded == []


WAIT_S_MAX = 120.0  # a bound on waiting for the background job, not an assertion on speed


def test_a_rescreening_a_crashed_load_left_owed_is_completed_after_start(db_url: str) -> None:
    """A load killed after storing its version (here: rescreen=False, as a kill after its
    commit) leaves the version's re-screening owed. The next server completes it in the
    background after its start (the job `sanctions_rescreen`): it serves while the job runs,
    and the customer the new entry matches gets their alert."""
    with running(db_url) as api:
        a = seed_tenant(api, "acme")
        api.app.state.sanctions.load(ListSource.OFAC_SDN, LIST[1:], actor="cli")
        customer = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Viktor Bout"})
        path = f"/v1/screenings/subjects/{customer['id']}"
        assert api.ok("GET", path, key=a.admin)["status"] == "clear"
        api.app.state.sanctions.load(ListSource.OFAC_SDN, LIST, actor="cli", rescreen=False)
    engine = create_engine(db_url)
    try:
        owed = SanctionsService(engine).owed()
    finally:
        engine.dispose()
    assert [(r.source, r.version) for r in owed] == [("ofac_sdn", 2)]

    with running(db_url) as api:
        service = api.app.state.sanctions
        # The job's look-up of each subject's name waits until the test lets it go on.
        entered, go_on = threading.Event(), threading.Event()
        names = service.names

        def waiting(tenant_id: str, subject: str) -> Any:
            entered.set()
            go_on.wait(WAIT_S_MAX)
            return names(tenant_id, subject)

        service.names = waiting
        deadline = time.monotonic() + WAIT_S_MAX
        while not entered.is_set():
            assert time.monotonic() < deadline, "the job never began the owed re-screening"
            api.run(asyncio.sleep(0.02))
        # The server answers while the re-screening is under way, and it is still owed.
        assert api.ok("GET", path, key=a.admin)["status"] == "clear"
        assert [r.version for r in service.owed()] == [2]
        go_on.set()
        while service.owed():
            assert time.monotonic() < deadline, "the owed re-screening was never completed"
            api.run(asyncio.sleep(0.02))
        subject = api.ok("GET", path, key=a.admin)
        assert subject["status"] == "probable"
        assert [m["entry_id"] for m in subject["matches"]] == ["200"]
        cases = api.ok("GET", "/v1/cases", key=a.admin, params={"kind": "sanctions_match"})
        assert len(cases["data"]) == 1
        ready = api.ok("GET", "/readyz")
        assert ready["jobs"]["sanctions_rescreen"]["last_success_at"] is not None
        assert ready["jobs"]["sanctions_rescreen"]["last_error"] is None
