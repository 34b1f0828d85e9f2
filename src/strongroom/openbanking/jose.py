"""The JOSE foundation of open banking: which algorithms and keys are accepted, a client's
JWKS, RFC 7638 thumbprints, compact JWS parsing with bounds, and the replay cache of `jti`s.

FAPI 2.0 (Security Profile, section 5.4) allows PS256, ES256 and EdDSA (with Ed25519); RSA
keys of at least 2048 bits. Nothing else verifies here: not `none`, not HMAC (no symmetric
key is ever accepted from a client), not RS256. Pure: no database, no HTTP.
"""

from __future__ import annotations

import base64
import heapq
import json
import math
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from joserfc import jws
from joserfc.errors import JoseError, UnsupportedAlgorithmError
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey, import_key
from joserfc.registry import HeaderParameter

from strongroom.core import clock
from strongroom.openbanking.errors import InvalidClientMetadata, ReplayCacheFull

# -- bounds ----------------------------------------------------------------------------------
RSA_BITS_MIN: Final = 2_048  # FAPI 2.0 section 5.4.1
# A larger modulus only makes every verification slower for whoever sends it.
RSA_BITS_MAX: Final = 4_096
JWKS_KEYS_MAX: Final = 16  # keys in one client's JWKS (rotation needs two or three)
JWK_MEMBER_CHARS_MAX: Final = 2_048  # one member of a JWK (an RSA-4096 modulus is 683)
# A DPoP proof or a client assertion: an RSA-4096 key in a header, a few claims, a signature.
JWS_COMPACT_CHARS_MAX: Final = 8_192
JWS_HEADER_CHARS_MAX: Final = 4_096  # the base64url header segment
JTI_CHARS_MAX: Final = 128  # RFC 9449 asks for 96 random bits: 16 characters suffice
# How far in the future an `iat` or `nbf` may lie: the clocks of client and server differ.
CLOCK_SKEW_S: Final = 10
# NumericDate values are whole seconds below 2^53 (exact in every JSON parser).
NUMERIC_DATE_MAX: Final = 2**53 - 1
JTI_CACHE_ENTRIES_MAX: Final = 100_000
JTI_CACHE_KEY_CHARS_MAX: Final = 512

assert JWS_HEADER_CHARS_MAX < JWS_COMPACT_CHARS_MAX
assert RSA_BITS_MIN <= RSA_BITS_MAX
assert (RSA_BITS_MAX + 5) // 6 <= JWK_MEMBER_CHARS_MAX  # a modulus fits a member
assert JTI_CHARS_MAX + 100 <= JTI_CACHE_KEY_CHARS_MAX  # a jti and its prefix fit a key

# -- algorithms and keys ---------------------------------------------------------------------
PS256: Final = "PS256"
ES256: Final = "ES256"
EDDSA: Final = "EdDSA"
ALGORITHMS: Final = (PS256, ES256, EDDSA)

# JWK members that only a private or a symmetric key has (RFC 7518 section 6, RFC 8037).
PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

AsymmetricKey = RSAKey | ECKey | OKPKey
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class JwkRefused(ValueError):
    """A JWK breaks a rule: the message says which, without the key's values. Each caller
    turns it into its own error (invalid_client_metadata, invalid_dpop_proof...)."""


def _check_member_sizes(jwk: Mapping[str, object]) -> None:
    for name, value in jwk.items():
        if len(name) > JWK_MEMBER_CHARS_MAX or (
            isinstance(value, str) and len(value) > JWK_MEMBER_CHARS_MAX
        ):
            raise JwkRefused("a member of the key is too long")


def _modulus_bits(n: object) -> int:
    if not isinstance(n, str):
        raise JwkRefused("an RSA key has no modulus n")
    if not _B64URL.fullmatch(n) or len(n) % 4 == 1:
        raise JwkRefused("an RSA key's modulus is not base64url")
    modulus = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    return int.from_bytes(modulus, "big").bit_length()


