"""Tenants are walled off: for every route of the app, tenant A naming tenant B's objects gets
exactly what it gets for objects that do not exist. Keys: 401 without a valid one, 403 for a
read-only key on writes."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from strongroom.core import ids
from strongroom.db import tables
from strongroom.openbanking.consents import ConsentKind
from strongroom.openbanking.model import Permission
from strongroom.risk.registry import RiskModelRegistry
from tests.e2e.http_support import (
    OAUTH_PATHS,
    PAGE_PATHS,
    Api,
    Tenant,
    app_routes,
    auth,
    balances,
    problem_code,
    running,
    seed_tenant,
    transfer_ids,
)
from tests.support.jwks import ec_key, jwks
from tests.support.risk_models import artefact, describe

PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/signin"),
    ("GET", "/signin.js"),
    # The consent dashboard's page (without a session: 303 to /signin) and its script.
    ("GET", "/openbanking/consents"),
    ("GET", "/openbanking/consents.js"),
    # Open banking's authorization server: its clients authenticate with signed assertions.
    ("GET", "/.well-known/oauth-authorization-server"),
    ("POST", "/oauth2/par"),
    ("POST", "/oauth2/token"),
    # The consent page: the customer signs in on it; the decision reads the session itself.
    ("GET", "/oauth2/authorize"),
    ("POST", "/oauth2/authorize/decision"),
    ("GET", "/oauth2/consent.js"),
    ("GET", "/oauth2/consent.css"),
    ("GET", "/oauth2/jwks"),  # the keys that sign the payment API's answers
}
# Pages of a signed-in user: without a session they send the visitor to the sign-in page.
SIGNED_IN_PAGES = {("GET", "/openbanking/consents")}
# Signing in: reached without a key or a session (the sweep probes them below).
SIGN_IN_ROUTES = {
    ("POST", "/v1/auth/sessions"),
    ("POST", "/v1/auth/passkeys/authentication/options"),
    ("POST", "/v1/auth/passkeys/authentication"),
    ("POST", "/v1/auth/invitations"),
}
# A signed-in user's own: an API key is answered 403 `session_required`.
SESSION_ROUTES = {
    ("GET", "/v1/auth/sessions/current"),
    ("DELETE", "/v1/auth/sessions/current"),
    ("POST", "/v1/auth/totp"),
    ("POST", "/v1/auth/totp/confirm"),
    ("POST", "/v1/auth/passkeys/registration/options"),
    ("POST", "/v1/auth/passkeys/registration"),
    ("POST", "/v1/auth/step-up/options"),
    ("POST", "/v1/auth/step-up"),
}


@dataclass(frozen=True)
class Hooks:
    """A tenant's webhook endpoint and its events (the seed's transfers, and one posted after
    the endpoint was created, so the endpoint has a delivery)."""

    endpoint: str
    tenant_id: str
    url: str
    secret: str
    events: tuple[str, ...]  # newest first

    @property
    def event(self) -> str:
        return self.events[0]


@dataclass(frozen=True)
class People:
    """A tenant's customer and counterparty, and a key that may reveal their personal data."""

    customer: str
    counterparty: str
    pii: str  # admin and pii:read
    email: str
    national_id: str
    name: str


def seed_people(api: Api, t: Tenant) -> People:
    email, national_id, name = (
        f"{t.name}-person@example.com",
        f"{t.name.upper()}123456",
        (f"{t.name.title()} Person"),
    )
    customer = api.ok(
        "POST",
        "/v1/customers",
        201,
        key=t.admin,
        json={"name": name, "email": email, "national_id": national_id},
    )["id"]
    counterparty = api.ok(
        "POST",
        "/v1/counterparties",
        201,
        key=t.admin,
        json={"name": f"{name} Payee", "account_identifier": "GB29NWBK60161331926819",
              "country": "GB"},
    )["id"]  # fmt: skip
    pii = api.app.state.tenancy.create_api_key(t.name, ["admin", "pii:read"])[1]
    return People(customer, counterparty, pii, email, national_id, name)


@dataclass
class World:
    api: Api
    a: Tenant
    b: Tenant
    a_hooks: Hooks
    b_hooks: Hooks
    a_people: People
    b_people: People
    a_cards: Cards
    b_cards: Cards
    b_user: str  # a user of B's, who signs in with B_PASSWORD
    a_user: str
    a_model: str = ""  # a fraud model's version, registered (risk/registry.py)
    b_model: str = ""
    b_case: str = ""  # an open case of B's, on its pending transfer (cases/)
    a_case: str = ""
    tpp: str = ""  # an open banking client, the operator's (no tenant's)
    a_consent: str = ""  # an open banking consent of the TPP's at A (awaiting authorisation)
    b_consent: str = ""

    def b_id(self, attribute: str) -> str:
        """One of B's ids, by the name _B_IDS gives it."""
        if attribute == "user":
            return self.b_user
        if attribute == "endpoint":
            return self.b_hooks.endpoint
        if attribute == "card":
            return self.b_cards.card
        if attribute == "event":
            return self.b_hooks.event
        if attribute == "model":
            return self.b_model
        if attribute == "case":
            return self.b_case
        if attribute == "consent":
            return self.b_consent
        if attribute in ("customer", "counterparty"):
            value_: str = getattr(self.b_people, attribute)
            return value_
        value = getattr(self.b, attribute)
        assert isinstance(value, str)
        return value


def seed_hooks(api: Api, t: Tenant) -> Hooks:
    url = f"https://hooks.{t.name}.example.com/strongroom"
    endpoint = api.ok("POST", "/v1/webhook_endpoints", 201, key=t.admin, json={"url": url})
    api.ok(
        "POST",
        "/v1/transfers",
        201,
        key=t.write,
        json={
            "ledger_id": t.ledger,
            "debit_account_id": t.bank,
            "credit_account_id": t.alice,
            "amount": 1,
            "metadata": {"owner": t.marker},
        },
    )
    events = api.ok("GET", "/v1/events", key=t.read, params={"limit": 100})["data"]
    assert events, f"{t.name} has no events"
    return Hooks(
        endpoint["id"],
        endpoint["tenant_id"],
        url,
        endpoint["secret"],
        tuple(e["id"] for e in events),
    )


@dataclass(frozen=True)
class Cards:
    """A tenant's card token, and a key that may reveal it (admin may not)."""

    card: str
    fingerprint: str
    number: str
    reveal: str  # a secret with cards:read and vault:reveal (which sees the fingerprint)


