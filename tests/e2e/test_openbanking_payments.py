"""UK Open Banking v4.0 domestic payments over HTTP, through the app `serve` builds, on SQLite and
PostgreSQL, with risk scoring on (a fake policy by amount: tests/support/risk_fakes.py) and a
fake token check standing in for the authorization server (tokens this test makes). Every
answer is validated against the official v4.0 payment initiation document
(tests/support/ob_spec.py) and its x-jws-signature verified over the body's bytes with the keys
the deployment publishes at its jwks_uri.

Then what a payment does in the ledger (a transfer to the tenant's outbound clearing account,
through the gates), its statuses (accepted, held for review then approved or declined, refused
for insufficient funds or by the risk gate), the consent consumed once (also under concurrent
submissions), idempotency, and the refusals that write nothing."""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from strongroom import runtime
from strongroom.compliance.controls.checks import openbanking_consents_audited
from strongroom.compliance.controls.model import Outcome
from strongroom.compliance.controls.service import ControlsService
from strongroom.core import clock, ids
from strongroom.core.errors import StrongroomError
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.model import AccountFlag, Direction, NewTransfer, Status
from strongroom.openbanking import jose
from strongroom.openbanking.authz.model import JWKS_PATH, METADATA_PATH
from strongroom.openbanking.errors import InvalidJwsSignature
from strongroom.openbanking.jws_detached import OB_ISS, verify_detached
from strongroom.openbanking.payments.model import clearing_account_id
from strongroom.openbanking.ports import (
    RESOURCE_BASE,
    SCOPE_FUNDS,
    SCOPE_PAYMENTS,
    AccessToken,
    Grant,
)
from tests.conftest import postgres_url_or_skip
from tests.e2e.http_support import BASE_URL, Api, running
from tests.support import ob_spec
from tests.support import postgres as pg
from tests.support.risk_fakes import AmountPolicy, CountingSource

HOUR_US = 3_600_000_000
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SPEC = "payment-initiation"
CONSENTS = "/pisp/domestic-payment-consents"
PAYMENTS = "/pisp/domestic-payments"
FUNDED_MINOR = 200_000  # 2,000.00 GBP in the customer's current account


class InvalidToken(StrongroomError):
    code = "invalid_token"
    status = 401


@dataclass
class FakeTokens:
    """A token check over tokens this test issued (`Authorization: DPoP <token>`)."""

    issued: dict[str, AccessToken] = field(default_factory=dict)

    def __call__(
        self, authorization: str | None, proof: str | None, method: str, url: str
    ) -> AccessToken:
        del method, url
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
    name: str
    id: str
    ledger: str
    bank: str
    customer: str
    current: str  # GBP, may not be overdrawn, FUNDED_MINOR
    euros: str  # EUR, may not be overdrawn, empty


@dataclass
class World:
    api: Api
    tokens: FakeTokens
    policy: AmountPolicy
    acme: Bank
    globex: Bank

    def cc(self, client: str = "tpp_one", scope: str = SCOPE_PAYMENTS) -> str:
        return self.tokens.issue(client, Grant.CLIENT_CREDENTIALS, {scope})

    def psu(self, consent_id: str, client: str = "tpp_one", **kw: Any) -> str:
        """A token under a consent, as the authorization server would issue it."""
        stored = self.api.app.state.ob_resources.consents.get(consent_id)
        bound: dict[str, Any] = {"consent_id": stored.id, "tenant_id": stored.tenant_id}
        bound["customer_id"] = stored.customer_id
        scopes = {kw.pop("scope", SCOPE_PAYMENTS)}
        return self.tokens.issue(client, Grant.AUTHORIZATION_CODE, scopes, **{**bound, **kw})

    def authorise(self, bank: Bank, consent_id: str, account: str | None = None) -> None:
        consents = self.api.app.state.ob_resources.consents
        consents.authorise(consent_id, bank.customer, [account or bank.current])

    def fund(self, bank: Bank, account: str, amount: int) -> None:
        ledger = self.api.app.state.ledger
        move = NewTransfer(ids.new_id("tr"), bank.ledger, bank.bank, account, amount)
        assert ledger.post_transfers([move])[0].result.name == "CREATED"

    def balance(self, account: str) -> int:
        found = self.api.app.state.ledger.get_account(account).balances
        return int(found.credits_posted - found.debits_posted - found.debits_pending)


