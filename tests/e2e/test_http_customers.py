"""Customers and counterparties over HTTP: scopes (pii:read granted by name, never implied by
admin), masked answers, reveals as audit leaves, lookup, accounts that name their customer,
legal hold, erasure, and the events and leaves that carry ids and digests only."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from tests.e2e.http_support import Api, problem_code, running

ADA = {
    "name": "Ada Lovelace",
    "date_of_birth": "1985-12-10",
    "address": {"line1": "12 St James's Square", "city": "London", "country": "GB"},
    "email": "ada@example.com",
    "phone": "+447700900123",
    "national_id": "QQ123456C",
}


@dataclass(frozen=True)
class Keys:
    admin: str
    write: str
    read: str
    pii: str
    lookup: str  # customers:read and pii:read: may list by email or national id
    ledger: str
    other_admin: str  # another tenant's


@pytest.fixture
def world(db_url: str) -> Iterator[tuple[Api, Keys]]:
    # No AML retention period: a customer whose accounts are all closed may be erased at once.
    with running(db_url, aml_retention_days=0) as api:
        tenancy = api.app.state.tenancy
        keys = Keys(
            admin=tenancy.create_api_key("acme", ["admin"])[1],
            write=tenancy.create_api_key("acme", ["customers:write"])[1],
            read=tenancy.create_api_key("acme", ["customers:read"])[1],
            pii=tenancy.create_api_key("acme", ["pii:read"])[1],
            lookup=tenancy.create_api_key("acme", ["customers:read", "pii:read"])[1],
            ledger=tenancy.create_api_key("acme", ["ledger:write"])[1],
            other_admin=tenancy.create_api_key("globex", ["admin", "pii:read"])[1],
        )
        yield api, keys


def _leaves(api: Api, key: str) -> list[dict[str, Any]]:
    return api.ok("GET", "/v1/audit/leaves", key=key, params={"limit": 100})["data"]


def test_customer_lifecycle(world: tuple[Api, Keys]) -> None:
    api, k = world
    headers = {"Idempotency-Key": "onboard-ada"}
    created = api.ok("POST", "/v1/customers", 201, key=k.write, json=ADA, headers=headers)
    replay = api.request("POST", "/v1/customers", key=k.write, json=ADA, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == created
    cus = created["id"]
    assert cus.startswith("cus_")
    assert created["name"] == "A** L*******"
    assert created["email"] == "a***@example.com"
    assert created["national_id"] == "*****456C"
    masked = api.ok("GET", f"/v1/customers/{cus}", key=k.read)
    assert masked == created
    # The reveal: pii:read by name, never through admin or customers:*.
    path = f"/v1/customers/{cus}/personal-data"
    for key in (k.admin, k.write, k.read):
        response = api.get(path, key=key)
        assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
    full = api.ok("GET", path, key=k.pii)
    assert full == {"object": "customer_personal_data", "customer_id": cus, **ADA,
                    "address": {**ADA["address"], "line2": None, "region": None,
                                "postal_code": None}}  # fmt: skip
    assert api.ok("GET", path, key=k.pii, params={"fields": "email"})["phone"] is None
    assert api.get(f"/v1/customers/{cus}", key=k.other_admin).status_code == 404
    assert api.get(path, key=k.other_admin).status_code == 404
    # Lookup, in the query or the body, normalised: an oracle on personal data, so pii:read
    # by name (admin and customers:read are refused), each an audit leaf.
    for key in (k.admin, k.read):
        for method, where, sent in (
            ("GET", "params", {"email": ADA["email"]}),
            ("GET", "params", {"national_id": ADA["national_id"]}),
            ("POST", "json", {"national_id": ADA["national_id"]}),
        ):
            path_ = "/v1/customers" if method == "GET" else "/v1/customers/search"
            response = api.request(method, path_, key=key, **{where: sent})
            assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
            assert ADA["email"] not in response.text
            assert "123456" not in response.text
    assert [c["id"] for c in api.ok("GET", "/v1/customers", key=k.read)["data"]] == [cus]
    for found in (
        api.ok("GET", "/v1/customers", key=k.lookup, params={"email": " ADA@example.COM"}),
        api.ok("POST", "/v1/customers/search", key=k.pii, json={"national_id": "qq-123456-c"}),
    ):
        assert [c["id"] for c in found["data"]] == [cus]
    missed = api.ok("POST", "/v1/customers/search", key=k.pii, json={"email": "no@example.com"})
    assert missed["data"] == []
    assert api.ok("GET", "/v1/customers", key=k.other_admin, params={"email": ADA["email"]})[
        "data"
    ] == []  # fmt: skip
    response = api.post("/v1/customers/search", key=k.pii, json={})
    assert (response.status_code, problem_code(response)) == (400, "invalid_lookup")
    # An update seals again; a refused value is never echoed.
    patched = api.ok("PATCH", f"/v1/customers/{cus}", key=k.write, json={"phone": "+15550100"})
    assert patched["phone"] == "+******00"
    response = api.request(
        "PATCH", f"/v1/customers/{cus}", key=k.write, json={"email": "ada-at-example"}
    )
    assert (response.status_code, problem_code(response)) == (400, "invalid_personal_data")
    assert "ada-at-example" not in response.text
    # Accounts name their customer, within the tenant.
    ledger = api.ok("POST", "/v1/ledgers", 201, key=k.ledger, json={"name": "books"})["id"]
    account = {"ledger_id": ledger, "asset": "USD", "normal_balance": "credit"}
    wallet = api.ok("POST", "/v1/accounts", 201, key=k.ledger, json={**account, "customer_id": cus})
    assert wallet["customer_id"] == cus
    theirs = api.ok("POST", "/v1/customers", 201, key=k.other_admin, json={"name": "Eve"})["id"]
    response = api.post("/v1/accounts", key=k.ledger, json={**account, "customer_id": theirs})
    assert (response.status_code, problem_code(response)) == (404, "not_found")
    listed = api.ok("GET", f"/v1/customers/{cus}/accounts", key=k.admin)
    assert [a["id"] for a in listed["data"]] == [wallet["id"]]
    # Legal hold, then erasure.
    erase = f"/v1/customers/{cus}/personal-data"
    api.ok("POST", f"/v1/customers/{cus}/legal-hold", key=k.admin)
    response = api.request("DELETE", erase, key=k.admin)
    assert (response.status_code, problem_code(response)) == (409, "legal_hold")
    response = api.request("DELETE", erase, key=k.write)
    assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
    assert api.ok("DELETE", f"/v1/customers/{cus}/legal-hold", key=k.admin)["legal_hold"] is False
    # AML record keeping holds the records while an account is open (compliance/gdpr).
    response = api.request("DELETE", erase, key=k.admin)
    assert (response.status_code, problem_code(response)) == (409, "legal_hold")
    assert "open account" in response.json()["detail"]
    api.app.state.ledger.close_account(wallet["id"])
    erased = api.ok("DELETE", erase, key=k.admin)
    assert erased["erased"] is True
    assert all(erased[name] is None for name in ADA)
    assert api.ok("DELETE", erase, key=k.admin) == erased
    assert api.ok("GET", f"/v1/customers/{cus}", key=k.read) == erased
    response = api.get(path, key=k.pii)
    assert (response.status_code, problem_code(response)) == (410, "data_erased")
    assert api.ok("GET", f"/v1/accounts/{wallet['id']}", key=k.admin)["customer_id"] == cus

    # Events carry ids only; leaves commit to digests, never values.
    events = api.ok("GET", "/v1/events", key=k.admin, params={"limit": 100})["data"]
    assert [(e["type"], e["ledger_id"]) for e in events] == [
        ("customer.erased", None),
        ("customer.updated", None),
        ("customer.created", None),
    ]
    assert events[1]["data"] == {"id": cus, "object": "customer", "fields": ["phone"]}
    leaves = _leaves(api, k.admin)
    types = [x["type"] for x in leaves]
    assert types.count("customer.pii_revealed") == 2
    for expected in ("customer.created", "customer.updated", "customer.legal_hold_set",
                     "customer.legal_hold_cleared", "customer.erased"):  # fmt: skip
        assert expected in types
    looked = [x["content"] for x in leaves if x["type"] == "customer.looked_up"]
    assert sorted((x["data"]["field"], x["data"]["found"]) for x in looked) == [
        ("email", 0),
        ("email", 1),
        ("national_id", 1),
    ]
    assert all(x["actor"].startswith("api_key:key_") for x in looked)
    revealed = next(x for x in leaves if x["type"] == "customer.pii_revealed")["content"]
    assert revealed["data"] == {"customer_id": cus, "fields": sorted(ADA)}
    assert revealed["actor"].startswith("api_key:key_")
    decoded = b"".join(base64.b64decode(x["leaf"]) for x in leaves)
    for value in ("Ada Lovelace", "ada@example.com", "QQ123456C", "447700900123", "1985-12-10"):
        assert value.encode() not in decoded
        assert value not in json.dumps(events)
    # Nor any row the requests left (idempotency records, events, leaves, the customer's).
    stored = _every_value(api)
    for value in ("Ada Lovelace", "ada@example.com", "QQ123456C", "447700900123", "St James"):
        for needle in (value.encode(), base64.b64encode(value.encode())):
            assert not any(needle in v for v in stored), value


def _every_value(api: Api) -> list[bytes]:
    engine = api.app.state.engine
    out: list[bytes] = []
    with engine.connect() as conn:
        for table in sa.inspect(engine).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                for v in row:
                    raw = bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
                    out.append(raw)
                    # Idempotency answers are stored compressed and sealed: the answer too.
                    if table == "idempotency_records" and isinstance(v, bytes | memoryview):
                        mapping = row._mapping
                        tenancy = api.app.state.tenancy
                        out.append(tenancy.stored_answer(mapping["tenant_id"], mapping["key"], raw))
    return out


def test_counterparties(world: tuple[Api, Keys]) -> None:
    api, k = world
    body = {"name": "Charles Babbage", "account_identifier": "GB29 NWBK 6016 1331 9268 19",
            "country": "gb"}  # fmt: skip
    created = api.ok("POST", "/v1/counterparties", 201, key=k.write, json=body)
    cpty = created["id"]
    assert cpty.startswith("cpty_")
    assert (created["name"], created["country"]) == ("C****** B******", "GB")
    assert created["account_identifier"].endswith("6819")
    assert api.ok("GET", f"/v1/counterparties/{cpty}", key=k.read) == created
    listed = api.ok("GET", "/v1/counterparties", key=k.read)["data"]
    assert [c["id"] for c in listed] == [cpty]
    assert api.ok("GET", "/v1/counterparties", key=k.other_admin)["data"] == []
    path = f"/v1/counterparties/{cpty}/personal-data"
    assert api.get(path, key=k.admin).status_code == 403
    full = api.ok("GET", path, key=k.pii)
    assert full["account_identifier"] == "GB29NWBK60161331926819"
    assert api.get(path, key=k.other_admin).status_code == 404
    erased = api.ok("DELETE", path, key=k.admin)
    assert (erased["erased"], erased["name"], erased["country"]) == (True, None, "GB")
    response = api.get(path, key=k.pii)
    assert (response.status_code, problem_code(response)) == (410, "data_erased")
    response = api.post("/v1/counterparties", key=k.write, json={**body, "country": "G1"})
    assert (response.status_code, problem_code(response)) == (400, "invalid_country")