def seed_cards(api: Api, t: Tenant, number: str) -> Cards:
    body = {"number": number, "exp_month": 12, "exp_year": 2040, "holder_name": t.marker}
    made = api.ok("POST", "/v1/cards", 201, key=t.admin, json=body)
    assert made["fingerprint"] is None  # admin does not hold vault:reveal
    reveal = api.app.state.tenancy.create_api_key(t.name, ["cards:read", "vault:reveal"])[1]
    fingerprint = api.ok("GET", f"/v1/cards/{made['id']}", key=reveal)["fingerprint"]
    return Cards(made["id"], fingerprint, number, reveal)


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    # No dispatcher: the endpoints' URLs are not reachable, and delivery is not at issue here.
    # Checkpoints are published here, once, not by the timer: what the sweep sees is fixed.
    # The sweep sends hundreds of bad keys from one address: failed authentications are not
    # limited here (test_http_limits.py shows that they are).
    with running(
        db_url,
        dispatcher=False,
        audit_checkpoint_interval_s=86_400,
        auth_failure_limit_burst=1_000_000,
        password_memory_kib=19 * 1024,
        password_time_cost=2,
        password_parallelism=1,
    ) as api:
        a, b = seed_tenant(api, "acme"), seed_tenant(api, "bravo")
        # People and cards first: their events come before the hooks' transfer (Hooks.event is
        # newest).
        a_people, b_people = seed_people(api, a), seed_people(api, b)
        a_cards = seed_cards(api, a, "4242424242424242")
        b_cards = seed_cards(api, b, "5555555555554444")
        # The admin role reveals: it is given by a key that holds the reveal scopes by name.
        reveals = ["admin", "pii:read", "vault:reveal"]
        owner = {t: api.app.state.tenancy.create_api_key(t, reveals)[1] for t in ("acme", "bravo")}
        b_user = api.ok(
            "POST",
            "/v1/users",
            201,
            key=owner["bravo"],
            json={"email": B_EMAIL, "role": "admin", "password": B_PASSWORD},
        )["id"]
        a_user = api.ok(
            "POST",
            "/v1/users",
            201,
            key=owner["acme"],
            json={"email": "boss@acme.example", "role": "admin", "password": B_PASSWORD},
        )["id"]
        # A stored compliance report, with findings of both tenants (users without a factor);
        # run before the hooks are seeded, which note each tenant's events.
        api.app.state.compliance_controls.run(actor="test")
        # Open banking consents, awaiting authorisation, before the hooks too (each is an
        # event). A's is another TPP's: the operator's (in B's data) never shows in A's log.
        tpp = seed_tpp(api)
        consents = seed_consent(api, a, seed_tpp(api, "A's TPP")), seed_consent(api, b, tpp)
        world = World(
            api,
            a,
            b,
            seed_hooks(api, a),
            seed_hooks(api, b),
            a_people,
            b_people,
            a_cards,
            b_cards,
            b_user,
            a_user,
            *(seed_model(api, t) for t in ("acme", "bravo")),
        )
        world.a_case, world.b_case = seed_case(api, a), seed_case(api, b)
        world.tpp = tpp
        world.a_consent, world.b_consent = consents
        api.app.state.audit.publish()
        yield world


def seed_model(api: Api, tenant: str) -> str:
    """A fraud model of the tenant's, registered (the CLI's job: no route registers one)."""
    version = ids.new_id("mdl")
    tenant_id = api.app.state.tenancy.ensure_tenant(tenant).id
    registry = RiskModelRegistry(api.app.state.engine, describe)
    registry.register(tenant_id, artefact(version), actor="cli")
    return version


def seed_tpp(api: Api, name: str = "Operator's TPP") -> str:
    """An open banking client, registered by the operator (deployment-wide: no tenant's)."""
    client = api.app.state.openbanking_clients.register(
        name=name,
        redirect_uris=["https://tpp.example.com/cb"],
        jwks=jwks(ec_key()),
        actor="test",
    )
    return str(client.id)


def seed_consent(api: Api, t: Tenant, tpp: str) -> str:
    """An account access consent of the TPP's at the tenant, awaiting authorisation."""
    tenant_id = api.app.state.tenancy.ensure_tenant(t.name).id
    consent, _ = api.app.state.ob_resources.consents.create(
        tenant_id,
        tpp,
        ConsentKind.ACCOUNT_ACCESS,
        {"Permissions": ["ReadAccountsBasic"]},
        permissions=[Permission.READ_ACCOUNTS_BASIC],
    )
    return str(consent.id)


def seed_case(api: Api, t: Tenant) -> str:
    """An open case of the tenant's on its pending transfer, as the case sink opens one for a
    transfer a gate held (no gate holds transfers in this app)."""
    case_id = ids.new_id("case")
    row = {
        "id": case_id,
        "tenant_id": api.app.state.tenancy.ensure_tenant(t.name).id,
        "kind": "risk_review",
        "status": "open",
        "transfer_id": t.pending,
        "gate": "risk",
        "code": "risk_review",
        "detail": "{}",
        "created_at": 1,
    }
    with api.app.state.engine.begin() as conn:
        conn.execute(sa.insert(tables.cases), row)
    return case_id


B_EMAIL = "boss@bravo.example"
B_PASSWORD = "bravo's long passphrase"


def _origin(world: World, t: Tenant) -> str:
    tenant = world.a_hooks.tenant_id if t is world.a else world.b_hooks.tenant_id
    return f"strongroom.localhost/audit/{tenant}"


def _b_data(world: World) -> set[str]:
    b, hooks = world.b, world.b_hooks
    return {
        b.ledger,
        b.bank,
        b.alice,
        b.posted,
        b.pending,
        b.marker,
        f"{b.name} books",
        f"{b.name} alice",
        hooks.endpoint,
        hooks.url,
        hooks.secret,
        *hooks.events,
        world.b_people.customer,
        world.b_people.counterparty,
        world.b_people.email,
        world.b_people.national_id,
        world.b_people.name,
        world.b_cards.card,
        world.b_cards.fingerprint,
        world.b_cards.number,
        world.b_user,
        world.b_model,
        world.b_case,
        world.b_consent,
        # Not B's, but no tenant's either: the operator's open banking client.
        world.tpp,
        "Operator's TPP",
        B_EMAIL,
    }


def _snapshot(api: Api, t: Tenant) -> tuple[list[str], list[dict[str, int]]]:
    return (
        transfer_ids(api, t.read, ledger_id=t.ledger),
        [balances(api, t, account) for account in (t.bank, t.alice)],
    )


def _without(text: str, *ids_: str) -> str:
    for value in ids_:
        text = text.replace(value, "<id>")
    return re.sub(r'"request_id": "req_[0-9a-z]+"', '"request_id": "<req>"', text)


# -- routes with a path parameter: B's id, and an id nobody has, must answer alike ----------

