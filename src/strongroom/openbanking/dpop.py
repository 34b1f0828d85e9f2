"""DPoP proofs (RFC 9449): the checks of section 4.3, the `ath` binding of a proof to an
access token, and the comparison of a proof's key with the key a token is bound to.

What is not checked here: the proof's `jti` against earlier proofs (the caller offers
`DpopProof.replay_key` to a `JtiCache` until `expires_at_s`), that the request carries exactly
one `DPoP` header (the HTTP layer), and which key the access token is bound to (the caller
compares with `check_key_binding`). Pure: no database, no HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from typing import Final
from urllib.parse import urlsplit

from strongroom.openbanking.errors import InvalidDpopProof, UseDpopNonce
from strongroom.openbanking.jose import (
    ALGORITHMS,
    CLOCK_SKEW_S,
    AsymmetricKey,
    JwkRefused,
    extract,
    jwk_thumbprint,
    key_fits_alg,
    numeric_date,
    parse_public_jwk,
    registry,
    signature_verifies,
    split_compact,
    valid_jti,
)

DPOP_TYP: Final = "dpop+jwt"
DPOP_MAX_AGE_S_MAX: Final = 3_600  # a proof is for one request: minutes at most
NONCE_CHARS_MAX: Final = 256
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_UNRESERVED: Final = frozenset(string.ascii_letters + string.digits + "-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_REGISTRY: Final = registry()
# Parsed DPoP keys (and their thumbprints), by the canonical JSON of the `jwk` header: a client
# proves with one key for many requests, and parsing and importing it cost as much as the
# signature check. A refused key is not remembered (the exception is raised every time).
JWK_CACHE_ENTRIES_MAX: Final = 4_096
# The server's own URLs, normalised (`_normalised_own_url`): never a client's string.
OWN_URL_CACHE_ENTRIES_MAX: Final = 4_096


@dataclass(frozen=True, slots=True)
class DpopProof:
    """A DPoP proof that passed every check of `verify_dpop_proof`.

    `jkt` is the RFC 7638 thumbprint of its key: the value an access token issued with it
    is bound to (`cnf.jkt`). `expires_at_s` is the first second at which the proof no longer
    passes the `iat` check (it passes all through second `iat_s + max_age_s`): its `jti` must
    be remembered until then, so that a store that forgets a key at its expiry forgets no
    proof that could still be replayed."""

    jkt: str
    jti: str
    iat_s: int
    htm: str
    htu: str  # as normalised (normalise_htu)
    expires_at_s: int

    @property
    def replay_key(self) -> str:
        """The key under which a JtiCache remembers this proof: its jti, per key."""
        return f"dpop:{self.jkt}:{self.jti}"


def _normalise_percent(path: str) -> str:
    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _PERCENT.sub(one, path)


def normalise_htu(url: str) -> str:
    """`url` without its query and fragment, normalised as RFC 9449 section 4.3 asks (RFC
    3986 sections 6.2.2 and 6.2.3): scheme and host in lower case, the scheme's default port
    dropped, an empty path as `/`, percent-encodings in upper case and unreserved characters
    decoded. ValueError when it is not an absolute http(s) URL with a host, carries user
    information, or holds spaces, control or non-ASCII characters. Dot segments are kept."""
    if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        raise ValueError("not a plain ASCII URL")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("not an http(s) URL")
    if "@" in parts.netloc:
        raise ValueError("user information in the URL")
    host = parts.hostname
    if not host:
        raise ValueError("no host")
    port = parts.port  # ValueError when out of range
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}{_normalise_percent(parts.path) or '/'}"


def access_token_hash(access_token: str) -> str:
    """`ath`: base64url (no padding) of the SHA-256 of the access token (ASCII, RFC 9449)."""
    digest = hashlib.sha256(access_token.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_dpop_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now_s: int,
    max_age_s: int,
    access_token: str | None = None,
    nonce: str | None = None,
) -> DpopProof:
    """Checks a DPoP proof (the `DPoP` header's value) for a request with `method` to `url`
    (the absolute URL the client called: the server's public base URL and the path; a query
    is ignored), at `now_s`. Refused with InvalidDpopProof unless:

    - it is a compact JWS of at most JWS_COMPACT_CHARS_MAX characters, its header with
      `typ` `dpop+jwt`, an `alg` of ALGORITHMS, no `crit` and no `b64`, and a `jwk` that is a
      public key fitting the alg (`parse_public_jwk`: no private member, no symmetric key);
    - its signature verifies with that key;
    - its claims are a JSON object with `htm` equal to `method`, `htu` equal to `url` once
      both are normalised (`normalise_htu`: query and fragment dropped), `iat` within
      [now_s - max_age_s, now_s + CLOCK_SKEW_S], and `jti` a string of 1 to JTI_CHARS_MAX
      characters;
    - with `access_token`, its `ath` is `access_token_hash(access_token)`;
    - with `nonce` (the server requires one), its `nonce` claim equals it, else UseDpopNonce.
    """
    assert 1 <= max_age_s <= DPOP_MAX_AGE_S_MAX, max_age_s
    expected_htu = _normalised_own_url(url)  # the server's own URL: a ValueError is a bug
    try:
        obj = extract(split_compact(proof), _REGISTRY)
    except ValueError:
        raise InvalidDpopProof("the DPoP proof is not a compact JWS", param="DPoP") from None
    header = obj.headers()
    if header.get("typ") != DPOP_TYP:
        raise InvalidDpopProof("the DPoP proof's typ is not dpop+jwt", param="typ")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise InvalidDpopProof(
            f"the DPoP proof's alg is not one of {', '.join(ALGORITHMS)}", param="alg"
        )
    if "crit" in header or "b64" in header:
        raise InvalidDpopProof("the DPoP proof's header carries crit or b64", param="crit")
    try:
        key, jkt = _parsed_jwk(json.dumps(header.get("jwk"), sort_keys=True, separators=(",", ":")))
    except JwkRefused as refused:
        raise InvalidDpopProof(f"the DPoP proof's jwk header: {refused}", param="jwk") from None
    if not key_fits_alg(key, alg):
        raise InvalidDpopProof("the DPoP proof's jwk does not fit its alg", param="jwk")
    if not signature_verifies(obj, key, alg, _REGISTRY):
        raise InvalidDpopProof("the DPoP proof's signature does not verify", param="DPoP")

    try:
        claims = json.loads(obj.payload)
    except (ValueError, RecursionError):
        claims = None
    if not isinstance(claims, dict):
        raise InvalidDpopProof("the DPoP proof's claims are not a JSON object", param="DPoP")
    jti = claims.get("jti")
    if not valid_jti(jti):
        raise InvalidDpopProof("the DPoP proof has no valid jti", param="jti")
    htm = claims.get("htm")
    if not isinstance(htm, str) or htm != method:
        raise InvalidDpopProof("the DPoP proof's htm is not the request's method", param="htm")
    htu = claims.get("htu")
    try:
        # The URL exactly as the server names it (a client's usual proof) needs no
        # normalising; any other spelling is compared once normalised.
        if not isinstance(htu, str) or (htu != url and normalise_htu(htu) != expected_htu):
            raise ValueError("another URL")
    except ValueError:
        raise InvalidDpopProof(
            "the DPoP proof's htu is not the request's URL", param="htu"
        ) from None
    iat_s = numeric_date(claims.get("iat"))
    if iat_s is None:
        raise InvalidDpopProof("the DPoP proof has no valid iat", param="iat")
    if iat_s > now_s + CLOCK_SKEW_S:
        raise InvalidDpopProof("the DPoP proof's iat is in the future", param="iat")
    if iat_s < now_s - max_age_s:
        raise InvalidDpopProof("the DPoP proof is too old (iat)", param="iat")
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(
            ath.encode("utf-8"), access_token_hash(access_token).encode("ascii")
        ):
            raise InvalidDpopProof(
                "the DPoP proof's ath is not the hash of the access token", param="ath"
            )
    if nonce is not None:
        claimed = claims.get("nonce")
        if (
            not isinstance(claimed, str)
            or len(claimed) > NONCE_CHARS_MAX
            or not hmac.compare_digest(claimed.encode("utf-8"), nonce.encode("utf-8"))
        ):
            raise UseDpopNonce("the DPoP proof must carry the server's nonce", param="nonce")
    assert isinstance(jti, str)
    assert isinstance(htu, str)
    return DpopProof(
        jkt=jkt,
        jti=jti,
        iat_s=iat_s,
        htm=htm,
        htu=expected_htu,
        expires_at_s=iat_s + max_age_s + 1,
    )


@lru_cache(maxsize=OWN_URL_CACHE_ENTRIES_MAX)
def _normalised_own_url(url: str) -> str:
    """normalise_htu of a URL of the server's own (its base URL and a route's path): the same
    few are checked again and again."""
    return normalise_htu(url)


@lru_cache(maxsize=JWK_CACHE_ENTRIES_MAX)
def _parsed_jwk(canonical: str) -> tuple[AsymmetricKey, str]:
    """The key of a `jwk` header (its canonical JSON) and its RFC 7638 thumbprint; JwkRefused
    as `parse_public_jwk` refuses it."""
    key = parse_public_jwk(json.loads(canonical))
    return key, jwk_thumbprint(key)


def check_key_binding(proof: DpopProof, bound_jkt: str) -> None:
    """The proof's key is the one the access token (or refresh token) is bound to: its
    `cnf.jkt`, compared in constant time. Else InvalidDpopProof (RFC 9449 section 4.3,
    check 12): the token was presented with a proof signed by another key."""
    if not hmac.compare_digest(proof.jkt.encode("ascii"), bound_jkt.encode("utf-8")):
        raise InvalidDpopProof(
            "the DPoP proof's key is not the key the token is bound to", param="DPoP"
        )