def _bank(api: Api, name: str) -> Bank:
    tenant = api.app.state.tenancy.create_tenant(name, actor="test")
    ledger = api.app.state.ledger
    customer = api.app.state.customers.create(tenant.id, "person", {"name": "Ada"}, actor="t")
    book = ledger.create_ledger(f"{name} books", tenant_id=tenant.id).id
    no_overdraft = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
    own = {"flags": no_overdraft, "customer_id": customer.id}
    specs = [
        AccountSpec(book, "GBP", Direction.DEBIT, name="bank"),
        AccountSpec(book, "GBP", Direction.CREDIT, name="Current", **own),
        AccountSpec(book, "EUR", Direction.CREDIT, name="Euros", **own),
    ]
    bank, current, euros = (a.id for a in ledger.create_accounts(specs))
    found = Bank(name, tenant.id, book, bank, customer.id, current, euros)
    move = NewTransfer(ids.new_id("tr"), book, bank, current, FUNDED_MINOR)
    assert ledger.post_transfers([move])[0].result.name == "CREATED"
    return found


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('obp') / 'strongroom.db'}"
    else:
        url = postgres_url_or_skip()
    policy = AmountPolicy()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runtime, "make_policy", lambda settings, engine, **_: policy)
        patch.setattr(runtime, "make_feature_source", lambda settings: CountingSource)
        try:
            with running(url, risk=True, risk_budget_ms=30_000, public_base_url=BASE_URL) as api:
                tokens = FakeTokens()
                api.app.state.ob_resources.token_check = tokens
                yield World(api, tokens, policy, _bank(api, "acme"), _bank(api, "globex"))
        finally:
            if request.param != "sqlite":
                pg.drop_database(url)


# -- the client: every answer checked against the OB document and its signature -----------


def base(bank: Bank | str) -> str:
    return RESOURCE_BASE.format(tenant=bank if isinstance(bank, str) else bank.name)


def published_keys(w: World) -> jose.ClientJwks:
    response = w.api.run(w.api.client.get(JWKS_PATH))
    assert response.status_code == 200
    return jose.parse_client_jwks(response.json())


def check_signature(w: World, response: httpx.Response) -> dict[str, Any]:
    """The response's x-jws-signature verifies over its body with the published keys; its
    protected header."""
    signature = response.headers["x-jws-signature"]
    header = verify_detached(signature, response.content, published_keys(w))
    assert header[OB_ISS] == BASE_URL
    return header


