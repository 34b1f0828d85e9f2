"""The authorization server (FAPI 2.0 Security Profile, docs/openbanking.md "Authorization
server"): pushed authorization requests (RFC 9126), the authorization decision's code with
`iss` (RFC 9207), the token endpoint with private_key_jwt client authentication (RFC 7523),
PKCE S256 (RFC 7636) and DPoP-bound tokens (RFC 9449), and the check of a resource request's
access token (ports.TokenCheck).

Replay: the `jti` of every DPoP proof and client assertion is remembered in `ob_dpop_jti`,
which every worker process shares, until the proof or assertion expires. At the token and PAR
endpoints it is written in the request's own (durable) transaction; for a resource request
(`check`) in a transaction whose commit does not wait for the disk (UnitOfWork(durable=False)):
a crash of the machine may forget the last few entries, which is the issue's "need not be
durable"; a restart of the server alone forgets nothing.

`check` reads the token row by its digest (one primary-key read) and writes the proof's jti
in the same transaction: there is no in-process cache of tokens, so a revocation holds for
the very next request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from sqlalchemy.engine import Engine

from strongroom.core import clock, ids
from strongroom.core.errors import InvalidRequest, NotFound, StrongroomError
from strongroom.db.uow import UnitOfWork
from strongroom.openbanking import pkce
from strongroom.openbanking.authz import model, store
from strongroom.openbanking.authz.errors import InvalidRequestUri, InvalidScope, TokenRefused
from strongroom.openbanking.authz.model import (
    AUTHORIZATION_WINDOW_S,
    CLIENT_ASSERTION_LIFETIME_S_MAX,
    CODE_LIFETIME_S,
    CODE_RETENTION_S,
    DPOP_PROOF_MAX_AGE_S,
    PAR_LIFETIME_S,
    ClientGrant,
    CodeGrant,
    Endpoints,
    PendingAuthorization,
    PushedRequest,
    RefreshGrant,
)
from strongroom.openbanking.clientauth import ClientAssertion, verify_client_assertion
from strongroom.openbanking.consents import ConsentStatus
from strongroom.openbanking.dpop import DpopProof, check_key_binding, verify_dpop_proof
from strongroom.openbanking.errors import InvalidClient, InvalidDpopProof, InvalidGrant
from strongroom.openbanking.ports import (
    AccessToken,
    ClientLookup,
    ConsentLookup,
    ConsentRef,
    Grant,
    RegisteredClient,
)

log = logging.getLogger("strongroom.openbanking.authz")

_S: Final = 1_000_000
UNKNOWN_CODE: Final = "the code is unknown, expired or another client's"
UNKNOWN_REFRESH: Final = "the refresh token is unknown, expired or another client's"
UNKNOWN_REQUEST_URI: Final = "the request_uri is unknown, expired, used already or another client's"


class ReplayStore(Protocol):
    """Where resource requests' DPoP proofs are remembered, outside the database
    (authz.replay.FileReplayStore); None: in the table ob_dpop_jti."""

    def first_use(self, key: str, expires_at_us: int, now_us: int) -> bool: ...


# A long job calls it between batches: False when it must stop (jobs.Keep).
Keep = Callable[[], bool]
# Called with a client's id once it has authenticated, before anything is written (the HTTP
# layer spends the client's rate-limit token there); what it raises refuses the request.
Authenticated = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class AuthzConfig:
    issuer: str  # settings.public_base_url (see docs/openbanking.md for the fallback)
    access_token_lifetime_s: int = model.ACCESS_TOKEN_LIFETIME_S_DEFAULT
    refresh_token_lifetime_s: int = model.REFRESH_TOKEN_LIFETIME_S_DEFAULT

    def __post_init__(self) -> None:
        Endpoints(self.issuer)  # asserts its shape
        assert (
            model.ACCESS_TOKEN_LIFETIME_S_MIN
            <= self.access_token_lifetime_s
            <= model.ACCESS_TOKEN_LIFETIME_S_MAX
        )
        assert (
            self.access_token_lifetime_s
            <= self.refresh_token_lifetime_s
            <= model.REFRESH_TOKEN_LIFETIME_S_MAX
        )


def replay_digest(replay_key: str) -> str:
    """What ob_dpop_jti stores of a replay key (DpopProof.replay_key, ClientAssertion's)."""
    return model.sha256_b64(replay_key)


class AuthorizationServer:
    """`clients` finds an active TPP (the TPP registry), `consents` a consent (the consent
    resources); neither may write to the database (they are called inside this server's
    transactions)."""

    def __init__(
        self,
        engine: Engine,
        config: AuthzConfig,
        *,
        clients: ClientLookup,
        consents: ConsentLookup,
        replay: ReplayStore | None = None,
        now_us: Callable[[], int] = clock.now_us,
    ) -> None:
        self.engine = engine
        self.config = config
        self.endpoints = Endpoints(config.issuer)
        self.clients = clients
        self.consents = consents
        self.replay = replay
        self.now_us = now_us

    @property
    def issuer(self) -> str:
        return self.endpoints.issuer

    def metadata(self) -> dict[str, Any]:
        return model.metadata(self.endpoints)

    # -- client authentication ---------------------------------------------------------------

    def _authenticate(
        self, form: Mapping[str, str], endpoint_url: str, now_s: int
    ) -> tuple[RegisteredClient, ClientAssertion]:
        """The client a request authenticates as (private_key_jwt), its assertion checked
        with `aud` the issuer or `endpoint_url`; its jti is the caller's to remember."""
        credentials = model.client_credentials(form)
        try:
            client = self.clients(credentials.client_id)
        except NotFound:
            raise InvalidClient("the client is unknown or disabled", param="client_id") from None
        assertion = verify_client_assertion(
            credentials.assertion,
            client_id=client.id,
            jwks=client.jwks,
            audience=self.issuer,
            now_s=now_s,
            max_lifetime_s=CLIENT_ASSERTION_LIFETIME_S_MAX,
            endpoint_urls=(endpoint_url,),
        )
        return client, assertion

    @staticmethod
    def _remember_assertion(uow: UnitOfWork, assertion: ClientAssertion, now_us: int) -> None:
        if not store.first_use(
            uow, replay_digest(assertion.replay_key), assertion.exp_s * _S, now_us
        ):
            raise InvalidClient("the client assertion was used already (jti)", param="jti")

    # -- pushed authorization requests (RFC 9126) --------------------------------------------

    def push(
        self, form: Mapping[str, str], *, authenticated: Authenticated | None = None
    ) -> dict[str, Any]:
        """POST /oauth2/par: the client authenticates (aud: the issuer or the PAR endpoint),
        its request passes model.parse_pushed, and `consent_id` names a consent of this
        client awaiting authorisation whose kind's scope is the one asked for. The answer
        (201): `{request_uri, expires_in}`; the request is stored under the digest of its
        request_uri for PAR_LIFETIME_S. `authenticated(client id)`, when given, is called once
        the client has authenticated, before anything else is checked or written."""
        now = self.now_us()
        client, assertion = self._authenticate(form, self.endpoints.par, now // _S)
        if authenticated is not None:
            authenticated(client.id)
        request = model.parse_pushed(form, client)
        consent = self._consent(request.consent_id)
        if consent is None or consent.client_id != client.id:
            raise InvalidRequest(model.UNKNOWN_CONSENT, param="consent_id")
        if consent.status is not ConsentStatus.AWAU:
            raise InvalidRequest("the consent is not awaiting authorisation", param="consent_id")
        model.check_consent_scope(request, consent.kind)
        request_uri, key = model.new_request_uri()
        with UnitOfWork(self.engine) as uow:
            self._remember_assertion(uow, assertion, now)
            store.insert_par(
                uow,
                store.ParRow(
                    key, client.id, request.to_json(), now, now + PAR_LIFETIME_S * _S, None
                ),
            )
            uow.commit()
        return {"request_uri": request_uri, "expires_in": PAR_LIFETIME_S}

    # -- the authorization decision ----------------------------------------------------------

    def begin(self, client_id: str, request_uri: str) -> PendingAuthorization:
        """The user agent arrived at the authorization endpoint with `client_id` and
        `request_uri`: the pushed request, unexpired and this client's, else
        InvalidRequestUri (never redirected: the redirect URI is not known to be the
        client's). Its first arrival starts the authorization window (AUTHORIZATION_WINDOW_S,
        to sign in, step up and decide); until `complete` uses it, arriving again (a reload)
        finds the same request (RFC 9126 section 4 allows it)."""
        try:
            key = model.request_uri_digest(request_uri)
        except InvalidRequest:
            raise InvalidRequestUri(UNKNOWN_REQUEST_URI, param="request_uri") from None
        now = self.now_us()
        with UnitOfWork(self.engine) as uow:
            row = store.get_par(uow, key)
            if row is None or row.expires_at <= now or row.client_id != client_id:
                raise InvalidRequestUri(UNKNOWN_REQUEST_URI, param="request_uri")
            expires_at = row.expires_at
            if row.begun_at is None:
                expires_at = now + AUTHORIZATION_WINDOW_S * _S
                store.begin_par(uow, key, now, expires_at)
            uow.commit()
        request = PushedRequest.from_json(row.params)
        client = self.clients(client_id)
        consent = self._consent(request.consent_id)
        if consent is None or consent.client_id != client_id:
            raise InvalidRequestUri("the consent of the request is gone", param="request_uri")
        if consent.status is not ConsentStatus.AWAU:
            raise InvalidRequestUri(
                "the consent of the request is not awaiting authorisation", param="request_uri"
            )
        return PendingAuthorization(
            handle=key,
            client_id=client_id,
            client_name=client.name,
            redirect_uri=request.redirect_uri,
            scopes=request.scopes,
            state=request.state,
            consent_id=request.consent_id,
            consent_kind=consent.kind,
            tenant_id=consent.tenant_id,
            code_challenge=request.code_challenge,
            dpop_jkt=request.dpop_jkt,
            expires_at_us=expires_at,
        )

    def complete(
        self,
        pending: PendingAuthorization,
        approved: bool,
        customer_id: str | None,
        *,
        decided: Callable[[UnitOfWork], object] | None = None,
    ) -> str:
        """The customer's decision on `pending` (from `begin`): the URL to redirect the user
        agent to. Approved: `code` (single use, CODE_LIFETIME_S, bound to the customer, the
        consent, the PKCE challenge and the redirect URI), `state` and `iss` (RFC 9207);
        rejected: `error=access_denied`, `state` and `iss`. The pushed request is used up
        (a second decision is InvalidRequestUri). The consent's own transition (AUTH, RJCT) is
        the consent resources' to make: the token endpoint issues tokens only for a consent
        that is AUTH and was decided by this customer. `decided(uow)`, when given, makes it in
        this transaction, once the pushed request is taken and before the code is written:
        the request used up, the consent decided and the code issued commit together, and
        whatever `decided` raises leaves all three as they were (the consent page)."""
        assert not approved or customer_id, "an approval names the customer"
        now = self.now_us()
        with UnitOfWork(self.engine) as uow:
            if not store.take_par(uow, pending.handle, now):
                raise InvalidRequestUri(UNKNOWN_REQUEST_URI, param="request_uri")
            if decided is not None:
                decided(uow)
            if approved:
                assert customer_id is not None
                code = model.new_secret()
                store.insert_code(
                    uow,
                    store.CodeRow(
                        digest=model.digest(code),
                        client_id=pending.client_id,
                        redirect_uri=pending.redirect_uri,
                        code_challenge=pending.code_challenge,
                        dpop_jkt=pending.dpop_jkt,
                        consent_id=pending.consent_id,
                        tenant_id=pending.tenant_id,
                        customer_id=customer_id,
                        scope=model.scope_text(pending.scopes),
                        issued_at=now,
                        expires_at=now + CODE_LIFETIME_S * _S,
                        used_at=None,
                    ),
                )
                params = {"code": code, "state": pending.state, "iss": self.issuer}
            else:
                params = {"error": "access_denied", "state": pending.state, "iss": self.issuer}
            uow.commit()
        return model.authorization_response(pending.redirect_uri, params)

    # -- the token endpoint ------------------------------------------------------------------

    def token(
        self,
        form: Mapping[str, str],
        dpop: str | None,
        method: str,
        url: str,
        *,
        authenticated: Authenticated | None = None,
    ) -> dict[str, Any]:
        """POST /oauth2/token (`url`: the token endpoint's URL as the client called it, for
        the proof's htu). The client authenticates (aud: the issuer or the token endpoint);
        the request carries a DPoP proof, to whose key the tokens are bound; the jtis of both
        are remembered (a replay is refused). Then the grant (see each `_grant`). Whatever is
        refused after the jtis were remembered still commits them, and what the refusal did
        (a code used up, a chain of tokens revoked). `authenticated`: as for `push`."""
        now = self.now_us()
        client, assertion = self._authenticate(form, self.endpoints.token, now // _S)
        if authenticated is not None:
            authenticated(client.id)
        if dpop is None:
            raise InvalidDpopProof("a DPoP proof is required (the DPoP header)", param="DPoP")
        proof = verify_dpop_proof(
            dpop, method=method, url=url, now_s=now // _S, max_age_s=DPOP_PROOF_MAX_AGE_S
        )
        grant = model.parse_grant(form)
        with UnitOfWork(self.engine) as uow:
            try:
                if not store.first_use(
                    uow, replay_digest(proof.replay_key), proof.expires_at_s * _S, now
                ):
                    raise InvalidDpopProof("the DPoP proof was used already (jti)", param="jti")
                self._remember_assertion(uow, assertion, now)
                if isinstance(grant, CodeGrant):
                    answer = self._code_grant(uow, client, proof, grant, now)
                elif isinstance(grant, RefreshGrant):
                    answer = self._refresh_grant(uow, client, proof, grant, now)
                else:
                    answer = self._client_grant(uow, client, proof, grant, now)
            except StrongroomError:
                uow.commit()
                raise
            uow.commit()
        return answer

    def _code_grant(
        self,
        uow: UnitOfWork,
        client: RegisteredClient,
        proof: DpopProof,
        grant: CodeGrant,
        now: int,
    ) -> dict[str, Any]:
        """authorization_code: the code is known, and used here for the first time (a code
        presented again is refused and every token issued with it revoked: RFC 6749 section
        4.1.2); it is used up by this request, whatever follows. It is this client's and
        unexpired; redirect_uri is the authorization request's; code_verifier matches the
        challenge (S256); the proof's key is the `dpop_jkt` pushed, if one was; the consent is
        AUTH, this client's, decided by the code's customer and unexpired. Then an access
        token and a refresh token, both bound to the proof's key."""
        row = store.get_code(uow, model.digest(grant.code), lock=True)
        if row is None:
            raise InvalidGrant(UNKNOWN_CODE, param="code")
        if row.used_at is not None:
            revoked = store.revoke_origin(uow, row.digest, now)
            log.warning(
                "an authorization code was presented again: its %d live tokens are revoked",
                revoked,
                extra={"client_id": client.id, "consent_id": row.consent_id},
            )
            raise InvalidGrant(
                "the code was used already: the tokens issued with it are revoked", param="code"
            )
        store.use_code(uow, row.digest, now)
        if row.client_id != client.id or row.expires_at <= now:
            raise InvalidGrant(UNKNOWN_CODE, param="code")
        if grant.redirect_uri != row.redirect_uri:
            raise InvalidGrant(
                "redirect_uri is not the one of the authorization request", param="redirect_uri"
            )
        pkce.verify_code_verifier(grant.code_verifier, row.code_challenge)
        if row.dpop_jkt is not None:
            check_key_binding(proof, row.dpop_jkt)
        consent = self._authorised(row.consent_id, client.id, row.customer_id, now)
        if consent is None:
            raise InvalidGrant("the consent is not authorised", param="code")
        refresh_end = model.lifetime_end_us(
            now, self.config.refresh_token_lifetime_s, consent.expires_at_us
        )
        return self._issue(
            uow,
            client=client,
            grant=Grant.AUTHORIZATION_CODE,
            scopes=frozenset(row.scope.split()),
            jkt=proof.jkt,
            consent=consent,
            customer_id=row.customer_id,
            origin=row.digest,
            parent=None,
            refresh_end_us=refresh_end,
            now=now,
        )

    def _refresh_grant(
        self,
        uow: UnitOfWork,
        client: RegisteredClient,
        proof: DpopProof,
        grant: RefreshGrant,
        now: int,
    ) -> dict[str, Any]:
        """refresh_token: the refresh token is known, this client's, unexpired and bound to
        the proof's key; not revoked (a revoked one presented again, as a rotated one replayed
        is, revokes its whole chain); `scope`, if given, within what it was granted; the
        consent still AUTH. Rotation: it is revoked, and a new refresh token (the chain's
        expiry unchanged) comes with the new access token."""
        row = (
            store.get_token(uow, model.digest(grant.refresh_token), lock=True)
            if model.is_secret(grant.refresh_token)
            else None
        )
        if row is None or row.kind != store.REFRESH or row.client_id != client.id:
            raise InvalidGrant(UNKNOWN_REFRESH, param="refresh_token")
        if row.revoked_at is not None:
            revoked = store.revoke_origin(uow, row.origin, now) if row.origin else 0
            if revoked:
                log.warning(
                    "a revoked refresh token was presented: its %d live tokens are revoked",
                    revoked,
                    extra={"client_id": client.id, "consent_id": row.consent_id},
                )
            raise InvalidGrant(
                "the refresh token was revoked (one used again revokes its chain)",
                param="refresh_token",
            )
        if row.expires_at <= now:
            raise InvalidGrant(UNKNOWN_REFRESH, param="refresh_token")
        check_key_binding(proof, row.jkt)
        granted = frozenset(row.scope.split())
        if not grant.scopes <= granted:
            raise InvalidScope("scope asks for more than was granted", param="scope")
        assert row.consent_id is not None
        assert row.customer_id is not None
        consent = self._authorised(row.consent_id, client.id, row.customer_id, now)
        if consent is None:
            raise InvalidGrant("the consent is no longer authorised", param="refresh_token")
        store.revoke_token(uow, row.digest, now)
        return self._issue(
            uow,
            client=client,
            grant=Grant.AUTHORIZATION_CODE,
            scopes=grant.scopes or granted,
            jkt=row.jkt,
            consent=consent,
            customer_id=row.customer_id,
            origin=row.origin,
            parent=row.id,
            refresh_end_us=row.expires_at,
            refresh_scopes=granted,
            now=now,
        )

    def _client_grant(
        self,
        uow: UnitOfWork,
        client: RegisteredClient,
        proof: DpopProof,
        grant: ClientGrant,
        now: int,
    ) -> dict[str, Any]:
        """client_credentials: the TPP itself (to create and read consents); `scope` within
        the client's (none given: all of them). An access token only."""
        scopes = grant.scopes or client.scopes
        if not scopes or not scopes <= client.scopes:
            raise InvalidScope("scope names a scope the client may not ask for", param="scope")
        return self._issue(
            uow,
            client=client,
            grant=Grant.CLIENT_CREDENTIALS,
            scopes=scopes,
            jkt=proof.jkt,
            consent=None,
            customer_id=None,
            origin=None,
            parent=None,
            refresh_end_us=None,
            now=now,
        )

    def _issue(
        self,
        uow: UnitOfWork,
        *,
        client: RegisteredClient,
        grant: Grant,
        scopes: frozenset[str],
        jkt: str,
        consent: ConsentRef | None,
        customer_id: str | None,
        origin: str | None,
        parent: str | None,
        refresh_end_us: int | None,
        now: int,
        refresh_scopes: frozenset[str] | None = None,
    ) -> dict[str, Any]:
        """An access token (and, with `refresh_end_us`, a refresh token) bound to `jkt`:
        stored as digests, answered in clear once."""
        assert scopes
        consent_id = consent.id if consent is not None else None
        tenant_id = consent.tenant_id if consent is not None else None
        consent_end = consent.expires_at_us if consent is not None else None
        access = model.new_secret()
        access_end = model.lifetime_end_us(
            now, self.config.access_token_lifetime_s, consent_end, refresh_end_us
        )
        rows = [
            store.TokenRow(
                digest=model.digest(access),
                id=ids.new_id("obt"),
                kind=store.ACCESS,
                client_id=client.id,
                grant_type=grant.value,
                scope=model.scope_text(scopes),
                jkt=jkt,
                consent_id=consent_id,
                tenant_id=tenant_id,
                customer_id=customer_id,
                origin=origin,
                parent=parent,
                issued_at=now,
                expires_at=access_end,
                revoked_at=None,
            )
        ]
        refresh = None
        if refresh_end_us is not None:
            refresh = model.new_secret()
            rows.append(
                store.TokenRow(
                    digest=model.digest(refresh),
                    id=ids.new_id("obt"),
                    kind=store.REFRESH,
                    client_id=client.id,
                    grant_type=grant.value,
                    scope=model.scope_text(refresh_scopes or scopes),
                    jkt=jkt,
                    consent_id=consent_id,
                    tenant_id=tenant_id,
                    customer_id=customer_id,
                    origin=origin,
                    parent=parent,
                    issued_at=now,
                    expires_at=refresh_end_us,
                    revoked_at=None,
                )
            )
        store.insert_tokens(uow, rows)
        expires_in_s = max(1, (access_end - now) // _S)
        return model.token_response(access, expires_in_s, scopes, refresh)

    # -- consents ----------------------------------------------------------------------------

    def _consent(self, consent_id: str) -> ConsentRef | None:
        try:
            return self.consents(consent_id)
        except NotFound:
            return None

    def _authorised(
        self,
        consent_id: str,
        client_id: str,
        customer_id: str,
        now: int,
        *,
        consumed_too: bool = False,
    ) -> ConsentRef | None:
        """The consent, if it is AUTH (or COND, with `consumed_too`), this client's, decided
        by `customer_id` and unexpired; else None."""
        consent = self._consent(consent_id)
        allowed = (
            (ConsentStatus.AUTH, ConsentStatus.COND) if consumed_too else (ConsentStatus.AUTH,)
        )
        if (
            consent is None
            or consent.status not in allowed
            or consent.client_id != client_id
            or consent.customer_id != customer_id
            or (consent.expires_at_us is not None and consent.expires_at_us <= now)
        ):
            return None
        return consent

    def revoke_for_consent(self, consent_id: str, *, uow: UnitOfWork | None = None) -> int:
        """Revokes every token issued under the consent (revoked or expired): in `uow`, the
        consent's own transaction, when given. A code not yet exchanged needs nothing: the
        token endpoint refuses it once the consent is not AUTH. The count revoked."""
        now = self.now_us()
        if uow is not None:
            return store.revoke_consent(uow, consent_id, now)
        with UnitOfWork(self.engine) as own:
            count = store.revoke_consent(own, consent_id, now)
            own.commit()
        return count

    # -- resource requests (ports.TokenCheck) ------------------------------------------------

    def check(
        self, authorization: str | None, dpop: str | None, method: str, url: str
    ) -> AccessToken:
        """A resource request's access token (`Authorization: DPoP <token>`) and its DPoP
        proof (for `method` and `url`, with `ath`): the proof verifies; the token is an
        access token of ours, unrevoked and unexpired; the proof's key is the token's
        (constant time); the proof's jti is seen for the first time (the shared store);
        a token issued under a consent finds it still AUTH and unexpired. Refused with
        TokenRefused (401, its WWW-Authenticate naming invalid_token or invalid_dpop_proof)."""
        token = model.access_token_of(authorization)
        if dpop is None:
            raise TokenRefused(
                "a DPoP proof is required (the DPoP header)", error="invalid_dpop_proof"
            )
        now = self.now_us()
        try:
            proof = verify_dpop_proof(
                dpop,
                method=method,
                url=url,
                now_s=now // _S,
                max_age_s=DPOP_PROOF_MAX_AGE_S,
                access_token=token,
            )
        except InvalidDpopProof as refused:
            raise TokenRefused(
                refused.detail, error="invalid_dpop_proof", param=refused.param
            ) from None
        if self.replay is not None:  # a SQLite deployment: the replay file (authz.replay)
            with UnitOfWork(self.engine, write=False) as uow:
                row = self._live_token(uow, token, proof, now)
            fresh = self.replay.first_use(proof.replay_key, proof.expires_at_s * _S, now)
        else:
            with UnitOfWork(self.engine, durable=False) as uow:
                row = self._live_token(uow, token, proof, now)
                fresh = store.first_use(
                    uow, replay_digest(proof.replay_key), proof.expires_at_s * _S, now
                )
                uow.commit()
        if not fresh:
            raise TokenRefused("the DPoP proof was used already (jti)", error="invalid_dpop_proof")
        if row.consent_id is not None:
            assert row.customer_id is not None
            # A consumed payment consent (COND) keeps its token for the resources to judge: a
            # submission repeated with its x-idempotency-key answers the payment made (the TPP
            # that lost the answer finds it), any other use is refused there (`_bound_consent`:
            # consent_not_in_force, U009). No new token is issued for it (_code_grant,
            # _refresh_grant ask AUTH).
            if (
                self._authorised(
                    row.consent_id, row.client_id, row.customer_id, now, consumed_too=True
                )
                is None
            ):
                raise TokenRefused("the consent is no longer authorised", error="invalid_token")
        return AccessToken(
            id=row.id,
            client_id=row.client_id,
            grant=Grant(row.grant_type),
            scopes=frozenset(row.scope.split()),
            jkt=row.jkt,
            expires_at_us=row.expires_at,
            consent_id=row.consent_id,
            tenant_id=row.tenant_id,
            customer_id=row.customer_id,
        )

    def _live_token(
        self, uow: UnitOfWork, token: str, proof: DpopProof, now: int
    ) -> store.TokenRow:
        """The access token's row: ours, unrevoked, unexpired, bound to the proof's key."""
        row = store.get_token(uow, model.digest(token))
        if row is None or row.kind != store.ACCESS:
            raise TokenRefused("the access token is unknown", error="invalid_token")
        if row.revoked_at is not None:
            raise TokenRefused("the access token was revoked", error="invalid_token")
        if row.expires_at <= now:
            raise TokenRefused("the access token has expired", error="invalid_token")
        try:
            check_key_binding(proof, row.jkt)
        except InvalidDpopProof as refused:
            raise TokenRefused(
                refused.detail, error="invalid_dpop_proof", param=refused.param
            ) from None
        return row

    # -- purge -------------------------------------------------------------------------------

    def purge(self, keep: Keep | None = None) -> int:
        """Deletes what expired, a batch per transaction until none is due (or `keep()` says
        stop): remembered jtis, pushed requests, tokens (a rotated refresh token is kept until
        its chain's expiry, so that its replay is still caught), and codes CODE_RETENTION_S
        after their expiry (a late replay still revokes). The count deleted."""
        now = self.now_us()
        deleted = 0
        for table in store.PURGED_TABLES:
            before = now - CODE_RETENTION_S * _S if table == "ob_codes" else now
            while keep is None or keep():
                with UnitOfWork(self.engine) as uow:
                    count = store.purge_batch(uow, table, before, store.PURGE_BATCH_ROWS)
                    uow.commit()
                deleted += count
                if count < store.PURGE_BATCH_ROWS:
                    break
        return deleted
