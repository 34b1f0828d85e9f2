"""Schemathesis against the Open Banking resource server, with the official UK OB v4.0 OpenAPI
documents as the contract (../shared/data/openbanking, loaded by tests/support/ob_spec.py with
the README's two quirks fixed).

The operations run are the ones the app implements: every route under ports.RESOURCE_BASE,
each looked up in the documents (a route that no document declares fails the test), so an
operation added later is fuzzed without editing this file. Each document is cut down to those
operations and handed to schemathesis, which generates requests (valid ones and invalid ones)
and sends them to the app in-process (ASGI). Every request is authenticated as a real TPP's
would be, by a schemathesis auth provider: an access token of the grant and scope that the
operation's `security` names, issued by the app's own authorization server through its real
flows (client credentials; a pushed request, the customer's approval, the code exchange), bound
to the TPP's DPoP key, and a fresh DPoP proof for the request's method and URL. Schemathesis
hooks put real ids in the path (a consent of the TPP's, the customer's accounts, a payment made
in setup) and bodies the app accepts in the requests (with a fresh x-idempotency-key), often
enough that the handlers answer, not only the lookups; and each operation is first sent one
well-formed request (an explicit example), so that its success is checked every run.

Every answer is checked: no 5xx, a status the operation declares, a declared content type, the
declared body schema and the declared response headers. The run is derandomised and bounded
(EXAMPLES_PER_OPERATION) so that it is the same run each time and fits CI. SQLite only: what is
checked is the HTTP contract, not the storage.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import hypothesis
import pytest
import schemathesis
import schemathesis.python.asgi
from hypothesis import strategies as st
from requests.utils import requote_uri
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from strongroom.core import ids
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.model import Direction, NewTransfer
from strongroom.openbanking.authz.service import AuthorizationServer
from strongroom.openbanking.ports import RESOURCE_BASE, Grant
from tests.e2e.http_support import Api, all_routes, build_app
from tests.support import ob_spec
from tests.support.ob_authz import REDIRECT_URI, DpopKey, Tpp, new_key, pkce_pair

TENANT: Final = "acme"
HOST_URL: Final = f"http://{schemathesis.python.asgi.HOST}"  # the Host schemathesis sends
# The documents' bases (/open-banking/v4.0/aisp, ...) are RESOURCE_BASE's, less /ob/{tenant}.
VERSION_BASE: Final = RESOURCE_BASE.partition("{tenant}")[2]
TENANT_BASE: Final = RESOURCE_BASE.format(tenant=TENANT)
# Enough for each operation's answers to come up a few times each; few enough for CI (about
# 20 s for the 19 operations with domestic payments, setup included, on a 2-core machine; 45 s
# when other work shares it).
EXAMPLES_PER_OPERATION: Final = 25
SECURITY_GRANTS: Final = {
    "TPPOAuth2Security": Grant.CLIENT_CREDENTIALS,
    "PSUOAuth2Security": Grant.AUTHORIZATION_CODE,
}
CHECKS: Final = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
)
# How a consent of each kind is asked for (its creation's document path): a request the app
# accepts, so that a customer can authorise it and the operations under it can be reached.
# An implemented operation that needs a customer's token of a scope with no consent request
# here fails the run (_credentials): add the kind's request here.
CONSENT_REQUESTS: Final[Mapping[str, Mapping[str, Any]]] = {
    "/account-access-consents": {
        "Data": {
            "Permissions": [
                "ReadAccountsDetail",
                "ReadBalances",
                "ReadTransactionsCredits",
                "ReadTransactionsDebits",
                "ReadTransactionsDetail",
            ]
        },
        "Risk": {},
    },
    "/funds-confirmation-consents": {
        "Data": {
            "DebtorAccount": {
                "SchemeName": "UK.OBIE.SortCodeAccountNumber",
                "Identification": "11280001234567",
                "Name": "Ada",
            }
        }
    },
    # GBP, well within the customer's first account (_bank): each payment the run makes of it
    # (one in setup, at most PAYERS in the run) is posted, not refused for insufficient funds.
    "/domestic-payment-consents": {
        "Data": {
            "Initiation": {
                "InstructionIdentification": "fuzz-instr",
                "EndToEndIdentification": "fuzz-e2e",
                "LocalInstrument": "UK.OBIE.FPS",
                "InstructedAmount": {"Amount": "10.50", "Currency": "GBP"},
                "CreditorAccount": {
                    "SchemeName": "UK.OBIE.SortCodeAccountNumber",
                    "Identification": "08080021325698",
                    "Name": "Bob's Bikes",
                },
                "RemittanceInformation": {"Unstructured": ["invoice 42"]},
            }
        },
        "Risk": {"PaymentContextCode": "TransferToThirdParty"},
    },
}
PAYMENT_CONSENTS: Final = "/domestic-payment-consents"
PAYMENTS: Final = "/domestic-payments"
# The consents whose customer chooses exactly one account (the others: all the GBP ones).
ONE_ACCOUNT_CONSENTS: Final = frozenset({"/funds-confirmation-consents", PAYMENT_CONSENTS})
# The run's payments, at most: a consent each, made in setup. The well-formed request pays
# under the first; the generated good bodies name the others (with generated headers, which
# the app may refuse: a payment among them is likely, not needed).
PAYERS: Final = 3
# x-jws-signature: v4.0 requires it on the payment POSTs; this server does not verify a TPP's
# request signatures, so the well-formed requests carry a detached JWS of the right shape
# (protected header, empty payload, signature) that nothing checks.
_JWS_HEADER: Final = {"alg": "PS256", "kid": "k1", "typ": "JOSE", "cty": "application/json"}
PLAUSIBLE_JWS: Final = (
    base64.urlsafe_b64encode(json.dumps(_JWS_HEADER).encode()).decode().rstrip("=")
    + ".."
    + base64.urlsafe_b64encode(bytes(256)).decode().rstrip("=")
)
_PATH_PARAMETER: Final = re.compile(r"\{([^}]+)\}")


# -- the implemented operations, found in the documents -------------------------------------


@dataclass(frozen=True)
class Operation:
    """An implemented route and the v4.0 operation that declares it."""

    method: str  # upper case
    route: str  # the app's template: RESOURCE_BASE + ...
    spec: str  # ob_spec.SPEC_NAMES
    base: str  # the document's server base: /open-banking/v4.0/aisp
    template: str  # the document's path: /accounts/{AccountId}
    grant: Grant
    scope: str
    has_body: bool
    required_headers: frozenset[str]  # lower case

    @property
    def label(self) -> str:
        return f"{self.method} {self.base}{self.template}"

    @property
    def server(self) -> str:
        """Where schemathesis sends the operation's requests: the document's base, under the
        tenant's."""
        return HOST_URL + TENANT_BASE + self.base.removeprefix(VERSION_BASE)

    @property
    def path_parameters(self) -> list[str]:
        return _PATH_PARAMETER.findall(self.template)

    @property
    def consents(self) -> str | None:
        """The document path of the consents this operation's ConsentId names, if any."""
        head, found, _ = self.template.partition("/{ConsentId}")
        return head if found else None


