"""The UK Open Banking v4.0 resource server over HTTP, through the app `serve` builds, with a
fake token check standing in for the authorization server (it hands out ports.AccessToken
values this test makes). Every response of every implemented operation, success or error, is
validated against the official v4.0 OpenAPI documents (tests/support/ob_spec.py): its status is
declared, its required headers are there (x-fapi-interaction-id) and its body is the declared
schema. Then the negative paths: tokens refused or of the wrong grant or scope, another client's
consent, another tenant's path, an unknown tenant, a missing permission, a consent revoked or
expired (by the expiry job), and request bodies refused field by field."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.core import clock, ids
from strongroom.core.errors import StrongroomError
from strongroom.core.limits import REQUEST_BODY_BYTES_MAX
from strongroom.http.middleware import SECURITY_HEADERS
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.model import Direction, NewTransfer
from strongroom.openbanking.errors import ReplayCacheFull
from strongroom.openbanking.model import ob_datetime
from strongroom.openbanking.ports import (
    RESOURCE_BASE,
    SCOPE_ACCOUNTS,
    SCOPE_FUNDS,
    SCOPE_PAYMENTS,
    AccessToken,
    Grant,
)
from strongroom.openbanking.resources.api import Resources
from strongroom.openbanking.resources.model import OB_TRANSACTIONS_PAGE_SIZE
from strongroom.openbanking.resources.wiring import CONSENT_EXPIRY_JOB, expiry_job
from tests.e2e.http_support import Api, running, separate_api_routes
from tests.support import ob_spec

HOUR_US = 3_600_000_000
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ALL_AIS = [
    "ReadAccountsBasic",
    "ReadBalances",
    "ReadTransactionsBasic",
    "ReadTransactionsCredits",
    "ReadTransactionsDebits",
]


class InvalidToken(StrongroomError):
    """What the fake authorization server answers for a token it did not issue."""

    code = "invalid_token"
    status = 401


@dataclass
class FakeTokens:
    """A token check over tokens this test issued (`Authorization: DPoP <token>`)."""

    issued: dict[str, AccessToken] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(
        self, authorization: str | None, proof: str | None, method: str, url: str
    ) -> AccessToken:
        self.calls.append((method, url))
        scheme, _, token = (authorization or "").partition(" ")
        found = self.issued.get(token) if scheme == "DPoP" and proof == "proof" else None
        if found is None:
            raise InvalidToken("unknown token")
        return found

    def issue(self, client: str, grant: Grant, scopes: set[str], **bound: Any) -> str:
        token = f"tok_{uuid.uuid4().hex}"
        self.issued[token] = AccessToken(
            id=ids.new_id("req"),
            client_id=client,
            grant=grant,
            scopes=frozenset(scopes),
            jkt="thumbprint",
            expires_at_us=clock.now_us() + HOUR_US,
            **bound,
        )
        return token


@dataclass
class Bank:
    """A tenant (an account provider) with a ledger, a customer and their GBP accounts."""

    name: str
    id: str
    ledger: str
    bank: str
    customer: str
    wallet: str
    savings: str
    gems: str  # a custom asset: no OB currency


@dataclass
class World:
    api: Api
    tokens: FakeTokens
    acme: Bank
    globex: Bank

    @property
    def resources(self) -> Resources:
        found: Resources = self.api.app.state.ob_resources
        return found

    def cc(self, client: str = "tpp_one", scope: str = SCOPE_ACCOUNTS) -> str:
        return self.tokens.issue(client, Grant.CLIENT_CREDENTIALS, {scope})

    def psu(self, consent: dict[str, Any], client: str = "tpp_one", **kw: Any) -> str:
        """A token under an authorised consent, as the authorization server would issue it."""
        stored = self.resources.consents.get(consent["ConsentId"])
        scope = SCOPE_ACCOUNTS if stored.kind == "account_access" else SCOPE_FUNDS
        bound: dict[str, Any] = {"consent_id": stored.id, "tenant_id": stored.tenant_id}
        bound["customer_id"] = stored.customer_id
        return self.tokens.issue(client, Grant.AUTHORIZATION_CODE, {scope}, **{**bound, **kw})

    def authorise(self, bank: Bank, consent: dict[str, Any], accounts: list[str]) -> None:
        self.resources.consents.authorise(consent["ConsentId"], bank.customer, accounts)


def _bank(api: Api, name: str) -> Bank:
    tenant = api.app.state.tenancy.create_tenant(name, actor="test")
    ledger = api.app.state.ledger
    customer = api.app.state.customers.create(tenant.id, "person", {"name": "Ada"}, actor="t")
    book = ledger.create_ledger(f"{name} books", tenant_id=tenant.id).id
    ledger.create_asset("GEMS", 0, retry=True)  # the second bank finds it made
    specs = [
        AccountSpec(book, "GBP", Direction.DEBIT, name="bank"),
        AccountSpec(book, "GBP", Direction.CREDIT, name="Everyday", customer_id=customer.id),
        AccountSpec(book, "GBP", Direction.CREDIT, customer_id=customer.id),
        AccountSpec(book, "GEMS", Direction.CREDIT, customer_id=customer.id),
    ]
    bank, wallet, savings, gems = (a.id for a in ledger.create_accounts(specs))
    moves = [NewTransfer(ids.new_id("tr"), book, bank, wallet, 10_000)]
    moves += [NewTransfer(ids.new_id("tr"), book, wallet, bank, 100 + i) for i in range(3)]
    moves.append(NewTransfer(ids.new_id("tr"), book, bank, savings, 250))
    assert all(o.result.name == "CREATED" for o in ledger.post_transfers(moves))
    return Bank(name, tenant.id, book, bank, customer.id, wallet, savings, gems)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = f"sqlite:///{tmp_path_factory.mktemp('ob') / 'strongroom.db'}"
    with running(url) as api:
        tokens = FakeTokens()
        api.app.state.ob_resources.token_check = tokens
        yield World(api, tokens, _bank(api, "acme"), _bank(api, "globex"))


# -- the client: every answer checked against the OB documents -----------------------------


def base(bank: Bank | str) -> str:
    return RESOURCE_BASE.format(tenant=bank if isinstance(bank, str) else bank.name)


def _spec_of(path: str) -> str:
    if "/pisp/" in path:
        return "payment-initiation"
    return "account-info" if "/aisp/" in path else "confirmation-funds"


def call(
    w: World,
    method: str,
    path: str,
    token: str | None = None,
    *,
    json: Any = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> httpx.Response:
    """A request to the OB API, its answer validated against the operation's declaration."""
    sent = {**({"Authorization": f"DPoP {token}", "DPoP": "proof"} if token else {})}
    sent.update(headers or {})
    response = w.api.run(
        w.api.client.request(method, path, json=json, content=content, headers=sent, params=params)
    )
    where = f"{method} {path} -> {response.status_code}"
    interaction = response.headers.get("x-fapi-interaction-id", "")
    given = {k.lower(): v for k, v in sent.items()}.get("x-fapi-interaction-id")
    if given is not None and UUID_RE.fullmatch(given):
        assert interaction == given, where  # echoed
    else:
        assert UUID_RE.fullmatch(interaction), where  # generated
    assert response.headers.get_list("request-id"), where
    for name, value in SECURITY_HEADERS:
        assert response.headers.get_list(name.decode()) == [value.decode()], where
    body = response.json() if response.content else None
    if body is not None:
        assert response.headers["content-type"] == "application/json; charset=utf-8", where
        assert "balance" not in str(body).lower() or "/aisp/" in path, where
    operation_path = path.split("?")[0]
    tenant_base = operation_path.split("/open-banking/")[0]
    spec_path = operation_path[len(tenant_base) :]
    if response.status_code == 404 and body is not None:  # an unknown tenant
        ob_spec.validate_schema(_spec_of(path), "OBErrorResponse1", body)
    else:
        ob_spec.validate_response(
            _spec_of(path), spec_path, method, response.status_code, body, response.headers
        )
    if body is not None and response.status_code >= 400:
        assert body["Id"] == interaction, where
    return response