_B_IDS: dict[str, tuple[str, ...]] = {
    "ledger_id": ("ledger",),
    "account_id": ("bank", "alice"),
    "transfer_id": ("posted", "pending"),
    "endpoint_id": ("endpoint",),
    "event_id": ("event",),
    "customer_id": ("customer",),
    "counterparty_id": ("counterparty",),
    "card_id": ("card",),
    "user_id": ("user",),
    "version": ("model",),
    "case_id": ("case",),
    "subject_id": ("customer", "counterparty"),  # screened at creation (sanctions)
    "consent_id": ("consent",),
}
_PREFIX = {
    "ledger_id": "ldg",
    "account_id": "acc",
    "transfer_id": "tr",
    "endpoint_id": "we",
    "event_id": "evt",
    "customer_id": "cus",
    "counterparty_id": "cpty",
    "card_id": "card",
    "user_id": "usr",
    "version": "mdl",
    "case_id": "case",
    "subject_id": "cus",
    "consent_id": "obc",
}
_ID = re.compile(r"(?:ldg|acc|tr|we|evt|cus|cpty|card|usr|mdl|case|obc)_[0-9a-z]{26}")
# Bodies and queries that would be accepted were the object A's own.
_EXTRAS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("PATCH", "/v1/users/{user_id}"): [{"json": {"role": "auditor"}}],
    ("POST", "/v1/cases/{case_id}/assign"): [{"json": {"assignee": None}}],
    ("POST", "/v1/cases/{case_id}/notes"): [{"json": {"body": "a note"}}],
    ("GET", "/v1/cases/{case_id}/report"): [{}, {"headers": {"accept": "text/html"}}],
    ("POST", "/v1/transfers/{transfer_id}/post"): [{}, {"json": {"amount": 1}}],
    ("POST", "/v1/transfers/{transfer_id}/void"): [{}],
    ("POST", "/v1/transfers/{transfer_id}/reverse"): [{}, {"json": {"amount": 1}}],
    ("GET", "/v1/accounts/{account_id}/balance"): [
        {},
        {"params": {"version": 1}},
        {"params": {"as_of": "2030-01-01T00:00:00Z"}},
    ],
    ("GET", "/v1/accounts/{account_id}/entries"): [{}, {"params": {"starting_after": 2}}],
    ("GET", "/v1/webhook_endpoints/{endpoint_id}/attempts"): [
        {},
        {"params": {"limit": 5}},
        # A cursor is checked after the endpoint: B's endpoint is not found, whatever the cursor.
        {"params": {"starting_after": "wa_nope"}},
        {"params": {"ending_before": "wa_nope"}},
    ],
    ("POST", "/v1/webhook_endpoints/{endpoint_id}"): [
        {"json": {"enabled": False}},
        {"json": {"enabled": True}},
    ],
    ("GET", "/v1/accounts/{account_id}/statement"): [
        {"params": {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}}
    ],
    ("PATCH", "/v1/customers/{customer_id}"): [
        {"json": {"name": "Mallory"}},
        {"json": {"email": "mallory@example.com"}},
    ],
    ("GET", "/v1/customers/{customer_id}/personal-data"): [{}, {"params": {"fields": "email"}}],
    ("PUT", "/v1/customers/{customer_id}/kyc"): [
        {"json": {"status": "verified"}},
        {"json": {"status": "rejected", "tier": "basic"}},
    ],
    ("PUT", "/v1/accounts/{account_id}/aml"): [
        {"json": {"exempt": True}},
        {"json": {"exempt": False, "jurisdiction": "IR"}},
    ],
}
# Queries that make a GET of A's own objects a 200, for the read-only key's walk.
_OWN_QUERIES: dict[str, dict[str, Any]] = {
    "/v1/audit/proofs/inclusion": {"leaf_index": 0, "tree_size": 1},
    "/v1/audit/proofs/consistency": {"first": 1, "second": 1},
    "/v1/accounts/{account_id}/statement": {
        "from": "2000-01-01T00:00:00Z",
        "to": "2100-01-01T00:00:00Z",
    },
}