def parse_public_jwk(member: object) -> AsymmetricKey:
    """A public signing key from a JWK: RSA (2048 to 4096 bits), EC P-256 or OKP Ed25519.
    Refused: a private key (any of `d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`), a symmetric one
    (`oct`, `k`), another curve, a key whose `use` is not `sig` or whose `alg` is not one of
    ALGORITHMS or does not fit its type, and anything that does not parse."""
    if not isinstance(member, Mapping) or not all(isinstance(k, str) for k in member):
        raise JwkRefused("a key is not a JSON object")
    _check_member_sizes(member)
    kty = member.get("kty")
    if kty == "oct":
        raise JwkRefused("a symmetric (oct) key is never accepted")
    if kty not in ("RSA", "EC", "OKP"):
        raise JwkRefused("a key's kty is not RSA, EC or OKP")
    if PRIVATE_MEMBERS & member.keys():
        raise JwkRefused("a key carries private members: only public keys are accepted")
    if kty == "EC" and member.get("crv") != "P-256":
        raise JwkRefused("an EC key's curve is not P-256")
    if kty == "OKP" and member.get("crv") != "Ed25519":
        raise JwkRefused("an OKP key's curve is not Ed25519")
    use = member.get("use")
    if use is not None and use != "sig":
        raise JwkRefused("a key's use is not sig")
    alg = member.get("alg")
    if alg is not None and alg not in ALGORITHMS:
        raise JwkRefused(f"a key's alg is not one of {', '.join(ALGORITHMS)}")
    kid = member.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise JwkRefused("a key's kid is not a non-empty string")
    if kty == "RSA":
        # Measured before the import, which only warns about a short modulus.
        bits = _modulus_bits(member.get("n"))
        if not RSA_BITS_MIN <= bits <= RSA_BITS_MAX:
            raise JwkRefused(f"an RSA key has {bits} bits: {RSA_BITS_MIN} to {RSA_BITS_MAX}")
    try:
        key = import_key(dict(member))
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise JwkRefused("a key does not parse as a JWK") from error
    assert isinstance(key, (RSAKey, ECKey, OKPKey)), type(key)
    assert not key.is_private  # no private member was given
    if alg is not None and not key_fits_alg(key, alg):
        raise JwkRefused("a key's alg does not fit its type")
    return key


def key_fits_alg(key: Key, alg: str) -> bool:
    """Whether `alg` (one of ALGORITHMS) signs with `key`'s type and curve."""
    if alg == PS256:
        return isinstance(key, RSAKey)
    if alg == ES256:
        return isinstance(key, ECKey) and key.curve_name == "P-256"
    if alg == EDDSA:
        return isinstance(key, OKPKey) and key.curve_name == "Ed25519"
    return False


def jwk_thumbprint(key: Key) -> str:
    """RFC 7638: base64url(SHA-256) of the key's required members, sorted, without spaces.
    A DPoP key's thumbprint is the `jkt` that an access token is bound to (RFC 9449)."""
    return key.thumbprint()


@dataclass(frozen=True, slots=True)
class ClientJwks:
    """A client's public signing keys, each checked by `parse_public_jwk`. `keys` keeps the
    JWKS's order; a key without a `kid` is found by trying every key of the right type."""

    keys: tuple[AsymmetricKey, ...]

    def candidates(self, alg: str, kid: str | None) -> list[AsymmetricKey]:
        """The keys that may have made a signature with `alg` and header `kid`: the key with
        that kid (when given), which must fit the alg; else every key that fits it."""
        fitting = [k for k in self.keys if key_fits_alg(k, alg) and k.get("alg") in (None, alg)]
        if kid is None:
            return fitting
        return [k for k in fitting if k.get("kid") == kid]

    def has_kid(self, kid: str) -> bool:
        return any(k.get("kid") == kid for k in self.keys)

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        """The public JWKS, as registered (public members only)."""
        return {"keys": [dict(k.as_dict(private=False)) for k in self.keys]}


def parse_client_jwks(document: object) -> ClientJwks:
    """A client's JWKS (`{"keys": [...]}`, 1 to JWKS_KEYS_MAX keys). Every key must pass
    `parse_public_jwk`, except keys whose `use` is `enc` (a client may publish encryption
    keys beside its signing ones): those are left out, but may still carry no private
    member. kids are unique. Refusals are InvalidClientMetadata."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise InvalidClientMetadata("a JWKS is a JSON object with a keys array", param="jwks")
    members: list[object] = document["keys"]
    if not 1 <= len(members) <= JWKS_KEYS_MAX:
        raise InvalidClientMetadata(f"a JWKS holds 1 to {JWKS_KEYS_MAX} keys", param="jwks")
    keys: list[AsymmetricKey] = []
    kids: set[str] = set()
    for index, member in enumerate(members):
        try:
            if isinstance(member, Mapping) and member.get("use") == "enc":
                if PRIVATE_MEMBERS & member.keys():
                    raise JwkRefused("a key carries private members: only public keys")
                continue
            key = parse_public_jwk(member)
        except JwkRefused as refused:
            raise InvalidClientMetadata(
                f"key {index} of the JWKS: {refused}", param="jwks"
            ) from None
        kid = key.get("kid")
        if isinstance(kid, str):
            if kid in kids:
                raise InvalidClientMetadata("two keys of the JWKS share a kid", param="jwks")
            kids.add(kid)
        keys.append(key)
    if not keys:
        raise InvalidClientMetadata("the JWKS holds no signing key", param="jwks")
    return ClientJwks(tuple(keys))


# -- compact JWS -----------------------------------------------------------------------------


class _FapiRegistry(jws.JWSRegistry):
    """joserfc's registry, limited to ALGORITHMS. It gives the algorithm model without
    joserfc's deprecation warning for `EdDSA` (RFC 9864 prefers `Ed25519`; FAPI 2.0 names
    `EdDSA`), and takes a header large enough for an RSA-4096 key in a DPoP `jwk`."""

    max_header_length = JWS_HEADER_CHARS_MAX

    def get_alg(self, name: str) -> JWSAlgModel:
        if name not in ALGORITHMS:
            raise UnsupportedAlgorithmError(f"Algorithm of '{name}' is not allowed")
        return self.algorithms[name]


def registry(extra_headers: Mapping[str, HeaderParameter] | None = None) -> jws.JWSRegistry:
    """A registry for one kind of JWS: only ALGORITHMS; headers that joserfc does not know
    are allowed unless `crit` names them (then they must be in `extra_headers`)."""
    return _FapiRegistry(
        header_registry=dict(extra_headers or {}),
        algorithms=list(ALGORITHMS),
        strict_check_header=False,
    )


_COMPACT = re.compile(r"[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")


def split_compact(value: object, *, chars_max: int = JWS_COMPACT_CHARS_MAX) -> str:
    """`value` if it is a compact JWS within `chars_max` characters (three dot-separated
    segments of base64url characters), else ValueError."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    if len(value) > chars_max:
        raise ValueError("too long")
    if not _COMPACT.fullmatch(value):
        raise ValueError("not three base64url segments")
    return value