def _declared(method: str, route: str) -> Operation:
    path = VERSION_BASE + route.removeprefix(RESOURCE_BASE)
    for spec in ob_spec.SPEC_NAMES:
        document = ob_spec.load_spec(spec)
        base = str(document["servers"][0]["url"]).rstrip("/")
        template = path.removeprefix(base)
        if not path.startswith(base + "/") or template not in document["paths"]:
            continue
        operation = document["paths"][template].get(method.lower())
        if operation is None:
            continue
        where = f"{spec} {method} {template}"
        requirements = operation.get("security") or []
        assert len(requirements) == 1, f"{where}: one security requirement expected"
        ((scheme, scopes),) = requirements[0].items()
        assert scheme in SECURITY_GRANTS, f"{where}: {requirements}"
        assert len(scopes) == 1, f"{where}: {requirements}"
        parameters = [
            _resolved(document, p)
            for p in [
                *document["paths"][template].get("parameters", []),
                *operation.get("parameters", []),
            ]
        ]
        return Operation(
            method,
            route,
            spec,
            base,
            template,
            SECURITY_GRANTS[scheme],
            scopes[0],
            has_body="requestBody" in operation,
            required_headers=frozenset(
                str(p["name"]).lower()
                for p in parameters
                if p["in"] == "header" and p.get("required")
            ),
        )
    raise AssertionError(f"{method} {route}: no v4.0 document declares this operation")


