"""The customer's open banking consent dashboard through the app `serve` builds, on SQLite and
PostgreSQL: a customer user lists their own consents (never another customer's, never another
tenant's) and revokes one; staff list a customer's consents with customers:read and revoke
with customers:write; refusals (another's consent, one already ended, a bad id) write nothing;
a revoked consent's tokens, issued by the real authorization server, are refused at an AIS
read; the page sends a visitor without a session to the sign-in page and is served under a
strict CSP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from strongroom.core import clock, ids
from strongroom.db import tables
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.model import Direction, NewTransfer
from strongroom.openbanking.authz import model as authz_model
from strongroom.openbanking.authz.service import AuthorizationServer
from strongroom.openbanking.consents import ConsentKind
from strongroom.openbanking.dashboard.model import API_PATH, PAGE_PATH, SCRIPT_PATH
from strongroom.openbanking.model import Permission, ob_datetime
from strongroom.openbanking.resources.service import ConsentService
from strongroom.security.auth.model import SESSION_COOKIE
from tests.e2e.http_support import BASE_URL, Api, problem_code, running
from tests.support.ob_authz import REDIRECT_URI, DpopKey, Tpp, new_tpp, pkce_pair

PASSWORD = "a long enough passphrase"
FAST = {"password_memory_kib": 19 * 1024, "password_time_cost": 2, "password_parallelism": 1}
HOUR_US = 3_600_000_000
READ = [Permission.READ_ACCOUNTS_BASIC, Permission.READ_BALANCES]
FORM = {"content-type": "application/x-www-form-urlencoded"}


@dataclass
class Bank:
    """A tenant (an account provider): a ledger, customers and each one's GBP account."""

    name: str
    id: str
    ledger: str
    bank: str
    customers: dict[str, str] = field(default_factory=dict)  # name -> customer id
    accounts: dict[str, str] = field(default_factory=dict)  # name -> their account id


