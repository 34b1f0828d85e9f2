"""What a TPP client is, and the checks of what registers one. Pure (no database): the API and
the CLI run the same checks, and each refusal is an InvalidRequest naming the field at fault
(`redirect_uris[2]`, `jwks.keys[0].d`), raised before anything is written.

- A name of 1 to NAME_LENGTH_MAX characters (no control character); a software id, optional,
  of 1 to SOFTWARE_ID_LENGTH_MAX characters of A-Z, a-z, 0-9, '.', '_', '-'.
- 1 to REDIRECT_URIS_MAX redirect URIs, unique: absolute `https` URIs with a host, no user
  information and no fragment; `http` only for a loopback host (127.0.0.1, [::1], localhost),
  which is for development. They are later compared with a request's `redirect_uri` as exact
  strings (FAPI 2.0), so none is normalised here.
- Scopes: a non-empty subset of `accounts`, `payments`, `fundsconfirmations` (all three when
  none is given).
- A JWK set `{"keys": [...]}` of 1 to JWKS_KEYS_MAX public signing keys: EC on P-256, RSA of
  RSA_BITS_MIN to RSA_BITS_MAX bits, or OKP on Ed25519; each with a unique `kid`, `use` absent
  or `sig`, `alg` absent or the key type's algorithm (PS256, ES256, EdDSA). A private member
  (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, or a symmetric `k`) is refused with its own code:
  the key it came with should be treated as exposed. Members other than a public key's are
  refused rather than ignored, so what is stored is exactly what was checked. Each key must
  load with joserfc.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from strongroom.core import clock
from strongroom.core.errors import InvalidRequest, echo
from strongroom.openbanking import jose
from strongroom.openbanking.errors import InvalidClientMetadata
from strongroom.openbanking.ports import SCOPES

NAME_LENGTH_MAX: Final = 100
SOFTWARE_ID_LENGTH_MAX: Final = 64
REDIRECT_URIS_MAX: Final = 10
REDIRECT_URI_LENGTH_MAX: Final = 2_048
JWKS_KEYS_MAX: Final = 10
JWK_KID_LENGTH_MAX: Final = 128
JWK_MEMBER_LENGTH_MAX: Final = jose.JWK_MEMBER_CHARS_MAX  # a base64url member (`n`, `x`...)
# The RSA sizes the authorization server verifies with (openbanking/jose.py, FAPI 2.0).
RSA_BITS_MIN: Final = jose.RSA_BITS_MIN
RSA_BITS_MAX: Final = jose.RSA_BITS_MAX
# What is registered is what the authorization server can load (jose.parse_client_jwks).
assert JWKS_KEYS_MAX <= jose.JWKS_KEYS_MAX
# The base64url of the largest modulus fits a member.
assert -(-RSA_BITS_MAX // 6) <= JWK_MEMBER_LENGTH_MAX

# Hosts a redirect URI may name over plain http (RFC 8252's loopback redirects): development.
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})

CODE_NAME: Final = "invalid_name"
CODE_SOFTWARE_ID: Final = "invalid_software_id"
CODE_REDIRECT_URI: Final = "invalid_redirect_uri"
CODE_SCOPE: Final = "invalid_scope"
CODE_JWKS: Final = "invalid_jwks"
CODE_PRIVATE_KEY: Final = "jwks_private_key"


class TppScope(StrEnum):
    """What a TPP may ask a customer's consent for (openbanking.ports.SCOPES)."""

    ACCOUNTS = "accounts"
    PAYMENTS = "payments"
    FUNDS_CONFIRMATIONS = "fundsconfirmations"


assert {s.value for s in TppScope} == SCOPES


class TppStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"  # refused by the authorization server; kept, and may be enabled again


# The signing algorithms a key may name, by the key type each needs (FAPI 2.0's list).
ALGORITHMS: Final = {"PS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}
CURVES: Final = {"EC": "P-256", "OKP": "Ed25519"}
# The members of a public key of each type, besides the common ones.
KEY_MEMBERS: Final = {"EC": ("crv", "x", "y"), "RSA": ("n", "e"), "OKP": ("crv", "x")}
COMMON_MEMBERS: Final = ("kty", "kid", "use", "alg")
# Private key material (RFC 7518 section 6): never registered.
PRIVATE_MEMBERS: Final = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")

_SOFTWARE_ID = re.compile(r"[A-Za-z0-9._-]+")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_BIDI_CONTROLS: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e") | frozenset(
    "\u2066\u2067\u2068\u2069"
)


