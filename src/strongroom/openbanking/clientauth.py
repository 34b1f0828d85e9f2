"""private_key_jwt client authentication (RFC 7523 section 2.2 and 3, as FAPI 2.0's Security
Profile section 5.3.2.1 profiles it): a JWT signed with one of the client's registered keys.

The audience: FAPI 2.0 requires the server to accept its issuer identifier (RFC 8414) in
`aud`, and RFC 9126 section 2 requires a server to accept its issuer identifier, its token
endpoint URL or its pushed authorization request endpoint URL. `verify_client_assertion`
accepts the issuer and exactly the endpoint URLs its caller passes (the token and PAR
endpoints). `aud` is a string, or an array of exactly one string: a several-valued audience is
refused, so that an assertion made for another server as well cannot be used here (the
audience-injection concern behind draft-ietf-oauth-rfc7523bis).

Not checked here: the assertion's `jti` against earlier ones (the caller offers
`ClientAssertion.replay_key` to a `JtiCache` until `exp_s`) and `client_assertion_type` (the
caller compares it with CLIENT_ASSERTION_TYPE). Pure: no database, no HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from strongroom.openbanking.errors import InvalidClient
from strongroom.openbanking.jose import (
    ALGORITHMS,
    CLOCK_SKEW_S,
    ClientJwks,
    extract,
    numeric_date,
    registry,
    signature_verifies,
    split_compact,
    valid_jti,
)

CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_S_MAX: Final = 3_600
# `typ` values an assertion may carry (or none): a DPoP proof or another typed JWT may not
# stand in for a client assertion. `client-authentication+jwt` is draft-ietf-oauth-rfc7523bis's.
ASSERTION_TYPS: Final = frozenset({"JWT", "client-authentication+jwt"})
_REGISTRY: Final = registry()


@dataclass(frozen=True, slots=True)
class ClientAssertion:
    """A client assertion that passed every check of `verify_client_assertion`: its `jti`
    must be remembered until `exp_s` (after that the assertion is refused as expired)."""

    client_id: str
    jti: str
    exp_s: int
    kid: str | None

    @property
    def replay_key(self) -> str:
        """The key under which a JtiCache remembers this assertion: its jti, per client (the
        client id's length first, so that no two (client, jti) pairs give one key)."""
        return f"client_assertion:{len(self.client_id)}:{self.client_id}:{self.jti}"


def _audience_ok(aud: object, accepted: Collection[str]) -> bool:
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    return isinstance(aud, str) and aud in accepted


def verify_client_assertion(
    assertion: str,
    *,
    client_id: str,
    jwks: ClientJwks,
    audience: str,
    now_s: int,
    max_lifetime_s: int,
    endpoint_urls: Collection[str] = (),
) -> ClientAssertion:
    """Checks the `client_assertion` of a request that authenticates `client_id` (whose
    registered keys are `jwks`) at the server whose issuer identifier is `audience`, at
    `now_s`. Refused with InvalidClient unless:

    - it is a compact JWS of at most JWS_COMPACT_CHARS_MAX characters; its header's `alg` is
      one of ALGORITHMS, `typ` absent or one of ASSERTION_TYPS, no `crit` and no `b64`;
    - a key of `jwks` fits the alg (with a `kid` header: the key with that kid) and the
      signature verifies with it (without a kid, each fitting key is tried);
    - its claims are a JSON object with `iss` and `sub` both equal to `client_id`, `aud` the
      issuer or one of `endpoint_urls` (see the module's docstring), `exp` after `now_s` and
      at most `max_lifetime_s` after it (and after `iat`, when present), `iat` and `nbf` (when
      present) no later than now_s + CLOCK_SKEW_S, and `jti` a string of 1 to JTI_CHARS_MAX
      characters.
    """
    assert 1 <= max_lifetime_s <= ASSERTION_LIFETIME_S_MAX, max_lifetime_s
    try:
        obj = extract(split_compact(assertion), _REGISTRY)
    except ValueError:
        raise InvalidClient(
            "the client assertion is not a compact JWS", param="client_assertion"
        ) from None
    header = obj.headers()
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise InvalidClient(
            f"the client assertion's alg is not one of {', '.join(ALGORITHMS)}", param="alg"
        )
    typ = header.get("typ")
    if typ is not None and typ not in ASSERTION_TYPS:
        raise InvalidClient("the client assertion's typ is not JWT", param="typ")
    if "crit" in header or "b64" in header:
        raise InvalidClient("the client assertion's header carries crit or b64", param="crit")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidClient("the client assertion's kid is not a string", param="kid")
    candidates = jwks.candidates(alg, kid)
    if not candidates:
        if kid is not None:
            raise InvalidClient("no key of the client has the assertion's kid", param="kid")
        raise InvalidClient("no key of the client fits the assertion's alg", param="alg")
    if not any(signature_verifies(obj, key, alg, _REGISTRY) for key in candidates):
        raise InvalidClient(
            "the client assertion's signature does not verify", param="client_assertion"
        )

    try:
        claims = json.loads(obj.payload)
    except (ValueError, RecursionError):
        claims = None
    if not isinstance(claims, dict):
        raise InvalidClient(
            "the client assertion's claims are not a JSON object", param="client_assertion"
        )
    if claims.get("iss") != client_id:
        raise InvalidClient("the client assertion's iss is not the client id", param="iss")
    if claims.get("sub") != client_id:
        raise InvalidClient("the client assertion's sub is not the client id", param="sub")
    if not _audience_ok(claims.get("aud"), (audience, *endpoint_urls)):
        raise InvalidClient("the client assertion's aud is not this server", param="aud")
    exp_s = numeric_date(claims.get("exp"))
    if exp_s is None:
        raise InvalidClient("the client assertion has no valid exp", param="exp")
    if exp_s <= now_s:
        raise InvalidClient("the client assertion has expired", param="exp")
    if exp_s - now_s > max_lifetime_s:
        raise InvalidClient("the client assertion lives too long (exp)", param="exp")
    for name in ("iat", "nbf"):
        if name in claims:
            at_s = numeric_date(claims[name])
            if at_s is None:
                raise InvalidClient(f"the client assertion's {name} is not a date", param=name)
            if at_s > now_s + CLOCK_SKEW_S:
                raise InvalidClient(f"the client assertion's {name} is in the future", param=name)
            if name == "iat" and exp_s - at_s > max_lifetime_s:
                raise InvalidClient("the client assertion lives too long (iat)", param="iat")
    jti = claims.get("jti")
    if not valid_jti(jti):
        raise InvalidClient("the client assertion has no valid jti", param="jti")
    assert isinstance(jti, str)
    return ClientAssertion(client_id=client_id, jti=jti, exp_s=exp_s, kid=kid)
