"""The detached JWS of UK Open Banking's `x-jws-signature` header (RFC 7515 appendix F): a
compact JWS over the HTTP body, sent as `header..signature` with the payload segment left out.

The v4.0 OpenAPI documents only say "a detached JWS signature of the body"; the header is the
one of the OB Read/Write API profile's message signing (since v3.1.4, unchanged in v4.0):
`alg` PS256, `kid`, `typ` JOSE and `cty` application/json (both optional there, always sent
here), the three claims `http://openbanking.org.uk/iat` (a number of seconds), `.../iss` (the
signer: the ASPSP's organisation id, or the TPP's `{org-id}/{software-statement-id}`) and
`.../tan` (the trust anchor, `openbanking.org.uk`), all three named in `crit`; no `b64` (the
unencoded payload of RFC 7797 was dropped in v3.1.4). The payload is signed as sent, its bytes
base64url-encoded in the signing input as RFC 7515 does by default.

Pure: no database, no HTTP. The caller checks that `iss` is the client's own organisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from joserfc import jws
from joserfc.jwk import RSAKey
from joserfc.registry import HeaderParameter

from strongroom.openbanking.errors import (
    OB_SIGNATURE_INVALID,
    OB_SIGNATURE_INVALID_CLAIM,
    OB_SIGNATURE_MALFORMED,
    OB_SIGNATURE_MISSING_CLAIM,
    InvalidJwsSignature,
)
from strongroom.openbanking.jose import (
    CLOCK_SKEW_S,
    NUMERIC_DATE_MAX,
    PS256,
    RSA_BITS_MIN,
    ClientJwks,
    decode_header,
    extract,
    registry,
    signature_verifies,
    split_compact,
)

OB_IAT: Final = "http://openbanking.org.uk/iat"
OB_ISS: Final = "http://openbanking.org.uk/iss"
OB_TAN: Final = "http://openbanking.org.uk/tan"
OB_CLAIMS: Final = (OB_IAT, OB_ISS, OB_TAN)
OB_TRUST_ANCHOR: Final = "openbanking.org.uk"
JOSE_TYP: Final = "JOSE"
JSON_CTYS: Final = frozenset({"json", "application/json"})
OB_CLAIM_CHARS_MAX: Final = 256  # iss and tan
DETACHED_JWS_CHARS_MAX: Final = 4_096  # header..signature: no key travels in the header
DETACHED_PAYLOAD_BYTES_MAX: Final = 1_048_576
_RESERVED: Final = frozenset({"alg", "kid", "crit", "b64", "typ", "cty"})

_REGISTRY: Final = registry(
    {
        OB_IAT: HeaderParameter("OB signature time", "int"),
        OB_ISS: HeaderParameter("OB signer", "str"),
        OB_TAN: HeaderParameter("OB trust anchor", "str"),
    }
)
# The signing input holds the payload base64url-encoded: 4 characters for every 3 bytes.
_REGISTRY.max_payload_length = (DETACHED_PAYLOAD_BYTES_MAX + 2) // 3 * 4


def ob_claims(*, iat_s: int, iss: str, tan: str = OB_TRUST_ANCHOR) -> dict[str, object]:
    """The three OB header claims of a message signature, for `sign_detached`'s headers."""
    return {OB_IAT: iat_s, OB_ISS: iss, OB_TAN: tan}


def sign_detached(
    payload: bytes, key: RSAKey, kid: str, extra_headers: Mapping[str, object]
) -> str:
    """The `x-jws-signature` value of `payload` (the HTTP body's bytes), signed with the
    private RSA `key` (PS256) whose public key is published under `kid`. `extra_headers`
    holds the OB claims (`ob_claims`), and any other header member but the reserved ones."""
    assert key.is_private
    assert key.public_key.key_size >= RSA_BITS_MIN
    assert kid
    assert not _RESERVED & extra_headers.keys(), "alg, kid, crit, b64, typ and cty are set here"
    assert all(name in extra_headers for name in OB_CLAIMS), "the OB claims are required"
    header: dict[str, Any] = {
        "alg": PS256,
        "kid": kid,
        "typ": JOSE_TYP,
        "cty": "application/json",
        **extra_headers,
        "crit": list(OB_CLAIMS),
    }
    compact = jws.serialize_compact(header, payload, key, registry=_REGISTRY)
    return jws.detach_content(compact)


