"""The deployment's signature of the payment initiation API's responses: `x-jws-signature`, a
detached JWS (openbanking/jws_detached.py: PS256, the OB claims) over each body's exact bytes.

The key is the deployment's, kept as the audit log's checkpoint signing keys are: made on first
use (RSA, RSA_SIGNING_KEY_BITS), its public JWK stored and published, its private JWK sealed
under the key manager (security/sealing.py: a data key of its own, so `strongroom keys` rotates
and counts it with every other secret), opened once per process and kept in memory. Its `kid`
is its RFC 7638 thumbprint. The JWK Set of every key ever made (a retired one still verifies
what it signed) is served at /oauth2/jwks, the authorization server metadata's `jwks_uri`.

The OB claims: `iss` the authorization server's issuer (this deployment has no OB Directory
organisation id), `tan` its host (the trust anchor a TPP fetches the JWKS from), `iat` the time
of signing. Should two processes make the first key at once, both keys are stored and
published, and every process signs with the oldest.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from joserfc.jwk import RSAKey
from sqlalchemy.engine import Engine

from strongroom.core import clock
from strongroom.db.uow import UnitOfWork
from strongroom.openbanking import jose
from strongroom.openbanking.jws_detached import ob_claims, sign_detached
from strongroom.openbanking.payments import store
from strongroom.security.envelope import SubjectKind
from strongroom.security.sealing import DEPLOYMENT, SecretSealer, is_sealed

RSA_SIGNING_KEY_BITS: Final = 2_048  # OB and FAPI 2.0's minimum for PS256
assert jose.RSA_BITS_MIN <= RSA_SIGNING_KEY_BITS <= jose.RSA_BITS_MAX


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str
    private: RSAKey


def _owner(kid: str) -> str:
    return f"ob_signing_key:{kid}"


class ResponseSigner:
    """Signs response bodies (`sign`, the x-jws-signature value) and publishes its keys
    (`jwks`). `sealer` None keeps the private key in clear (tests of this module only: `serve`
    always seals)."""

    def __init__(
        self,
        engine: Engine,
        *,
        issuer: str,
        sealer: SecretSealer | None,
        now_s: Callable[[], float] = time.time,
    ) -> None:
        host = urlsplit(issuer).hostname
        assert host, issuer
        self.engine = engine
        self.issuer = issuer
        self.trust_anchor = host
        self.sealer = sealer
        self.now_s = now_s
        self._key: _Key | None = None
        self._lock = threading.Lock()

    def sign(self, body: bytes) -> str:
        """The x-jws-signature of `body` (the exact bytes sent)."""
        key = self._active()
        claims = ob_claims(iat_s=int(self.now_s()), iss=self.issuer, tan=self.trust_anchor)
        return sign_detached(body, key.private, key.kid, claims)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The JWK Set of every signing key, oldest first (public members only)."""
        with UnitOfWork(self.engine, write=False) as uow:
            rows = store.keys(uow)
        return {"keys": [json.loads(r.public_jwk) for r in rows]}

    def _active(self) -> _Key:
        found = self._key
        if found is not None:
            return found
        with self._lock:
            if self._key is None:
                self._key = self._load() or self._make()
            return self._key

    def _load(self) -> _Key | None:
        """The oldest active key, opened; None when there is none yet."""
        with UnitOfWork(self.engine) as uow:
            active = [r for r in store.keys(uow) if r.retired_at_us is None]
            if not active:
                return None
            row = active[0]
            clear = row.private_jwk
            if self.sealer is not None:
                clear = self.sealer.open(uow, DEPLOYMENT, _owner(row.kid), row.private_jwk)
            else:
                assert not is_sealed(clear), "a sealed signing key and no sealer"
        return _Key(row.kid, RSAKey.import_key(json.loads(clear)))

    def _make(self) -> _Key:
        """A new key, stored (its private half sealed) unless another process stored one
        meanwhile; then the oldest active key is the one used."""
        private = RSAKey.generate_key(RSA_SIGNING_KEY_BITS)
        kid = jose.jwk_thumbprint(private)
        public = {**private.as_dict(private=False), "kid": kid, "use": "sig", "alg": jose.PS256}
        clear = json.dumps(private.as_dict(private=True), sort_keys=True)
        with UnitOfWork(self.engine) as uow:
            if not any(r.retired_at_us is None for r in store.keys(uow)):
                stored = clear
                if self.sealer is not None:
                    stored = self.sealer.seal(
                        uow, DEPLOYMENT, _owner(kid), SubjectKind.OB_SIGNING_KEY, clear
                    )
                public_json = json.dumps(public, sort_keys=True)
                row = store.KeyRow(kid, public_json, stored, clock.now_us(), None)
                store.insert_key(uow, row)
                uow.commit()
        found = self._load()
        assert found is not None, "a signing key was stored"
        return found