def ok(w: World, method: str, path: str, token: str, status: int = 200, **kw: Any) -> Any:
    response = call(w, method, path, token, **kw)
    assert response.status_code == status, (method, path, response.status_code, response.text)
    return response.json() if response.content else None


def refused(
    w: World, method: str, path: str, token: str | None, status: int, code: str, **kw: Any
) -> dict[str, Any]:
    """An OB error of `status` whose (first) ErrorCode is `code`; its body."""
    response = call(w, method, path, token, **kw)
    assert response.status_code == status, (method, path, response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert body["Errors"][0]["ErrorCode"] == code, body
    return body


def aa_consent(w: World, bank: Bank, permissions: list[str], **data: Any) -> dict[str, Any]:
    body = {"Data": {"Permissions": permissions, **data}, "Risk": {}}
    found: dict[str, Any] = ok(
        w, "POST", f"{base(bank)}/aisp/account-access-consents", w.cc(), 201, json=body
    )["Data"]
    return found


def funds_consent(w: World, bank: Bank, client: str = "tpp_one") -> dict[str, Any]:
    body = {
        "Data": {
            "DebtorAccount": {
                "SchemeName": "UK.OBIE.SortCodeAccountNumber",
                "Identification": "11280001234567",
                "Name": "Ada",
            }
        }
    }
    path = f"{base(bank)}/cbpii/funds-confirmation-consents"
    found: dict[str, Any] = ok(w, "POST", path, w.cc(client, SCOPE_FUNDS), 201, json=body)["Data"]
    return found


# -- account access consents ---------------------------------------------------------------


def test_an_account_access_consent_is_created_read_and_deleted(world: World) -> None:
    w = world
    path = f"{base(w.acme)}/aisp/account-access-consents"
    expires = ob_datetime(clock.now_us() + 24 * HOUR_US)
    body = {
        "Data": {
            "Permissions": ["ReadAccountsDetail", "ReadBalances"],
            "ExpirationDateTime": expires,
            "TransactionFromDateTime": "2020-01-01T00:00:00Z",
        },
        "Risk": {},
    }
    interaction = str(uuid.uuid4())
    created = call(
        w, "POST", path, w.cc(), json=body, headers={"x-fapi-interaction-id": interaction}
    )
    assert created.status_code == 201
    data = created.json()["Data"]
    assert data["Status"] == "AWAU"
    assert data["Permissions"] == ["ReadAccountsDetail", "ReadBalances"]
    assert data["ExpirationDateTime"] == expires
    assert data["TransactionFromDateTime"] == "2020-01-01T00:00:00+00:00"
    consent_id = data["ConsentId"]
    assert created.json()["Links"]["Self"].endswith(f"{path}/{consent_id}")
    # The token check saw the request's method and URL, without its query.
    assert w.tokens.calls[-1] == ("POST", f"http://test{path}")

    read = ok(w, "GET", f"{path}/{consent_id}", w.cc())
    assert read["Data"] == data
    w.authorise(w.acme, data, [w.acme.wallet])
    assert ok(w, "GET", f"{path}/{consent_id}", w.cc())["Data"]["Status"] == "AUTH"
    assert ok(w, "DELETE", f"{path}/{consent_id}", w.cc(), 204) is None
    after = ok(w, "GET", f"{path}/{consent_id}", w.cc())["Data"]
    assert after["Status"] == "CANC"
    assert after["StatusUpdateDateTime"] >= data["CreationDateTime"]
    refused(w, "DELETE", f"{path}/{consent_id}", w.cc(), 400, "U009")  # final already
    refused(w, "GET", f"{path}/obc_nobody", w.cc(), 400, "U011")
    refused(w, "GET", f"{path}/{'x' * 200}", w.cc(), 400, "U011")


def test_consent_requests_are_refused_field_by_field(world: World) -> None:
    w = world
    path = f"{base(w.acme)}/aisp/account-access-consents"

    def post(body: Any, code: str, where: str | None = None, **kw: Any) -> None:
        found = refused(w, "POST", path, w.cc(), 400, code, json=body, **kw)
        assert found["Errors"][0].get("Path") == where, found

    post({"Data": {}, "Risk": {}}, "U004", "Data.Permissions")
    post({"Data": {"Permissions": ["ReadBalances"]}}, "U004", "Risk")
    post({"Data": {"Permissions": ["ReadBalances"]}, "Risk": {"x": 1}}, "U005", "Risk.x")
    post({"Data": {"Permissions": "ReadBalances"}, "Risk": {}}, "U002", "Data.Permissions")
    post({"Data": {"Permissions": ["ReadPAN"]}, "Risk": {}}, "U002", "Data.Permissions")
    post({"Data": {"Permissions": ["ReadTransactionsBasic"]}, "Risk": {}}, "U002",
         "Data.Permissions")  # fmt: skip
    for when in ("2020-01-01T00:00:00Z", "2999-01-01T00:00:00", "tomorrow"):
        post({"Data": {"Permissions": ["ReadBalances"], "ExpirationDateTime": when}, "Risk": {}},
             "U003", "Data.ExpirationDateTime")  # fmt: skip
    period = {"TransactionFromDateTime": "2021-01-02T00:00:00Z",
              "TransactionToDateTime": "2021-01-01T00:00:00Z"}  # fmt: skip
    post({"Data": {"Permissions": ["ReadBalances"], **period}, "Risk": {}}, "U003",
         "Data.TransactionToDateTime")  # fmt: skip
    found = refused(w, "POST", path, w.cc(), 400, "U010", content=b"{not json",
                    headers={"content-type": "application/json"})  # fmt: skip
    assert found["Errors"][0].get("Path") is None
    response = call(w, "POST", path, w.cc(), content=b"Permissions=ReadBalances",
                    headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert response.status_code == 415
    assert not response.content
    refused(w, "POST", path, w.cc(), 400, "U006", json={"Data": {"Permissions": ["ReadBalances"]}},
            headers={"x-fapi-interaction-id": "not-a-uuid"})  # fmt: skip


def test_the_idempotency_key_of_a_consent_creation(world: World) -> None:
    w = world
    path = f"{base(w.acme)}/aisp/account-access-consents"
    body = {"Data": {"Permissions": ["ReadBalances"]}, "Risk": {}}
    key = {"x-idempotency-key": f"key-{uuid.uuid4().hex[:8]}"}
    first = ok(w, "POST", path, w.cc(), 201, json=body, headers=key)
    assert ok(w, "POST", path, w.cc(), 201, json=body, headers=key) == first
    other = {"Data": {"Permissions": ["ReadAccountsBasic"]}, "Risk": {}}
    found = refused(w, "POST", path, w.cc(), 400, "U006", json=other, headers=key)
    assert found["Errors"][0]["Path"] == "x-idempotency-key"
    refused(w, "POST", path, w.cc(), 400, "U006", json=body, headers={"x-idempotency-key": " x"})


# -- tokens, clients, tenants --------------------------------------------------------------


def test_tokens_are_checked_and_must_fit_the_operation(world: World) -> None:
    w = world
    path = f"{base(w.acme)}/aisp/account-access-consents"
    body = {"Data": {"Permissions": ["ReadBalances"]}, "Risk": {}}
    for token in (None, "tok_unknown"):
        response = call(w, "POST", path, token, json=body)
        assert response.status_code == 401
        assert not response.content
        assert response.headers["www-authenticate"].startswith('DPoP error="invalid_token"')
    two_proofs = [("Authorization", f"DPoP {w.cc()}"), ("DPoP", "proof"), ("DPoP", "proof")]
    response = w.api.run(w.api.client.post(path, json=body, headers=two_proofs))
    assert response.status_code == 401
    assert not response.content
    ob_spec.validate_response("account-info", "/account-access-consents", "POST", 401, None,
                              response.headers)  # fmt: skip
    assert response.headers["www-authenticate"].startswith('DPoP error="invalid_dpop_proof"')
    # A valid token of the wrong grant or scope: 403, insufficient_scope.
    consent = aa_consent(w, w.acme, ALL_AIS)
    w.authorise(w.acme, consent, [w.acme.wallet])
    for token in (w.cc(scope=SCOPE_PAYMENTS), w.psu(consent)):
        response = call(w, "POST", path, token, json=body)
        assert response.status_code == 403, response.text
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
        assert response.json()["Errors"][0]["ErrorCode"] == "U008"
    for token in (w.cc(), w.cc(scope=SCOPE_FUNDS)):
        refused(w, "GET", f"{base(w.acme)}/aisp/accounts", token, 403, "U008")


def test_a_full_replay_store_is_the_servers_fault_not_the_tokens(world: World) -> None:
    """The token check could not remember the proof (ReplayCacheFull): not a 401 that would
    make the TPP discard a good token, but the OB's 500 with Retry-After."""
    w = world
    token = w.cc()
    full = ReplayCacheFull("too many unexpired DPoP proofs are remembered", retry_after_s=7)

    def check(authorization: str | None, proof: str | None, method: str, url: str) -> AccessToken:
        w.tokens(authorization, proof, method, url)
        raise full

    w.api.app.state.ob_resources.token_check = check
    try:
        body = {"Data": {"Permissions": ["ReadBalances"]}, "Risk": {}}
        response = call(w, "POST", f"{base(w.acme)}/aisp/account-access-consents", token, json=body)
    finally:
        w.api.app.state.ob_resources.token_check = w.tokens
    assert response.status_code == 500, response.text
    assert response.headers["retry-after"] == "7"
    assert "www-authenticate" not in response.headers
    assert response.json()["Errors"][0]["ErrorCode"] == "U000"  # UK.OBIE.UnexpectedError


def test_a_consent_is_its_clients_and_its_tenants_only(world: World) -> None:
    w = world
    consent = aa_consent(w, w.acme, ALL_AIS)
    mine = f"{base(w.acme)}/aisp/account-access-consents/{consent['ConsentId']}"
    theirs = w.cc("tpp_two")
    refused(w, "GET", mine, theirs, 403, "U008")
    refused(w, "DELETE", mine, theirs, 403, "U008")
    # Under another tenant's path, the consent does not exist.
    elsewhere = f"{base(w.globex)}/aisp/account-access-consents/{consent['ConsentId']}"
    refused(w, "GET", elsewhere, w.cc(), 400, "U011")
    refused(w, "DELETE", elsewhere, w.cc(), 400, "U011")
    # A token bound to acme's consent reads nothing under globex's path.
    w.authorise(w.acme, consent, [w.acme.wallet])
    refused(w, "GET", f"{base(w.globex)}/aisp/accounts", w.psu(consent), 403, "U008")
    # Nor one another client holds (an authorization server would not issue it, but still).
    refused(w, "GET", f"{base(w.acme)}/aisp/accounts", w.psu(consent, client="tpp_two"), 403,
            "U008")  # fmt: skip
    # The consent's own client reads it; its funds consent is not found among accounts'.
    assert ok(w, "GET", mine, w.cc())["Data"]["Status"] == "AUTH"
    funds = funds_consent(w, w.acme)
    refused(w, "GET", f"{base(w.acme)}/aisp/account-access-consents/{funds['ConsentId']}",
            w.cc(), 400, "U011")  # fmt: skip


def test_an_unknown_tenant_is_a_404_with_an_ob_body(world: World) -> None:
    w = world
    for name in ("nobody", "_system"):
        body = refused(w, "GET", f"{base(name)}/aisp/accounts", w.cc(), 404, "U011")
        assert body["Code"] == "404 NotFound"
    refused(w, "POST", f"{base('nobody')}/cbpii/funds-confirmations", None, 404, "U011")


# -- account information -------------------------------------------------------------------


def test_account_information_reads_the_selected_accounts_only(world: World) -> None:
    w = world
    a = w.acme
    consent = aa_consent(w, a, [*ALL_AIS, "ReadTransactionsDetail"])
    w.authorise(a, consent, [a.wallet, a.savings])
    token = w.psu(consent)
    root = f"{base(a)}/aisp"
    accounts = ok(w, "GET", f"{root}/accounts", token)["Data"]["Account"]
    assert [x["AccountId"] for x in accounts] == [a.wallet, a.savings]
    assert accounts[0]["Currency"] == "GBP"
    assert accounts[0]["Nickname"] == "Everyday"
    assert accounts[0]["Status"] == "Enabled"
    one = ok(w, "GET", f"{root}/accounts/{a.savings}", token)["Data"]["Account"]
    assert [x["AccountId"] for x in one] == [a.savings]
    # Another account of the customer's, another tenant's, an unknown id: not under it.
    for other in (a.gems, a.bank, w.globex.wallet, "acc_nobody"):
        for suffix in ("", "/balances", "/transactions"):
            refused(w, "GET", f"{root}/accounts/{other}{suffix}", token, 400, "U011")

    balances = ok(w, "GET", f"{root}/accounts/{a.wallet}/balances", token)["Data"]["Balance"]
    assert {(b["Type"], b["Amount"]["Amount"], b["CreditDebitIndicator"]) for b in balances} == {
        ("ITBD", "96.97", "Credit"),
        ("ITAV", "96.97", "Credit"),
    }
    bulk = ok(w, "GET", f"{root}/balances", token)["Data"]["Balance"]
    assert {b["AccountId"] for b in bulk} == {a.wallet, a.savings}

    txs = ok(w, "GET", f"{root}/accounts/{a.wallet}/transactions", token)["Data"]["Transaction"]
    assert [(t["CreditDebitIndicator"], t["Amount"]["Amount"]) for t in txs] == [
        ("Debit", "1.02"), ("Debit", "1.01"), ("Debit", "1.00"), ("Credit", "100.00"),
    ]  # fmt: skip
    assert txs[0]["Balance"]["Amount"]["Amount"] == "96.97"  # ReadTransactionsDetail
    assert all(t["Status"] == "BOOK" for t in txs)
    everything = ok(w, "GET", f"{root}/transactions", token)["Data"]["Transaction"]
    assert [t["AccountId"] for t in everything] == [a.wallet] * 4 + [a.savings]


def test_permissions_decide_endpoints_and_detail(world: World) -> None:
    w = world
    a = w.acme
    basic = aa_consent(w, a, ["ReadAccountsBasic", "ReadTransactionsBasic",
                              "ReadTransactionsCredits"])  # fmt: skip
    w.authorise(a, basic, [a.wallet])
    token = w.psu(basic)
    root = f"{base(a)}/aisp"
    for path in (f"{root}/balances", f"{root}/accounts/{a.wallet}/balances"):
        refused(w, "GET", path, token, 403, "U008")
    txs = ok(w, "GET", f"{root}/transactions", token)["Data"]["Transaction"]
    assert [t["CreditDebitIndicator"] for t in txs] == ["Credit"]  # credits only
    assert "Balance" not in txs[0]  # Basic
    balances_only = aa_consent(w, a, ["ReadBalances"])
    w.authorise(a, balances_only, [a.savings])
    token = w.psu(balances_only)
    for path in (f"{root}/accounts", f"{root}/accounts/{a.savings}", f"{root}/transactions",
                 f"{root}/accounts/{a.savings}/transactions"):  # fmt: skip
        refused(w, "GET", path, token, 403, "U008")
    assert ok(w, "GET", f"{root}/balances", token)["Data"]["Balance"][0]["AccountId"] == a.savings


def test_transactions_page_with_next_links_and_filter_by_booking_time(world: World) -> None:
    w = world
    a = w.acme
    ledger = w.api.app.state.ledger
    count = OB_TRANSACTIONS_PAGE_SIZE + 5
    spec = AccountSpec(a.ledger, "GBP", Direction.CREDIT, customer_id=a.customer)
    busy = ledger.create_accounts([spec])[0].id
    moves = [NewTransfer(ids.new_id("tr"), a.ledger, a.bank, busy, 1 + i) for i in range(count)]
    ledger.post_transfers(moves)
    consent = aa_consent(w, a, ALL_AIS)
    w.authorise(a, consent, [busy])
    token = w.psu(consent)
    path = f"{base(a)}/aisp/accounts/{busy}/transactions"
    seen: list[str] = []
    url: str | None = path
    pages = 0
    while url is not None:
        found = ok(w, "GET", url.removeprefix("http://test"), token)
        assert found["Links"]["Self"] == (url if url.startswith("http") else f"http://test{url}")
        seen += [t["TransactionId"] for t in found["Data"]["Transaction"]]
        url = found["Links"].get("Next")
        pages += 1
    assert pages == 2
    assert len(seen) == len(set(seen)) == count
    # A period in the future holds nothing; one around now holds them all; the zone is ignored.
    later = ob_datetime(clock.now_us() + HOUR_US)[:19]
    none = ok(w, "GET", path, token, params={"fromBookingDateTime": later})
    assert none["Data"]["Transaction"] == []
    day = ob_datetime(clock.now_us() - 24 * HOUR_US)[:10]
    period = {"fromBookingDateTime": day, "toBookingDateTime": later + "+05:00"}
    first = ok(w, "GET", path, token, params=period)
    assert len(first["Data"]["Transaction"]) == OB_TRANSACTIONS_PAGE_SIZE
    assert "fromBookingDateTime" in first["Links"]["Next"]
    refused(w, "GET", path, token, 400, "U003", params={"fromBookingDateTime": "yesterday"})
    refused(w, "GET", path, token, 400, "U011", params={"page": "acc_other.3"})


def test_a_revoked_or_expired_consent_opens_nothing(world: World) -> None:
    w = world
    a = w.acme
    root = f"{base(a)}/aisp"
    revoked = aa_consent(w, a, ALL_AIS)
    w.authorise(a, revoked, [a.wallet])
    token = w.psu(revoked)
    ok(w, "GET", f"{root}/accounts", token)
    ok(w, "DELETE", f"{root}/account-access-consents/{revoked['ConsentId']}", w.cc(), 204)
    refused(w, "GET", f"{root}/accounts", token, 403, "U009")

    expires = clock.now_us() + HOUR_US
    expiring = aa_consent(w, a, ALL_AIS, ExpirationDateTime=ob_datetime(expires))
    w.authorise(a, expiring, [a.wallet])
    token = w.psu(expiring)
    ok(w, "GET", f"{root}/balances", token)
    # The job `serve` runs (under its lease) ends it once its time has passed.
    assert CONSENT_EXPIRY_JOB in w.api.app.state.jobs.specs
    consents, resources = w.resources.consents, w.resources

    def later() -> int:  # the clock of both, an hour on
        return expires + 1

    saved = consents.now_us, resources.now_us
    consents.now_us = resources.now_us = later
    try:
        refused(w, "GET", f"{root}/balances", token, 403, "U009")  # in force no more
        expiry_job(consents)(lambda: True)
    finally:
        consents.now_us, resources.now_us = saved
    assert consents.get(expiring["ConsentId"]).status == "EXPD"
    got = ok(w, "GET", f"{root}/account-access-consents/{expiring['ConsentId']}", w.cc())
    assert got["Data"]["Status"] == "EXPD"
    refused(w, "GET", f"{root}/balances", token, 403, "U009")


# -- funds confirmation --------------------------------------------------------------------


def test_funds_confirmation_answers_yes_or_no_and_never_the_balance(world: World) -> None:
    w = world
    a = w.acme
    consent = funds_consent(w, a)
    assert consent["Status"] == "AWAU"
    assert consent["DebtorAccount"]["Identification"] == "11280001234567"
    path = f"{base(a)}/cbpii/funds-confirmation-consents/{consent['ConsentId']}"
    assert ok(w, "GET", path, w.cc(scope=SCOPE_FUNDS))["Data"] == consent
    refused(w, "GET", path, w.cc(), 403, "U008")  # an accounts token
    refused(w, "GET", path, w.cc("tpp_two", SCOPE_FUNDS), 403, "U008")
    w.authorise(a, consent, [a.savings])  # 2.50 GBP
    token = w.psu(consent)
    confirm = f"{base(a)}/cbpii/funds-confirmations"

    def ask(amount: Any, currency: str = "GBP", consent_id: str = consent["ConsentId"]) -> Any:
        data = {"ConsentId": consent_id, "Reference": "order 42",
                "InstructedAmount": {"Amount": amount, "Currency": currency}}  # fmt: skip
        return {"Data": data}

    yes = ok(w, "POST", confirm, token, 201, json=ask("2.50"))["Data"]
    assert yes["FundsAvailable"] is True
    assert yes["InstructedAmount"]["Amount"] == "2.50"
    assert yes["FundsConfirmationId"].startswith("obf_")
    assert yes["Reference"] == "order 42"
    assert ok(w, "POST", confirm, token, 201, json=ask("2.51"))["Data"]["FundsAvailable"] is False
    refused(w, "POST", confirm, token, 400, "U002", json=ask(2.5))  # a float
    refused(w, "POST", confirm, token, 400, "U002", json=ask("2.505"))
    refused(w, "POST", confirm, token, 400, "U002", json=ask("1.00", "EUR"))  # not its currency
    refused(w, "POST", confirm, token, 400, "U023", json=ask("1", "XAU"))
    refused(w, "POST", confirm, token, 400, "U008", json=ask("1.00", consent_id="obc_other"))
    refused(w, "POST", confirm, token, 400, "U005", json={**ask("1.00"), "Extra": 1})
    refused(w, "POST", confirm, w.cc(scope=SCOPE_FUNDS), 403, "U008", json=ask("1.00"))
    ok(w, "DELETE", path, w.cc(scope=SCOPE_FUNDS), 204)
    refused(w, "POST", confirm, token, 403, "U009", json=ask("1.00"))


def test_funds_consent_requests_are_refused_field_by_field(world: World) -> None:
    w = world
    path = f"{base(w.acme)}/cbpii/funds-confirmation-consents"
    token = w.cc(scope=SCOPE_FUNDS)
    account = {"SchemeName": "UK.OBIE.IBAN", "Identification": "GB29NWBK60161331926819"}
    ok(w, "POST", path, token, 201, json={"Data": {"DebtorAccount": account}})
    for body, code, where in (
        ({"Data": {}}, "U004", "Data.DebtorAccount"),
        ({"Data": {"DebtorAccount": account}, "Risk": {}}, "U005", "Risk"),
        ({"Data": {"DebtorAccount": {**account, "SchemeName": "UK.OBIE.PAN"}}}, "U021",
         "Data.DebtorAccount.SchemeName"),
        ({"Data": {"DebtorAccount": {**account, "Identification": "GB00NWBK60161331926819"}}},
         "U002", "Data.DebtorAccount.Identification"),
    ):  # fmt: skip
        found = refused(w, "POST", path, token, 400, code, json=body)
        assert found["Errors"][0]["Path"] == where


def test_accounts_ob_cannot_express_are_never_selected(world: World) -> None:
    w = world
    consent = aa_consent(w, w.acme, ALL_AIS)
    with pytest.raises(StrongroomError) as caught:
        w.authorise(w.acme, consent, [w.acme.gems])
    assert caught.value.code == "consent_accounts_invalid"
    with pytest.raises(StrongroomError):
        w.authorise(w.acme, consent, [w.globex.wallet])  # another tenant's
    path = f"{base(w.acme)}/aisp/account-access-consents/{consent['ConsentId']}"
    assert ok(w, "GET", path, w.cc())["Data"]["Status"] == "AWAU"


# -- a separate API ------------------------------------------------------------------------


def test_the_open_banking_routes_are_a_separate_api(world: World) -> None:
    """Outside /v1: not in the /v1 OpenAPI document, never authenticated by an API key (the
    API-key middleware acts on /v1 only), every one answering through the OB error bodies."""
    w = world
    routes = separate_api_routes(w.api.app)
    assert {path for _, path in routes} >= {
        f"{RESOURCE_BASE}/aisp/accounts",
        f"{RESOURCE_BASE}/cbpii/funds-confirmations",
    }
    assert len(routes) == 19  # 13, and the payment initiation API's 6 (test_openbanking_payments)
    document = w.api.get("/openapi.json").json()
    assert not any(path.startswith("/ob/") for path in document["paths"])
    key = w.api.app.state.tenancy.create_api_key("acme", ["admin"])[1]
    for method, template in routes:
        path = template.format(
            tenant="acme", ConsentId="obc_x", AccountId="acc_x", DomesticPaymentId="obp_x"
        )
        response = call(w, method, path, headers={"Authorization": f"Bearer {key}"},
                        json={} if method == "POST" else None)  # fmt: skip
        assert response.status_code == 401, (method, path)
        assert not response.content
        assert response.headers["www-authenticate"].startswith("DPoP ")


def test_the_http_layers_refusals_on_its_paths_are_ob_answers(world: World) -> None:
    """What the HTTP layer refuses before any route runs (a body too large, not JSON, a route
    or method that does not exist) is answered the OB way on these paths (build_api's
    separate_apis): the interaction id, no RFC 9457 problem."""
    w = world
    path = f"{base(w.acme)}/aisp/account-access-consents"
    big = b"[" + b" " * REQUEST_BODY_BYTES_MAX + b"]"
    body = refused(w, "POST", path, w.cc(), 400, "U002", content=big,
                   headers={"content-type": "application/json"})  # fmt: skip
    assert "application/problem+json" not in str(body)
    interaction = str(uuid.uuid4())
    for method, where, status in (
        ("GET", f"{base(w.acme)}/aisp/nothing-here", 404),
        ("DELETE", f"{base(w.acme)}/aisp/accounts", 405),
    ):
        response = w.api.run(
            w.api.client.request(method, where, headers={"x-fapi-interaction-id": interaction})
        )
        assert response.status_code == status
        assert not response.content
        assert response.headers["x-fapi-interaction-id"] == interaction
    # The /v1 API still answers its own way.
    assert w.api.get("/v1/nothing-here").headers["content-type"] == "application/problem+json"


def test_the_spec_documents_are_there(shared_data: Path) -> None:
    """The documents every test here validates against (skipped without them)."""
    assert (shared_data / "openbanking" / "uk-ob-v4.0-update4").is_dir()