@dataclass(frozen=True, slots=True)
class CheckedJwks:
    """A JWK set that passed check_jwks: its canonical JSON text, its keys' ids and RFC 7638
    SHA-256 thumbprints (what an audit leaf records of the keys)."""

    text: str
    kids: tuple[str, ...]
    thumbprints: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Registration:
    """What registers a client, checked."""

    name: str
    software_id: str | None
    redirect_uris: tuple[str, ...]
    scopes: frozenset[TppScope]
    jwks: CheckedJwks


@dataclass(frozen=True, slots=True)
class TppClient:
    id: str
    name: str
    software_id: str | None
    jwks: str  # canonical JSON of a checked JWK set: public keys only
    redirect_uris: tuple[str, ...]
    scopes: frozenset[TppScope]
    status: TppStatus
    created_at: int
    created_by: str
    updated_at: int

    @property
    def active(self) -> bool:
        return self.status is TppStatus.ACTIVE

    def key_set(self) -> KeySet:
        """The client's public keys, parsed (they were checked when registered)."""
        return KeySet.import_key_set(json.loads(self.jwks))

    def client_jwks(self) -> jose.ClientJwks:
        """The client's keys as the authorization server checks signatures with them."""
        return _parsed_client_jwks(self.jwks)

    def public(self) -> dict[str, Any]:
        """The client as the API and the CLI show it: nothing here is secret."""
        return {
            "id": self.id,
            "object": "openbanking_client",
            "name": self.name,
            "software_id": self.software_id,
            "redirect_uris": list(self.redirect_uris),
            "scopes": sorted(s.value for s in self.scopes),
            "jwks": json.loads(self.jwks),
            "status": self.status.value,
            "created_at": clock.format_us(self.created_at),
            "created_by": self.created_by,
            "updated_at": clock.format_us(self.updated_at),
        }


def registration(
    name: object,
    redirect_uris: object,
    jwks: object,
    *,
    scopes: object = None,
    software_id: object = None,
) -> Registration:
    """Every field checked, in this order: name, software_id, redirect_uris, scopes, jwks."""
    return Registration(
        check_name(name),
        check_software_id(software_id),
        check_redirect_uris(redirect_uris),
        check_scopes(scopes),
        check_jwks(jwks),
    )


# -- name, software id, scopes ----------------------------------------------------------------


def check_name(value: object, param: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{param} is a non-empty string", param=param, code=CODE_NAME)
    text = " ".join(value.split())
    if len(text) > NAME_LENGTH_MAX:
        raise InvalidRequest(
            f"{param} is at most {NAME_LENGTH_MAX} characters", param=param, code=CODE_NAME
        )
    if any(unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS for c in text):
        raise InvalidRequest(
            f"{param} holds no control or bidirectional-control character",
            param=param,
            code=CODE_NAME,
        )
    return text


def check_software_id(value: object, param: str = "software_id") -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= SOFTWARE_ID_LENGTH_MAX
        or not _SOFTWARE_ID.fullmatch(value)
    ):
        raise InvalidRequest(
            f"{param} is 1 to {SOFTWARE_ID_LENGTH_MAX} characters of A-Z, a-z, 0-9, '.', '_', '-'",
            param=param,
            code=CODE_SOFTWARE_ID,
        )
    return value


def check_scopes(value: object, param: str = "scopes") -> frozenset[TppScope]:
    """None: every scope. Repeats are one."""
    if value is None:
        return frozenset(TppScope)
    allowed = ", ".join(s.value for s in TppScope)
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise InvalidRequest(
            f"{param} is a non-empty list of {allowed}", param=param, code=CODE_SCOPE
        )
    found = set()
    for i, item in enumerate(value):
        if item not in {s.value for s in TppScope}:
            raise InvalidRequest(
                f"{param}[{i}] is one of {allowed}", param=f"{param}[{i}]", code=CODE_SCOPE
            )
        found.add(TppScope(item))
    return frozenset(found)