def _malformed() -> InvalidJwsSignature:
    return InvalidJwsSignature(
        "x-jws-signature is not a detached compact JWS (header..signature)",
        ob_code=OB_SIGNATURE_MALFORMED,
        param="x-jws-signature",
    )


def _claim_error(name: str, missing: bool) -> InvalidJwsSignature:
    if missing:
        return InvalidJwsSignature(
            f"the signature's header has no {name}",
            ob_code=OB_SIGNATURE_MISSING_CLAIM,
            param=name,
        )
    return InvalidJwsSignature(
        f"the signature's {name} is invalid", ob_code=OB_SIGNATURE_INVALID_CLAIM, param=name
    )


def _check_header(header: Mapping[str, Any], jwks: ClientJwks, now_s: int | None) -> None:
    if "b64" in header:  # before alg: RFC 7797's unencoded payloads are refused as such
        raise _claim_error("b64", missing=False)
    if header.get("alg") != PS256:
        raise _claim_error("alg", missing="alg" not in header)
    kid = header.get("kid")
    if kid is None:
        raise _claim_error("kid", missing=True)
    if not isinstance(kid, str) or not kid:
        raise _claim_error("kid", missing=False)
    if "typ" in header and header["typ"] != JOSE_TYP:
        raise _claim_error("typ", missing=False)
    if "cty" in header and header["cty"] not in JSON_CTYS:
        raise _claim_error("cty", missing=False)
    for name in OB_CLAIMS:
        if name not in header:
            raise _claim_error(name, missing=True)
    iat = header[OB_IAT]
    if isinstance(iat, bool) or not isinstance(iat, int) or not 0 <= iat <= NUMERIC_DATE_MAX:
        raise _claim_error(OB_IAT, missing=False)
    if now_s is not None and iat > now_s + CLOCK_SKEW_S:
        raise _claim_error(OB_IAT, missing=False)
    for name in (OB_ISS, OB_TAN):
        value = header[name]
        if not isinstance(value, str) or not 1 <= len(value) <= OB_CLAIM_CHARS_MAX:
            raise _claim_error(name, missing=False)
    crit = header.get("crit")
    if crit is None:
        raise _claim_error("crit", missing=True)
    if (
        not isinstance(crit, list)
        or not all(isinstance(name, str) for name in crit)
        or len(crit) != len(OB_CLAIMS)
        or set(crit) != set(OB_CLAIMS)
    ):
        raise _claim_error("crit", missing=False)
    if not jwks.candidates(PS256, kid):
        raise InvalidJwsSignature(
            "the signature's kid is not a PS256 key of the signer",
            ob_code=OB_SIGNATURE_INVALID_CLAIM,
            param="kid",
        )


def verify_detached(
    signature: str, payload: bytes, jwks: ClientJwks, *, now_s: int | None = None
) -> dict[str, Any]:
    """Checks the `x-jws-signature` value `signature` over `payload` (the body's bytes) with
    the signer's keys `jwks`; answers its protected header. Refused with InvalidJwsSignature
    (its `ob_code` the OB code: Malformed, MissingClaim, InvalidClaim, Invalid) unless:

    - it is `header..signature` (an empty payload segment) of at most DETACHED_JWS_CHARS_MAX
      characters whose header is a JSON object;
    - the header has no `b64`, `alg` PS256, a `kid`, `typ` JOSE and `cty` json or
      application/json when present, the three OB claims (`iat` an integer, not after
      now_s + CLOCK_SKEW_S when `now_s` is given; `iss` and `tan` non-empty strings) and
      `crit` naming exactly those three;
    - `kid` names an RSA key of `jwks`, and the signature over the header and `payload`
      verifies with it.
    """
    try:
        value = split_compact(signature, chars_max=DETACHED_JWS_CHARS_MAX)
        if value.split(".")[1]:
            raise ValueError("the payload is not detached")
        header = decode_header(value)
    except ValueError:
        raise _malformed() from None
    _check_header(header, jwks, now_s)  # before joserfc reads it: b64 is refused as such
    try:
        obj = extract(value, _REGISTRY, payload)
    except ValueError:
        raise _malformed() from None
    kid = header["kid"]
    if not any(
        signature_verifies(obj, key, PS256, _REGISTRY) for key in jwks.candidates(PS256, kid)
    ):
        raise InvalidJwsSignature(
            "the signature does not verify over the body",
            ob_code=OB_SIGNATURE_INVALID,
            param="x-jws-signature",
        )
    return dict(header)
