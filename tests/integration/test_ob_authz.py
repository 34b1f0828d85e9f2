"""The authorization server on both databases: the whole flow (PAR -> begin -> complete ->
token -> check -> refresh) with freshly generated client and DPoP keys, and the refusals FAPI
2.0 asks for: replayed codes (their tokens revoked), PKCE, DPoP key binding and replay, client
assertion replay, expired codes, disabled clients, revoked and expired consents."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.core.errors import InvalidRequest
from strongroom.db.engine import create_engine
from strongroom.openbanking.authz import model, wiring
from strongroom.openbanking.authz.errors import (
    InvalidRequestUri,
    InvalidScope,
    TokenRefused,
    UnsupportedResponseType,
)
from strongroom.openbanking.authz.model import DPOP_PROOF_MAX_AGE_S
from strongroom.openbanking.authz.replay import FileReplayStore
from strongroom.openbanking.authz.service import AuthorizationServer, AuthzConfig
from strongroom.openbanking.consents import ConsentKind, ConsentStatus
from strongroom.openbanking.errors import InvalidClient, InvalidDpopProof, InvalidGrant
from strongroom.openbanking.ports import AccessToken, Grant
from tests.support.ob_authz import (
    REDIRECT_URI,
    Clock,
    DpopKey,
    FakeClients,
    FakeConsents,
    Tpp,
    new_tpp,
    pkce_pair,
)

ISSUER = "https://bank.example"
RESOURCE_URL = f"{ISSUER}/ob/acme/open-banking/v4.0/aisp/accounts"
CUSTOMER = "cus_ob_test_0001"
S = 1_000_000


@dataclass
class World:
    server: AuthorizationServer
    clock: Clock
    tpp: Tpp
    clients: FakeClients
    consents: FakeConsents
    dpop: DpopKey = field(default_factory=DpopKey)
    consent_count: int = 0

    @property
    def now_s(self) -> int:
        return self.clock.now_s()

    def new_consent(self, kind: ConsentKind = ConsentKind.ACCOUNT_ACCESS, **options: Any) -> str:
        self.consent_count += 1
        consent_id = f"aac_test_{self.consent_count:04d}"
        self.consents.add(consent_id, self.tpp.id, kind=kind, **options)
        return consent_id

    def par_form(
        self, consent_id: str, challenge: str, /, **overrides: str | None
    ) -> dict[str, str]:
        form: dict[str, str | None] = {
            **self.tpp.auth(ISSUER, self.now_s),
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "accounts",
            "state": "state-1234",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "consent_id": consent_id,
            **overrides,
        }
        return {k: v for k, v in form.items() if v is not None}

    def push(self, consent_id: str, challenge: str, /, **overrides: str | None) -> str:
        answer = self.server.push(self.par_form(consent_id, challenge, **overrides))
        assert answer["expires_in"] == model.PAR_LIFETIME_S
        request_uri = answer["request_uri"]
        assert isinstance(request_uri, str)
        return request_uri

    def authorize(self, **par: str | None) -> tuple[str, str, str]:
        """A consent authorised by CUSTOMER: (consent id, code, PKCE verifier)."""
        consent_id = self.new_consent()
        verifier, challenge = pkce_pair()
        pending = self.server.begin(self.tpp.id, self.push(consent_id, challenge, **par))
        self.consents.set(consent_id, ConsentStatus.AUTH, CUSTOMER)
        redirect = self.server.complete(pending, True, CUSTOMER)
        query = parse_qs(urlsplit(redirect).query)
        return consent_id, query["code"][0], verifier

    def token_form(self, **fields: str | None) -> dict[str, str]:
        form = {**self.tpp.auth(self.server.endpoints.token, self.now_s), **fields}
        return {k: v for k, v in form.items() if v is not None}

    def token(
        self, dpop: DpopKey | None = None, proof: str | None = None, **fields: str | None
    ) -> dict[str, Any]:
        url = self.server.endpoints.token
        proof = proof or (dpop or self.dpop).proof("POST", url, self.now_s)
        return self.server.token(self.token_form(**fields), proof, "POST", url)

    def exchange(self, code: str, verifier: str | None, **options: Any) -> dict[str, Any]:
        return self.token(
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT_URI,
            code_verifier=verifier,
            **options,
        )

    def refresh(self, refresh_token: str, dpop: DpopKey | None = None) -> dict[str, Any]:
        return self.token(dpop, grant_type="refresh_token", refresh_token=refresh_token)

    def check(
        self, access_token: str, dpop: DpopKey | None = None, proof: str | None = None
    ) -> AccessToken:
        key = dpop or self.dpop
        proof = proof or key.proof("GET", RESOURCE_URL, self.now_s, access_token=access_token)
        return self.server.check(f"DPoP {access_token}", proof, "GET", RESOURCE_URL)


def make_server(
    engine: Engine, clock: Clock, clients: FakeClients, consents: FakeConsents
) -> AuthorizationServer:
    # As runtime.py wires it: on SQLite the proofs of resource requests go to the replay file.
    replay = wiring.replay_store(engine.url.database) if engine.dialect.name == "sqlite" else None
    return AuthorizationServer(
        engine,
        AuthzConfig(ISSUER),
        clients=clients,
        consents=consents,
        replay=replay,
        now_us=clock.now_us,
    )


def make_world(engine: Engine, tpp: Tpp | None = None) -> World:
    clock, tpp = Clock(), tpp or new_tpp()
    clients, consents = FakeClients(tpp), FakeConsents()
    return World(make_server(engine, clock, clients, consents), clock, tpp, clients, consents)


@pytest.fixture
def world(db_engine: Engine) -> Iterator[World]:
    made = make_world(db_engine)
    yield made
    if isinstance(made.server.replay, FileReplayStore):
        made.server.replay.close()


def _count(engine: Engine, table: str, where: str = "1 = 1") -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE {where}")).scalar())


# -- the whole flow --------------------------------------------------------------------------


def test_the_whole_flow_from_the_pushed_request_to_a_refreshed_token(world: World) -> None:
    consent_id = world.new_consent()
    verifier, challenge = pkce_pair()
    request_uri = world.push(consent_id, challenge)
    assert request_uri.startswith("urn:ietf:params:oauth:request_uri:")

    pending = world.server.begin(world.tpp.id, request_uri)
    assert (pending.client_id, pending.client_name) == (world.tpp.id, "Example TPP")
    assert (pending.consent_id, pending.tenant_id) == (consent_id, "ten_ob_test")
    assert pending.scopes == {"accounts"}
    assert pending.state == "state-1234"
    assert pending.redirect_uri == REDIRECT_URI

    world.consents.set(consent_id, ConsentStatus.AUTH, CUSTOMER)  # the consent page's part
    redirect = world.server.complete(pending, True, CUSTOMER)
    parts = urlsplit(redirect)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == REDIRECT_URI
    query = parse_qs(parts.query)
    assert query["state"] == ["state-1234"]
    assert query["iss"] == [ISSUER]  # RFC 9207
    code = query["code"][0]
    assert model.is_secret(code)

    tokens = world.exchange(code, verifier)
    assert tokens["token_type"] == "DPoP"
    assert tokens["expires_in"] == model.ACCESS_TOKEN_LIFETIME_S_DEFAULT
    assert tokens["scope"] == "accounts"
    assert model.is_secret(tokens["access_token"])
    assert model.is_secret(tokens["refresh_token"])

    checked = world.check(tokens["access_token"])
    assert checked.grant is Grant.AUTHORIZATION_CODE
    assert checked.client_id == world.tpp.id
    assert checked.scopes == {"accounts"}
    assert checked.jkt == world.dpop.jkt
    assert (checked.consent_id, checked.tenant_id, checked.customer_id) == (
        consent_id,
        "ten_ob_test",
        CUSTOMER,
    )
    assert checked.id.startswith("obt_")

    refreshed = world.refresh(tokens["refresh_token"])
    assert refreshed["token_type"] == "DPoP"
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    again = world.check(refreshed["access_token"])
    assert again.consent_id == consent_id
    assert again.jkt == world.dpop.jkt
    # The first access token lives on until it expires; the refresh token it came with is
    # rotated out.
    assert world.check(tokens["access_token"]).id == checked.id


def test_the_secrets_are_stored_as_digests_only(world: World) -> None:
    consent_id, code, verifier = world.authorize()
    tokens = world.exchange(code, verifier)
    secrets_sent = [code, tokens["access_token"], tokens["refresh_token"]]
    engine = world.server.engine
    with engine.connect() as conn:
        for table in ("ob_par_requests", "ob_codes", "ob_tokens", "ob_dpop_jti"):
            for row in conn.execute(sa.text(f"SELECT * FROM {table}")):
                text = " ".join(str(v) for v in row)
                for secret in secrets_sent:
                    assert secret not in text, table
    assert _count(engine, "ob_codes", f"digest = '{model.digest(code)}'") == 1
    assert _count(engine, "ob_tokens", f"consent_id = '{consent_id}'") == 2


def test_client_credentials_gives_an_access_token_only(world: World) -> None:
    tokens = world.token(grant_type="client_credentials", scope="accounts payments")
    assert "refresh_token" not in tokens
    assert tokens["scope"] == "accounts payments"
    checked = world.check(tokens["access_token"])
    assert checked.grant is Grant.CLIENT_CREDENTIALS
    assert checked.scopes == {"accounts", "payments"}
    assert checked.consent_id is None
    assert checked.customer_id is None
    # No scope: every scope of the client.
    assert world.token(grant_type="client_credentials")["scope"] == (
        "accounts fundsconfirmations payments"
    )


def test_client_credentials_scope_is_the_clients(db_engine: Engine) -> None:
    world = make_world(db_engine, new_tpp(scopes=frozenset({"accounts"})))
    with pytest.raises(InvalidScope):
        world.token(grant_type="client_credentials", scope="payments")
    with pytest.raises(InvalidScope):
        world.token(grant_type="client_credentials", scope="openid")
    assert world.token(grant_type="client_credentials")["scope"] == "accounts"


def test_a_rejection_redirects_with_access_denied_state_and_iss(world: World) -> None:
    consent_id = world.new_consent()
    _, challenge = pkce_pair()
    pending = world.server.begin(world.tpp.id, world.push(consent_id, challenge))
    query = parse_qs(urlsplit(world.server.complete(pending, False, None)).query)
    assert query == {"error": ["access_denied"], "state": ["state-1234"], "iss": [ISSUER]}


def test_a_redirect_uri_with_a_query_keeps_it(db_engine: Engine) -> None:
    world = make_world(db_engine, new_tpp(redirect_uris=("https://tpp.example/cb?app=7",)))
    consent_id = world.new_consent()
    _, challenge = pkce_pair()
    request_uri = world.push(consent_id, challenge, redirect_uri="https://tpp.example/cb?app=7")
    pending = world.server.begin(world.tpp.id, request_uri)
    redirect = world.server.complete(pending, False, None)
    assert redirect.startswith("https://tpp.example/cb?app=7&error=access_denied&state=")


# -- codes -----------------------------------------------------------------------------------


def test_a_replayed_code_is_refused_and_the_tokens_of_its_first_use_revoked(world: World) -> None:
    _, code, verifier = world.authorize()
    tokens = world.exchange(code, verifier)
    world.check(tokens["access_token"])
    with pytest.raises(InvalidGrant, match="used already"):
        world.exchange(code, verifier)
    with pytest.raises(TokenRefused, match="revoked") as caught:
        world.check(tokens["access_token"])
    assert caught.value.error == "invalid_token"
    with pytest.raises(InvalidGrant):
        world.refresh(tokens["refresh_token"])


def test_a_replayed_code_revokes_the_refreshed_tokens_too(world: World) -> None:
    _, code, verifier = world.authorize()
    tokens = world.exchange(code, verifier)
    refreshed = world.refresh(tokens["refresh_token"])
    with pytest.raises(InvalidGrant):
        world.exchange(code, verifier)
    with pytest.raises(TokenRefused):
        world.check(refreshed["access_token"])
    with pytest.raises(InvalidGrant):
        world.refresh(refreshed["refresh_token"])


def test_an_expired_code_is_refused(world: World) -> None:
    _, code, verifier = world.authorize()
    world.clock.advance(model.CODE_LIFETIME_S + 1)
    with pytest.raises(InvalidGrant, match="unknown, expired"):
        world.exchange(code, verifier)


def test_an_unknown_code_or_another_clients_is_refused(world: World) -> None:
    _, _, verifier = world.authorize()
    with pytest.raises(InvalidGrant):
        world.exchange(model.new_secret(), verifier)
    with pytest.raises(InvalidGrant):
        world.exchange("not-a-code", verifier)
    other = new_tpp("tpp_test_0002")
    world.clients.clients[other.id] = other.registered()
    _, code, verifier = world.authorize()
    url = world.server.endpoints.token
    form = {
        **other.auth(url, world.now_s),
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    with pytest.raises(InvalidGrant, match="another client's"):
        world.server.token(form, world.dpop.proof("POST", url, world.now_s), "POST", url)


def test_a_code_needs_its_redirect_uri(world: World) -> None:
    _, code, verifier = world.authorize()
    with pytest.raises(InvalidGrant, match="redirect_uri"):
        world.token(
            grant_type="authorization_code",
            code=code,
            redirect_uri="https://tpp.example/other",
            code_verifier=verifier,
        )


# -- PKCE ------------------------------------------------------------------------------------


def test_a_missing_pkce_verifier_is_refused(world: World) -> None:
    _, code, _ = world.authorize()
    with pytest.raises(InvalidGrant, match="code_verifier"):
        world.exchange(code, None)


def test_a_wrong_pkce_verifier_is_refused_and_uses_the_code_up(world: World) -> None:
    _, code, verifier = world.authorize()
    wrong, _ = pkce_pair()
    with pytest.raises(InvalidGrant, match="does not match"):
        world.exchange(code, wrong)
    # A code presented with a wrong verifier was intercepted: it is not accepted again.
    with pytest.raises(InvalidGrant, match="used already"):
        world.exchange(code, verifier)


@pytest.mark.parametrize("method", ["plain", None, "S512"])
def test_a_plain_or_missing_pkce_method_is_refused_at_par(world: World, method: str | None) -> None:
    consent_id = world.new_consent()
    verifier, challenge = pkce_pair()
    with pytest.raises(InvalidRequest, match="S256") as caught:
        world.push(consent_id, challenge, code_challenge_method=method)
    assert caught.value.code == "invalid_request"
    with pytest.raises(InvalidRequest):
        world.push(consent_id, verifier, code_challenge_method="plain")  # plain: challenge=verifier


def test_a_missing_challenge_is_refused_at_par(world: World) -> None:
    with pytest.raises(InvalidRequest, match="code_challenge"):
        world.push(world.new_consent(), "", code_challenge=None)


# -- DPoP ------------------------------------------------------------------------------------


def test_a_token_with_another_keys_proof_is_refused(world: World) -> None:
    _, code, verifier = world.authorize()
    tokens = world.exchange(code, verifier)
    thief = DpopKey()
    with pytest.raises(TokenRefused) as caught:
        world.check(tokens["access_token"], dpop=thief)
    assert caught.value.error == "invalid_dpop_proof"
    assert caught.value.status == 401
    assert caught.value.www_authenticate.startswith('DPoP error="invalid_dpop_proof"')
    # The refresh token is bound to the key as well.
    with pytest.raises(InvalidDpopProof, match="bound to"):
        world.refresh(tokens["refresh_token"], dpop=thief)
    world.check(tokens["access_token"])  # the right key still works


def test_a_proof_for_another_token_url_or_method_is_refused(world: World) -> None:
    tokens = world.token(grant_type="client_credentials")
    access = tokens["access_token"]
    for proof in (
        world.dpop.proof("GET", RESOURCE_URL, world.now_s, access_token=model.new_secret()),
        world.dpop.proof("GET", RESOURCE_URL, world.now_s),  # no ath
        world.dpop.proof("POST", RESOURCE_URL, world.now_s, access_token=access),
        world.dpop.proof("GET", f"{ISSUER}/other", world.now_s, access_token=access),
        world.dpop.proof("GET", RESOURCE_URL, world.now_s - 3600, access_token=access),
    ):
        with pytest.raises(TokenRefused) as caught:
            world.check(access, proof=proof)
        assert caught.value.error == "invalid_dpop_proof"


def test_a_replayed_dpop_proof_jti_is_refused(world: World) -> None:
    url = world.server.endpoints.token
    proof = world.dpop.proof("POST", url, world.now_s, jti="the-same-jti")
    tokens = world.token(proof=proof, grant_type="client_credentials")
    with pytest.raises(InvalidDpopProof, match="used already"):
        world.token(proof=proof, grant_type="client_credentials")
    # At a resource: the same proof twice.
    access = tokens["access_token"]
    once = world.dpop.proof("GET", RESOURCE_URL, world.now_s, access_token=access)
    world.check(access, proof=once)
    with pytest.raises(TokenRefused, match="used already") as caught:
        world.check(access, proof=once)
    assert caught.value.error == "invalid_dpop_proof"


def test_a_proof_is_remembered_through_the_last_second_it_passes(world: World) -> None:
    """A proof of `iat` passes the iat check until the end of second iat + max age; its jti
    must be remembered until then, at a resource and at the token endpoint alike. (It was
    remembered until the start of that second: replayable, any number of times, in it.)"""
    access = world.token(grant_type="client_credentials")["access_token"]
    iat = world.now_s
    last = (iat + DPOP_PROOF_MAX_AGE_S) * S  # the start of the last second the proof passes
    proof = world.dpop.proof("GET", RESOURCE_URL, iat, access_token=access)
    world.server.now_us = lambda: iat * S + 1
    world.check(access, proof=proof)
    for now in (last, last + S // 2, last + S - 1):
        world.server.now_us = lambda now=now: now  # type: ignore[misc]
        with pytest.raises(TokenRefused, match="used already"):
            world.check(access, proof=proof)
    world.server.now_us = lambda: last + S  # past its last second: too old, not remembered
    with pytest.raises(TokenRefused, match="too old"):
        world.check(access, proof=proof)
    # The token endpoint: the oldest proof still accepted, used once, then replayed.
    url = world.server.endpoints.token
    world.server.now_us = lambda: last + S // 2
    world.clock.advance(DPOP_PROOF_MAX_AGE_S)  # the client assertions' time
    old = world.dpop.proof("POST", url, iat, jti="an-old-one")
    world.token(proof=old, grant_type="client_credentials")
    with pytest.raises(InvalidDpopProof, match="used already"):
        world.token(proof=old, grant_type="client_credentials")


def test_the_replay_store_is_shared_by_every_worker(world: World, db_url: str) -> None:
    """Two servers on two engines (as two worker processes have): a proof used at one is a
    replay at the other."""
    engine = create_engine(db_url, sqlite_cache_mib=16)
    try:
        other = make_server(engine, world.clock, world.clients, world.consents)
        access = world.token(grant_type="client_credentials")["access_token"]
        proof = world.dpop.proof("GET", RESOURCE_URL, world.now_s, access_token=access)
        world.server.check(f"DPoP {access}", proof, "GET", RESOURCE_URL)
        with pytest.raises(TokenRefused, match="used already"):
            other.check(f"DPoP {access}", proof, "GET", RESOURCE_URL)
    finally:
        engine.dispose()


def test_a_missing_proof_or_bearer_scheme_is_refused(world: World) -> None:
    access = world.token(grant_type="client_credentials")["access_token"]
    url = world.server.endpoints.token
    with pytest.raises(InvalidDpopProof, match="required"):
        world.server.token(world.token_form(grant_type="client_credentials"), None, "POST", url)
    cases: list[tuple[str | None, str | None, str | None]] = [
        (None, None, None),
        (f"Bearer {access}", "x", "invalid_request"),
        (f"DPoP {access}", None, "invalid_dpop_proof"),
        ("DPoP not-a-token", "x", "invalid_token"),
    ]
    for authorization, proof, error in cases:
        with pytest.raises(TokenRefused) as caught:
            world.server.check(authorization, proof, "GET", RESOURCE_URL)
        assert caught.value.error == error
    assert TokenRefused("x", error=None).www_authenticate == 'DPoP algs="PS256 ES256 EdDSA"'


def test_a_pushed_dpop_jkt_binds_the_code(world: World) -> None:
    _, code, verifier = world.authorize(dpop_jkt=world.dpop.jkt)
    with pytest.raises(InvalidDpopProof, match="bound to"):
        world.exchange(code, verifier, dpop=DpopKey())
    _, code, verifier = world.authorize(dpop_jkt=world.dpop.jkt)
    assert world.exchange(code, verifier)["token_type"] == "DPoP"


def test_an_unknown_expired_or_revoked_access_token_is_refused(world: World) -> None:
    with pytest.raises(TokenRefused, match="unknown"):
        world.check(model.new_secret())
    _, code, verifier = world.authorize()
    tokens = world.exchange(code, verifier)
    with pytest.raises(TokenRefused, match="unknown"):  # a refresh token is no access token
        world.check(tokens["refresh_token"])
    world.clock.advance(model.ACCESS_TOKEN_LIFETIME_S_DEFAULT)
    with pytest.raises(TokenRefused, match="expired"):
        world.check(tokens["access_token"])
    # The refresh token outlives it.
    assert world.check(world.refresh(tokens["refresh_token"])["access_token"])


# -- refresh ---------------------------------------------------------------------------------


def test_a_rotated_refresh_token_replayed_revokes_its_chain(world: World) -> None:
    _, code, verifier = world.authorize()
    first = world.exchange(code, verifier)
    second = world.refresh(first["refresh_token"])
    with pytest.raises(InvalidGrant, match="revoked"):
        world.refresh(first["refresh_token"])
    with pytest.raises(TokenRefused, match="revoked"):
        world.check(second["access_token"])
    with pytest.raises(InvalidGrant, match="revoked"):
        world.refresh(second["refresh_token"])


def test_a_refresh_token_is_the_clients_own(world: World) -> None:
    _, code, verifier = world.authorize()
    tokens = world.exchange(code, verifier)
    other = new_tpp("tpp_test_0002")
    world.clients.clients[other.id] = other.registered()
    url = world.server.endpoints.token
    form = {
        **other.auth(url, world.now_s),
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
    }
    with pytest.raises(InvalidGrant, match="another client's"):
        world.server.token(form, world.dpop.proof("POST", url, world.now_s), "POST", url)
    with pytest.raises(InvalidScope):
        world.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"],
                    scope="payments")  # fmt: skip
    assert world.refresh(tokens["refresh_token"])["scope"] == "accounts"


def test_tokens_do_not_outlive_their_consent(world: World) -> None:
    consent_end = world.clock.now_us() + 120 * 1_000_000
    consent_id = world.new_consent(expires_at_us=consent_end)
    verifier, challenge = pkce_pair()
    pending = world.server.begin(world.tpp.id, world.push(consent_id, challenge))
    world.consents.set(consent_id, ConsentStatus.AUTH, CUSTOMER)
    code = parse_qs(urlsplit(world.server.complete(pending, True, CUSTOMER)).query)["code"][0]
    tokens = world.exchange(code, verifier)
    assert tokens["expires_in"] <= 120
    with world.server.engine.connect() as conn:
        ends = conn.execute(
            sa.text("SELECT expires_at FROM ob_tokens WHERE consent_id = :c"), {"c": consent_id}
        ).scalars()
        assert max(ends) <= consent_end


# -- client authentication -------------------------------------------------------------------


def test_a_replayed_client_assertion_jti_is_refused(world: World) -> None:
    url = world.server.endpoints.token
    form = {
        **world.tpp.auth(url, world.now_s, jti="assertion-jti-1"),
        "grant_type": "client_credentials",
    }
    world.server.token(form, world.dpop.proof("POST", url, world.now_s), "POST", url)
    with pytest.raises(InvalidClient, match="used already"):
        world.server.token(form, world.dpop.proof("POST", url, world.now_s), "POST", url)
    # At PAR too.
    _, challenge = pkce_pair()
    form = world.par_form(world.new_consent(), challenge)
    form["client_assertion"] = world.tpp.assertion(ISSUER, world.now_s, jti="assertion-jti-2")
    world.server.push(form)
    with pytest.raises(InvalidClient, match="used already"):
        world.server.push(form)


def test_a_disabled_client_is_refused(world: World) -> None:
    consent_id = world.new_consent()
    _, challenge = pkce_pair()
    world.clients.disabled.add(world.tpp.id)
    with pytest.raises(InvalidClient, match="unknown or disabled"):
        world.push(consent_id, challenge)
    with pytest.raises(InvalidClient, match="unknown or disabled"):
        world.token(grant_type="client_credentials")


def test_the_assertion_audience_is_the_issuer_or_the_endpoint(world: World) -> None:
    consent_id = world.new_consent()
    _, challenge = pkce_pair()
    for aud, accepted in (
        (ISSUER, True),
        (world.server.endpoints.par, True),
        (world.server.endpoints.token, False),  # another endpoint's
        ("https://other.example", False),
    ):
        form = world.par_form(consent_id, challenge)
        form["client_assertion"] = world.tpp.assertion(aud, world.now_s)
        if accepted:
            world.server.push(form)
        else:
            with pytest.raises(InvalidClient, match="aud"):
                world.server.push(form)
    token_form = world.token_form(grant_type="client_credentials")
    token_form["client_assertion"] = world.tpp.assertion(world.server.endpoints.par, world.now_s)
    url = world.server.endpoints.token
    with pytest.raises(InvalidClient, match="aud"):
        world.server.token(token_form, world.dpop.proof("POST", url, world.now_s), "POST", url)


def test_another_clients_key_or_no_assertion_is_refused(world: World) -> None:
    impostor = Tpp(world.tpp.id, new_tpp().key)
    form = world.token_form(grant_type="client_credentials")
    form["client_assertion"] = impostor.assertion(ISSUER, world.now_s)
    url = world.server.endpoints.token
    with pytest.raises(InvalidClient, match="signature"):
        world.server.token(form, world.dpop.proof("POST", url, world.now_s), "POST", url)
    del form["client_assertion_type"]
    with pytest.raises(InvalidClient, match="client_assertion_type"):
        world.server.token(form, world.dpop.proof("POST", url, world.now_s), "POST", url)


# -- pushed requests -------------------------------------------------------------------------


def test_the_pushed_request_is_checked(world: World) -> None:
    consent_id = world.new_consent()
    _, challenge = pkce_pair()
    refusals: list[tuple[dict[str, str | None], type[Exception], str]] = [
        ({"redirect_uri": "https://tpp.example/other"}, InvalidRequest, "redirect_uri"),
        ({"redirect_uri": None}, InvalidRequest, "redirect_uri"),
        ({"scope": "payments"}, InvalidScope, "accounts alone"),
        ({"scope": "accounts payments"}, InvalidScope, "accounts alone"),
        ({"scope": "openid accounts"}, InvalidScope, "does not know"),
        ({"scope": None}, InvalidScope, "required"),
        ({"state": None}, InvalidRequest, "state"),
        ({"state": "x" * 513}, InvalidRequest, "state"),
        ({"response_type": "token"}, UnsupportedResponseType, "code"),
        ({"response_type": None}, InvalidRequest, "response_type"),
        ({"request_uri": "urn:ietf:params:oauth:request_uri:x"}, InvalidRequest, "request_uri"),
        ({"request": "eyJ.eyJ.sig"}, InvalidRequest, "request objects"),
        ({"client_id": "tpp_someone_else"}, InvalidClient, "unknown"),
        ({"consent_id": None}, InvalidRequest, "consent_id"),
        ({"consent_id": "aac_unknown"}, InvalidRequest, "no consent"),
        ({"dpop_jkt": "short"}, InvalidRequest, "dpop_jkt"),
    ]
    for overrides, error, message in refusals:
        with pytest.raises(error, match=message):
            world.push(consent_id, challenge, **overrides)
    assert _count(world.server.engine, "ob_par_requests") == 0


def test_a_pushed_request_names_a_consent_of_this_client_awaiting_authorisation(
    world: World,
) -> None:
    _, challenge = pkce_pair()
    theirs = "aac_theirs"
    world.consents.add(theirs, "tpp_test_0002")
    with pytest.raises(InvalidRequest, match="no consent of this client"):
        world.push(theirs, challenge)
    decided = world.new_consent()
    world.consents.set(decided, ConsentStatus.RJCT)
    with pytest.raises(InvalidRequest, match="not awaiting"):
        world.push(decided, challenge)
    payment = world.new_consent(ConsentKind.DOMESTIC_PAYMENT)
    assert world.push(payment, challenge, scope="payments")


# -- the authorization endpoint's part -------------------------------------------------------


def test_begin_finds_the_request_of_this_client_until_it_is_decided(world: World) -> None:
    consent_id = world.new_consent()
    _, challenge = pkce_pair()
    request_uri = world.push(consent_id, challenge)
    with pytest.raises(InvalidRequestUri):
        world.server.begin("tpp_test_0002", request_uri)
    for bad in ("urn:ietf:params:oauth:request_uri:" + model.new_secret(), "https://x", ""):
        with pytest.raises(InvalidRequestUri):
            world.server.begin(world.tpp.id, bad)
    pending = world.server.begin(world.tpp.id, request_uri)
    # A reload finds the same request; the window to decide outlasts the pushed request's 60 s.
    world.clock.advance(model.PAR_LIFETIME_S + 60)
    assert world.server.begin(world.tpp.id, request_uri) == pending
    world.server.complete(pending, False, None)
    with pytest.raises(InvalidRequestUri):
        world.server.complete(pending, True, CUSTOMER)
    with pytest.raises(InvalidRequestUri):
        world.server.begin(world.tpp.id, request_uri)


def test_a_pushed_request_expires_if_the_user_agent_does_not_arrive(world: World) -> None:
    _, challenge = pkce_pair()
    request_uri = world.push(world.new_consent(), challenge)
    world.clock.advance(model.PAR_LIFETIME_S)
    with pytest.raises(InvalidRequestUri):
        world.server.begin(world.tpp.id, request_uri)


def test_the_authorization_window_closes(world: World) -> None:
    _, challenge = pkce_pair()
    request_uri = world.push(world.new_consent(), challenge)
    pending = world.server.begin(world.tpp.id, request_uri)
    world.clock.advance(model.AUTHORIZATION_WINDOW_S)
    with pytest.raises(InvalidRequestUri):
        world.server.complete(pending, True, CUSTOMER)


# -- consents --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [ConsentStatus.CANC, ConsentStatus.EXPD])
def test_a_revoked_or_expired_consent_refuses_its_tokens(
    world: World, status: ConsentStatus
) -> None:
    consent_id, code, verifier = world.authorize()
    tokens = world.exchange(code, verifier)
    world.consents.set(consent_id, status)
    with pytest.raises(TokenRefused, match="no longer authorised") as caught:
        world.check(tokens["access_token"])
    assert caught.value.error == "invalid_token"
    with pytest.raises(InvalidGrant, match="no longer authorised"):
        world.refresh(tokens["refresh_token"])


def test_a_consumed_payment_consent_keeps_its_token_for_the_resources_but_issues_none(
    world: World,
) -> None:
    """A payment consent used once (COND): its access token still passes the check, so that a
    submission repeated with its x-idempotency-key reaches the payment service and answers the
    payment made (the resources refuse every other use); its refresh token gets nothing."""
    consent_id, code, verifier = world.authorize()
    tokens = world.exchange(code, verifier)
    world.consents.set(consent_id, ConsentStatus.COND)
    checked = world.check(tokens["access_token"])
    assert checked.consent_id == consent_id
    with pytest.raises(InvalidGrant, match="no longer authorised"):
        world.refresh(tokens["refresh_token"])


def test_a_consent_past_its_expiry_refuses_its_tokens(world: World) -> None:
    consent_id = world.new_consent(expires_at_us=world.clock.now_us() + 30 * 1_000_000)
    verifier, challenge = pkce_pair()
    pending = world.server.begin(world.tpp.id, world.push(consent_id, challenge))
    world.consents.set(consent_id, ConsentStatus.AUTH, CUSTOMER)
    code = parse_qs(urlsplit(world.server.complete(pending, True, CUSTOMER)).query)["code"][0]
    tokens = world.exchange(code, verifier)
    world.clock.advance(31)
    with pytest.raises(TokenRefused):
        world.check(tokens["access_token"])


def test_revoke_for_consent_revokes_every_token_of_it(world: World) -> None:
    consent_id, code, verifier = world.authorize()
    tokens = world.exchange(code, verifier)
    refreshed = world.refresh(tokens["refresh_token"])
    _, other_code, other_verifier = world.authorize()
    others = world.exchange(other_code, other_verifier)
    assert world.server.revoke_for_consent(consent_id) == 3  # two access, one live refresh
    for access in (tokens["access_token"], refreshed["access_token"]):
        with pytest.raises(TokenRefused, match="revoked"):
            world.check(access)
    with pytest.raises(InvalidGrant):
        world.refresh(refreshed["refresh_token"])
    world.check(others["access_token"])  # another consent's are untouched
    assert world.server.revoke_for_consent(consent_id) == 0


def test_a_code_of_a_consent_not_authorised_by_its_customer_is_refused(world: World) -> None:
    consent_id = world.new_consent()
    verifier, challenge = pkce_pair()
    pending = world.server.begin(world.tpp.id, world.push(consent_id, challenge))
    code = parse_qs(urlsplit(world.server.complete(pending, True, CUSTOMER)).query)["code"][0]
    world.consents.set(consent_id, ConsentStatus.AUTH, "cus_someone_else")
    with pytest.raises(InvalidGrant, match="not authorised"):
        world.exchange(code, verifier)


# -- purge -----------------------------------------------------------------------------------


def test_purge_deletes_what_expired_and_keeps_used_codes_a_while(world: World) -> None:
    _, code, verifier = world.authorize()
    world.exchange(code, verifier)
    _, challenge = pkce_pair()
    world.push(world.new_consent(), challenge)  # never begun
    engine = world.server.engine
    assert world.server.purge() == 0
    world.clock.advance(model.REFRESH_TOKEN_LIFETIME_S_DEFAULT + 1)
    deleted = world.server.purge()
    assert deleted >= 4
    for table in ("ob_par_requests", "ob_tokens", "ob_dpop_jti"):
        assert _count(engine, table) == 0, table
    assert _count(engine, "ob_codes") == 0  # its retention passed long ago
    assert world.server.purge(keep=lambda: False) == 0


def test_purge_keeps_a_used_code_for_its_retention(world: World) -> None:
    _, code, verifier = world.authorize()
    tokens = world.exchange(code, verifier)
    world.clock.advance(model.CODE_LIFETIME_S + 1)
    world.server.purge()
    assert _count(world.server.engine, "ob_codes") == 1
    # A late replay still revokes.
    with pytest.raises(InvalidGrant, match="used already"):
        world.exchange(code, verifier)
    with pytest.raises(InvalidGrant):
        world.refresh(tokens["refresh_token"])