# -- redirect URIs ----------------------------------------------------------------------------


def _uri_error(param: str, rule: str) -> InvalidRequest:
    return InvalidRequest(f"{param} {rule}", param=param, code=CODE_REDIRECT_URI)


def check_redirect_uris(value: object, param: str = "redirect_uris") -> tuple[str, ...]:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or not 1 <= len(value) <= REDIRECT_URIS_MAX
    ):
        raise _uri_error(param, f"is a list of 1 to {REDIRECT_URIS_MAX} URIs")
    seen: dict[str, int] = {}
    for i, uri in enumerate(value):
        where = f"{param}[{i}]"
        check_redirect_uri(uri, where)
        assert isinstance(uri, str)
        if uri in seen:
            raise _uri_error(where, f"repeats {param}[{seen[uri]}]")
        seen[uri] = i
    return tuple(seen)


def check_redirect_uri(uri: object, param: str) -> str:
    if not isinstance(uri, str) or not uri:
        raise _uri_error(param, "is a non-empty string")
    if len(uri) > REDIRECT_URI_LENGTH_MAX:
        raise _uri_error(param, f"is at most {REDIRECT_URI_LENGTH_MAX} characters")
    # Printable ASCII with no space and no backslash (which browsers read as a slash):
    # anything else is percent-encoded, so the exact-string comparison later is unambiguous.
    if any(not "!" <= c <= "~" or c == "\\" for c in uri):
        raise _uri_error(param, "is printable ASCII, with no space or backslash")
    if "#" in uri:
        raise _uri_error(param, "has no fragment (#)")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        raise _uri_error(param, "is not a valid URI") from None
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise _uri_error(param, "is an absolute https URI")
    if "@" in parts.netloc:
        raise _uri_error(param, "has no user information (user@host)")
    host = parts.hostname
    if not host:
        raise _uri_error(param, "names a host")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise _uri_error(
            param,
            "must be https: http is only for a loopback host (127.0.0.1, [::1], localhost), for "
            "development",
        )
    return uri


# -- the JWK set ------------------------------------------------------------------------------


def _jwks_error(param: str, rule: str) -> InvalidRequest:
    return InvalidRequest(f"{param} {rule}", param=param, code=CODE_JWKS)


def parse_jwks_text(text: str, param: str = "jwks") -> object:
    """A JWK set given as JSON text (a file), parsed for check_jwks."""
    try:
        return json.loads(text)
    except ValueError:
        raise _jwks_error(param, "is not JSON") from None


def check_jwks(value: object, param: str = "jwks") -> CheckedJwks:
    if not isinstance(value, Mapping):
        raise _jwks_error(param, 'is a JSON object {"keys": [...]}')
    for member in value:
        if member != "keys":
            raise _jwks_error(f"{param}.{echo(str(member))}", "is not a member of a JWK set")
    keys = value.get("keys")
    if not isinstance(keys, list) or not 1 <= len(keys) <= JWKS_KEYS_MAX:
        raise _jwks_error(f"{param}.keys", f"is a list of 1 to {JWKS_KEYS_MAX} keys")
    checked: list[dict[str, str]] = []
    thumbprints: list[str] = []
    kids: dict[str, int] = {}
    for i, key in enumerate(keys):
        where = f"{param}.keys[{i}]"
        jwk, thumbprint = _check_key(key, where)
        kid = jwk["kid"]
        if kid in kids:
            raise _jwks_error(f"{where}.kid", f"repeats the kid of {param}.keys[{kids[kid]}]")
        kids[kid] = i
        checked.append(jwk)
        thumbprints.append(thumbprint)
    document = {"keys": checked}
    try:
        jose.parse_client_jwks(document)
    except InvalidClientMetadata as refused:  # pragma: no cover - the checks above are stricter
        raise _jwks_error(
            param, f"is refused by the authorization server: {refused.detail}"
        ) from None
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return CheckedJwks(text, tuple(kids), tuple(thumbprints))


