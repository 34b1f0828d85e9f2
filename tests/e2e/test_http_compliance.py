"""GDPR export and the compliance report over HTTP and from the command line: the export needs
`pii:read` and is an audit leaf; the report route serves the latest stored report (404 before
the first run, never a scan per request); `strongroom compliance check` writes the report as
Markdown or HTML and JSON, stores it, and exits 1 when a control failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from strongroom.cli import app as cli_app
from strongroom.core import clock
from strongroom.ledger.model import Direction
from strongroom.ledger.service import AccountSpec, NewTransfer, canonical_metadata
from tests.e2e.http_support import problem_code, running, seed_tenant


def test_export_and_report_routes(sqlite_url: str, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    with running(sqlite_url) as api:
        tenancy = api.app.state.tenancy
        admin = tenancy.create_api_key("acme", ["admin"])[1]
        pii = tenancy.create_api_key("acme", ["pii:read"])[1]
        officer = tenancy.create_api_key("acme", ["compliance:read"])[1]
        ledger_key = tenancy.create_api_key("acme", ["ledger:write"])[1]
        cus = api.ok("POST", "/v1/customers", 201, key=admin,
                      json={"name": "Ada Lovelace", "email": "ada@example.com"})["id"]  # fmt: skip

        # The export: pii:read (admin does not imply it), personal data in full, a leaf.
        export = f"/v1/customers/{cus}/export"
        response = api.get(export, key=admin)
        assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
        doc = api.ok("GET", export, key=pii)
        assert doc["personal_data"]["email"] == "ada@example.com"
        assert doc["customer"]["id"] == cus
        assert doc["accounts"] == []
        assert (doc["truncated"], doc["next_starting_after"]) == (False, None)
        later = api.ok("GET", export, key=pii, params={"starting_after": "acc_zzz"})
        assert later["accounts"] == []
        leaves = api.ok("GET", "/v1/audit/leaves", key=admin, params={"limit": 100})["data"]
        assert "customer.exported" in {leaf["type"] for leaf in leaves}
        response = api.get("/v1/customers/cus_01m95wrhaj4rk1491e358fprv0/export", key=pii)
        assert (response.status_code, problem_code(response)) == (404, "not_found")

        # No report before the first run; compliance:read reads it, a ledger key may not.
        response = api.get("/v1/compliance/report", key=officer)
        assert (response.status_code, problem_code(response)) == (404, "not_found")
        response = api.get("/v1/compliance/report", key=ledger_key)
        assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
        # A list loaded just now (a row as `strongroom sanctions load` writes it): with none,
        # the sanctions control fails.
        with api.app.state.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO sanctions_list_versions (source, version, sha256, entry_count, "
                    "added, changed, removed, loaded_at, loaded_by) VALUES ('un', 1, 'x', 1, 1, "
                    "0, 0, :at, 'test')"
                ),
                {"at": clock.now_us()},
            )
        first = api.app.state.compliance_controls.run(actor="test")
        served = api.ok("GET", "/v1/compliance/report", key=officer)
        assert served["id"] == first.id
        assert served["outcome"] == "pass"

        # A card number planted now is not seen until the next run: the route reads the store.
        ledger = api.app.state.ledger
        book = ledger.create_ledger("books", tenant_id=api.app.state.tenancy.ensure_tenant(
            "acme").id)  # fmt: skip
        bank, wallet = ledger.create_accounts(
            [
                AccountSpec(book.id, "USD", Direction.DEBIT),
                AccountSpec(book.id, "USD", Direction.CREDIT),
            ]
        )
        meta = canonical_metadata({"note": "5555 5555 5555 4444"})
        ledger.post_transfers([NewTransfer("tr_planted", book.id, bank.id, wallet.id, 1,
                                           metadata=meta)])  # fmt: skip
        assert api.ok("GET", "/v1/compliance/report", key=officer)["id"] == first.id

    # The command runs the controls, stores the report and writes it; exit 1 on a failure.
    monkeypatch.setenv("STRONGROOM_DATABASE_URL", sqlite_url)
    out = tmp_path / "reports"
    result = CliRunner().invoke(cli_app, ["compliance", "check", "--format", "html",
                                          "--out", str(out)])  # fmt: skip
    assert result.exit_code == 1, result.output
    report = json.loads((out / "compliance-report.json").read_text())
    cards = next(c for c in report["controls"] if c["name"] == "card_numbers_in_clear")
    assert cards["outcome"] == "fail"
    assert {f["number"] for f in cards["findings"]} == {"555555******4444"}
    # Found where it was posted and in the audit log's leaf of it, whose bundle is stored
    # compressed (the scan opens a zstd frame before it searches it).
    assert {f["table"] for f in cards["findings"]} == {"transfers", "audit_bundles"}
    html = (out / "compliance-report.html").read_text()
    assert "555555******4444" in html
    assert "5555555555554444" not in html
    markdown = CliRunner().invoke(cli_app, ["compliance", "check"])
    assert markdown.exit_code == 1
    assert "| `card_numbers_in_clear` | FAIL |" in markdown.output
    with running(sqlite_url) as api:
        officer = api.app.state.tenancy.create_api_key("acme", ["compliance:read"])[1]
        served = api.ok("GET", "/v1/compliance/report", key=officer)
        assert served["outcome"] == "fail"
        seen = next(c for c in served["controls"] if c["name"] == "card_numbers_in_clear")
        assert seen["outcome"] == "fail"
        assert seen["findings"]
        # Another tenant sees none of acme's findings.
        other = api.app.state.tenancy.create_api_key("globex", ["compliance:read"])[1]
        theirs = api.ok("GET", "/v1/compliance/report", key=other)
        seen = next(c for c in theirs["controls"] if c["name"] == "card_numbers_in_clear")
        assert seen["findings"] == []
        assert seen["outcome"] == "pass"


def test_only_compliance_sets_an_accounts_aml_profile(sqlite_url: str) -> None:
    """`PUT /v1/accounts/{id}/aml` needs compliance:write (a key that moves money cannot exempt
    its own account), is an audit leaf and an event; another tenant's account is a 404."""
    with running(sqlite_url) as api:
        a, b = seed_tenant(api, "acme"), seed_tenant(api, "globex")
        tenancy = api.app.state.tenancy
        officer = tenancy.create_api_key("acme", ["compliance:write"])[1]
        reader = tenancy.create_api_key("acme", ["compliance:read"])[1]
        path = f"/v1/accounts/{a.alice}/aml"
        body = {"exempt": True, "jurisdiction": "ir"}
        for key in (a.write, reader):
            response = api.request("PUT", path, key=key, json=body)
            assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
        assert api.ok("GET", path, key=reader)["exempt"] is False
        set_ = api.ok("PUT", path, key=officer, json=body)
        assert (set_["exempt"], set_["jurisdiction"]) == (True, "IR")
        assert api.ok("GET", path, key=reader) == set_
        bad = api.request("PUT", path, key=officer, json={"exempt": False, "jurisdiction": "I1"})
        assert (bad.status_code, problem_code(bad)) == (400, "invalid_country")
        # Another tenant's account answers as one that does not exist.
        for method in ("GET", "PUT"):
            response = api.request(method, f"/v1/accounts/{b.alice}/aml", key=officer,
                                   json=body if method == "PUT" else None)  # fmt: skip
            assert (response.status_code, problem_code(response)) == (404, "not_found")
        leaves = api.ok("GET", "/v1/audit/leaves", key=a.admin, params={"limit": 100})["data"]
        assert "account.aml_updated" in {leaf["type"] for leaf in leaves}
        events = api.ok("GET", "/v1/events", key=a.admin, params={"limit": 100})["data"]
        [event] = [e for e in events if e["type"] == "account.aml_updated"]
        assert event["data"]["exempt"] is True
        assert event["data"]["jurisdiction"] == "IR"


