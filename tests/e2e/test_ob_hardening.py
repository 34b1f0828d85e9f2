"""Open banking hardening, through the app `serve` builds: the /oauth2 routes and the metadata
are rate limited per client address and per authenticated client id (OAuth-shaped 429 with
Retry-After, nothing done), and a resource request's DPoP proof must name the configured public
base URL, whatever scheme and host a TLS-terminating proxy or a client's Host header give the
request (the request's own URL when none is configured)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from strongroom.core import ids
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.model import Direction, NewTransfer
from strongroom.openbanking.authz import model
from strongroom.openbanking.authz.service import AuthorizationServer
from strongroom.openbanking.consents import ConsentKind
from strongroom.openbanking.model import Permission
from tests.e2e.http_support import BASE_URL, Api, check_oauth_error, running
from tests.support.ob_authz import REDIRECT_URI, DpopKey, Tpp, new_tpp, pkce_pair

FORM = {"content-type": "application/x-www-form-urlencoded"}
PUBLIC = "https://bank.example"  # what clients call: TLS ends at the proxy
INTERNAL = "http://internal:8000"  # what the proxy forwards to


def registered(api: Api) -> Tpp:
    tpp = new_tpp()
    public = {**tpp.key.as_dict(private=False), "kid": tpp.kid, "use": "sig"}
    tpp.id = api.app.state.openbanking_clients.register(
        name="Hardening TPP", redirect_uris=[REDIRECT_URI], jwks={"keys": [public]},
        scopes=["accounts"], actor="test",
    ).id  # fmt: skip
    return tpp


def now_s(api: Api) -> int:
    server: AuthorizationServer = api.app.state.ob_authz
    return server.now_us() // 1_000_000


def token_request(
    api: Api, tpp: Tpp, dpop: DpopKey, client: httpx.AsyncClient | None = None
) -> Any:
    server: AuthorizationServer = api.app.state.ob_authz
    url = server.endpoints.token
    form = {**tpp.auth(url, now_s(api)), "grant_type": "client_credentials"}
    headers = {**FORM, "DPoP": dpop.proof("POST", url, now_s(api))}
    client = client or api.client
    return api.run(client.post(model.TOKEN_PATH, content=urlencode(form), headers=headers))


def rows(api: Api, table: str) -> int:
    with api.app.state.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def check_rate_limited(response: httpx.Response, whose: str) -> None:
    assert response.status_code == 429, response.text
    body = check_oauth_error(response)
    assert body["error"] == "rate_limited"
    assert whose in body["error_description"]
    assert int(response.headers["retry-after"]) >= 1


@pytest.fixture
def limited(sqlite_url: str) -> Iterator[Api]:
    """Buckets of 3 requests, refilled at one every 100 s: nothing refills during a test."""
    with running(
        sqlite_url, public_base_url=BASE_URL, oauth_rate_limit_per_s=0.01, oauth_rate_limit_burst=3
    ) as api:
        yield api


def other_address(api: Api, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=api.app, client=(address, 40_000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


def test_the_metadata_is_limited_per_client_address(limited: Api) -> None:
    for _ in range(3):
        assert limited.get(model.METADATA_PATH).status_code == 200
    check_rate_limited(limited.get(model.METADATA_PATH), "this address")
    # Another address has a bucket of its own.
    client = other_address(limited, "10.0.0.7")
    try:
        assert limited.run(client.get(model.METADATA_PATH)).status_code == 200
    finally:
        limited.run(client.aclose())


def test_the_token_endpoint_is_limited_per_client_id_and_a_refusal_does_nothing(
    limited: Api,
) -> None:
    tpp, dpop = registered(limited), DpopKey()
    clients = [other_address(limited, f"10.0.1.{n}") for n in range(4)]
    try:
        # Three addresses, one client: the client's bucket runs out first.
        for client in clients[:3]:
            response = token_request(limited, tpp, dpop, client)
            assert response.status_code == 200, response.text
        tokens, jtis = rows(limited, "ob_tokens"), rows(limited, "ob_dpop_jti")
        check_rate_limited(token_request(limited, tpp, dpop, clients[3]), "this client")
        # Refused before anything was verified: no token, no jti remembered.
        assert (rows(limited, "ob_tokens"), rows(limited, "ob_dpop_jti")) == (tokens, jtis)
    finally:
        for client in clients:
            limited.run(client.aclose())


def test_naming_a_client_id_without_its_key_does_not_spend_its_bucket(limited: Api) -> None:
    """An attacker naming a TPP's client id with no assertion, or one signed with another
    key, spends its own address's bucket, never the TPP's: the TPP still gets its tokens, and
    is limited only once it has spent its own bucket."""
    tpp, dpop = registered(limited), DpopKey()
    forger = new_tpp(tpp.id)  # the victim's id, another key
    attacker = other_address(limited, "10.0.2.66")
    clients = [other_address(limited, f"10.0.3.{n}") for n in range(4)]
    try:
        url = limited.app.state.ob_authz.endpoints.token
        forged = {**forger.auth(url, now_s(limited)), "grant_type": "client_credentials"}
        bare = {"client_id": tpp.id, "grant_type": "client_credentials"}
        for n, form in enumerate([bare, forged, bare]):
            path = model.PAR_PATH if n % 2 else model.TOKEN_PATH
            sent = attacker.post(path, content=urlencode(form), headers=FORM)
            assert check_oauth_error(limited.run(sent))["error"] == "invalid_client"
        sent = attacker.post(model.TOKEN_PATH, content=urlencode(forged), headers=FORM)
        check_rate_limited(limited.run(sent), "this address")
        # The TPP, from other addresses, still has its whole bucket...
        for client in clients[:3]:
            response = token_request(limited, tpp, dpop, client)
            assert response.status_code == 200, response.text
        # ...and its own requests still spend it.
        check_rate_limited(token_request(limited, tpp, dpop, clients[3]), "this client")
    finally:
        for client in [attacker, *clients]:
            limited.run(client.aclose())


def test_par_and_token_share_the_address_bucket_whatever_the_client(limited: Api) -> None:
    """An address sending many client ids (made up or not) is still limited as one."""
    for n in range(3):
        form = {"client_id": f"tpp_made_up_{n}", "grant_type": "client_credentials"}
        path = model.PAR_PATH if n % 2 else model.TOKEN_PATH
        response = limited.post(path, content=urlencode(form), headers=FORM)
        assert check_oauth_error(response)["error"] == "invalid_client"
    form = {"client_id": "tpp_made_up_9", "grant_type": "client_credentials"}
    refused = limited.post(model.PAR_PATH, content=urlencode(form), headers=FORM)
    check_rate_limited(refused, "this address")


def test_the_default_limits_let_a_client_through(sqlite_url: str) -> None:
    with running(sqlite_url, public_base_url=BASE_URL) as api:
        settings = api.app.state.settings
        assert settings.oauth_rate_limit_per_s == 50
        assert settings.oauth_rate_limit_burst == 200
        tpp, dpop = registered(api), DpopKey()
        for _ in range(5):
            assert token_request(api, tpp, dpop).status_code == 200


# -- DPoP htu behind a proxy -------------------------------------------------------------


@dataclass
class Reader:
    """A customer's accounts read with an authorisation-code token: the whole flow, nothing
    faked (the consent page's part through the services)."""

    api: Api
    access: str
    dpop: DpopKey
    path: str  # of GET /aisp/accounts

    def get(self, request_url: str, htu: str) -> httpx.Response:
        proof = self.dpop.proof("GET", htu, now_s(self.api), access_token=self.access)
        headers = {"Authorization": f"DPoP {self.access}", "DPoP": proof}
        return self.api.run(self.api.client.get(request_url, headers=headers))


def reader(api: Api, issuer: str) -> Reader:
    state = api.app.state
    tenant = state.tenancy.create_tenant("acme", actor="test")
    customer = state.customers.create(tenant.id, "person", {"name": "Ada"}, actor="test")
    book = state.ledger.create_ledger("acme books", tenant_id=tenant.id).id
    specs = [
        AccountSpec(book, "GBP", Direction.DEBIT, name="bank"),
        AccountSpec(book, "GBP", Direction.CREDIT, name="Everyday", customer_id=customer.id),
    ]
    bank, wallet = (a.id for a in state.ledger.create_accounts(specs))
    state.ledger.post_transfers([NewTransfer(ids.new_id("tr"), book, bank, wallet, 1_000)])
    tpp = registered(api)
    server: AuthorizationServer = state.ob_authz
    assert server.issuer == issuer
    consent, _ = state.ob_resources.consents.create(
        tenant.id, tpp.id, ConsentKind.ACCOUNT_ACCESS, {"Permissions": ["ReadAccountsBasic"]},
        permissions=[Permission.READ_ACCOUNTS_BASIC],
    )  # fmt: skip
    verifier, challenge = pkce_pair()
    pushed = server.push(
        {
            **tpp.auth(issuer, now_s(api)),
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "accounts",
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "consent_id": consent.id,
        }
    )
    pending = server.begin(tpp.id, pushed["request_uri"])
    state.ob_resources.consents.authorise(consent.id, customer.id, [wallet])
    code = parse_qs(urlsplit(server.complete(pending, True, customer.id)).query)["code"][0]
    dpop = DpopKey()
    url = server.endpoints.token
    tokens = server.token(
        {
            **tpp.auth(url, now_s(api)),
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        dpop.proof("POST", url, now_s(api)),
        "POST",
        url,
    )
    return Reader(api, tokens["access_token"], dpop, "/ob/acme/open-banking/v4.0/aisp/accounts")


def refused_proof(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert 'error="invalid_dpop_proof"' in response.headers["www-authenticate"]


def test_behind_a_tls_proxy_the_proof_names_the_public_url(sqlite_url: str) -> None:
    with running(sqlite_url, public_base_url=PUBLIC) as api:
        read = reader(api, PUBLIC)
        # The proxy forwards plain HTTP to its own host name: the proof names the public URL.
        ok = read.get(INTERNAL + read.path, PUBLIC + read.path)
        assert ok.status_code == 200, ok.text
        assert ok.json()["Links"]["Self"] == PUBLIC + read.path
        # A proof for the URL the server sees is for another URL.
        refused_proof(read.get(INTERNAL + read.path, INTERNAL + read.path))
        # The path as the client sent it, percent-encoding and all, normalised.
        encoded = read.path.replace("accounts", "%61ccounts")
        assert read.get(INTERNAL + encoded, PUBLIC + read.path).status_code == 200


def test_a_forged_host_header_does_not_change_the_expected_url(sqlite_url: str) -> None:
    with running(sqlite_url, public_base_url=PUBLIC) as api:
        read = reader(api, PUBLIC)
        evil = "http://evil.example"
        refused_proof(read.get(evil + read.path, evil + read.path))
        assert read.get(evil + read.path, PUBLIC + read.path).status_code == 200


def test_without_a_public_base_url_the_request_url_is_expected(sqlite_url: str) -> None:
    with running(sqlite_url) as api:
        read = reader(api, "http://localhost:8000")  # the issuer's fallback
        assert read.get(BASE_URL + read.path, BASE_URL + read.path).status_code == 200
        refused_proof(read.get(BASE_URL + read.path, PUBLIC + read.path))