@dataclass
class World:
    api: Api
    acme: Bank
    globex: Bank
    tpp: Tpp
    sessions: dict[str, str] = field(default_factory=dict)  # name -> session token
    users: dict[str, str] = field(default_factory=dict)  # name -> user id

    @property
    def consents(self) -> ConsentService:
        found: ConsentService = self.api.app.state.ob_resources.consents
        return found

    def consent(
        self,
        bank: Bank,
        who: str | None,
        kind: ConsentKind = ConsentKind.ACCOUNT_ACCESS,
        *,
        expires_in_us: int | None = 30 * 24 * HOUR_US,
    ) -> str:
        """A consent of the TPP's at `bank`, authorised by customer `who` (None: awaiting)."""
        expires = None if expires_in_us is None else clock.now_us() + expires_in_us
        request: dict[str, Any]
        if kind is ConsentKind.ACCOUNT_ACCESS:
            request = {"Permissions": [p.value for p in READ]}
        else:
            request = {
                "DebtorAccount": {
                    "SchemeName": "UK.OBIE.SortCodeAccountNumber",
                    "Identification": "11280001234567",
                }
            }
        if expires is not None:
            request["ExpirationDateTime"] = ob_datetime(expires)
        permissions = READ if kind is ConsentKind.ACCOUNT_ACCESS else []
        made, _ = self.consents.create(
            bank.id, self.tpp.id, kind, request, permissions=permissions, expires_at_us=expires
        )
        if who is not None:
            self.consents.authorise(made.id, bank.customers[who], [bank.accounts[who]])
        return made.id

    def listed(self, key: str, **params: Any) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.api.ok("GET", API_PATH, key=key, params=params)["data"]
        return data

    def revoke(self, key: str, consent_id: str) -> httpx.Response:
        return self.api.post(f"{API_PATH}/{consent_id}/revoke", key=key)

    def records(self, bank: Bank, consent_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api.app.state.audit.records_for(
            bank.id, [consent_id]
        ).get(consent_id, [])
        return found

    def written(self) -> tuple[int, int, list[tuple[str, str]]]:
        """Events, audit leaves and every consent's status: what a refusal must not change."""
        with self.api.app.state.engine.connect() as conn:
            events = conn.execute(sa.select(sa.func.count()).select_from(tables.events)).scalar()
            rows = conn.execute(sa.text("SELECT id, status FROM ob_consents ORDER BY id"))
            statuses = [(r[0], r[1]) for r in rows]
        leaves = sum(
            len(records)
            for b in (self.acme, self.globex)
            for records in self.api.app.state.audit.records_for(
                b.id, [c for c, _ in statuses]
            ).values()
        )
        return int(events or 0), leaves, statuses


def _bank(api: Api, name: str, people: list[str]) -> Bank:
    state = api.app.state
    tenant = state.tenancy.create_tenant(name, actor="test")
    book = state.ledger.create_ledger(f"{name} books", tenant_id=tenant.id).id
    bank_account = state.ledger.create_accounts(
        [AccountSpec(book, "GBP", Direction.DEBIT, name="bank")]
    )[0].id
    found = Bank(name, tenant.id, book, bank_account)
    for person in people:
        customer = state.customers.create(tenant.id, "person", {"name": person}, actor="test")
        spec = AccountSpec(book, "GBP", Direction.CREDIT, name=person, customer_id=customer.id)
        account = state.ledger.create_accounts([spec])[0].id
        move = NewTransfer(ids.new_id("tr"), book, bank_account, account, 1_000)
        assert state.ledger.post_transfers([move])[0].result.name == "CREATED"
        found.customers[person] = customer.id
        found.accounts[person] = account
    return found


def _customer_session(w: World, bank: Bank, person: str | None, email: str) -> str:
    """A signed-in customer user of `bank`, bound to `person` (None: to no customer)."""
    users = w.api.app.state.users
    customer_id = None if person is None else bank.customers[person]
    user = users.create_user(
        bank.id, email, "customer", PASSWORD, actor="test", customer_id=customer_id
    )
    token: str = users.sign_in(bank.id, email, PASSWORD, None).token
    w.users[email] = user.id
    return token


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    with running(db_url, dispatcher=False, public_base_url=BASE_URL, **FAST) as api:
        acme = _bank(api, "acme", ["ada", "bob"])
        globex = _bank(api, "globex", ["cyd"])
        tpp = new_tpp()
        public = {**tpp.key.as_dict(private=False), "kid": tpp.kid, "use": "sig"}
        tpp.id = api.app.state.openbanking_clients.register(
            name="Example TPP", redirect_uris=[REDIRECT_URI], jwks={"keys": [public]},
            scopes=["accounts", "fundsconfirmations"], actor="test",
        ).id  # fmt: skip
        w = World(api, acme, globex, tpp)
        w.sessions["ada"] = _customer_session(w, acme, "ada", "ada@acme.example")
        w.sessions["bob"] = _customer_session(w, acme, "bob", "bob@acme.example")
        w.sessions["cyd"] = _customer_session(w, globex, "cyd", "cyd@globex.example")
        w.sessions["nobody"] = _customer_session(w, acme, None, "nobody@acme.example")
        yield w


def _key(w: World, bank: Bank, *scopes: str) -> str:
    secret: str = w.api.app.state.tenancy.create_api_key(bank.name, list(scopes))[1]
    return secret


def test_a_customer_lists_their_own_consents_only(world: World) -> None:
    w, acme, globex = world, world.acme, world.globex
    access = w.consent(acme, "ada")
    funds = w.consent(acme, "ada", ConsentKind.FUNDS_CONFIRMATION, expires_in_us=None)
    bobs = w.consent(acme, "bob")
    pending = w.consent(acme, None)  # awaiting authorisation: nobody's yet
    cyds = w.consent(globex, "cyd")

    mine = w.listed(w.sessions["ada"])
    assert [c["id"] for c in mine] == [access, funds]
    first = mine[0]
    stored = w.consents.get(access)
    assert first == {
        "id": access,
        "object": "openbanking_consent",
        "tpp": {"id": w.tpp.id, "name": "Example TPP"},
        "kind": "account_access",
        "status": "AUTH",
        "in_force": True,
        "customer_id": acme.customers["ada"],
        "permissions": ["ReadAccountsBasic", "ReadBalances"],
        "covers": "Read your accounts' names and currencies and your balances",
        "account_ids": [acme.accounts["ada"]],
        "created_at": clock.format_us(stored.state.created_at_us),
        "authorised_at": clock.format_us(stored.state.status_updated_at_us),
        "status_updated_at": clock.format_us(stored.state.status_updated_at_us),
        "expires_at": clock.format_us(stored.expires_at_us or 0),
    }
    assert mine[1]["kind"] == "funds_confirmation"
    assert mine[1]["permissions"] == []
    assert mine[1]["expires_at"] is None
    assert "yes or no" in mine[1]["covers"]
    # The debtor account's number of a funds consent is never shown.
    assert "11280001234567" not in str(mine)
    # Pages, by id.
    page = w.api.ok("GET", API_PATH, key=w.sessions["ada"], params={"limit": 1})
    assert ([c["id"] for c in page["data"]], page["has_more"]) == ([access], True)
    rest = w.api.ok(
        "GET", API_PATH, key=w.sessions["ada"], params={"limit": 1, "starting_after": access}
    )
    assert ([c["id"] for c in rest["data"]], rest["has_more"]) == ([funds], False)
    # Naming herself is allowed; naming another customer is not hers to ask.
    assert w.listed(w.sessions["ada"], customer_id=acme.customers["ada"]) == mine
    for other in (acme.customers["bob"], globex.customers["cyd"], "cus_nobody"):
        refused = w.api.get(API_PATH, key=w.sessions["ada"], params={"customer_id": other})
        assert (refused.status_code, problem_code(refused)) == (403, "insufficient_scope")
        assert bobs not in refused.text
    assert [c["id"] for c in w.listed(w.sessions["bob"])] == [bobs]
    assert [c["id"] for c in w.listed(w.sessions["cyd"])] == [cyds]
    # A customer user bound to no customer, and a customer-role key, own no consent.
    assert w.listed(w.sessions["nobody"]) == []
    assert w.listed(_key(w, acme, "own:read", "own:write")) == []

    # Staff with customers:read name the customer, of their own tenant only.
    for staff in (_key(w, acme, "admin"), _key(w, acme, "customers:read")):
        assert w.listed(staff, customer_id=acme.customers["ada"]) == mine
        assert [c["id"] for c in w.listed(staff, customer_id=acme.customers["bob"])] == [bobs]
        assert w.listed(staff, customer_id=globex.customers["cyd"]) == []
        unnamed = w.api.get(API_PATH, key=staff)
        assert (unnamed.status_code, problem_code(unnamed)) == (400, "invalid_request")
        assert unnamed.json()["param"] == "customer_id"
    # Nothing lists the consent awaiting authorisation, nobody's yet.
    assert pending not in str([w.listed(w.sessions[n]) for n in ("ada", "bob", "nobody")])
    # Without customers:read or own:read: refused.
    for key in (_key(w, acme, "ledger:read"), _key(w, acme, "cards:read")):
        refused = w.api.get(API_PATH, key=key, params={"customer_id": acme.customers["ada"]})
        assert (refused.status_code, problem_code(refused)) == (403, "insufficient_scope")
    too_long = w.api.get(API_PATH, key=_key(w, acme, "admin"), params={"customer_id": "c" * 65})
    assert (too_long.status_code, problem_code(too_long)) == (400, "invalid_id")


def test_revoking_as_the_customer_and_as_staff(world: World) -> None:
    w, acme, globex = world, world.acme, world.globex
    ada, bob = w.sessions["ada"], w.sessions["bob"]
    access = w.consent(acme, "ada")
    bobs = w.consent(acme, "bob")
    pending = w.consent(acme, None)
    cyds = w.consent(globex, "cyd")
    rejected = w.consent(acme, None)
    w.consents.reject(rejected, acme.customers["ada"])

    # Another customer's, another tenant's, one awaiting authorisation (nobody's yet) and an
    # id nobody has: not found, word for word alike but for the id; nothing written.
    before = w.written()
    nobodys = ids.new_id("obc")
    answers = {}
    for consent_id in (bobs, cyds, pending, nobodys):
        response = w.revoke(ada, consent_id)
        assert (response.status_code, problem_code(response)) == (404, "not_found"), consent_id
        body = response.json()
        assert body["param"] == "consent_id"
        answers[consent_id] = re.sub(r"req_\w+", "<req>", response.text.replace(consent_id, "<id>"))
    assert len(set(answers.values())) == 1, answers
    for key in (w.sessions["nobody"], _key(w, acme, "own:read", "own:write")):
        response = w.revoke(key, access)
        assert (response.status_code, problem_code(response)) == (404, "not_found")
    bad = w.revoke(ada, "obc_" + "x" * 80)
    assert (bad.status_code, problem_code(bad)) == (400, "invalid_id")
    # customers:read lists, but does not revoke.
    reader = w.revoke(_key(w, acme, "customers:read"), access)
    assert (reader.status_code, problem_code(reader)) == (403, "insufficient_scope")
    assert w.written() == before

    # Ada revokes her own: CANC, its leaf and event name her user.
    revoked = w.api.ok("POST", f"{API_PATH}/{access}/revoke", key=ada)
    assert (revoked["id"], revoked["status"], revoked["in_force"]) == (access, "CANC", False)
    assert revoked["authorised_at"] is None
    assert revoked["tpp"] == {"id": w.tpp.id, "name": "Example TPP"}
    assert w.consents.get(access).status == "CANC"
    leaf = w.records(acme, access)[-1]
    assert (leaf["type"], leaf["actor"]) == (
        "openbanking.consent_revoked",
        f"user:{w.users['ada@acme.example']}",
    )
    assert leaf["data"]["from"] == "AUTH"
    admin = _key(w, acme, "admin")
    events = w.api.ok(
        "GET", "/v1/events", key=admin, params={"type": "openbanking.consent_revoked"}
    )["data"]
    assert [e["data"]["id"] for e in events] == [access]
    assert [c["status"] for c in w.listed(ada)] == ["CANC", "RJCT"]

    # Revoked already, rejected: 409 consent_state, nothing written.
    before = w.written()
    for consent_id in (access, rejected):
        again = w.revoke(ada, consent_id)
        assert (again.status_code, problem_code(again)) == (409, "consent_state"), consent_id
        assert "cannot be revoked" in again.json()["detail"]
    assert w.written() == before

    # Expired: past its expiry before the job marked it (still AUTH), and once marked EXPD.
    expiring = w.consent(acme, "ada", expires_in_us=HOUR_US)
    later = clock.now_us() + 2 * HOUR_US
    w.api.app.state.ob_dashboard.now_us = lambda: later
    before = w.written()
    late = w.revoke(ada, expiring)
    assert (late.status_code, problem_code(late)) == (409, "consent_state")
    assert "expired" in late.json()["detail"]
    assert w.written() == before
    shown = next(c for c in w.listed(ada) if c["id"] == expiring)
    assert (shown["status"], shown["in_force"]) == ("AUTH", False)
    w.consents.now_us = lambda: later
    assert w.consents.expire_due() == 1
    before = w.written()
    expired = w.revoke(ada, expiring)
    assert (expired.status_code, problem_code(expired)) == (409, "consent_state")
    assert w.written() == before
    w.consents.now_us = clock.now_us
    w.api.app.state.ob_dashboard.now_us = clock.now_us

    # Staff with customers:write revoke any consent of their tenant, never another's.
    assert w.revoke(admin, cyds).status_code == 404
    by_staff = w.api.ok("POST", f"{API_PATH}/{bobs}/revoke", key=admin)
    assert by_staff["status"] == "CANC"
    assert w.records(acme, bobs)[-1]["actor"].startswith("api_key:")
    # A staff user (an admin, signed in: no step-up asked) is the actor of theirs.
    users = w.api.app.state.users
    boss = users.create_user(acme.id, "boss@acme.example", "admin", PASSWORD, actor="test")
    boss_session = users.sign_in(acme.id, "boss@acme.example", PASSWORD, None).token
    assert w.api.ok("POST", f"{API_PATH}/{pending}/revoke", key=boss_session)["status"] == "CANC"
    assert w.records(acme, pending)[-1]["actor"] == f"user:{boss.id}"
    assert [c["status"] for c in w.listed(bob)] == ["CANC"]
    # Globex's consent is untouched by all of it.
    assert w.consents.get(cyds).status == "AUTH"


def test_a_revoked_consents_tokens_are_refused_at_an_ais_read(world: World) -> None:
    """Nothing faked: the TPP gets a DPoP-bound token under Ada's consent from the
    authorization server and reads her accounts; Ada revokes the consent on the dashboard;
    the same token is refused (401 invalid_token: revoked, not only its consent ended) and
    its refresh token too."""
    w, acme = world, world.acme
    api, tpp, dpop = w.api, w.tpp, DpopKey()
    server: AuthorizationServer = api.app.state.ob_authz

    def now_s() -> int:
        return server.now_us() // 1_000_000

    def post_form(path: str, form: dict[str, str], proof: str | None = None) -> Any:
        headers = {**FORM, **({"DPoP": proof} if proof else {})}
        return api.post(path, content=urlencode(form).encode(), headers=headers)

    def token(form: dict[str, str]) -> Any:
        url = server.endpoints.token
        full = {**tpp.auth(url, now_s()), **form}
        return post_form(authz_model.TOKEN_PATH, full, dpop.proof("POST", url, now_s()))

    consent_id = w.consent(acme, None)
    verifier, challenge = pkce_pair()
    pushed = post_form(
        authz_model.PAR_PATH,
        {
            **tpp.auth(BASE_URL, now_s()),
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "accounts",
            "state": "s-1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "consent_id": consent_id,
        },
    )
    assert pushed.status_code == 201, pushed.text
    # The consent page's part, on the services.
    pending = server.begin(tpp.id, pushed.json()["request_uri"])
    w.consents.authorise(consent_id, acme.customers["ada"], [acme.accounts["ada"]])
    code = parse_qs(urlsplit(server.complete(pending, True, acme.customers["ada"])).query)
    exchange = {
        "grant_type": "authorization_code",
        "code": code["code"][0],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    issued = token(exchange)
    assert issued.status_code == 200, issued.text
    access, refresh = issued.json()["access_token"], issued.json()["refresh_token"]
    url = f"{BASE_URL}/ob/acme/open-banking/v4.0/aisp/accounts"

    def read() -> httpx.Response:
        proof = dpop.proof("GET", url, now_s(), access_token=access)
        headers = {"Authorization": f"DPoP {access}", "DPoP": proof}
        return api.run(api.client.request("GET", url, headers=headers))

    before = read()
    assert before.status_code == 200, before.text
    assert [a["AccountId"] for a in before.json()["Data"]["Account"]] == [acme.accounts["ada"]]

    shown = w.listed(w.sessions["ada"])
    assert [(c["id"], c["status"]) for c in shown] == [(consent_id, "AUTH")]
    api.ok("POST", f"{API_PATH}/{consent_id}/revoke", key=w.sessions["ada"])

    after = read()
    assert after.status_code == 401
    assert 'error="invalid_token"' in after.headers["www-authenticate"]
    refreshed = token({"grant_type": "refresh_token", "refresh_token": refresh})
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"


def test_the_page_needs_a_session_and_has_a_strict_csp(world: World) -> None:
    w = world
    for cookie in (None, "st_not_a_session", "x" * 500, w.sessions["nobody"] + "x"):
        headers = {"cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else {}
        response = w.api.get(PAGE_PATH, headers=headers)
        assert response.status_code == 303, cookie
        assert response.headers["location"] == "/signin"
    signed_in = w.api.get(PAGE_PATH, headers={"cookie": f"{SESSION_COOKIE}={w.sessions['ada']}"})
    assert signed_in.status_code == 200
    assert signed_in.headers["content-type"].startswith("text/html")
    csp = signed_in.headers["content-security-policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert signed_in.headers["x-frame-options"] == "DENY"
    # The page's only script is the app's own file: no inline code, no other origin.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", signed_in.text, re.S)
    assert scripts == [(f' src="{SCRIPT_PATH}" defer', "")]
    assert " style=" not in signed_in.text
    assert "http://" not in signed_in.text
    assert "https://" not in signed_in.text
    script = w.api.get(SCRIPT_PATH)
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert API_PATH in script.text
    assert "innerHTML" not in script.text
    assert "http://" not in script.text
    assert "https://" not in script.text
    # After signing out, the page sends the visitor to sign in again.
    w.api.app.state.users.sign_out(w.api.app.state.users.authenticate(w.sessions["ada"]))
    gone = w.api.get(PAGE_PATH, headers={"cookie": f"{SESSION_COOKIE}={w.sessions['ada']}"})
    assert gone.status_code == 303