def _check_key(key: object, where: str) -> tuple[dict[str, str], str]:
    """The key's members, checked, and its thumbprint."""
    if not isinstance(key, Mapping):
        raise _jwks_error(where, "is a JSON object (a JWK)")
    for member in PRIVATE_MEMBERS:
        if member in key:
            raise InvalidRequest(
                f"{where}.{member} is private key material: register public keys only, and "
                "treat the key it belongs to as exposed",
                param=f"{where}.{member}",
                code=CODE_PRIVATE_KEY,
            )
    kty = key.get("kty")
    if not isinstance(kty, str) or kty not in KEY_MEMBERS:
        raise _jwks_error(f"{where}.kty", "is EC, RSA or OKP")
    allowed = (*COMMON_MEMBERS, *KEY_MEMBERS[kty])
    for member, value in key.items():
        if member not in allowed:
            raise _jwks_error(
                f"{where}.{echo(str(member))}",
                f"is not a member of a public {kty} key (they are: {', '.join(allowed)})",
            )
        if not isinstance(value, str):
            raise _jwks_error(f"{where}.{member}", "is a string")
    jwk: dict[str, str] = dict(key)
    kid = jwk.get("kid")
    if kid is None:
        raise _jwks_error(f"{where}.kid", "is required: each key has its own kid")
    if not 1 <= len(kid) <= JWK_KID_LENGTH_MAX or not kid.isprintable():
        raise _jwks_error(f"{where}.kid", f"is 1 to {JWK_KID_LENGTH_MAX} printable characters")
    if jwk.get("use", "sig") != "sig":
        raise _jwks_error(f"{where}.use", "is sig (or absent): a client's keys sign")
    alg = jwk.get("alg")
    if alg is not None:
        if alg not in ALGORITHMS:
            raise _jwks_error(f"{where}.alg", f"is one of {', '.join(ALGORITHMS)} (or absent)")
        if ALGORITHMS[alg] != kty:
            raise _jwks_error(f"{where}.alg", f"is {alg}, which is not an algorithm of {kty} keys")
    curve = CURVES.get(kty)
    if curve is not None and jwk.get("crv") != curve:
        raise _jwks_error(f"{where}.crv", f"is {curve} for {kty} keys")
    for member in KEY_MEMBERS[kty]:
        if member == "crv":
            continue
        value = jwk.get(member)
        if value is None:
            raise _jwks_error(f"{where}.{member}", f"is required in {kty} keys")
        if (
            len(value) > JWK_MEMBER_LENGTH_MAX
            or len(value) % 4 == 1
            or not _BASE64URL.fullmatch(value)
        ):
            raise _jwks_error(
                f"{where}.{member}",
                f"is base64url without padding, at most {JWK_MEMBER_LENGTH_MAX} characters",
            )
    if kty == "RSA":
        bits = int.from_bytes(_unbase64url(jwk["n"]), "big").bit_length()
        if not RSA_BITS_MIN <= bits <= RSA_BITS_MAX:
            raise _jwks_error(
                f"{where}.n",
                f"is a modulus of {RSA_BITS_MIN} to {RSA_BITS_MAX} bits (this one has {bits})",
            )
    one: list[Any] = [jwk]
    try:
        loaded = KeySet.import_key_set({"keys": one}).keys[0]
    except (ValueError, TypeError, JoseError) as exc:
        reason = echo(str(exc)) or type(exc).__name__
        raise _jwks_error(where, f"does not load as a public {kty} key: {reason}") from None
    return jwk, loaded.thumbprint()


def _unbase64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:  # pragma: no cover - the pattern and the length were checked
        raise AssertionError("checked base64url did not decode") from None


# Parsed client JWKSs, by their stored text: every PAR and token request of a client parses
# the same keys (a tenth of a millisecond an EC key). Keyed by the text, a rotation is a new
# entry; whether the client is active is read from its row every time, never cached here.
CLIENT_JWKS_CACHED: Final = 1_024


@lru_cache(maxsize=CLIENT_JWKS_CACHED)
def _parsed_client_jwks(text: str) -> jose.ClientJwks:
    return jose.parse_client_jwks(json.loads(text))
