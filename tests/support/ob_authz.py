"""Test helpers for the authorization server: freshly generated client and DPoP keys, client
assertions and DPoP proofs signed with them, PKCE pairs, a clock that can be moved, and fakes of
the ports the server is given (ClientLookup, ConsentLookup)."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

from strongroom.core.errors import NotFound
from strongroom.openbanking import jose, pkce
from strongroom.openbanking.clientauth import CLIENT_ASSERTION_TYPE
from strongroom.openbanking.consents import ConsentKind, ConsentStatus
from strongroom.openbanking.dpop import access_token_hash
from strongroom.openbanking.errors import InvalidClient
from strongroom.openbanking.ports import SCOPES, ConsentRef, RegisteredClient

REG = jose.registry()
ALG_OF = {"RSA": "PS256", "EC": "ES256", "OKP": "EdDSA"}
REDIRECT_URI = "https://tpp.example/callback"


class Clock:
    """Wall-clock microseconds, moved on by `advance`."""

    def __init__(self) -> None:
        self.offset_us = 0

    def now_us(self) -> int:
        return time.time_ns() // 1_000 + self.offset_us

    def now_s(self) -> int:
        return self.now_us() // 1_000_000

    def advance(self, seconds: int) -> None:
        self.offset_us += seconds * 1_000_000


def new_key(kind: str = "EC") -> RSAKey | ECKey | OKPKey:
    if kind == "RSA":
        return RSAKey.generate_key(2048)
    if kind == "OKP":
        return OKPKey.generate_key("Ed25519")
    return ECKey.generate_key("P-256")


def alg_of(key: RSAKey | ECKey | OKPKey) -> str:
    return ALG_OF[key.key_type]


@dataclass
class Tpp:
    """A registered client with its private signing key."""

    id: str
    key: RSAKey | ECKey | OKPKey
    kid: str = "k1"
    name: str = "Example TPP"
    redirect_uris: tuple[str, ...] = (REDIRECT_URI,)
    scopes: frozenset[str] = SCOPES

    def registered(self) -> RegisteredClient:
        public = {**self.key.as_dict(private=False), "kid": self.kid, "use": "sig"}
        return RegisteredClient(
            id=self.id,
            name=self.name,
            redirect_uris=self.redirect_uris,
            scopes=self.scopes,
            jwks=jose.parse_client_jwks({"keys": [public]}),
        )

    def assertion(
        self,
        aud: str,
        now_s: int,
        *,
        jti: str | None = None,
        lifetime_s: int = 60,
        **claims: Any,
    ) -> str:
        body = {
            "iss": self.id,
            "sub": self.id,
            "aud": aud,
            "iat": now_s,
            "exp": now_s + lifetime_s,
            "jti": jti or secrets.token_urlsafe(16),
            **claims,
        }
        header = {"alg": alg_of(self.key), "kid": self.kid, "typ": "JWT"}
        return jws.serialize_compact(header, json.dumps(body).encode(), self.key, registry=REG)

    def auth(self, aud: str, now_s: int, **options: Any) -> dict[str, str]:
        """The form members of private_key_jwt client authentication."""
        return {
            "client_id": self.id,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.assertion(aud, now_s, **options),
        }


def new_tpp(client_id: str = "tpp_test_0001", kind: str = "EC", **options: Any) -> Tpp:
    return Tpp(client_id, new_key(kind), **options)


@dataclass
class DpopKey:
    """A client's DPoP key pair: proofs for requests."""

    key: RSAKey | ECKey | OKPKey = field(default_factory=new_key)

    @property
    def jkt(self) -> str:
        return jose.jwk_thumbprint(self.key)

    def proof(
        self,
        method: str,
        url: str,
        now_s: int,
        *,
        access_token: str | None = None,
        jti: str | None = None,
    ) -> str:
        claims: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": now_s,
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        header = {
            "typ": "dpop+jwt",
            "alg": alg_of(self.key),
            "jwk": self.key.as_dict(private=False),
        }
        return jws.serialize_compact(header, json.dumps(claims).encode(), self.key, registry=REG)


def pkce_pair() -> tuple[str, str]:
    """(verifier, its S256 challenge)."""
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return verifier, pkce.s256_challenge(verifier)


class FakeClients:
    """A ClientLookup over a dict; a disabled client is refused as an unknown one."""

    def __init__(self, *tpps: Tpp) -> None:
        self.clients = {t.id: t.registered() for t in tpps}
        self.disabled: set[str] = set()

    def __call__(self, client_id: str) -> RegisteredClient:
        found = self.clients.get(client_id)
        if found is None or client_id in self.disabled:
            raise InvalidClient("the client is unknown or disabled", param="client_id")
        return found


class FakeConsents:
    """A ConsentLookup over a dict, with the transitions the consent resources would make."""

    def __init__(self) -> None:
        self.consents: dict[str, ConsentRef] = {}

    def __call__(self, consent_id: str) -> ConsentRef:
        found = self.consents.get(consent_id)
        if found is None:
            raise NotFound("no such consent")
        return found

    def add(
        self,
        consent_id: str,
        client_id: str,
        *,
        kind: ConsentKind = ConsentKind.ACCOUNT_ACCESS,
        tenant_id: str = "ten_ob_test",
        expires_at_us: int | None = None,
    ) -> ConsentRef:
        consent = ConsentRef(
            id=consent_id,
            tenant_id=tenant_id,
            client_id=client_id,
            kind=kind,
            status=ConsentStatus.AWAU,
            customer_id=None,
            expires_at_us=expires_at_us,
        )
        self.consents[consent_id] = consent
        return consent

    def set(self, consent_id: str, status: ConsentStatus, customer_id: str | None = None) -> None:
        consent = self.consents[consent_id]
        self.consents[consent_id] = dataclasses.replace(
            consent, status=status, customer_id=customer_id or consent.customer_id
        )