def _path_cases(
    world: World, method: str, template: str
) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(B's id, the path with it, the path with an unused id, request extras)."""
    names = re.findall(r"{(\w+)}", template)
    assert len(names) == 1, f"{template}: teach the sweep routes with {len(names)} parameters"
    name = names[0]
    assert name in _B_IDS, f"{template}: teach the sweep what a {name} of tenant B is"
    for attribute in _B_IDS[name]:
        theirs = world.b_id(attribute)
        nobodys = ids.new_id(_PREFIX[name])
        for extra in _EXTRAS.get((method, template), [{}]):
            yield (
                theirs,
                template.replace(f"{{{name}}}", theirs),
                template.replace(f"{{{name}}}", nobodys),
                extra,
            )


def _check_like_missing(
    world: World, theirs: httpx.Response, missing: httpx.Response, sent: str
) -> None:
    where = f"{theirs.request.method} {theirs.request.url}"
    assert theirs.status_code == 404, f"{where}: {theirs.status_code} {theirs.text}"
    assert problem_code(theirs) == "not_found", where
    assert missing.status_code == 404, f"{where} (unused id): {missing.status_code}"
    # Word for word what an unused id gets, but for the id itself and the request id.
    theirs_text = _without(theirs.text, sent)
    missing_text = _without(missing.text, *_ID.findall(missing.text))
    assert theirs_text == missing_text, where
    leaked = {v for v in _b_data(world) - {sent} if v in theirs.text}
    assert not leaked, f"{where}: the answer mentions {leaked}"


# -- routes without one: each says how it could reach B's objects -------------------------


@dataclass
class Probe:
    """Requests by A that name B's objects in a query or a body, and what they must get."""

    requests: list[tuple[dict[str, Any], int, str | None]] = field(default_factory=list)
    note: str = ""


def _probes(world: World) -> dict[tuple[str, str], Probe]:
    a, b, people = world.a, world.b, world.b_people
    b_event, b_endpoint = world.b_hooks.event, world.b_hooks.endpoint
    theirs = {"ledger_id": b.ledger, "debit_account_id": b.bank, "credit_account_id": b.alice}
    move = {**theirs, "amount": 1}
    mixed = {"ledger_id": a.ledger, "debit_account_id": a.bank, "credit_account_id": b.alice}
    ours: dict[str, Any] = {
        "ledger_id": a.ledger,
        "debit_account_id": a.bank,
        "credit_account_id": a.alice,
        "amount": 1,
    }
    card = {"number": "4000056655665556", "exp_month": 1, "exp_year": 2040, "holder_name": "A"}
    return {
        ("GET", "/v1/compliance/report"): Probe(
            [({}, 200, None)],
            "the latest stored report: A's findings and the deployment's, never B's",
        ),
        ("POST", "/v1/screenings"): Probe(
            [({"json": {"name": people.name}}, 409, "sanctions_lists_not_loaded")],
            "no list is loaded in this app; an ad-hoc screening reads no tenant's data",
        ),
        ("POST", "/v1/screenings/dismissals"): Probe(
            [
                (
                    {"json": {"subject_id": s, "list": "ofac_sdn", "entry_id": "1"}},
                    404,
                    "not_found",
                )
                for s in (people.customer, people.counterparty)
            ],
            "B's customer or counterparty: as one never screened",
        ),
        ("POST", "/v1/screenings/confirmations"): Probe(
            [
                (
                    {"json": {"subject_id": s, "list": "ofac_sdn", "entry_id": "1"}},
                    404,
                    "not_found",
                )
                for s in (people.customer, people.counterparty)
            ],
            "B's customer or counterparty: as one never screened",
        ),
        ("GET", "/v1/cases"): Probe(
            [({}, 200, None), ({"params": {"status": "open"}}, 200, None)],
            "a list of A's own cases only",
        ),
        ("POST", "/v1/risk/labels"): Probe(
            [({"json": {"transfer_id": b.posted, "fraud": True}}, 404, "not_found")],
            "B's transfer is no payment of A's: nothing labelled",
        ),
        ("GET", "/v1/risk/models"): Probe(
            [({}, 200, None), ({"params": {"starting_after": world.b_model}}, 200, None)],
            "a list of A's own models only",
        ),
        ("GET", "/v1/cards"): Probe(
            [
                ({}, 200, None),
                # B's card's fingerprint lists nothing (fingerprints are per tenant anyway).
                ({"params": {"fingerprint": world.b_cards.fingerprint}}, 200, None),
                ({"params": {"starting_after": world.b_cards.card}}, 200, None),
            ],
            "a list of A's own cards only",
        ),
        ("POST", "/v1/cards"): Probe(
            [({"json": card}, 201, None), ({"json": {**card, "holder_name": b.marker}}, 201, None)],
            "tokenizes for A; B never sees it",
        ),
        ("GET", "/v1/ledgers"): Probe(
            [
                ({}, 200, None),
                ({"params": {"starting_after": b.ledger}}, 200, None),
                ({"params": {"ending_before": b.ledger}}, 200, None),
            ],
            "a list of A's own ledgers only",
        ),
        ("POST", "/v1/ledgers"): Probe(
            [({"json": {"name": "new", "metadata": {"of": b.ledger}}}, 201, None)],
            "creates A's ledger; B never sees it",
        ),
        ("POST", "/v1/assets"): Probe([], "assets are shared by every tenant, by design"),
        ("GET", "/v1/accounts"): Probe(
            [
                ({"params": {"ledger_id": b.ledger}}, 404, "not_found"),
                ({"params": {"ledger_id": a.ledger, "starting_after": b.bank}}, 200, None),
            ]
        ),
        ("POST", "/v1/accounts"): Probe(
            [
                (
                    {"json": {"ledger_id": b.ledger, "asset": "USD", "normal_balance": "debit"}},
                    404,
                    "not_found",
                ),
                # B's customer as the owner of an account in A's ledger: as one nobody has.
                (
                    {
                        "json": {
                            "ledger_id": a.ledger,
                            "asset": "USD",
                            "normal_balance": "debit",
                            "customer_id": people.customer,
                        }
                    },
                    404,
                    "not_found",
                ),
            ]
        ),
        ("GET", "/v1/transfers"): Probe(
            [
                ({"params": {"ledger_id": b.ledger}}, 404, "not_found"),
                ({"params": {"account_id": b.alice}}, 404, "not_found"),
                ({"params": {"ledger_id": a.ledger, "account_id": b.alice}}, 404, "not_found"),
            ]
        ),
        ("POST", "/v1/transfers"): Probe(
            [
                ({"json": move}, 404, "not_found"),
                ({"json": {**move, "pending": True}}, 404, "not_found"),
                (
                    {
                        "json": {
                            "ledger_id": b.ledger,
                            "entries": [
                                {"account_id": b.bank, "direction": "debit", "amount": 1},
                                {"account_id": b.alice, "direction": "credit", "amount": 1},
                            ],
                        }
                    },
                    404,
                    "not_found",
                ),
                # B's account in A's ledger: refused as an account that does not exist.
                ({"json": {**mixed, "amount": 1}}, 422, "account_not_found"),
            ]
        ),
        ("POST", "/v1/transfers/batch"): Probe(
            [
                ({"json": {"transfers": [move]}}, 404, "not_found"),
                ({"json": {"transfers": [ours, move]}}, 404, "not_found"),
                ({"json": {"transfers": [{**mixed, "amount": 1}]}}, 200, None),
            ]
        ),
        ("GET", "/v1/events"): Probe(
            [
                ({}, 200, None),
                ({"params": {"limit": 100}}, 200, None),
                # B's ledger as a filter: an empty list, as for a ledger nobody has.
                ({"params": {"ledger_id": b.ledger}}, 200, None),
                ({"params": {"ledger_id": b.ledger, "limit": 100}}, 200, None),
                ({"params": {"type": "transfer.created", "limit": 100}}, 200, None),
                # B's event as a cursor: not found, as an event nobody has.
                ({"params": {"starting_after": b_event}}, 404, "not_found"),
                (
                    {"params": {"ledger_id": b.ledger, "starting_after": b_event}},
                    404,
                    "not_found",
                ),
            ],
            "a list of A's own events only",
        ),
        ("GET", "/v1/webhook_endpoints"): Probe(
            [
                ({}, 200, None),
                ({"params": {"limit": 100}}, 200, None),
                ({"params": {"starting_after": b_endpoint}}, 200, None),
            ],
            "a list of A's own endpoints only",
        ),
        ("POST", "/v1/webhook_endpoints"): Probe(
            [({"json": {"url": "https://hooks.acme.example.com/other"}}, 201, None)],
            "creates A's endpoint; B never sees it",
        ),
        # The audit routes read the key's tenant's log only: a size, an index or a cursor means
        # A's log; only a transfer id can name B's object.
        ("GET", "/v1/audit/checkpoint"): Probe([({}, 200, None)], "A's own log's checkpoint"),
        ("POST", "/v1/audit/checkpoints"): Probe([({}, 200, None)], "publishes A's own log"),
        ("GET", "/v1/audit/leaves"): Probe(
            [({}, 200, None), ({"params": {"start": 0, "limit": 100}}, 200, None)],
            "A's own leaves (checked decoded below)",
        ),
        ("GET", "/v1/audit/keys"): Probe([({}, 200, None)], "the server's public keys"),
        ("GET", "/v1/audit/proofs/inclusion"): Probe(
            [
                ({"params": {"transfer_id": b.posted, "tree_size": 1}}, 404, "not_found"),
                ({"params": {"leaf_index": 0, "tree_size": 1}}, 200, None),
            ]
        ),
        ("GET", "/v1/audit/proofs/consistency"): Probe(
            [({"params": {"first": 1, "second": 2}}, 200, None)], "A's own log"
        ),
        # The operator's routes (the system tenant's keys alone): a tenant's admin is refused.
        ("GET", "/v1/tenants"): Probe([({}, 403, "insufficient_scope")], "the operator's"),
        ("POST", "/v1/tenants"): Probe(
            [({"json": {"name": "other"}}, 403, "insufficient_scope")], "the operator's"
        ),
        ("GET", "/v1/openbanking/clients"): Probe(
            [({}, 403, "insufficient_scope")], "the operator's"
        ),
        ("GET", "/v1/openbanking/consents"): Probe(
            [
                # Staff name the customer: B's lists nothing, nor is B's consent a cursor.
                ({}, 400, "invalid_request"),
                ({"params": {"customer_id": people.customer}}, 200, None),
                (
                    {
                        "params": {
                            "customer_id": world.a_people.customer,
                            "starting_after": world.b_consent,
                        }
                    },
                    200,
                    None,
                ),
            ],
            "a customer's consents of A's only",
        ),
        ("POST", "/v1/openbanking/clients"): Probe(
            [
                (
                    {
                        "json": {
                            "name": "A's TPP",
                            "redirect_uris": ["https://a.example/cb"],
                            "jwks": jwks(ec_key()),
                        }
                    },
                    403,
                    "insufficient_scope",
                )
            ],
            "the operator's",
        ),
        # B's values as lookups find nothing: a blind index is keyed per tenant, and the
        # lookup is within A's customers anyway.
        ("GET", "/v1/customers"): Probe(
            [
                ({}, 200, None),
                ({"params": {"starting_after": people.customer}}, 200, None),
                ({"params": {"email": people.email}}, 200, None),
                ({"params": {"national_id": people.national_id}}, 200, None),
            ],
            "a list of A's own customers only",
        ),
        ("POST", "/v1/customers/search"): Probe(
            [
                ({"json": {"email": people.email}}, 200, None),
                ({"json": {"national_id": people.national_id}}, 200, None),
            ]
        ),
        ("POST", "/v1/customers"): Probe(
            [({"json": {"name": "New", "metadata": {"of": people.customer}}}, 201, None)],
            "creates A's customer; B never sees it",
        ),
        ("GET", "/v1/counterparties"): Probe(
            [({}, 200, None), ({"params": {"starting_after": people.counterparty}}, 200, None)],
            "a list of A's own counterparties only",
        ),
        ("POST", "/v1/counterparties"): Probe(
            [
                (
                    {
                        "json": {
                            "name": "Payee",
                            "account_identifier": "DE89370400440532013000",
                            "country": "DE",
                        }
                    },
                    201,
                    None,
                )
            ],
            "creates A's counterparty",
        ),
        # Signing in names a tenant: B's user is nobody in A's tenant.
        ("POST", "/v1/auth/sessions"): Probe(
            [
                (
                    {"json": {"tenant": a.name, "email": B_EMAIL, "password": B_PASSWORD}},
                    401,
                    "invalid_credentials",
                )
            ],
            "B's user signs in to B only",
        ),
        ("POST", "/v1/auth/passkeys/authentication/options"): Probe(
            [({"json": {"tenant": a.name}}, 200, None)], "a challenge for A's passkeys"
        ),
        ("POST", "/v1/auth/passkeys/authentication"): Probe(
            [
                (
                    {"json": {"challenge_id": "chl_nope", "credential": {"id": "x"}}},
                    400,
                    "invalid_challenge",
                )
            ],
            "a passkey is looked up in the challenge's tenant only (test_http_auth.py)",
        ),
        ("POST", "/v1/auth/invitations"): Probe(
            [
                (
                    {"json": {"token": "inv_nope", "password": B_PASSWORD}},
                    400,
                    "invalid_challenge",
                )
            ],
            "an invitation names its own user only",
        ),
        ("POST", "/v1/api_keys"): Probe(
            [({"json": {"scopes": ["ledger:read"]}}, 201, None)], "creates A's key"
        ),
        ("GET", "/v1/users"): Probe(
            [
                ({}, 200, None),
                ({"params": {"starting_after": world.b_user}}, 200, None),
                ({"params": {"email": B_EMAIL}}, 200, None),
            ],
            "a list of A's own users only; B's admin's address finds none of B's",
        ),
        ("POST", "/v1/users"): Probe(
            # B's user's email is free in A's tenant: emails are unique per tenant.
            [({"json": {"email": B_EMAIL, "role": "support", "password": B_PASSWORD}}, 201, None)],
            "creates A's user",
        ),
        **{
            route: Probe([({}, 403, "session_required")], "a user's own session only")
            for route in (
                ("GET", "/v1/auth/sessions/current"),
                ("DELETE", "/v1/auth/sessions/current"),
                ("POST", "/v1/auth/totp"),
                ("POST", "/v1/auth/passkeys/registration/options"),
                ("POST", "/v1/auth/step-up/options"),
            )
        },
        **{
            route: Probe([({"json": body}, 403, "session_required")], "a user's own session only")
            for route, body in (
                (("POST", "/v1/auth/totp/confirm"), {"code": "123456"}),
                (("POST", "/v1/auth/step-up"), {"totp": "123456"}),
                (
                    ("POST", "/v1/auth/passkeys/registration"),
                    {"challenge_id": "chl_nope", "credential": {"id": "x"}},
                ),
            )
        },
    }


def test_every_route_walls_tenants_off(world: World) -> None:
    api, a, b = world.api, world.a, world.b
    b_before = _snapshot(api, b)
    a_before_ids = transfer_ids(api, a.read, ledger_id=a.ledger)
    probes = _probes(world)
    routes = app_routes(api.app)
    unswept = [r for r in routes if r not in PUBLIC_ROUTES and r not in probes and "{" not in r[1]]
    assert not unswept, f"add these routes to the tenancy sweep: {unswept}"
    swept = 0
    for method, template in routes:
        if (method, template) in PUBLIC_ROUTES:
            response = api.request(method, template)
            # The authorization server's endpoints refuse an empty form: OAuth's 400; the
            # consent page, a request without its client_id and request_uri (an HTML page).
            if template in OAUTH_PATHS | PAGE_PATHS:
                assert response.status_code == 400
            elif (method, template) in SIGNED_IN_PAGES:
                assert response.status_code == 303
                assert response.headers["location"] == "/signin"
            else:
                assert response.status_code == 200
            leaked = {v for v in _b_data(world) if v in response.text}
            assert not leaked, f"{template} mentions {leaked}"
            swept += 1
        elif template == "/v1/audit/checkpoints/{tree_size}":
            # A tree size names a checkpoint of A's own log: B's sizes give A's checkpoint of
            # that size or a 404, never B's.
            b_size = api.ok("GET", "/v1/audit/checkpoint", key=b.read)["tree_size"]
            for size in (b_size, b_size + 1, 10**6):
                response = api.request(method, f"/v1/audit/checkpoints/{size}", key=a.admin)
                assert response.status_code in (200, 404), response.text
                if response.status_code == 200:
                    assert response.json()["note"].startswith(f"{_origin(world, a)}\n")
                assert _origin(world, b) not in response.text
                swept += 1
        elif template.startswith(OPERATOR_PREFIX) and "{" in template:
            # The operator's route: a tenant's admin is refused, whoever the tenant, and
            # whatever the operator's object.
            if "{tenant_id}" in template:
                named = [api.app.state.tenancy.ensure_tenant(t.name).id for t in (a, b)]
            else:
                assert "{client_id}" in template, template
                named = [world.tpp]
            for value in named:
                path = re.sub(r"{\w+}", value, template)
                body = _valid_writes(a).get((method, template)) if method != "GET" else None
                response = api.request(method, path, key=a.admin, json=body)
                assert response.status_code == 403, response.text
                assert problem_code(response) == "insufficient_scope"
                assert world.tpp not in response.text
                swept += 1
        elif "{" in template:
            # Reading personal data takes pii:read, which admin does not imply.
            # Only a key with vault:reveal may reveal a card (admin may not): A's, for the sweep.
            key = a.admin
            if template.endswith(("/personal-data", "/export")):
                key = world.a_people.pii
            elif template.endswith("/number"):
                key = world.a_cards.reveal
            for sent, path, unused, extra in _path_cases(world, method, template):
                theirs = api.request(method, path, key=key, **extra)
                missing = api.request(method, unused, key=key, **extra)
                _check_like_missing(world, theirs, missing, sent)
                swept += 1
        else:
            for extra, status, code in probes[(method, template)].requests:
                # Lookups that are oracles need their reveal scope, which admin lacks:
                # A's key that holds it (a fingerprint: vault:reveal; an email or a
                # national id: pii:read).
                looked = {**extra.get("params", {}), **extra.get("json", {})}
                key = a.admin
                if "fingerprint" in looked:
                    key = world.a_cards.reveal
                elif template.startswith("/v1/customers") and (
                    "email" in looked or "national_id" in looked
                ):
                    key = world.a_people.pii
                response = api.request(method, template, key=key, **extra)
                where = f"{method} {template} {extra}"
                assert response.status_code == status, f"{where}: {response.text}"
                if code is not None:
                    assert problem_code(response) == code, where
                sent = str(extra)
                leaked = {v for v in _b_data(world) if v in response.text and v not in sent}
                if response.status_code == 200 and "data" in response.json():
                    listed = {x.get("id") for x in response.json()["data"]}
                    leaked |= listed & _b_data(world)
                    # Nothing listed is another tenant's: A's own ids only.
                    data = response.json()["data"]
                    if template == "/v1/events":
                        a_ledgers = {
                            x["id"] for x in api.ok("GET", "/v1/ledgers", key=a.read)["data"]
                        }
                        # A customer's event has no ledger: it is A's by its data's id.
                        assert {x["ledger_id"] for x in data} - {None} <= a_ledgers, where
                        if extra.get("params", {}).get("ledger_id") == b.ledger:
                            assert data == [], where
                        else:
                            assert data, f"{where}: A's own events are listed"
                    if template == "/v1/cards":
                        assert world.a_cards.card in listed or "fingerprint" in sent, where
                    if template == "/v1/webhook_endpoints":
                        assert {x["tenant_id"] for x in data} <= {world.a_hooks.tenant_id}, where
                if template == "/v1/audit/leaves" and response.status_code == 200:
                    decoded = b"".join(base64.b64decode(x["leaf"]) for x in data)
                    assert data, where
                    leaked |= {v for v in _b_data(world) if v.encode() in decoded}
                assert not leaked, f"{where}: the answer mentions {leaked}"
                swept += 1
    assert swept >= 40
    # Where B's id is a filter or a cursor, A gets what an id nobody has gets.
    for name, params in (
        ("ledger_id", {"ledger_id": b.ledger}),
        ("starting_after", {"starting_after": world.b_hooks.event}),
    ):
        theirs = api.get("/v1/events", key=a.admin, params=params)
        nobodys = ids.new_id("ldg" if name == "ledger_id" else "evt")
        missing = api.get("/v1/events", key=a.admin, params={name: nobodys})
        assert theirs.status_code == missing.status_code, name
        assert _without(theirs.text, params[name]) == _without(missing.text, nobodys), name
    # B's endpoint and events are as they were; A's new endpoint is A's alone.
    b_endpoints = api.ok("GET", "/v1/webhook_endpoints", key=b.admin)["data"]
    assert [(x["id"], x["status"]) for x in b_endpoints] == [(world.b_hooks.endpoint, "enabled")]
    b_events = api.ok("GET", "/v1/events", key=b.read, params={"limit": 100})["data"]
    assert tuple(x["id"] for x in b_events) == world.b_hooks.events
    # Nothing of B's changed, and nothing of A's but the ledger and the mixed batch's refusal.
    assert _snapshot(api, b) == b_before
    assert transfer_ids(api, a.read, ledger_id=a.ledger) == a_before_ids
    b_ledgers = api.ok("GET", "/v1/ledgers", key=b.read)["data"]
    assert [x["id"] for x in b_ledgers] == [b.ledger]
    # B's customer was neither changed, held nor erased by A's requests.
    b_customer = f"/v1/customers/{world.b_people.customer}"
    shown = api.ok("GET", f"{b_customer}/personal-data", key=world.b_people.pii)
    assert (shown["name"], shown["email"]) == (world.b_people.name, world.b_people.email)
    assert api.ok("GET", b_customer, key=b.admin)["legal_hold"] is False


def _valid_writes(a: Tenant) -> dict[tuple[str, str], dict[str, Any]]:
    move = {"ledger_id": a.ledger, "debit_account_id": a.bank, "credit_account_id": a.alice}
    return {
        ("POST", "/v1/ledgers"): {"name": "x"},
        ("POST", "/v1/assets"): {"code": "GEMS", "scale": 0},
        ("POST", "/v1/accounts"): {
            "ledger_id": a.ledger,
            "asset": "USD",
            "normal_balance": "debit",
        },
        ("POST", "/v1/transfers"): {**move, "amount": 1},
        ("POST", "/v1/transfers/batch"): {"transfers": [{**move, "amount": 1}]},
        ("POST", "/v1/transfers/{transfer_id}/post"): {},
        ("POST", "/v1/transfers/{transfer_id}/void"): {},
        ("POST", "/v1/transfers/{transfer_id}/reverse"): {},
        ("POST", "/v1/webhook_endpoints"): {"url": "https://hooks.acme.example.com/x"},
        ("POST", "/v1/webhook_endpoints/{endpoint_id}"): {"enabled": False},
        ("DELETE", "/v1/webhook_endpoints/{endpoint_id}"): {},
        ("POST", "/v1/audit/checkpoints"): {},
        ("POST", "/v1/tenants"): {"name": "newco"},
        ("POST", "/v1/tenants/{tenant_id}/suspend"): {},
        ("POST", "/v1/tenants/{tenant_id}/resume"): {},
        ("POST", "/v1/customers"): {"name": "x"},
        ("POST", "/v1/customers/search"): {"email": "x@example.com"},
        ("PATCH", "/v1/customers/{customer_id}"): {"name": "y"},
        ("DELETE", "/v1/customers/{customer_id}/personal-data"): {},
        ("POST", "/v1/customers/{customer_id}/legal-hold"): {},
        ("DELETE", "/v1/customers/{customer_id}/legal-hold"): {},
        ("POST", "/v1/counterparties"): {
            "name": "z",
            "account_identifier": "DE89370400440532013000",
            "country": "DE",
        },
        ("DELETE", "/v1/counterparties/{counterparty_id}/personal-data"): {},
        ("POST", "/v1/cards"): {
            "number": "4242424242424242",
            "exp_month": 12,
            "exp_year": 2040,
            "holder_name": "A",
        },
        ("DELETE", "/v1/cards/{card_id}"): {},
        ("POST", "/v1/api_keys"): {"scopes": ["ledger:read"]},
        ("POST", "/v1/users"): {"email": "new@acme.example", "role": "support"},
        ("PATCH", "/v1/users/{user_id}"): {"role": "auditor"},
        ("POST", "/v1/risk/models/{version}/promote"): {},
        ("POST", "/v1/risk/labels"): {"transfer_id": a.posted, "fraud": True},
        ("POST", "/v1/cases/{case_id}/approve"): {},
        ("POST", "/v1/cases/{case_id}/decline"): {},
        ("POST", "/v1/cases/{case_id}/assign"): {"assignee": None},
        ("POST", "/v1/cases/{case_id}/notes"): {"body": "a note"},
        ("POST", "/v1/risk/models/{version}/shadow"): {},
        ("POST", "/v1/screenings"): {"name": "x"},
        ("POST", "/v1/screenings/dismissals"): {
            "subject_id": "cus_1",
            "list": "un",
            "entry_id": "1",
        },
        ("POST", "/v1/screenings/confirmations"): {
            "subject_id": "cus_1",
            "list": "un",
            "entry_id": "1",
        },
        ("PUT", "/v1/customers/{customer_id}/kyc"): {"status": "verified"},
        ("POST", "/v1/accounts/{account_id}/freeze"): {},
        ("POST", "/v1/accounts/{account_id}/unfreeze"): {},
        ("POST", "/v1/openbanking/clients"): {
            "name": "A's TPP",
            "redirect_uris": ["https://a.example/cb"],
            "jwks": jwks(ec_key()),
        },
        ("PUT", "/v1/openbanking/clients/{client_id}/jwks"): {"jwks": jwks(ec_key())},
        ("POST", "/v1/openbanking/clients/{client_id}/disable"): {},
        ("POST", "/v1/openbanking/clients/{client_id}/enable"): {},
        ("PUT", "/v1/accounts/{account_id}/aml"): {"exempt": False},
        ("POST", "/v1/openbanking/consents/{consent_id}/revoke"): {},
    }


def _own_path(world: World, template: str) -> str:
    """The template with A's own ids."""
    a, hooks = world.a, world.a_hooks
    path = template.replace("{ledger_id}", a.ledger)
    path = path.replace("{account_id}", a.alice).replace("{transfer_id}", a.pending)
    path = path.replace("{endpoint_id}", hooks.endpoint).replace("{event_id}", hooks.event)
    path = path.replace("{customer_id}", world.a_people.customer)
    path = path.replace("{counterparty_id}", world.a_people.counterparty)
    path = path.replace("{card_id}", world.a_cards.card)
    path = path.replace("{user_id}", world.a_user)
    path = path.replace("{version}", world.a_model)
    path = path.replace("{case_id}", world.a_case)
    path = path.replace("{subject_id}", world.a_people.customer)
    path = path.replace("{client_id}", world.tpp)
    path = path.replace("{consent_id}", world.a_consent)
    if "{tree_size}" in path:
        size = world.api.ok("GET", "/v1/audit/checkpoint", key=a.read)["tree_size"]
        path = path.replace("{tree_size}", str(size))
    if "{tenant_id}" in path:
        path = path.replace("{tenant_id}", world.api.app.state.tenancy.ensure_tenant(a.name).id)
    assert "{" not in path, f"{template}: teach _own_path this parameter"
    return path


# Routes only an admin key may call, reads included.
# Routes of the customers' scopes (customers:*, pii:read), which a ledger key lacks.
CUSTOMER_PREFIXES = ("/v1/customers", "/v1/counterparties")
# Routes a ledger key may not call, reads included (cards:read and vault:reveal).
CARDS_PREFIX = "/v1/cards"
# Routes only an admin key may call, reads included.
ADMIN_ONLY_PREFIX = ("/v1/webhook_endpoints", "/v1/users")
# Routes of the risk scopes (risk:read, risk:admin), which a ledger key lacks.
RISK_PREFIX = "/v1/risk"
# The case queue's routes (cases:read, cases:write), which a ledger key lacks.
CASES_PREFIX = "/v1/cases"
# Sanctions screening's routes (compliance:read, compliance:write), which a ledger key lacks.
SCREENINGS_PREFIX = "/v1/screenings"
# Routes only the operator (a key of the system tenant, tenants:admin) may call.
OPERATOR_PREFIX = ("/v1/tenants", "/v1/openbanking/clients")
# A customer's open banking consents (own:read, or customers:read), which a ledger key lacks.
OB_CONSENTS_PREFIX = "/v1/openbanking/consents"
# The compliance routes (compliance:read), which a ledger key lacks.
COMPLIANCE_PREFIX = "/v1/compliance"


def test_keys_unauthenticated_and_read_only(world: World) -> None:
    api, a = world.api, world.a
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic " + a.read},
        {"Authorization": "Bearer sk_" + "x" * 43},
        {"Authorization": "Bearer " + a.read[:-1]},
        {"Authorization": "Bearer " + "sk_" + "y" * 300},
        {"Authorization": f"Bearer {a.read}"[:-1] + ("A" if a.read[-1] != "A" else "B")},
    ):
        for method, template in app_routes(api.app):
            if (method, template) in PUBLIC_ROUTES | SIGN_IN_ROUTES:
                continue
            path = _own_path(world, template)
            response = api.request(
                method, path, headers=headers, json={} if method == "POST" else None
            )
            assert (response.status_code, problem_code(response)) == (401, "unauthenticated"), (
                method,
                path,
                headers,
            )
    # The lower-case scheme is the same scheme (RFC 9110: case-insensitive).
    assert api.get("/v1/ledgers", headers={"Authorization": f"bearer {a.read}"}).status_code == 200

    # A read-only key reads everything and writes nothing: each write with a valid body.
    writes = (
        {r for r in app_routes(api.app) if r[0] != "GET"}
        - SIGN_IN_ROUTES
        - SESSION_ROUTES
        - PUBLIC_ROUTES
    )
    assert writes == set(_valid_writes(a)), "teach this test a valid body for new routes"
    for (method, template), body in _valid_writes(a).items():
        path = _own_path(world, template)
        sent = body if method in ("POST", "PATCH", "PUT") else None
        response = api.request(method, path, key=a.read, json=sent)
        assert (response.status_code, problem_code(response)) == (403, "insufficient_scope"), path
    # A user's own routes are no key's, an admin's included.
    bodies: dict[str, Any] = {
        "/v1/auth/totp/confirm": {"code": "123456"},
        "/v1/auth/step-up": {"totp": "123456"},
        "/v1/auth/passkeys/registration": {"challenge_id": "chl_x", "credential": {"id": "x"}},
    }
    for method, template in sorted(SESSION_ROUTES):
        response = api.request(method, template, key=a.admin, json=bodies.get(template))
        assert (response.status_code, problem_code(response)) == (403, "session_required")
    response = api.post("/v1/assets", key=a.write, json={"code": "GEMS", "scale": 0})
    assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
    # Webhook endpoints are an admin's: a write key neither creates, lists nor reads them.
    for method, template in app_routes(api.app):
        if template.startswith(ADMIN_ONLY_PREFIX):
            body = _valid_writes(a).get((method, template))
            response = api.request(method, _own_path(world, template), key=a.write, json=body)
            assert (response.status_code, problem_code(response)) == (
                403,
                "insufficient_scope",
            ), (method, template)
    # The endpoint is untouched by the refused updates and DELETEs.
    endpoint = api.ok("GET", f"/v1/webhook_endpoints/{world.a_hooks.endpoint}", key=a.admin)
    assert endpoint["status"] == "enabled"
    for method, template in app_routes(api.app):
        if method == "GET" and (method, template) not in PUBLIC_ROUTES | SESSION_ROUTES:
            path = _own_path(world, template)
            params = (
                {"ledger_id": a.ledger}
                if template in ("/v1/accounts", "/v1/transfers")
                else _OWN_QUERIES.get(template, {})
            )
            response = api.get(path, key=a.read, params=params)
            if template.startswith(
                (
                    *ADMIN_ONLY_PREFIX,
                    CARDS_PREFIX,
                    *CUSTOMER_PREFIXES,
                    *OPERATOR_PREFIX,
                    RISK_PREFIX,
                    CASES_PREFIX,
                    COMPLIANCE_PREFIX,
                    SCREENINGS_PREFIX,
                    OB_CONSENTS_PREFIX,
                )
            ) or template.endswith(("/risk", "/aml")):
                assert (response.status_code, problem_code(response)) == (
                    403,
                    "insufficient_scope",
                ), path
            else:
                assert response.status_code == 200, path

    # A customers:read key reads customers and counterparties, masked; personal data in full
    # only with pii:read. (A customer's accounts take ledger:read besides.)
    reader = api.app.state.tenancy.create_api_key("acme", ["customers:read"])[1]
    for method, template in app_routes(api.app):
        if method != "GET" or not template.startswith(CUSTOMER_PREFIXES):
            continue
        path = _own_path(world, template)
        response = api.get(path, key=reader)
        # The export (pii:read), KYC (compliance:read) and a customer's accounts (ledger:read)
        # take more.
        if template.endswith(("/personal-data", "/accounts", "/export", "/kyc")):
            assert (response.status_code, problem_code(response)) == (
                403,
                "insufficient_scope",
            ), path
            revealing = template.endswith(("/personal-data", "/export"))
            allowed = world.a_people.pii if revealing else a.admin
            assert api.get(path, key=allowed).status_code == 200, path
        else:
            assert response.status_code == 200, path

    # A revoked key is refused at once by the process that revoked it.
    key, secret = api.app.state.tenancy.create_api_key("acme", ["ledger:read"])
    assert api.get("/v1/ledgers", key=secret).status_code == 200
    api.app.state.tenancy.revoke_api_key(key.id)
    assert api.get("/v1/ledgers", key=secret).status_code == 401


