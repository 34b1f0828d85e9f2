"""The consent page over HTTP, through the app `serve` builds, on SQLite and PostgreSQL: a real
TPP (registered, its consents made at the OB API, its requests pushed with private_key_jwt,
PKCE S256 and dpop_jkt) sends a customer to GET /oauth2/authorize; the page shows what the
consent grants and asks to sign in, step up, and choose accounts; the decision is a form posted
to /oauth2/authorize/decision and answered 303 to the TPP's redirect URI.

Then every refusal, each writing nothing (the consent still AWAU, the pushed request still
pending): no session, a staff session, another tenant's customer, no step-up, a forged or
cross-origin form, an account not the customer's, a request_uri unknown or used, a decision
replayed; and the decision's one transaction (a failure after the consent's change undoes it).
The browser's side is tests/e2e/test_ob_consent_browser.py."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa

from strongroom.core import ids
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.model import Direction, NewTransfer
from strongroom.openbanking.authz import model as authz_model
from strongroom.openbanking.authz import store as authz_store
from strongroom.openbanking.consentpage import api as page_api
from strongroom.openbanking.consentpage import model as page_model
from strongroom.openbanking.consentpage.service import ConsentPage
from strongroom.openbanking.consents import ConsentKind, ConsentStatus
from strongroom.openbanking.payments.service import PaymentRequest
from strongroom.openbanking.resources.service import ConsentService
from strongroom.security.auth.model import SESSION_COOKIE
from strongroom.security.auth.service import NewSession
from strongroom.tenancy.access import PUBLIC, SESSION, declared_access
from tests.conftest import postgres_url_or_skip
from tests.e2e.http_support import BASE_URL, Api, all_routes, check_error_page, running
from tests.support import postgres as pg
from tests.support.ob_authz import new_tpp
from tests.support.ob_flow import Pushed, TppAgent, public_jwks, redirect_params

PASSWORD = "a long enough passphrase"
FAST = {"password_memory_kib": 19 * 1024, "password_time_cost": 2, "password_parallelism": 1}
REDIRECT_URI = "https://tpp.example/callback"
TPP_NAME = "Moneywise <Budgets> & Co"
FORM = {"content-type": "application/x-www-form-urlencoded"}
SAME_ORIGIN = {"Origin": BASE_URL, "Sec-Fetch-Site": "same-origin"}
DEBTOR = {"SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "11280001234567"}


@dataclass
class Bank:
    """A tenant with a customer and their accounts, another customer, a staff user."""

    name: str
    id: str
    customer: str
    email: str  # the customer user's
    wallet: str  # GBP
    savings: str  # EUR
    gems: str  # a custom asset: no OB currency
    closed: str  # GBP, closed
    neighbour: str  # another customer's GBP account
    staff_email: str


@dataclass
class World:
    api: Api
    agent: TppAgent
    acme: Bank
    globex: Bank

    @property
    def page(self) -> ConsentPage:
        found: ConsentPage = self.api.app.state.ob_consent_page
        return found

    @property
    def consents(self) -> ConsentService:
        return self.page.consents

    def sign_in(self, bank: Bank, email: str | None = None, *, step_up: bool = True) -> NewSession:
        users = self.page.users
        new = users.sign_in(bank.id, email or bank.email, PASSWORD, None)
        if step_up:
            users.mark_stepped_up(new.principal, "totp")
        return new

    def pushed(self, bank: Bank | None = None) -> Pushed:
        return self.agent.push(self.agent.account_access_consent((bank or self.acme).name))

    def get(self, pushed: Pushed, session: NewSession | None = None) -> httpx.Response:
        return self.api.get(self.agent.authorize_path(pushed), headers=_cookie(session))

    def decide(
        self,
        pushed: Pushed,
        session: NewSession | None,
        decision: str = "approve",
        accounts: tuple[str, ...] = (),
        *,
        csrf: str | None = None,
        headers: dict[str, str] | None = None,
        **fields: str,
    ) -> httpx.Response:
        token = csrf
        if token is None and session is not None:
            token = self.csrf(pushed, session)
        form: list[tuple[str, str]] = [
            ("client_id", self.agent.tpp.id),
            ("request_uri", pushed.request_uri),
            ("csrf_token", token or ""),
            ("decision", decision),
            *(("account_id", a) for a in accounts),
            *fields.items(),
        ]
        sent = {**FORM, **SAME_ORIGIN, **_cookie(session), **(headers or {})}
        sent = {k: v for k, v in sent.items() if v}  # an empty one: not sent
        return self.api.post(
            page_model.DECISION_PATH, content=urlencode(form).encode(), headers=sent
        )

    def csrf(self, pushed: Pushed, session: NewSession) -> str:
        """The token the page gives this session for this request."""
        handle = authz_model.request_uri_digest(pushed.request_uri)
        return page_model.csrf_token(self.page.csrf_key, session.principal.session_id, handle)

    def status(self, pushed: Pushed) -> ConsentStatus:
        return self.consents.get(self.consent_id(pushed)).status

    def consent_id(self, pushed: Pushed) -> str:
        return self.page.authz.begin(self.agent.tpp.id, pushed.request_uri).consent_id

    def count(self, table: str) -> int:
        with self.api.app.state.engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar())


def _cookie(session: NewSession | None) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={session.token}"} if session is not None else {}


def _bank(api: Api, name: str) -> Bank:
    state = api.app.state
    tenant = state.tenancy.create_tenant(name, actor="test")
    ledger = state.ledger
    customer = state.customers.create(tenant.id, "person", {"name": "Ada"}, actor="t").id
    other = state.customers.create(tenant.id, "person", {"name": "Bo"}, actor="t").id
    book = ledger.create_ledger(f"{name} books", tenant_id=tenant.id).id
    ledger.create_asset("GEMS", 0, retry=True)
    specs = [
        AccountSpec(book, "GBP", Direction.DEBIT, name="bank"),
        AccountSpec(book, "GBP", Direction.CREDIT, name="Everyday", customer_id=customer),
        AccountSpec(book, "EUR", Direction.CREDIT, name="Travel", customer_id=customer),
        AccountSpec(book, "GEMS", Direction.CREDIT, name="Gems", customer_id=customer),
        AccountSpec(book, "GBP", Direction.CREDIT, name="Old", customer_id=customer),
        AccountSpec(book, "GBP", Direction.CREDIT, name="Bo's", customer_id=other),
    ]
    bank, wallet, savings, gems, closed, neighbour = (a.id for a in ledger.create_accounts(specs))
    ledger.close_account(closed)
    moved = ledger.post_transfers([NewTransfer(ids.new_id("tr"), book, bank, wallet, 10_000)])
    assert moved[0].result.name == "CREATED"
    email, staff = f"ada@{name}.example", f"boss@{name}.example"
    state.users.create_user(tenant.id, email, "customer", PASSWORD, actor="t", customer_id=customer)
    state.users.create_user(tenant.id, staff, "admin", PASSWORD, actor="t")
    return Bank(name, tenant.id, customer, email, wallet, savings, gems, closed, neighbour, staff)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("consent_page")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'strongroom.db'}"
    else:
        url = postgres_url_or_skip()
    settings: dict[str, Any] = {
        **FAST,
        "public_base_url": BASE_URL,
        "dispatcher": False,
        "keyring_path": str(folder / "keyring.json"),
    }
    try:
        with running(url, **settings) as api:
            tpp = new_tpp(name=TPP_NAME, redirect_uris=(REDIRECT_URI,))
            client = api.app.state.openbanking_clients.register(
                name=TPP_NAME, redirect_uris=[REDIRECT_URI], jwks=public_jwks(tpp), actor="test"
            )
            tpp.id = client.id
            agent = TppAgent(tpp, BASE_URL, api.request)
            yield World(api, agent, _bank(api, "acme"), _bank(api, "globex"))
    finally:
        if request.param == "postgresql":
            pg.drop_database(url)


def _stage(response: httpx.Response) -> str:
    found = re.search(r'<body data-stage="([a-z_]+)">', response.text)
    assert found is not None, response.text
    return found.group(1)


def _code(response: httpx.Response) -> str:
    return check_error_page(response)


def _offered(response: httpx.Response) -> list[str]:
    return re.findall(r'name="account_id" value="([^"]+)"', response.text)


# -- the way through -------------------------------------------------------------------------


def test_sign_in_step_up_choose_and_approve_then_the_tpp_reads_the_accounts(world: World) -> None:
    acme, agent = world.acme, world.agent
    pushed = world.pushed()
    signed_out = world.get(pushed)
    assert signed_out.status_code == 200, signed_out.text
    assert _stage(signed_out) == "sign_in"
    assert 'id="signin-form"' in signed_out.text
    assert f'id="tenant" value="{acme.name}"' in signed_out.text
    assert "decision-form" not in signed_out.text
    # The TPP's name, escaped, and what the consent grants.
    assert "Moneywise &lt;Budgets&gt; &amp; Co asks for your consent" in signed_out.text
    assert TPP_NAME not in signed_out.text
    for words in ("their balances", "the money coming in", "Until you withdraw it."):
        assert words in signed_out.text

    session = world.sign_in(acme, step_up=False)
    unconfirmed = world.get(pushed, session)
    assert _stage(unconfirmed) == "step_up"
    assert "decision-form" not in unconfirmed.text
    world.page.users.mark_stepped_up(session.principal, "totp")

    page = world.get(pushed, session)
    assert _stage(page) == "decide"
    # Only the customer's own open accounts of this tenant in an OB currency.
    assert sorted(_offered(page)) == sorted([acme.wallet, acme.savings])
    assert 'type="checkbox"' in page.text
    assert f'name="csrf_token" value="{world.csrf(pushed, session)}"' in page.text

    answer = world.decide(pushed, session, "approve", (acme.wallet,))
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    params = redirect_params(location)
    assert set(params) == {"code", "state", "iss"}
    assert (params["state"], params["iss"]) == (pushed.state, BASE_URL)
    assert answer.headers["cache-control"] == "no-store"

    consent = world.consents.get(_consent_of(world, params))
    assert consent.status is ConsentStatus.AUTH
    assert (consent.customer_id, consent.account_ids) == (acme.customer, (acme.wallet,))

    tokens = agent.exchange(params["code"], pushed)
    assert tokens["token_type"] == "DPoP"
    accounts = agent.ob("GET", acme.name, "/aisp/accounts", tokens["access_token"])
    assert accounts.status_code == 200, accounts.text
    assert [a["AccountId"] for a in accounts.json()["Data"]["Account"]] == [acme.wallet]
    # The decision is the user's in the tenant's audit log (ids only).
    audit = world.api.app.state.audit
    leaves = audit.records_for(acme.id, [consent.id])[consent.id]
    authorised = [leaf for leaf in leaves if leaf["type"] == "openbanking.consent_authorised"]
    assert len(authorised) == 1
    assert authorised[0]["actor"] == session.principal.actor


def _consent_of(world: World, params: dict[str, str]) -> str:
    """The consent a code was issued under (read back from its stored row)."""
    with world.api.app.state.engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT consent_id FROM ob_codes WHERE digest = :d"),
            {"d": authz_model.digest(params["code"])},
        ).scalar()
    assert isinstance(found, str)
    return found


def test_a_rejection_lands_with_access_denied_state_and_iss(world: World) -> None:
    pushed = world.pushed()
    consent_id = world.consent_id(pushed)
    codes = world.count("ob_codes")
    answer = world.decide(pushed, world.sign_in(world.acme), "reject")
    assert answer.status_code == 303, answer.text
    params = redirect_params(answer.headers["location"])
    assert params == {"error": "access_denied", "state": pushed.state, "iss": BASE_URL}
    assert world.consents.get(consent_id).status is ConsentStatus.RJCT
    assert world.count("ob_codes") == codes


def test_a_funds_confirmation_consent_names_its_account_and_takes_one(world: World) -> None:
    acme, agent = world.acme, world.agent
    token = agent.client_token("fundsconfirmations")
    body = {"Data": {"DebtorAccount": {**DEBTOR, "Name": "Ada"}}}
    made = agent.ob("POST", acme.name, "/cbpii/funds-confirmation-consents", token, body)
    assert made.status_code == 201, made.text
    pushed = agent.push(made.json()["Data"]["ConsentId"], scope="fundsconfirmations")
    session = world.sign_in(acme)
    page = world.get(pushed, session)
    assert "Confirm whether funds are available" in page.text
    assert "Ada, 11280001234567 (UK.OBIE.SortCodeAccountNumber)" in page.text
    assert 'type="radio"' in page.text
    assert 'type="checkbox"' not in page.text
    two = world.decide(pushed, session, "approve", (acme.wallet, acme.savings))
    assert _code(two) == "consent_accounts_invalid"
    assert world.status(pushed) is ConsentStatus.AWAU
    one = world.decide(pushed, session, "approve", (acme.savings,))
    assert one.status_code == 303, one.text
    assert "code" in redirect_params(one.headers["location"])


def test_a_payment_consent_offers_only_accounts_in_its_currency(world: World) -> None:
    acme, agent = world.acme, world.agent
    initiation = {
        "InstructionIdentification": "i-1",
        "EndToEndIdentification": "e-1",
        "InstructedAmount": {"Amount": "1.00", "Currency": "GBP"},
        "CreditorAccount": {
            "SchemeName": "UK.OBIE.IBAN",
            "Identification": "GB29NWBK60161331926819",
            "Name": "Bob",
        },
    }
    request = PaymentRequest(initiation, {}).consent_request()
    consent, _ = world.consents.create(
        acme.id, agent.tpp.id, ConsentKind.DOMESTIC_PAYMENT, request, idempotency_key="pay-gbp"
    )
    pushed = agent.push(consent.id, scope="payments")
    session = world.sign_in(acme)
    page = world.get(pushed, session)
    assert _stage(page) == "decide"
    # A GBP payment: the GBP account, not the EUR one the customer also holds.
    assert _offered(page) == [acme.wallet]
    euros = world.decide(pushed, session, "approve", (acme.savings,))
    assert _code(euros) == "consent_accounts_invalid"
    assert world.status(pushed) is ConsentStatus.AWAU
    pounds = world.decide(pushed, session, "approve", (acme.wallet,))
    assert pounds.status_code == 303, pounds.text
    assert world.consents.get(consent.id).account_ids == (acme.wallet,)


# -- refusals: never a redirect, nothing written ---------------------------------------------


def test_an_unknown_used_or_malformed_request_is_an_error_page_not_a_redirect(
    world: World,
) -> None:
    agent = world.agent
    path = authz_model.AUTHORIZE_PATH
    unknown = authz_model.REQUEST_URI_PREFIX + authz_model.new_secret()
    pushed = world.pushed()
    for query, code in (
        ("", "invalid_request"),
        (urlencode({"client_id": agent.tpp.id}), "invalid_request"),
        (urlencode({"request_uri": pushed.request_uri}), "invalid_request"),
        (urlencode({"client_id": agent.tpp.id, "request_uri": unknown}), "invalid_request_uri"),
        (urlencode({"client_id": agent.tpp.id, "request_uri": "https://x"}), "invalid_request_uri"),
        (
            urlencode({"client_id": "tpp_someone_else", "request_uri": pushed.request_uri}),
            "invalid_request_uri",
        ),
        (
            urlencode([("client_id", agent.tpp.id), ("request_uri", pushed.request_uri)] * 2),
            "invalid_request",
        ),
    ):
        response = world.api.get(f"{path}?{query}")
        assert response.status_code == 400, (query, response.text)
        assert _code(response) == code, query
    # Decided, the request is used up: the page of its request_uri is an error page too.
    session = world.sign_in(world.acme)
    assert world.decide(pushed, session, "reject").status_code == 303
    reused = world.get(pushed, session)
    assert (reused.status_code, _code(reused)) == (400, "invalid_request_uri")
    assert pushed.request_uri not in reused.text


def test_a_decision_needs_a_customer_of_the_consents_tenant(world: World) -> None:
    acme, globex = world.acme, world.globex
    pushed = world.pushed()
    codes = world.count("ob_codes")
    # No session at all.
    nobody = world.decide(pushed, None, "approve", (acme.wallet,), csrf="x" * 43)
    assert (nobody.status_code, _code(nobody)) == (401, "customer_sign_in_required")
    # A staff user of the tenant, stepped up, with the token the page would give its session.
    staff = world.sign_in(acme, acme.staff_email)
    assert _stage(world.get(pushed, staff)) == "other_user"
    refused = world.decide(pushed, staff, "approve", (acme.wallet,))
    assert (refused.status_code, _code(refused)) == (403, "consent_decider_forbidden")
    assert _code(world.decide(pushed, staff, "reject")) == "consent_decider_forbidden"
    # Another tenant's customer, their own account or this one's.
    stranger = world.sign_in(globex)
    assert _stage(world.get(pushed, stranger)) == "other_user"
    for accounts in ((globex.wallet,), (acme.wallet,)):
        refused = world.decide(pushed, stranger, "approve", accounts)
        assert (refused.status_code, _code(refused)) == (403, "consent_decider_forbidden")
    # Nothing was written: the customer still decides.
    assert world.status(pushed) is ConsentStatus.AWAU
    assert world.count("ob_codes") == codes
    assert world.decide(pushed, world.sign_in(acme), "approve", (acme.wallet,)).status_code == 303


def test_a_decision_needs_a_recent_step_up(world: World) -> None:
    acme = world.acme
    pushed = world.pushed()
    session = world.sign_in(acme, step_up=False)
    page = world.get(pushed, session)
    assert _stage(page) == "step_up"
    assert 'name="csrf_token"' not in page.text
    for decision in ("approve", "reject"):
        refused = world.decide(pushed, session, decision, (acme.wallet,))
        assert (refused.status_code, _code(refused)) == (403, "step_up_required")
        assert 'id="back" href="/oauth2/authorize?' in refused.text  # mendable: back to it
    assert world.status(pushed) is ConsentStatus.AWAU
    world.page.users.mark_stepped_up(session.principal, "passkey")
    assert world.decide(pushed, session, "approve", (acme.wallet,)).status_code == 303


def test_a_forged_or_cross_origin_decision_is_refused(world: World) -> None:
    acme = world.acme
    pushed, other = world.pushed(), world.pushed()
    session = world.sign_in(acme)
    second = world.sign_in(acme)  # the same customer's other session
    right = (acme.wallet,)
    cases: list[tuple[httpx.Response, int, str]] = [
        (world.decide(pushed, session, csrf=""), 400, "invalid_request"),
        (
            world.decide(pushed, session, "approve", right, csrf="A" * 43),
            403,
            "consent_page_forged",
        ),
        (
            world.decide(pushed, session, "approve", right, csrf=world.csrf(pushed, session)[:-1]),
            403,
            "consent_page_forged",
        ),
        (
            world.decide(pushed, session, "approve", right, csrf=world.csrf(pushed, second)),
            403,
            "consent_page_forged",
        ),
        (
            world.decide(pushed, session, "approve", right, csrf=world.csrf(other, session)),
            403,
            "consent_page_forged",
        ),
        (world.decide(pushed, session, "approve", right, unknown="1"), 400, "invalid_request"),
        (world.decide(pushed, session, "maybe", right), 400, "invalid_request"),
    ]
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://test:8080"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        refused = world.decide(pushed, session, "approve", right, headers=headers)
        cases.append((refused, 403, "consent_page_forged"))
    for refused, status, code in cases:
        assert (refused.status_code, _code(refused)) == (status, code), refused.request.content
    as_json = world.api.post(
        page_model.DECISION_PATH,
        json={"decision": "approve"},
        headers={**SAME_ORIGIN, **_cookie(session)},
    )
    assert (as_json.status_code, _code(as_json)) == (400, "invalid_request")
    assert world.status(pushed) is ConsentStatus.AWAU
    # A client that sends no Origin and no Sec-Fetch-Site (no browser) is left to the token.
    bare = {"Origin": "", "Sec-Fetch-Site": ""}
    answer = world.decide(pushed, session, "approve", (acme.wallet,), headers=bare)
    assert answer.status_code == 303, answer.text


def test_only_the_customers_eligible_accounts_are_accepted(world: World) -> None:
    acme, globex = world.acme, world.globex
    pushed = world.pushed()
    session = world.sign_in(acme)
    for accounts in (
        (),
        (acme.neighbour,),  # another customer's of the tenant
        (globex.wallet,),  # another tenant's
        (acme.gems,),  # no OB currency
        (acme.closed,),
        (acme.wallet, acme.neighbour),
        (acme.wallet, acme.wallet),
        ("acc_nope",),
    ):
        refused = world.decide(pushed, session, "approve", accounts)
        assert (refused.status_code, _code(refused)) == (400, "consent_accounts_invalid"), accounts
        assert 'id="back"' in refused.text
    assert world.status(pushed) is ConsentStatus.AWAU
    answer = world.decide(pushed, session, "approve", (acme.savings, acme.wallet))
    assert answer.status_code == 303, answer.text
    consent = world.consents.get(_consent_of(world, redirect_params(answer.headers["location"])))
    assert consent.account_ids == (acme.savings, acme.wallet)


def test_a_decision_replayed_is_refused_and_changes_nothing(world: World) -> None:
    acme = world.acme
    pushed = world.pushed()
    session = world.sign_in(acme)
    first = world.decide(pushed, session, "approve", (acme.wallet,))
    assert first.status_code == 303
    consent_id = _consent_of(world, redirect_params(first.headers["location"]))
    codes = world.count("ob_codes")
    for decision, accounts in (("approve", (acme.wallet,)), ("approve", (acme.savings,)),
                               ("reject", ())):  # fmt: skip
        again = world.decide(pushed, session, decision, accounts)
        assert (again.status_code, _code(again)) == (400, "invalid_request_uri")
    consent = world.consents.get(consent_id)
    assert (consent.status, consent.account_ids) == (ConsentStatus.AUTH, (acme.wallet,))
    assert world.count("ob_codes") == codes


def test_the_decision_is_one_transaction(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the consent's change (the code's insert) undoes the change: the consent
    stays AWAU with no leaf of its authorisation, the pushed request stays pending."""
    acme = world.acme
    pushed = world.pushed()
    consent_id = world.consent_id(pushed)
    session = world.sign_in(acme)
    audit = world.api.app.state.audit

    def broken(uow: Any, row: Any) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(authz_store, "insert_code", broken)
    failed = world.decide(pushed, session, "approve", (acme.wallet,))
    assert failed.status_code == 500
    monkeypatch.undo()
    assert world.status(pushed) is ConsentStatus.AWAU
    leaves = audit.records_for(acme.id, [consent_id]).get(consent_id, [])
    assert [leaf["type"] for leaf in leaves] == ["openbanking.consent_created"]
    assert _stage(world.get(pushed, session)) == "decide"
    assert world.decide(pushed, session, "approve", (acme.wallet,)).status_code == 303
    assert world.consents.get(consent_id).status is ConsentStatus.AUTH