def decode_header(value: str) -> dict[str, Any]:
    """The protected header of a compact JWS (from `split_compact`), a JSON object; else
    ValueError."""
    segment = value.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, RecursionError) as error:
        raise ValueError("the header does not parse") from error
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    return header


def extract(value: str, reg: jws.JWSRegistry, payload: bytes | None = None) -> jws.CompactSignature:
    """The parsed compact JWS (joserfc's CompactSignature), its signature not yet checked;
    ValueError when it does not parse."""
    try:
        return jws.extract_compact(value.encode("ascii"), payload, reg)
    except (JoseError, ValueError, TypeError) as error:
        raise ValueError("does not parse") from error


def signature_verifies(
    obj: jws.CompactSignature, key: AsymmetricKey, alg: str, reg: jws.JWSRegistry
) -> bool:
    """Whether the parsed JWS `obj` (from `extract`) is signed by `key` with `alg`; its
    header's registered members (crit...) are checked too: a failure is False."""
    assert alg in ALGORITHMS
    assert key_fits_alg(key, alg)
    try:
        return jws.validate_compact(obj, key, [alg], reg)
    except (JoseError, ValueError, TypeError):
        return False


def numeric_date(value: object) -> int | None:
    """A JWT NumericDate (RFC 7519) as whole seconds, or None when `value` is not one: a
    JSON number (not a boolean), finite, from 0 to NUMERIC_DATE_MAX; a fraction is dropped."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not 0 <= value <= NUMERIC_DATE_MAX:
        return None
    return int(value)


def valid_jti(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= JTI_CHARS_MAX


# -- replay ----------------------------------------------------------------------------------


class JtiCache(Protocol):
    """Remembers the `jti`s seen (of DPoP proofs, of client assertions) until they expire."""

    def first_use(self, key: str, expires_at_s: int) -> bool:
        """True the first time `key` is offered before its expiry (it is remembered until
        `expires_at_s`); False when it was offered already and has not expired (a replay)."""
        ...


def _now_s() -> int:
    return clock.now_us() // 1_000_000


class InMemoryJtiCache:
    """A JtiCache in this process's memory: a dict of key -> expiry and a heap of expiries,
    under a lock; at most `entries_max` unexpired keys. When it is full of unexpired keys a
    new key is refused with ReplayCacheFull (503): forgetting an unexpired key would let it
    be replayed. Not shared between workers and not durable (a restart forgets)."""

    def __init__(
        self,
        *,
        entries_max: int = JTI_CACHE_ENTRIES_MAX,
        now_s: Callable[[], int] = _now_s,
    ) -> None:
        assert entries_max >= 1
        self._entries_max = entries_max
        self._now_s = now_s
        self._expiry: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._lock = threading.Lock()

    def first_use(self, key: str, expires_at_s: int) -> bool:
        assert 0 < len(key) <= JTI_CACHE_KEY_CHARS_MAX
        with self._lock:
            now = self._now_s()
            self._purge(now)
            if key in self._expiry:  # unexpired: the purge dropped the others
                return False
            if len(self._expiry) >= self._entries_max:
                retry_after_s = max(1, self._heap[0][0] - now)
                raise ReplayCacheFull(
                    "too many unexpired proofs are remembered", retry_after_s=retry_after_s
                )
            self._expiry[key] = expires_at_s
            heapq.heappush(self._heap, (expires_at_s, key))
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def _purge(self, now: int) -> None:
        """Drops every key that expired at or before `now` (a heap entry whose key was
        remembered again with another expiry is only dropped from the heap)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            expires_at_s, key = heapq.heappop(heap)
            if self._expiry.get(key) == expires_at_s:
                del self._expiry[key]
