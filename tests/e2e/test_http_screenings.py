"""Sanctions screening through the HTTP app `serve` builds, on SQLite and PostgreSQL: ad-hoc
screening answers ranked, explained matches (503 before any list is loaded); a customer created
with a listed name is screened in its creating transaction and alerts once (a case in the
queue); a dismissal holds until the name changes; a confirmation marks the subject; another
tenant's subject answers 404; the Python client's methods do the same; nothing of the screened
name reaches the logs."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa

from strongroom.cases.model import Alert
from strongroom.cases.service import CaseService
from strongroom.client import Client, NotFoundError
from strongroom.compliance.aml import store as aml_store
from strongroom.compliance.aml.store import AlertKey
from strongroom.compliance.sanctions.model import Entry, EntryKind, ListSource
from strongroom.db.uow import UnitOfWork
from tests.e2e.http_support import Served, build_app, problem_code, running, seed_tenant

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
        # A payee Strongroom does not know, by name: screened in memory, never stored.
        body: dict[str, Any] = {
            "ledger_id": a.ledger, "debit_account_id": a.bank, "credit_account_id": a.alice,
            "amount": 100,
            "payment": {"customer_id": payer["id"], "payee": "iban_x", "payee_name": "Viktor Bout"},
        }  # fmt: skip
        named = api.post("/v1/transfers", key=a.write, json=body)
        assert named.status_code == 201, named.text
        assert named.json()["status"] == "pending"
        assert "Viktor" not in named.text
        body["payment"]["payee_name"] = "Jane Roe"
        assert api.post("/v1/transfers", key=a.write, json=body).json()["status"] == "posted"
        body["payment"]["payee_name"] = "x" * 501
        refused = api.post("/v1/transfers", key=a.write, json=body)
        assert refused.status_code == 400
        with api.app.state.engine.connect() as conn:
            for table in ("cases", "sanctions_subjects", "events"):
                dump = str(conn.execute(sa.text(f"SELECT * FROM {table}")).fetchall())
                assert "Viktor" not in dump, table


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
