"""The authorization server through the app `serve` builds: RFC 8414 discovery, the pushed
authorization request endpoint and the token endpoint, form-encoded, public (no API key), never
cached, refusing with OAuth 2.0 error bodies. The TPP registry and the consent resources are
fakes of their ports here (tests/support/ob_authz.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from strongroom.core import ids
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.model import Direction, NewTransfer
from strongroom.openbanking.authz import model
from strongroom.openbanking.authz.errors import TokenRefused
from strongroom.openbanking.authz.service import AuthorizationServer, AuthzConfig
from strongroom.openbanking.authz.wiring import FALLBACK_ISSUER
from strongroom.openbanking.consents import ConsentStatus
from tests.e2e.http_support import (
    BASE_URL,
    Api,
    check_oauth_error,
    check_response,
    running,
)
from tests.support.ob_authz import (
    REDIRECT_URI,
    DpopKey,
    FakeClients,
    FakeConsents,
    Tpp,
    new_tpp,
    pkce_pair,
)

FORM = {"content-type": "application/x-www-form-urlencoded"}
CUSTOMER = "cus_ob_http_0001"


@dataclass
class Served:
    api: Api
    server: AuthorizationServer
    tpp: Tpp
    consents: FakeConsents
    dpop: DpopKey

    def post_form(
        self, path: str, form: dict[str, str], headers: dict[str, str] | None = None
    ) -> Any:
        body = urlencode(form).encode()
        return self.api.post(path, content=body, headers={**FORM, **(headers or {})})

    @property
    def now_s(self) -> int:
        return self.server.now_us() // 1_000_000

    def par_form(self, consent_id: str, challenge: str) -> dict[str, str]:
        return {
            **self.tpp.auth(BASE_URL, self.now_s),
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "accounts",
            "state": "s-1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "consent_id": consent_id,
        }

    def token(self, form: dict[str, str], proof: str | None = None) -> Any:
        url = self.server.endpoints.token
        proof = proof or self.dpop.proof("POST", url, self.now_s)
        full = {**self.tpp.auth(url, self.now_s), **form}
        return self.post_form(model.TOKEN_PATH, full, {"DPoP": proof})


@pytest.fixture
def served(sqlite_url: str) -> Iterator[Served]:
    with running(sqlite_url, public_base_url=BASE_URL) as api:
        tpp = new_tpp()
        consents = FakeConsents()
        configured: AuthorizationServer = api.app.state.ob_authz
        assert configured.issuer == BASE_URL
        server = AuthorizationServer(
            api.app.state.engine,
            AuthzConfig(BASE_URL),
            clients=FakeClients(tpp),
            consents=consents,
        )
        api.app.state.ob_authz = server
        yield Served(api, server, tpp, consents, DpopKey())


def test_discovery_publishes_the_fapi_2_metadata(served: Served) -> None:
    response = served.api.get(model.METADATA_PATH)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    found = response.json()
    assert found["issuer"] == BASE_URL
    assert found["pushed_authorization_request_endpoint"] == f"{BASE_URL}/oauth2/par"
    assert found["token_endpoint"] == f"{BASE_URL}/oauth2/token"
    assert found["authorization_endpoint"] == f"{BASE_URL}/oauth2/authorize"
    assert found["jwks_uri"] == f"{BASE_URL}/oauth2/jwks"  # the payment API's signing keys
    assert found["require_pushed_authorization_requests"] is True
    assert found["code_challenge_methods_supported"] == ["S256"]
    assert found["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert found["token_endpoint_auth_signing_alg_values_supported"] == ["PS256", "ES256", "EdDSA"]
    assert found["dpop_signing_alg_values_supported"] == ["PS256", "ES256", "EdDSA"]
    assert found["authorization_response_iss_parameter_supported"] is True
    assert found["response_types_supported"] == ["code"]
    assert found["grant_types_supported"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
    ]
    assert found["scopes_supported"] == ["accounts", "fundsconfirmations", "payments"]


def test_without_a_public_base_url_the_issuer_is_the_fallback(sqlite_url: str) -> None:
    with running(sqlite_url) as api:
        assert api.ok("GET", model.METADATA_PATH)["issuer"] == FALLBACK_ISSUER


def test_the_whole_flow_over_http(served: Served) -> None:
    served.consents.add("aac_http_1", served.tpp.id)
    verifier, challenge = pkce_pair()
    pushed = served.post_form(model.PAR_PATH, served.par_form("aac_http_1", challenge))
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["cache-control"] == "no-store"
    assert pushed.json()["expires_in"] == 60
    request_uri = pushed.json()["request_uri"]

    # The consent page's part, on the service.
    pending = served.server.begin(served.tpp.id, request_uri)
    served.consents.set("aac_http_1", ConsentStatus.AUTH, CUSTOMER)
    redirect = served.server.complete(pending, True, CUSTOMER)
    query = parse_qs(urlsplit(redirect).query)
    assert query["iss"] == [BASE_URL]
    code = query["code"][0]

    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    response = served.token(exchange)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "DPoP"
    assert tokens["scope"] == "accounts"
    assert set(tokens) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}

    url = f"{BASE_URL}/ob/acme/open-banking/v4.0/aisp/accounts"
    proof = served.dpop.proof("GET", url, served.now_s, access_token=tokens["access_token"])
    checked = served.server.check(f"DPoP {tokens['access_token']}", proof, "GET", url)
    assert checked.customer_id == CUSTOMER

    # The code again: refused, and the tokens of its first use revoked.
    again = served.token(exchange)
    assert check_oauth_error(again)["error"] == "invalid_grant"
    refreshed = served.token(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert check_oauth_error(refreshed)["error"] == "invalid_grant"


def test_client_credentials_over_http(served: Served) -> None:
    response = served.token({"grant_type": "client_credentials", "scope": "accounts"})
    assert response.status_code == 200, response.text
    assert "refresh_token" not in response.json()


def test_refusals_are_oauth_error_bodies(served: Served) -> None:
    served.consents.add("aac_http_2", served.tpp.id)
    _, challenge = pkce_pair()
    par = served.par_form("aac_http_2", challenge)
    cases: list[tuple[str, dict[str, str], dict[str, str] | None, int, str]] = [
        (model.PAR_PATH, {}, None, 401, "invalid_client"),  # an empty form
        (model.PAR_PATH, {**par, "code_challenge_method": "plain"}, None, 400, "invalid_request"),
        (model.PAR_PATH, {**par, "scope": "payments"}, None, 400, "invalid_scope"),
        (model.PAR_PATH, {**par, "response_type": "token"}, None, 400, "unsupported_response_type"),
        (
            model.PAR_PATH,
            {k: v for k, v in par.items() if not k.startswith("client_assertion")},
            None,
            401,
            "invalid_client",
        ),
        (model.TOKEN_PATH, {"grant_type": "client_credentials"}, None, 401, "invalid_client"),
    ]
    for path, form, headers, status, error in cases:
        response = served.post_form(path, form, headers)
        assert response.status_code == status, (form, response.text)
        assert check_oauth_error(response)["error"] == error
    token_url = served.server.endpoints.token
    for form, proof, status, error in (
        ({"grant_type": "password"}, None, 400, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "code": "x" * 43}, None, 400, "invalid_grant"),
        (
            {"grant_type": "client_credentials"},
            served.dpop.proof("POST", f"{BASE_URL}/elsewhere", served.now_s),
            400,
            "invalid_dpop_proof",
        ),
        (
            {"grant_type": "client_credentials"},
            served.dpop.proof("GET", token_url, served.now_s),
            400,
            "invalid_dpop_proof",
        ),
    ):
        response = served.token(form, proof)
        assert response.status_code == status, (form, response.text)
        assert check_oauth_error(response)["error"] == error


def test_the_token_endpoint_needs_exactly_one_dpop_header(served: Served) -> None:
    url = served.server.endpoints.token
    form = {**served.tpp.auth(url, served.now_s), "grant_type": "client_credentials"}
    missing = served.post_form(model.TOKEN_PATH, form)
    assert check_oauth_error(missing)["error"] == "invalid_dpop_proof"
    proofs = [served.dpop.proof("POST", url, served.now_s) for _ in range(2)]
    form = {**served.tpp.auth(url, served.now_s), "grant_type": "client_credentials"}
    response = served.api.run(
        served.api.client.post(
            model.TOKEN_PATH,
            content=urlencode(form).encode(),
            headers=[*FORM.items(), ("DPoP", proofs[0]), ("DPoP", proofs[1])],
        )
    )
    check_response(response, served.api.app.state.errors)
    assert check_oauth_error(response)["error"] == "invalid_dpop_proof"


def test_a_form_is_required_and_bounded(served: Served) -> None:
    api = served.api
    as_json = api.post(model.TOKEN_PATH, json={"grant_type": "client_credentials"})
    assert (as_json.status_code, check_oauth_error(as_json)["error"]) == (400, "invalid_request")
    for body in (
        b"grant_type=client_credentials&grant_type=refresh_token",  # a name twice
        b"grant_type=client_credentials&scope=a%00b",  # a NUL, percent-encoded
        b"grant_type=%ff",  # not UTF-8
        b"scope=" + b"a" * (model.FORM_BYTES_MAX + 1),
        b"&".join(b"p%d=1" % n for n in range(model.FORM_FIELDS_MAX + 1)),
    ):
        response = api.post(model.TOKEN_PATH, content=body, headers=FORM)
        assert response.status_code == 400, body[:40]
        assert check_oauth_error(response)["error"] == "invalid_request"
    # A raw NUL is the body limit's refusal (a problem), as on every route.
    raw = api.post(model.TOKEN_PATH, content=b"grant_type=a\x00", headers=FORM)
    assert raw.status_code == 400
    assert raw.headers["content-type"] == "application/problem+json"


def test_the_routes_need_no_api_key_and_ignore_one(served: Served) -> None:
    assert served.api.get(model.METADATA_PATH).status_code == 200
    bearer = {"Authorization": "Bearer sk_not_a_key"}
    assert served.api.get(model.METADATA_PATH, headers=bearer).status_code == 200
    response = served.token({"grant_type": "client_credentials"})
    assert response.status_code == 200


def test_the_purge_job_runs_under_serve(served: Served) -> None:
    """`serve` runs the purge (openbanking_authz_purge) as one of its leased jobs."""
    jobs = served.api.app.state.jobs
    assert "openbanking_authz_purge" in jobs.specs
    assert jobs.alive("openbanking_authz_purge")


def test_a_tpp_of_the_registry_gets_a_token_and_loses_it_when_disabled(sqlite_url: str) -> None:
    """The app's own authorization server finds its clients in the TPP registry
    (TppService.lookup): a registered client authenticates; a disabled one is invalid_client."""
    with running(sqlite_url, public_base_url=BASE_URL) as api:
        tpp = new_tpp()
        public = {**tpp.key.as_dict(private=False), "kid": tpp.kid, "use": "sig"}
        registry = api.app.state.openbanking_clients
        client = registry.register(
            name="Registry TPP",
            redirect_uris=[REDIRECT_URI],
            jwks={"keys": [public]},
            scopes=["accounts"],
            actor="test",
        )
        tpp.id = client.id
        server: AuthorizationServer = api.app.state.ob_authz
        served = Served(api, server, tpp, FakeConsents(), DpopKey())
        response = served.token({"grant_type": "client_credentials"})
        assert response.status_code == 200, response.text
        assert response.json()["scope"] == "accounts"
        registry.set_enabled(client.id, False, actor="test")
        refused = served.token({"grant_type": "client_credentials"})
        assert (refused.status_code, check_oauth_error(refused)["error"]) == (401, "invalid_client")


def test_the_whole_flow_through_the_registry_the_consents_and_the_resources(
    sqlite_url: str,
) -> None:
    """Nothing faked: a TPP of the registry creates an account access consent with a client
    credentials token, pushes its authorization request, the customer authorises (the consent
    page's calls), the code becomes a DPoP-bound token that reads the customer's accounts; a
    replayed proof is refused, and the TPP's deletion of the consent revokes its tokens."""
    with running(sqlite_url, public_base_url=BASE_URL) as api:
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
        tpp = new_tpp()
        public = {**tpp.key.as_dict(private=False), "kid": tpp.kid, "use": "sig"}
        tpp.id = state.openbanking_clients.register(
            name="Example TPP", redirect_uris=[REDIRECT_URI], jwks={"keys": [public]},
            scopes=["accounts"], actor="test",
        ).id  # fmt: skip
        server: AuthorizationServer = state.ob_authz
        served = Served(api, server, tpp, FakeConsents(), DpopKey())
        ob = f"{BASE_URL}/ob/acme/open-banking/v4.0/aisp"

        def ob_call(method: str, url: str, token: str, proof: str | None = None, **kw: Any) -> Any:
            proof = proof or served.dpop.proof(method, url, served.now_s, access_token=token)
            headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
            return api.run(api.client.request(method, url, headers=headers, **kw))

        cc = served.token({"grant_type": "client_credentials"}).json()["access_token"]
        body = {"Data": {"Permissions": ["ReadAccountsBasic"]}, "Risk": {}}
        created = ob_call("POST", f"{ob}/account-access-consents", cc, json=body)
        assert created.status_code == 201, created.text
        consent_id = created.json()["Data"]["ConsentId"]

        verifier, challenge = pkce_pair()
        pushed = served.post_form(model.PAR_PATH, served.par_form(consent_id, challenge))
        assert pushed.status_code == 201, pushed.text
        pending = server.begin(tpp.id, pushed.json()["request_uri"])
        state.ob_resources.consents.authorise(consent_id, customer.id, [wallet])
        redirect = server.complete(pending, True, customer.id)
        code = parse_qs(urlsplit(redirect).query)["code"][0]
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }
        access = served.token(exchange).json()["access_token"]

        proof = served.dpop.proof("GET", f"{ob}/accounts", served.now_s, access_token=access)
        accounts = ob_call("GET", f"{ob}/accounts", access, proof)
        assert accounts.status_code == 200, accounts.text
        assert [a["AccountId"] for a in accounts.json()["Data"]["Account"]] == [wallet]
        replayed = ob_call("GET", f"{ob}/accounts", access, proof)
        assert replayed.status_code == 401
        assert 'error="invalid_dpop_proof"' in replayed.headers["www-authenticate"]

        deleted = ob_call("DELETE", f"{ob}/account-access-consents/{consent_id}", cc)
        assert deleted.status_code == 204, deleted.text
        after = ob_call("GET", f"{ob}/accounts", access)
        assert after.status_code == 401
        assert 'error="invalid_token"' in after.headers["www-authenticate"]
        url = f"{ob}/accounts"
        proof = served.dpop.proof("GET", url, served.now_s, access_token=access)
        with pytest.raises(TokenRefused, match="revoked"):  # revoked, not only the consent ended
            server.check(f"DPoP {access}", proof, "GET", url)