def _resolved(document: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    """`node`, or what its local `$ref` (#/components/...) names."""
    ref = node.get("$ref")
    if ref is None:
        return node
    found: Any = document
    for part in str(ref).removeprefix("#/").split("/"):
        found = found[part]
    return _resolved(document, found)


def implemented_operations(routes: list[tuple[str, str]]) -> list[Operation]:
    """The OB operations among the app's routes ((method, template) pairs); AssertionError
    for a route under RESOURCE_BASE that no v4.0 document declares."""
    return [_declared(m, p) for m, p in routes if p.startswith(RESOURCE_BASE + "/")]


# -- a bank, a TPP, its tokens and consents --------------------------------------------------


@dataclass
class Bank:
    customer: str
    accounts: list[str]  # the customer's GBP accounts (the first has money)
    other: str  # another account of the customer's, in a currency OB cannot express


@dataclass
class Credentials:
    """The TPP's access tokens by (grant, scope), all bound to its one DPoP key, and its
    consents by the document path of their creation: the one each customer's token was
    issued under (never deleted by the run) and one for the run to delete (or only to read,
    where the kind has no DELETE). Besides, since a payment consumes its consent (and the
    tokens under it then answer 401): the payments made in setup (ids for the paths), and
    consents kept for the run's payments, each authorised with a customer's token under it
    (`payers`, by consent id). A payment request names one of those or is refused before it
    is made: the others carry the token of the authorised consent, which stays AUTH."""

    dpop: DpopKey
    tokens: dict[tuple[Grant, str], str] = field(default_factory=dict)
    authorised: dict[str, str] = field(default_factory=dict)
    doomed: dict[str, str] = field(default_factory=dict)
    payments: list[str] = field(default_factory=list)
    payers: dict[str, str] = field(default_factory=dict)

    def token(self, op: Operation, body: Any) -> str:
        """The token the request of `op` with `body` carries."""
        if (op.method, op.template) == ("POST", PAYMENTS):
            for consent_id, token in self.payers.items():
                if body == _payment_body(consent_id):
                    return token
        return self.tokens[(op.grant, op.scope)]

    def sign(self, case: Case, token: str, url: str) -> None:
        """What every request carries: the token, a proof of the DPoP key for its method and
        URL as sent (quoted as `requests` quotes it; a new jti: each proof is used once), a
        valid interaction id."""
        htu = requote_uri(url)
        proof = self.dpop.proof(case.method.upper(), htu, int(time.time()), access_token=token)
        case.headers = {
            **(case.headers or {}),
            "Authorization": f"DPoP {token}",
            "DPoP": proof,
            "x-fapi-interaction-id": str(uuid.uuid4()),
        }


def _bank(api: Api) -> Bank:
    state = api.app.state
    tenant = state.tenancy.create_tenant(TENANT, actor="test")
    customer = state.customers.create(tenant.id, "person", {"name": "Ada"}, actor="test").id
    book = state.ledger.create_ledger("acme books", tenant_id=tenant.id).id
    state.ledger.create_asset("GEMS", 0)
    specs = [
        AccountSpec(book, "GBP", Direction.DEBIT, name="bank"),
        AccountSpec(book, "GBP", Direction.CREDIT, name="Everyday", customer_id=customer),
        AccountSpec(book, "GBP", Direction.CREDIT, customer_id=customer),
        AccountSpec(book, "GEMS", Direction.CREDIT, customer_id=customer),
    ]
    bank, wallet, savings, gems = (a.id for a in state.ledger.create_accounts(specs))
    moves = [NewTransfer(ids.new_id("tr"), book, bank, wallet, 10_000)]
    moves += [NewTransfer(ids.new_id("tr"), book, wallet, bank, 100 + i) for i in range(3)]
    assert all(o.result.name == "CREATED" for o in state.ledger.post_transfers(moves))
    return Bank(customer, [wallet, savings], gems)


def _register(api: Api) -> Tpp:
    """A TPP registered by the operator, with every scope."""
    key = new_key()
    public = {**key.as_dict(private=False), "kid": "k1", "use": "sig"}
    client = api.app.state.openbanking_clients.register(
        name="Fuzz TPP", redirect_uris=[REDIRECT_URI], jwks={"keys": [public]}, actor="test"
    )
    return Tpp(client.id, key)


def _now_s(server: AuthorizationServer) -> int:
    return server.now_us() // 1_000_000


def _token(server: AuthorizationServer, tpp: Tpp, dpop: DpopKey, form: dict[str, str]) -> str:
    url = server.endpoints.token
    now = _now_s(server)
    answer = server.token({**tpp.auth(url, now), **form}, dpop.proof("POST", url, now), "POST", url)
    token: str = answer["access_token"]
    return token


def _post(api: Api, op: Operation, template: str, token: str, dpop: DpopKey, body: Any) -> Any:
    """POST `body` to `template` of `op`'s document, the TPP's way: over HTTP, with its token
    (the headers the payment POSTs require, too); the created resource's Data."""
    path = TENANT_BASE + op.base.removeprefix(VERSION_BASE) + template
    proof = dpop.proof("POST", HOST_URL + path, int(time.time()), access_token=token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    headers["x-idempotency-key"] = uuid.uuid4().hex
    headers["x-jws-signature"] = PLAUSIBLE_JWS
    response = api.run(api.client.post(path, json=body, headers=headers))
    assert response.status_code == 201, (op.label, template, response.text)
    return response.json()["Data"]


def _create_consent(api: Api, op: Operation, token: str, dpop: DpopKey) -> str:
    """A consent of `op`'s kind, created over HTTP."""
    data = _post(api, op, op.template, token, dpop, CONSENT_REQUESTS[op.template])
    consent_id: str = data["ConsentId"]
    return consent_id


def _payment_body(consent_id: str) -> dict[str, Any]:
    """A domestic payment under `consent_id`: the consent request's Initiation and Risk."""
    request = copy.deepcopy(CONSENT_REQUESTS[PAYMENT_CONSENTS])
    return {"Data": {"ConsentId": consent_id, **request["Data"]}, "Risk": request["Risk"]}


def _customers_token(
    api: Api,
    tpp: Tpp,
    dpop: DpopKey,
    consent_id: str,
    scope: str,
    customer: str,
    accounts: list[str],
) -> str:
    """An authorization_code token under `consent_id`, the way a customer grants one: the
    TPP pushes its request, the customer arrives, approves (the consent becomes AUTH, these
    accounts selected) and the TPP exchanges the code."""
    server: AuthorizationServer = api.app.state.ob_authz
    verifier, challenge = pkce_pair()
    pushed = server.push(
        {
            **tpp.auth(server.issuer, _now_s(server)),
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": scope,
            "state": "fuzz",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "consent_id": consent_id,
        }
    )
    pending = server.begin(tpp.id, pushed["request_uri"])
    api.app.state.ob_resources.consents.authorise(consent_id, customer, accounts)
    redirect = server.complete(pending, True, customer)
    (code,) = parse_qs(urlsplit(redirect).query)["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    return _token(server, tpp, dpop, form)


def _credentials(api: Api, operations: list[Operation], bank: Bank) -> Credentials:
    """A client credentials token for every scope the operations use and, for every kind of
    consent they create, two consents: one authorised by the customer (with a token under
    it), one left awaiting authorisation for the run to read and delete."""
    server: AuthorizationServer = api.app.state.ob_authz
    tpp = _register(api)
    found = Credentials(DpopKey())
    for scope in sorted({op.scope for op in operations}):
        form = {"grant_type": "client_credentials", "scope": scope}
        found.tokens[(Grant.CLIENT_CREDENTIALS, scope)] = _token(server, tpp, found.dpop, form)
    for op in operations:
        if op.method != "POST" or op.template not in CONSENT_REQUESTS:
            continue
        token = found.tokens[(Grant.CLIENT_CREDENTIALS, op.scope)]
        found.authorised[op.template] = _create_consent(api, op, token, found.dpop)
        found.doomed[op.template] = _create_consent(api, op, token, found.dpop)
        accounts = bank.accounts[:1] if op.template in ONE_ACCOUNT_CONSENTS else bank.accounts
        found.tokens[(Grant.AUTHORIZATION_CODE, op.scope)] = _customers_token(
            api, tpp, found.dpop, found.authorised[op.template], op.scope, bank.customer, accounts
        )
        if op.template != PAYMENT_CONSENTS:
            continue
        # A payment made (for the GETs of a payment), then the run's payers: each under an
        # authorised consent of its own, with a customer's token.
        for i in range(1 + PAYERS):
            consent_id = _create_consent(api, op, token, found.dpop)
            payer = _customers_token(
                api, tpp, found.dpop, consent_id, op.scope, bank.customer, accounts
            )
            if i < PAYERS:
                found.payers[consent_id] = payer
                continue
            made = _post(api, op, PAYMENTS, payer, found.dpop, _payment_body(consent_id))
            assert made["Status"] == "ACSP", made
            found.payments.append(made["DomesticPaymentId"])
    for op in operations:
        assert (op.grant, op.scope) in found.tokens, (
            f"{op.label} needs a {op.grant} token of scope {op.scope}: add a consent request "
            f"of that scope to CONSENT_REQUESTS (tests/e2e/test_ob_schemathesis.py)"
        )
    return found


def _good_bodies(credentials: Credentials) -> dict[tuple[str, str], list[Any]]:
    """(method, document path) -> bodies the app accepts there."""
    bodies: dict[tuple[str, str], list[Any]] = {
        ("POST", template): [body] for template, body in CONSENT_REQUESTS.items()
    }
    funds_consent = credentials.authorised.get("/funds-confirmation-consents")
    if funds_consent is not None:
        amount = {"Amount": "1.00", "Currency": "GBP"}
        data = {"ConsentId": funds_consent, "Reference": "fuzz", "InstructedAmount": amount}
        bodies[("POST", "/funds-confirmations")] = [{"Data": data}]
    if credentials.payers:
        # One per payer: its first request with valid headers pays (201); its consent is then
        # consumed, and a later request under it is answered 401 (its token is no longer good).
        bodies[("POST", PAYMENTS)] = [_payment_body(c) for c in credentials.payers]
    return bodies


# -- the documents as schemathesis schemas ---------------------------------------------------


@dataclass
class World:
    app: Any
    operations: list[Operation]
    bank: Bank
    credentials: Credentials
    schemas: dict[str, Any] = field(default_factory=dict)  # by spec

    def known_ids(self, op: Operation, name: str) -> list[str]:
        """Ids that exist for the path parameter `name` of `op`."""
        c = self.credentials
        if name == "AccountId":
            return [*self.bank.accounts, self.bank.other]
        if name == "DomesticPaymentId":
            return list(c.payments)
        if name == "ConsentId" and op.consents in c.authorised:
            doomed = c.doomed[op.consents]
            # Never the one the customer's token was issued under: it is deleted only once the
            # operations under it ran.
            return [doomed] if op.method == "DELETE" else [c.authorised[op.consents], doomed]
        return []

    def reachable(self, op: Operation) -> bool:
        """Whether the run gives `op` what a success needs: a real id for each path
        parameter and, if it takes a body, one the app accepts."""
        known = all(self.known_ids(op, name) for name in op.path_parameters)
        return known and (not op.has_body or (op.method, op.template) in self.good_bodies)

    @property
    def good_bodies(self) -> dict[tuple[str, str], list[Any]]:
        return _good_bodies(self.credentials)

    def ready(self, op: Operation, case: Case) -> None:
        """What a case carries once generated: with a good body, the required headers a
        success needs (a fresh x-idempotency-key: a generated one is often one used before,
        with another body, and refused; a request signature of the right shape); then the
        token and a DPoP proof for the URL it is sent to (Credentials.sign)."""
        if case.body in self.good_bodies.get((op.method, op.template), []):
            extra = {}
            if "x-idempotency-key" in op.required_headers:
                extra["x-idempotency-key"] = uuid.uuid4().hex
            if "x-jws-signature" in op.required_headers:
                extra["x-jws-signature"] = PLAUSIBLE_JWS
            case.headers = {**(case.headers or {}), **extra}
        token = self.credentials.token(op, case.body)
        self.credentials.sign(case, token, op.server + case.formatted_path)

    def well_formed(self, op: Operation) -> Case | None:
        """A request a TPP would send, if the run has what its success needs (reachable):
        existing ids, the first good body. Run first, as an explicit example, so that a
        success is checked whatever the generated requests are (a payment's: its first
        generated good body may come with a header the app refuses)."""
        if not self.reachable(op):
            return None
        operation = self.schema(op.spec)[op.template][op.method]
        ids = {name: self.known_ids(op, name)[0] for name in op.path_parameters}
        if not op.has_body:
            return operation.Case(path_parameters=ids)  # type: ignore[no-any-return]
        body = copy.deepcopy(self.good_bodies[(op.method, op.template)][0])
        return operation.Case(  # type: ignore[no-any-return]
            path_parameters=ids, body=body, media_type="application/json"
        )

    def schema(self, spec: str) -> Any:
        if spec not in self.schemas:
            self.schemas[spec] = _schema(self, spec)
        return self.schemas[spec]


def _schema(w: World, spec: str) -> Any:
    """The document `spec` cut down to the implemented operations, served at the tenant's
    base by the app in-process, with the TPP's authentication and the hooks that put real ids
    and good bodies in."""
    operations = [op for op in w.operations if op.spec == spec]
    document = copy.deepcopy(dict(ob_spec.load_spec(spec)))
    kept: dict[str, Any] = {}
    for op in operations:
        item = kept.setdefault(op.template, {})
        source = document["paths"][op.template]
        if "parameters" in source:
            item["parameters"] = source["parameters"]
        item[op.method.lower()] = source[op.method.lower()]
    document["paths"] = kept
    server = operations[0].server
    assert all(op.server == server for op in operations), spec
    schema = schemathesis.openapi.from_dict(
        document, config=schemathesis.Config.from_dict({"base-url": server})
    )
    schema.app = w.app
    by_key = {(op.method, op.template): op for op in operations}

    def operation_of(operation: Any) -> Operation:
        return by_key[(operation.method.upper(), operation.path)]

    good = w.good_bodies

    # Applied to each generated case after its path and body are final (the hooks below run
    # as each part is generated), so the proof names the URL that is sent. Never cached: a
    # proof is good for one request.
    @schema.auth(refresh_interval=None)
    class DpopAuth:
        """The token of the operation's security (Credentials.token), a fresh proof; with a
        good body, the required headers a success needs (World.ready)."""

        def get(self, case: Case, context: Any) -> str:
            return w.credentials.token(operation_of(context.operation), case.body)

        def set(self, case: Case, token: str, context: Any) -> None:
            del token  # World.ready picks the same
            w.ready(operation_of(context.operation), case)

    @schema.hook("flatmap_path_parameters")
    def real_ids(context: Any, path_parameters: dict[str, Any] | None) -> Any:
        """Mostly ids that exist, sometimes the generated ones."""
        if not path_parameters:
            return st.just(path_parameters)
        op = operation_of(context.operation)
        variants = [path_parameters]
        for name in path_parameters:
            variants += [{**path_parameters, name: value} for value in w.known_ids(op, name)]
        return st.sampled_from(variants)

    @schema.hook("flatmap_body")
    def good_bodies(context: Any, body: Any) -> Any:
        """Half the time a body the app accepts, so that the successes are checked too."""
        found = good.get((context.operation.method.upper(), context.operation.path))
        return st.just(body) if found is None else st.one_of(st.just(body), st.sampled_from(found))

    return schema


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    ob_spec.need(ob_spec.SPEC_DIR)
    url = f"sqlite:///{tmp_path_factory.mktemp('obfuzz') / 'strongroom.db'}"
    # Tokens outlive the run however slow the machine (3,600 s: the most allowed).
    app = build_app(url, public_base_url=HOST_URL, ob_access_token_lifetime_s=3_600)
    operations = implemented_operations(all_routes(app))
    # Setup runs on the test client's loop; schemathesis starts the app's lifespan again.
    api = Api(app)
    try:
        bank = _bank(api)
        credentials = _credentials(api, operations, bank)
    finally:
        api.close()
    try:
        yield World(app, operations, bank, credentials)
    finally:
        schemathesis.python.asgi.shutdown_lifespans()


# -- the run ---------------------------------------------------------------------------------


@dataclass
class Findings:
    examples: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, set[int]] = field(default_factory=dict)
    failures: dict[tuple[str, str, int], list[str]] = field(default_factory=dict)

    def add(self, key: tuple[str, str, int], text: str) -> None:
        found = self.failures.setdefault(key, [])
        if len(found) < 3:  # a few reproductions of each
            found.append(text)

    def summary(self) -> str:
        return "\n".join(
            f"{label}: {count} examples, statuses {sorted(self.statuses[label])}"
            for label, count in self.examples.items()
        )


def _fuzz(w: World, op: Operation, findings: Findings) -> None:
    operation = w.schema(op.spec)[op.template][op.method]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    findings.examples[op.label] = 0
    findings.statuses[op.label] = set()
    well_formed = w.well_formed(op)

    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples every run
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=cases)
    def run(case: Case) -> None:
        findings.examples[op.label] += 1
        if case is well_formed:  # an explicit example: neither generated nor authenticated
            w.ready(op, case)
        sent = f"{case.method} {case.formatted_path} query={case.query!r} body={case.body!r:.300}"
        try:
            response = case.call()
        except Exception as exc:  # the app raised: a 500 to a client
            findings.add((op.label, "exception", 500), f"{sent} :: {exc!r}")
            return
        findings.statuses[op.label].add(response.status_code)
        try:
            case.validate_response(response, checks=list(CHECKS))
        except FailureGroup as group:
            for failure in group.exceptions:
                findings.add(
                    (op.label, failure.title, response.status_code),
                    f"{sent} -> {response.text[:300]} :: {failure.message[:400]}",
                )

    (run if well_formed is None else hypothesis.example(case=well_formed)(run))()


def test_every_implemented_route_is_a_declared_operation(world: World) -> None:
    labels = {op.label for op in world.operations}
    assert {
        "POST /open-banking/v4.0/aisp/account-access-consents",
        "GET /open-banking/v4.0/aisp/accounts/{AccountId}/transactions",
        "POST /open-banking/v4.0/cbpii/funds-confirmations",
    } <= labels
    with pytest.raises(AssertionError, match=r"no v4\.0 document declares"):
        implemented_operations([("GET", RESOURCE_BASE + "/aisp/nothing-here")])
    with pytest.raises(AssertionError, match=r"no v4\.0 document declares"):
        implemented_operations([("PUT", RESOURCE_BASE + "/aisp/accounts")])


def test_schemathesis_finds_every_answer_conforming(world: World) -> None:
    findings = Findings()
    for op in world.operations:
        _fuzz(world, op, findings)
    report = "\n".join(
        f"{key}: {len(v)}\n    " + "\n    ".join(v) for key, v in findings.failures.items()
    )
    assert not findings.failures, f"schemathesis found:\n{report}\n{findings.summary()}"
    # The run got past authentication everywhere, and into the handlers' successes wherever
    # it had what a success needs.
    for op in world.operations:
        statuses = findings.statuses[op.label]
        assert statuses - {401}, f"{op.label}: only 401s\n{findings.summary()}"
        if world.reachable(op):
            assert any(200 <= s < 300 for s in statuses), f"{op.label}\n{findings.summary()}"


def test_an_id_that_needs_percent_encoding_is_looked_up(world: World) -> None:
    """The DPoP proof names the URL as sent (percent-encoded); an id with a space, a control
    or a non-ASCII character is an unknown consent (400), never a 500 or a refused proof."""
    op = next(
        o for o in world.operations if o.label.endswith("/account-access-consents/{ConsentId}")
    )
    operation = world.schema(op.spec)[op.template]["GET"]
    for consent_id in ("a b", "caf\u00e9", "x\x15y", "50%25", "a`b"):
        case = operation.Case(path_parameters={"ConsentId": consent_id})
        world.ready(op, case)
        response = case.call()
        assert response.status_code == 400, (consent_id, response.text)
        assert response.json()["Errors"][0]["ErrorCode"] == "U011", consent_id