def test_a_consent_withdrawn_while_the_page_is_open_is_not_decided(world: World) -> None:
    acme, agent = world.acme, world.agent
    pushed = world.pushed()
    session = world.sign_in(acme)
    assert _stage(world.get(pushed, session)) == "decide"
    consent_id = world.consent_id(pushed)
    gone = agent.ob(
        "DELETE", acme.name, f"/aisp/account-access-consents/{consent_id}", agent.client_token()
    )
    assert gone.status_code == 204, gone.text
    codes = world.count("ob_codes")
    refused = world.decide(pushed, session, "approve", (acme.wallet,))
    assert (refused.status_code, _code(refused)) == (400, "invalid_request_uri")
    assert world.consents.get(consent_id).status is ConsentStatus.CANC
    assert world.count("ob_codes") == codes


# -- the page itself -------------------------------------------------------------------------


def test_the_page_has_a_strict_policy_and_serves_its_own_assets(world: World) -> None:
    pushed = world.pushed()
    for session in (None, world.sign_in(world.acme)):
        page = world.get(pushed, session)
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "script-src 'self';" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        # Forms post here, and the decision's answer may redirect to the client's origin only.
        assert "form-action 'self' https://tpp.example;" in csp + ";"
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "same-origin"
        scripts = re.findall(r"<script[^>]*>", page.text)
        assert scripts == [f'<script src="{page_model.SCRIPT_PATH}" defer>']
        assert " style=" not in page.text
        assert "<style" not in page.text
        assert re.search(r"\son[a-z]+=", page.text) is None  # no inline handler
        assert "http://" not in page.text
        assert "https://" not in page.text
    script = world.api.get(page_model.SCRIPT_PATH)
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "/v1/auth/step-up" in script.text
    assert "http://" not in script.text
    assert "https://" not in script.text
    style = world.api.get(page_model.STYLE_PATH)
    assert (style.status_code, style.headers["content-type"]) == (200, "text/css; charset=utf-8")