def test_another_tenants_transfer_is_no_cursor(sqlite_url: str) -> None:
    with running(sqlite_url) as api:
        a, b = seed_tenant(api, "acme"), seed_tenant(api, "bravo")
        for cursor in ("starting_after", "ending_before"):
            query = {"ledger_id": a.ledger, cursor: b.posted}
            response = api.get("/v1/transfers", key=a.read, params=query)
            assert response.status_code == 400, (cursor, response.status_code)
            assert problem_code(response) == "invalid_cursor"


def test_another_tenants_delete_is_a_404_and_deletes_nothing(world: World) -> None:
    api, a, b = world.api, world.a, world.b
    theirs = f"/v1/webhook_endpoints/{world.b_hooks.endpoint}"
    before = api.ok("GET", theirs, key=b.admin)
    for _ in range(2):
        response = api.request("DELETE", theirs, key=a.admin)
        assert (response.status_code, problem_code(response)) == (404, "not_found")
    assert api.ok("GET", theirs, key=b.admin) == before
    assert api.ok("GET", f"{theirs}/attempts", key=b.admin)["object"] == "list"
    listed = api.ok("GET", "/v1/webhook_endpoints", key=b.admin)["data"]
    assert [x["id"] for x in listed] == [world.b_hooks.endpoint]
    # B deletes its own; then A's endpoint is still there, and B's is gone for B too.
    deleted = api.ok("DELETE", theirs, key=b.admin)
    assert deleted == {"id": world.b_hooks.endpoint, "object": "webhook_endpoint", "deleted": True}
    assert api.get(theirs, key=b.admin).status_code == 404
    assert api.ok("GET", f"/v1/webhook_endpoints/{world.a_hooks.endpoint}", key=a.admin)


def test_a_key_works_for_its_own_tenant_only_by_construction(world: World) -> None:
    """The same request with B's key sees B's objects: the 404s above are about tenancy."""
    api, b = world.api, world.b
    assert api.ok("GET", f"/v1/ledgers/{b.ledger}", key=b.read)["name"] == "bravo books"
    assert api.ok("GET", f"/v1/transfers/{b.pending}", key=b.read)["status"] == "pending"
    assert api.get("/v1/transfers", key=b.read, params={"account_id": b.alice}).status_code == 200
    assert auth(b.read)["Authorization"].startswith("Bearer sk_")