def call(
    w: World,
    method: str,
    path: str,
    token: str | None = None,
    *,
    json: Any = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    sent = {**({"Authorization": f"DPoP {token}", "DPoP": "proof"} if token else {})}
    sent.update(headers or {})
    response = w.api.run(
        w.api.client.request(method, path, json=json, content=content, headers=sent)
    )
    where = f"{method} {path} -> {response.status_code}"
    interaction = response.headers.get("x-fapi-interaction-id", "")
    given = {k.lower(): v for k, v in sent.items()}.get("x-fapi-interaction-id")
    if given is not None and UUID_RE.fullmatch(given):
        assert interaction == given, where
    else:
        assert UUID_RE.fullmatch(interaction), where
    body = response.json() if response.content else None
    if body is not None:
        check_signature(w, response)
        assert "balance" not in str(body).lower(), where
    spec_path = "/" + path.split("/open-banking/v4.0/pisp/", 1)[1]
    ob_spec.validate_response(SPEC, spec_path, method, response.status_code, body, response.headers)
    if body is not None and response.status_code >= 400:
        assert body["Id"] == interaction, where
    return response


def ok(w: World, method: str, path: str, token: str, status: int = 200, **kw: Any) -> Any:
    response = call(w, method, path, token, **kw)
    assert response.status_code == status, (method, path, response.status_code, response.text)
    return response.json()


def refused(
    w: World, method: str, path: str, token: str | None, status: int, code: str, **kw: Any
) -> dict[str, Any]:
    response = call(w, method, path, token, **kw)
    assert response.status_code == status, (method, path, response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert body["Errors"][0]["ErrorCode"] == code, body
    return body


def key() -> dict[str, str]:
    return {"x-idempotency-key": f"k-{uuid.uuid4().hex[:20]}"}


def initiation(amount: str = "10.50", currency: str = "GBP", **extra: Any) -> dict[str, Any]:
    return {
        "InstructionIdentification": "instr-1",
        "EndToEndIdentification": "e2e-1",
        "LocalInstrument": "UK.OBIE.FPS",
        "InstructedAmount": {"Amount": amount, "Currency": currency},
        "CreditorAccount": {
            "SchemeName": "UK.OBIE.SortCodeAccountNumber",
            "Identification": "08080021325698",
            "Name": "Bob's Bikes",
        },
        "RemittanceInformation": {"Unstructured": ["invoice 42"]},
        **extra,
    }


RISK = {"PaymentContextCode": "TransferToThirdParty"}


def consent_body(**kw: Any) -> dict[str, Any]:
    return {"Data": {"Initiation": initiation(**kw)}, "Risk": RISK}


def create_consent(w: World, bank: Bank, client: str = "tpp_one", **kw: Any) -> dict[str, Any]:
    path = f"{base(bank)}{CONSENTS}"
    data: dict[str, Any] = ok(
        w, "POST", path, w.cc(client), 201, json=consent_body(**kw), headers=key()
    )["Data"]
    return data


def payment_body(consent: dict[str, Any]) -> dict[str, Any]:
    found = {"ConsentId": consent["ConsentId"], "Initiation": consent["Initiation"]}
    return {"Data": copy.deepcopy(found), "Risk": dict(RISK)}


def authorised(w: World, bank: Bank, account: str | None = None, **kw: Any) -> dict[str, Any]:
    consent = create_consent(w, bank, **kw)
    w.authorise(bank, consent["ConsentId"], account)
    return consent


def pay(w: World, bank: Bank, consent: dict[str, Any], **kw: Any) -> httpx.Response:
    token = kw.pop("token", None) or w.psu(consent["ConsentId"])
    headers = kw.pop("headers", None) or key()
    body = kw.pop("json", None) or payment_body(consent)
    return call(w, "POST", f"{base(bank)}{PAYMENTS}", token, json=body, headers=headers, **kw)


def count(w: World, table: str) -> int:
    with w.api.app.state.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


# -- consents ------------------------------------------------------------------------------


def test_a_payment_consent_is_created_read_and_its_funds_confirmed(world: World) -> None:
    w = world
    path = f"{base(w.acme)}{CONSENTS}"
    body = consent_body()
    body["Data"]["ReadRefundAccount"] = "No"
    sent = key()
    interaction = str(uuid.uuid4())
    created = call(
        w, "POST", path, w.cc(), json=body, headers={**sent, "x-fapi-interaction-id": interaction}
    )
    assert created.status_code == 201, created.text
    data = created.json()["Data"]
    assert data["Status"] == "AWAU"
    assert data["Initiation"] == initiation()
    assert data["ReadRefundAccount"] == "No"
    assert created.json()["Risk"] == RISK
    consent_id = data["ConsentId"]
    assert created.json()["Links"]["Self"] == f"{BASE_URL}{path}/{consent_id}"
    # The same key and body: the same consent; the key with another body: refused.
    assert ok(w, "POST", path, w.cc(), 201, json=body, headers=sent)["Data"] == data
    other = consent_body(amount="10.51")
    refused(w, "POST", path, w.cc(), 400, "U006", json=other, headers=sent)
    refused(w, "POST", path, w.cc(), 400, "U007", json=body)  # no key at all

    read = ok(w, "GET", f"{path}/{consent_id}", w.cc())
    assert read["Data"] == data
    assert read["Links"]["Self"] == f"{BASE_URL}{path}/{consent_id}"
    # Funds confirmation needs the authorised consent and a customer's token under it.
    funds = f"{path}/{consent_id}/funds-confirmation"
    refused(w, "GET", funds, w.cc(), 403, "U008")
    refused(w, "GET", funds, w.psu(consent_id), 403, "U009")  # not authorised yet
    w.authorise(w.acme, consent_id)
    found = ok(w, "GET", funds, w.psu(consent_id))["Data"]["FundsAvailableResult"]
    assert found["FundsAvailable"] is True
    assert ok(w, "GET", f"{path}/{consent_id}", w.cc())["Data"]["Status"] == "AUTH"
    # More than the account holds: no (and never the balance).
    big = authorised(w, w.acme, amount="2000.01")
    big_funds = f"{path}/{big['ConsentId']}/funds-confirmation"
    no = ok(w, "GET", big_funds, w.psu(big["ConsentId"]))["Data"]["FundsAvailableResult"]
    assert no["FundsAvailable"] is False
    # A token under one consent asks nothing of another.
    refused(w, "GET", big_funds, w.psu(consent_id), 400, "U008")
    # What the consent page shows (resources.model.Consent.payment_details).
    details = w.api.app.state.ob_resources.consents.get(consent_id).payment_details
    assert details.money.amount == 1050
    assert details.creditor_name == "Bob's Bikes"
    assert details.remittance == ("invoice 42",)


def test_consent_requests_are_refused_field_by_field_and_write_nothing(world: World) -> None:
    w = world
    path = f"{base(w.acme)}{CONSENTS}"
    before = count(w, "ob_consents")
    creditor = initiation()["CreditorAccount"]

    def post(body: Any, code: str, where: str | None) -> None:
        sent = json.dumps(body).encode()  # ASCII, escapes and all (a lone surrogate included)
        headers = {**key(), "content-type": "application/json"}
        found = refused(w, "POST", path, w.cc(), 400, code, content=sent, headers=headers)
        assert found["Errors"][0].get("Path") == where, found

    amount = "Data.Initiation.InstructedAmount"
    post(consent_body(currency="XAU"), "U023", f"{amount}.Currency")
    post(consent_body(amount="10.505"), "U002", f"{amount}.Amount")
    post(consent_body(amount="0"), "U002", f"{amount}.Amount")
    post(consent_body(amount="12345678901234"), "U002", f"{amount}.Amount")
    float_amount = consent_body()
    float_amount["Data"]["Initiation"]["InstructedAmount"]["Amount"] = 10.5
    post(float_amount, "U002", f"{amount}.Amount")
    post(consent_body(CreditorAccount={**creditor, "SchemeName": "UK.OBIE.PAN"}), "U021",
         "Data.Initiation.CreditorAccount.SchemeName")  # fmt: skip
    post(consent_body(CreditorAccount={**creditor, "Identification": "0808002132569"}), "U002",
         "Data.Initiation.CreditorAccount.Identification")  # fmt: skip
    nameless = {k: v for k, v in creditor.items() if k != "Name"}
    post(consent_body(CreditorAccount=nameless), "U004", "Data.Initiation.CreditorAccount.Name")
    post(consent_body(LocalInstrument="UK.OBIE.SWIFT"), "U026", "Data.Initiation.LocalInstrument")
    post(consent_body(DebtorAccount={"SchemeName": "UK.OBIE.IBAN", "Identification": "GB00X"}),
         "U002", "Data.Initiation.DebtorAccount.Identification")  # fmt: skip
    post(consent_body(CreditorAgent={"Name": "x"}), "U005", "Data.Initiation.CreditorAgent")
    post({"Data": {"Initiation": initiation()}, "Risk": {"Unknown": 1}}, "U005", "Risk.Unknown")
    post({"Data": {"Initiation": initiation()}}, "U004", "Risk")
    post(consent_body(CreditorAccount={**creditor, "Name": "Bob\nSmith"}), "U002",
         "Data.Initiation.CreditorAccount.Name")  # fmt: skip
    post(consent_body(EndToEndIdentification="e2e-\ud800"), "U002",
         "Data.Initiation.EndToEndIdentification")  # fmt: skip
    assert count(w, "ob_consents") == before
    # An accounts token, and a customer's token, create no payment consent.
    refused(w, "POST", path, w.cc(scope=SCOPE_FUNDS), 403, "U008", json=consent_body(),
            headers=key())  # fmt: skip
    assert count(w, "ob_consents") == before
    # A consent in a currency the customer chooses an account of another currency for.
    euro = create_consent(w, w.acme, currency="EUR")
    with pytest.raises(StrongroomError) as caught:
        w.authorise(w.acme, euro["ConsentId"])  # the GBP account
    assert caught.value.code == "consent_accounts_invalid"


# -- payments ------------------------------------------------------------------------------


def test_a_payment_moves_the_money_to_the_outbound_clearing_account(world: World) -> None:
    w = world
    a = w.acme
    consent = authorised(w, a, amount="25.00")
    before = w.balance(a.current)
    sent = key()
    response = pay(w, a, consent, headers=sent)
    assert response.status_code == 201, response.text
    data = response.json()["Data"]
    assert data["Status"] == "ACSP"
    assert data["ConsentId"] == consent["ConsentId"]
    assert data["Initiation"] == consent["Initiation"]
    assert "StatusReason" not in data
    payment_id = data["DomesticPaymentId"]
    path = f"{base(a)}{PAYMENTS}/{payment_id}"
    assert response.json()["Links"]["Self"] == f"{BASE_URL}{path}"

    # The ledger: one transfer, the payment's id, customer -> the clearing account.
    ledger = w.api.app.state.ledger
    transfer = ledger.get_transfer(payment_id)
    clearing = clearing_account_id(a.ledger, "GBP")
    assert (transfer.debit_account_id, transfer.credit_account_id) == (a.current, clearing)
    assert transfer.amount == 2500
    assert transfer.status is Status.POSTED
    assert json.loads(transfer.metadata or "{}") == {
        "ob_client_id": "tpp_one",
        "ob_consent_id": consent["ConsentId"],
    }
    assert w.balance(a.current) == before - 2500
    account = ledger.get_account(clearing)
    assert account.name == "Open banking outbound clearing (GBP)"
    assert account.customer_id is None
    # The risk gate scored it as the customer's payment (its features saw the amount).
    assert w.policy.calls > 0

    # Reads: the payment and its details; the consent is consumed.
    assert ok(w, "GET", path, w.cc())["Data"] == data
    details = ok(w, "GET", f"{path}/payment-details", w.cc())["Data"]["PaymentStatus"]
    assert [(d["PaymentTransactionId"], d["Status"]) for d in details] == [(payment_id, "ACSP")]
    assert details[0]["StatusDetail"]["LocalInstrument"] == "UK.OBIE.FPS"
    got = ok(w, "GET", f"{base(a)}{CONSENTS}/{consent['ConsentId']}", w.cc())["Data"]
    assert got["Status"] == "COND"

    # Idempotency: the same key and body is the same payment (as it is now); another body
    # with the key is refused; another key is a second payment the consent cannot make.
    again = pay(w, a, consent, headers=sent)
    assert again.status_code == 201
    assert again.json()["Data"] == data
    other = payment_body(consent)
    other["Risk"] = {}
    refused(w, "POST", f"{base(a)}{PAYMENTS}", w.psu(consent["ConsentId"]), 400, "U006",
            json=other, headers=sent)  # fmt: skip
    second = pay(w, a, consent)
    assert second.status_code == 403
    assert second.json()["Errors"][0]["ErrorCode"] == "U009"
    assert w.balance(a.current) == before - 2500

    # The consent's use is a leaf of the tenant's log and an event.
    leaves = w.api.app.state.audit.records_for(a.id, [consent["ConsentId"]])[consent["ConsentId"]]
    consumed = [leaf for leaf in leaves if leaf["type"] == "openbanking.consent_consumed"]
    assert len(consumed) == 1
    assert consumed[0]["data"]["payment_id"] == payment_id
    assert consumed[0]["actor"] == "tpp:tpp_one"
    with w.api.app.state.engine.connect() as conn:
        events = conn.execute(
            sa.text("SELECT data FROM events WHERE tenant_id = :t AND type = :k"),
            {"t": a.id, "k": "openbanking.consent_consumed"},
        ).fetchall()
    assert any(json.loads(e[0])["payment_id"] == payment_id for e in events)


def test_a_payment_must_be_its_consents_and_bad_input_writes_nothing(world: World) -> None:
    w = world
    a = w.acme
    consent = authorised(w, a, amount="5.00")
    token = w.psu(consent["ConsentId"])
    before = (count(w, "transfers"), count(w, "ob_payments"))
    path = f"{base(a)}{PAYMENTS}"
    changed = payment_body(consent)
    changed["Data"]["Initiation"] = {**consent["Initiation"], "EndToEndIdentification": "e2e-2"}
    refused(w, "POST", path, token, 400, "U008", json=changed, headers=key())
    richer = payment_body(consent)
    richer["Data"]["Initiation"]["InstructedAmount"] = {"Amount": "5.0", "Currency": "GBP"}
    refused(w, "POST", path, token, 400, "U008", json=richer, headers=key())  # not exactly
    elsewhere = payment_body(consent)
    elsewhere["Data"]["ConsentId"] = "obc_another"
    refused(w, "POST", path, token, 400, "U008", json=elsewhere, headers=key())
    refused(w, "POST", path, token, 400, "U007", json=payment_body(consent))  # no key
    refused(w, "POST", path, token, 400, "U006", json=payment_body(consent),
            headers={**key(), "x-fapi-customer-ip-address": "not-an-ip"})  # fmt: skip
    refused(w, "POST", path, w.cc(), 403, "U008", json=payment_body(consent), headers=key())
    # A token of another client, or under another tenant's path.
    refused(w, "POST", path, w.psu(consent["ConsentId"], client="tpp_two"), 403, "U008",
            json=payment_body(consent), headers=key())  # fmt: skip
    refused(w, "POST", f"{base(w.globex)}{PAYMENTS}", token, 403, "U008",
            json=payment_body(consent), headers=key())  # fmt: skip
    assert (count(w, "transfers"), count(w, "ob_payments")) == before
    # A consent awaiting authorisation, and one rejected, pay nothing.
    waiting = create_consent(w, a)
    refused(w, "POST", path, w.psu(waiting["ConsentId"]), 403, "U009",
            json=payment_body(waiting), headers=key())  # fmt: skip
    rejected = create_consent(w, a)
    w.api.app.state.ob_resources.consents.reject(rejected["ConsentId"], a.customer)
    refused(w, "POST", path, w.psu(rejected["ConsentId"]), 403, "U009",
            json=payment_body(rejected), headers=key())  # fmt: skip
    assert (count(w, "transfers"), count(w, "ob_payments")) == before
    # With the right one, it pays, from the customer's address.
    response = pay(w, a, consent, headers={**key(), "x-fapi-customer-ip-address": "203.0.113.9"})
    assert response.status_code == 201
    assert response.json()["Data"]["Status"] == "ACSP"


def test_another_clients_or_tenants_ids_are_refused(world: World) -> None:
    w = world
    a = w.acme
    consent = authorised(w, a, amount="1.00")
    payment_id = pay(w, a, consent).json()["Data"]["DomesticPaymentId"]
    mine = f"{base(a)}{CONSENTS}/{consent['ConsentId']}"
    theirs = w.cc("tpp_two")
    refused(w, "GET", mine, theirs, 403, "U008")
    refused(w, "GET", f"{base(a)}{PAYMENTS}/{payment_id}", theirs, 403, "U008")
    refused(w, "GET", f"{base(a)}{PAYMENTS}/{payment_id}/payment-details", theirs, 403, "U008")
    refused(w, "GET", f"{base(w.globex)}{CONSENTS}/{consent['ConsentId']}", w.cc(), 400, "U011")
    refused(w, "GET", f"{base(w.globex)}{PAYMENTS}/{payment_id}", w.cc(), 400, "U011")
    refused(w, "GET", f"{base(a)}{PAYMENTS}/obp_nobody", w.cc(), 400, "U011")
    refused(w, "GET", f"{base(a)}{PAYMENTS}/{'x' * 41}", w.cc(), 400, "U011")
    # A customer's token reads no payment: the TPP's own token does.
    customers = w.psu(consent["ConsentId"])
    refused(w, "GET", f"{base(a)}{PAYMENTS}/{payment_id}", customers, 403, "U008")


def test_insufficient_funds_and_a_risk_block_reject_the_payment(world: World) -> None:
    w = world
    a = w.acme
    no_overdraft = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
    spec = AccountSpec(a.ledger, "GBP", Direction.CREDIT, no_overdraft, customer_id=a.customer)
    poor = w.api.app.state.ledger.create_accounts([spec])[0].id
    w.fund(a, poor, 4_000)  # 40.00
    consent = authorised(w, a, poor, amount="40.01")
    transfers = count(w, "transfers")
    response = pay(w, a, consent)
    assert response.status_code == 201, response.text
    data = response.json()["Data"]
    assert data["Status"] == "RJCT"
    assert data["StatusReason"] == [
        {"StatusReasonCode": "AM04", "StatusReasonDescription": "insufficient_funds"}
    ]
    assert count(w, "transfers") == transfers  # no money moved
    assert w.balance(poor) == 4_000
    path = f"{base(a)}{PAYMENTS}/{data['DomesticPaymentId']}"
    assert ok(w, "GET", path, w.cc())["Data"] == data
    detail = ok(w, "GET", f"{path}/payment-details", w.cc())["Data"]["PaymentStatus"][0]
    assert detail["StatusDetail"]["StatusReason"] == "AM04"
    consent_path = f"{base(a)}{CONSENTS}/{consent['ConsentId']}"
    assert ok(w, "GET", consent_path, w.cc())["Data"]["Status"] == "COND"
    # Consumed: topping up does not make it pay.
    w.fund(a, poor, 100)
    transfers = count(w, "transfers")
    refused(w, "POST", f"{base(a)}{PAYMENTS}", w.psu(consent["ConsentId"]), 403, "U009",
            json=payment_body(consent), headers=key())  # fmt: skip

    # The risk gate blocks 1,000.00 and more (the fake policy): a rejected payment too.
    blocked = authorised(w, a, amount="1000.00")
    found = pay(w, a, blocked).json()["Data"]
    assert found["Status"] == "RJCT"
    assert found["StatusReason"][0] == {
        "StatusReasonCode": "FRAD",
        "StatusReasonDescription": "risk_blocked",
    }
    assert count(w, "transfers") == transfers


def test_a_held_payment_follows_its_case(world: World) -> None:
    w = world
    a = w.acme
    cases = w.api.app.state.cases
    before = w.balance(a.current)
    approved = authorised(w, a, amount="150.00")  # held for review: 100.00 to 1,000.00
    data = pay(w, a, approved).json()["Data"]
    assert data["Status"] == "PDNG"
    held_id = data["DomesticPaymentId"]
    assert w.balance(a.current) == before - 15_000  # reserved
    path = f"{base(a)}{PAYMENTS}/{held_id}"
    assert ok(w, "GET", path, w.cc())["Data"]["Status"] == "PDNG"
    consent_path = f"{base(a)}{CONSENTS}/{approved['ConsentId']}"
    assert ok(w, "GET", consent_path, w.cc())["Data"]["Status"] == "COND"
    (case,) = [c for c in cases.list_cases(a.id, status="open", limit=100).data
               if c.transfer_id == held_id]  # fmt: skip
    cases.approve(a.id, case.id, actor="user:analyst")
    after = ok(w, "GET", path, w.cc())["Data"]
    assert after["Status"] == "ACSP"
    assert after["StatusUpdateDateTime"] >= data["StatusUpdateDateTime"]
    details = ok(w, "GET", f"{path}/payment-details", w.cc())["Data"]["PaymentStatus"]
    assert details[0]["Status"] == "ACSP"
    assert w.balance(a.current) == before - 15_000

    declined = authorised(w, a, amount="200.00")
    data = pay(w, a, declined).json()["Data"]
    assert data["Status"] == "PDNG"
    (case,) = [c for c in cases.list_cases(a.id, status="open", limit=100).data
               if c.transfer_id == data["DomesticPaymentId"]]  # fmt: skip
    cases.decline(a.id, case.id, actor="user:analyst")
    found = ok(w, "GET", f"{base(a)}{PAYMENTS}/{data['DomesticPaymentId']}", w.cc())["Data"]
    assert found["Status"] == "RJCT"
    assert found["StatusReason"][0]["StatusReasonDescription"] == "declined_on_review"
    assert w.balance(a.current) == before - 15_000  # the reservation released
    _records_match_their_leaves(w)


def _records_match_their_leaves(w: World) -> None:
    """The control `openbanking_consents_audited`, as the server wires it, finds the consents
    and payments these requests made as their audit leaves recorded them."""
    wired = w.api.app.state.compliance_controls
    only = ControlsService(
        wired.engine, wired.sources, wired.thresholds, controls=[openbanking_consents_audited]
    )
    (result,) = only.run(actor="test").controls
    assert result.outcome is Outcome.PASS, result.findings
    assert result.facts["payments"] >= 1


def test_a_consent_pays_once_under_concurrent_submissions(world: World) -> None:
    w = world
    a = w.acme
    consent = authorised(w, a, amount="3.00")
    before = w.balance(a.current)
    path = f"{base(a)}{PAYMENTS}"
    token = w.psu(consent["ConsentId"])
    tries = 6
    calls = [
        w.api.client.request(
            "POST",
            path,
            json=payment_body(consent),
            headers={"Authorization": f"DPoP {token}", "DPoP": "proof", **key()},
        )
        for _ in range(tries)
    ]
    answers = w.api.gather(calls)
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [403] * (tries - 1), [r.text for r in answers]
    for r in answers:
        check_signature(w, r)
        if r.status_code == 403:
            assert r.json()["Errors"][0]["ErrorCode"] == "U009"
    assert w.balance(a.current) == before - 300
    with w.api.app.state.engine.connect() as conn:
        paid = conn.execute(
            sa.text("SELECT COUNT(*) FROM ob_payments WHERE consent_id = :c"),
            {"c": consent["ConsentId"]},
        ).scalar_one()
    assert paid == 1
    _records_match_their_leaves(w)


# -- the signature -------------------------------------------------------------------------


def test_every_answer_is_signed_and_a_changed_byte_fails(world: World) -> None:
    w = world
    metadata = w.api.run(w.api.client.get(METADATA_PATH)).json()
    assert metadata["jwks_uri"] == f"{BASE_URL}{JWKS_PATH}"
    keys = published_keys(w)
    (only,) = keys.keys  # one key, made on first use and kept
    assert only.get("alg") == "PS256"
    response = call(w, "POST", f"{base(w.acme)}{CONSENTS}", w.cc(), json=consent_body(),
                    headers=key())  # fmt: skip
    header = check_signature(w, response)
    assert header["kid"] == only.get("kid")
    assert header["typ"] == "JOSE"
    signature = response.headers["x-jws-signature"]
    changed = bytearray(response.content)
    changed[len(changed) // 2] ^= 0x01
    with pytest.raises(InvalidJwsSignature) as caught:
        verify_detached(signature, bytes(changed), keys)
    assert caught.value.ob_code == "UK.OBIE.Signature.Invalid"
    # The private half is kept sealed under the key manager (security/sealing.py).
    with w.api.app.state.engine.connect() as conn:
        (stored,) = conn.execute(sa.text("SELECT private_jwk FROM ob_signing_keys")).scalars()
    assert stored.startswith("sealed:v1:")
    # An error body is signed too.
    error = call(w, "GET", f"{base(w.acme)}{CONSENTS}/obc_nobody", w.cc())
    assert error.status_code == 400
    check_signature(w, error)
    # So are the HTTP layer's own refusals on these paths (found unsigned by schemathesis): a
    # NUL in the body, a head too large.
    path = f"{base(w.acme)}{CONSENTS}"
    nul = b'{"Data": {"Initiation": {"EndToEndIdentification": "a\\u0000"}}}'
    json_body = {**key(), "content-type": "application/json"}
    refused(w, "POST", path, w.cc(), 400, "U002", content=nul, headers=json_body)
    refused(w, "GET", f"{path}/obc_nobody", w.cc(), 400, "U006", headers={"x-pad": "x" * 20_000})
    # A refused token (401) has no body, so no signature.
    bare = w.api.run(w.api.client.get(f"{base(w.acme)}{CONSENTS}/obc_nobody"))
    assert bare.status_code == 401
    assert "x-jws-signature" not in bare.headers