def test_the_logs_carry_no_secret_or_personal_data(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    acme = world.acme
    caplog.set_level(logging.DEBUG)
    pushed = world.pushed()
    session = world.sign_in(acme)
    world.get(pushed, session)
    world.decide(pushed, session, "approve", (acme.wallet,), csrf="B" * 43)
    answer = world.decide(pushed, session, "approve", (acme.wallet,))
    code = redirect_params(answer.headers["location"])["code"]
    # The server's records (httpx's are this test's own client, naming the URLs it calls).
    server = [r for r in caplog.records if r.name.startswith("strongroom")]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in server)
    assert "open banking consent decided" in logged
    secret = pushed.request_uri.removeprefix(authz_model.REQUEST_URI_PREFIX)
    for value in (secret, code, session.token, world.csrf(pushed, session), acme.email, PASSWORD,
                  pushed.verifier):  # fmt: skip
        assert value not in logged


def test_the_page_is_mounted_outside_v1_and_its_routes_declare_their_access(
    world: World,
) -> None:
    """Outside /v1 (the tenancy middleware authenticates none of them): the page and its
    assets are public, the decision a signed-in user's (the route reads the session)."""
    served = set(all_routes(world.api.app))
    declared = {
        (method, route.path): declared_access(route)
        for route in page_api.router.routes
        for method in getattr(route, "methods", ())
    }
    assert declared == {
        ("GET", authz_model.AUTHORIZE_PATH): PUBLIC,
        ("POST", page_model.DECISION_PATH): SESSION,
        ("GET", page_model.SCRIPT_PATH): PUBLIC,
        ("GET", page_model.STYLE_PATH): PUBLIC,
    }
    assert set(declared) <= served
    metadata = world.api.get(authz_model.METADATA_PATH).json()
    assert metadata["authorization_endpoint"] == BASE_URL + authz_model.AUTHORIZE_PATH