def test_the_report_shows_a_tenant_its_own_facts_and_findings_only(sqlite_url: str) -> None:
    """Two tenants: a card number in acme's webhook URL, and in a failed delivery's error to
    it (a row that names only its endpoint), fail acme's card-data control, not globex's;
    globex sees no deployment-wide counts, nor the key manager, nor the sanctions lists'
    evidence; the deployment's own tenant (the operator's) does."""
    with running(sqlite_url) as api:
        acme = seed_tenant(api, "acme")
        seed_tenant(api, "globex")
        url = "https://hooks.example.com/4111111111111111"
        endpoint = api.ok("POST", "/v1/webhook_endpoints", 201, key=acme.admin,
                          json={"url": url})["id"]  # fmt: skip
        with api.app.state.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO webhook_deliveries (event_id, endpoint_id, attempt, status, "
                    "error, duration_ms, created_at) VALUES ('evt_x', :e, 1, 'failed', :err, 1, "
                    ":at)"
                ),
                {"e": endpoint, "err": f"could not connect to {url}", "at": clock.now_us()},
            )
        api.app.state.compliance_controls.run(actor="test")
        tenancy = api.app.state.tenancy
        acme_id = tenancy.ensure_tenant("acme").id
        views = {
            name: api.ok("GET", "/v1/compliance/report",
                         key=tenancy.create_api_key(name, ["compliance:read"])[1])
            for name in ("acme", "globex", "default")  # "default": ten_default, the operator's
        }  # fmt: skip

    def control(view: dict[str, Any], name: str) -> dict[str, Any]:
        return next(c for c in view["controls"] if c["name"] == name)

    mine = control(views["acme"], "card_numbers_in_clear")
    assert mine["outcome"] == "fail"
    assert {(f["table"], f["column"]) for f in mine["findings"]} >= {
        ("webhook_endpoints", "url"),
        ("webhook_deliveries", "error"),
    }
    assert {f["tenant_id"] for f in mine["findings"]} == {acme_id}
    theirs = control(views["globex"], "card_numbers_in_clear")
    assert (theirs["outcome"], theirs["found"], theirs["findings"]) == ("pass", 0, [])
    assert set(theirs["facts"]) == {"tables", "columns"}  # the schema's, not the rows'
    keys = control(views["globex"], "keys_rotated")
    assert (keys["scope"], keys["outcome"], keys["findings"]) == ("deployment", "pass", [])
    assert set(keys["facts"]) == {"period_days"}  # no key manager, no versions
    lists = control(views["globex"], "sanctions_lists_fresh")
    assert (lists["outcome"], lists["findings"]) == ("fail", [])  # none loaded
    assert set(lists["facts"]) == {"max_age_days"}
    for view in views.values():
        assert "found_by_tenant" not in json.dumps(view)
        assert "tenant_facts" not in json.dumps(view)
    # The operator's tenant sees the deployment's evidence and counts, not acme's findings.
    operator = views["default"]
    assert "kms" in control(operator, "keys_rotated")["facts"]
    assert control(operator, "sanctions_lists_fresh")["findings"] != []
    assert control(operator, "card_numbers_in_clear")["findings"] == []
