"""Open banking's cryptographic foundation: JWKs and thumbprints (RFC 7638), PKCE S256 (RFC
7636), DPoP proofs (RFC 9449 section 4.3), private_key_jwt client assertions (RFC 7523 as FAPI
2.0 profiles it), the detached JWS of `x-jws-signature`, and the in-process replay cache.

Positive paths run with freshly generated keys of each allowed kind (RSA 2048 with PS256, EC
P-256 with ES256, Ed25519 with EdDSA), and once with a proof and a signature made by hand with
`cryptography` rather than joserfc. Published vectors: RFC 7638's thumbprint and RFC 7636's
S256 pair (strongroom-misc-vectors.json). RFC 7520's JWS examples (RS256, PS384, ES512,
HS256) and RFC 7797's (b64=false) use no algorithm FAPI 2.0 allows, so none verifies here:
they are run as refusals (each verifies with joserfc under its own algorithm first, so the
refusal is the policy's, not a broken vector's).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jws
from joserfc.jwk import ECKey, Key, OctKey, OKPKey, RSAKey, import_key
from joserfc.registry import HeaderParameter

from strongroom.core.errors import CORE_ERRORS, ErrorCatalogue, InvalidRequest
from strongroom.openbanking import clientauth, dpop, jose, jws_detached, pkce
from strongroom.openbanking.clientauth import verify_client_assertion
from strongroom.openbanking.dpop import check_key_binding, verify_dpop_proof
from strongroom.openbanking.errors import (
    OB_SIGNATURE_INVALID,
    OB_SIGNATURE_INVALID_CLAIM,
    OB_SIGNATURE_MALFORMED,
    OB_SIGNATURE_MISSING_CLAIM,
    OPENBANKING_JOSE_ERRORS,
    InvalidClient,
    InvalidClientMetadata,
    InvalidDpopProof,
    InvalidGrant,
    InvalidJwsSignature,
    ReplayCacheFull,
    UseDpopNonce,
)
from strongroom.openbanking.jose import InMemoryJtiCache, parse_client_jwks, parse_public_jwk
from strongroom.openbanking.jws_detached import ob_claims, sign_detached, verify_detached
from tests.conftest import SHARED_DATA

NOW_S = 1_767_225_600
ISSUER = "https://bank.example"
TOKEN_URL = "https://bank.example/oauth/token"
PAR_URL = "https://bank.example/oauth/par"
RESOURCE_URL = "https://bank.example/open-banking/v4.0/aisp/accounts"
CLIENT_ID = "tpp_0001"
MAX_AGE_S = 60
LIFETIME_S = 300
ACCESS_TOKEN = "at_Q2hlY2tzIGFyZSBmb3IgdGhlIHRva2VuIGVuZHBvaW50"
JOSE = Path("vectors") / "jose-rfc7520"

REG = jose.registry()  # signs with PS256, ES256 and EdDSA (without joserfc's EdDSA warning)
ALG_OF = {"RSA": "PS256", "EC": "ES256", "OKP": "EdDSA"}
KINDS = ["RSA", "EC", "OKP"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(value: object) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def key_of(kind: str, n: int = 0) -> RSAKey | ECKey | OKPKey:
    """A fresh private key of `kind` (the n-th one), made once per test run."""
    return _key(kind, n)


def rsa_key(n: int = 0) -> RSAKey:
    key = key_of("RSA", n)
    assert isinstance(key, RSAKey)
    return key


@cache
def _key(kind: str, n: int) -> RSAKey | ECKey | OKPKey:
    del n
    if kind == "RSA":
        return RSAKey.generate_key(2048)
    if kind == "EC":
        return ECKey.generate_key("P-256")
    return OKPKey.generate_key("Ed25519")


def public(key: Key, **extra: object) -> dict[str, Any]:
    return {**key.as_dict(private=False), **extra}


def signed(header: dict[str, Any], claims: object, key: Key) -> str:
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    return jws.serialize_compact(header, payload, key, registry=REG)


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64json(header)}.{b64json(claims)}."


# -- errors ----------------------------------------------------------------------------------


def test_every_error_class_is_declared_with_its_status() -> None:
    ErrorCatalogue(CORE_ERRORS, OPENBANKING_JOSE_ERRORS)  # snake_case, and no clash with core's
    declared = {e.code: e.status for e in OPENBANKING_JOSE_ERRORS}
    for cls in (InvalidDpopProof, UseDpopNonce, InvalidClient, InvalidGrant):
        assert declared[cls.code] == cls.status
    assert declared["invalid_client"] == 401
    assert declared[InvalidClientMetadata.code] == InvalidClientMetadata.status
    assert declared[InvalidJwsSignature.code] == InvalidJwsSignature.status
    assert declared[ReplayCacheFull.code] == ReplayCacheFull.status == 503


# -- JWK -------------------------------------------------------------------------------------


def test_thumbprint_matches_rfc7638(shared_data: Path) -> None:
    path = shared_data / "vectors" / "strongroom-misc-vectors.json"
    vector = json.loads(path.read_text(encoding="utf-8"))["rfc7638_jwk_thumbprint"]
    key = parse_public_jwk(vector["jwk"])
    assert jose.jwk_thumbprint(key) == vector["thumbprint_sha256_b64url"]
    # With members that are not part of the thumbprint (kid, use, alg), it does not change.
    decorated = {**vector["jwk"], "kid": "2011-04-29", "use": "sig", "alg": "PS256"}
    assert jose.jwk_thumbprint(parse_public_jwk(decorated)) == vector["thumbprint_sha256_b64url"]


def test_a_jwks_of_each_allowed_kind_parses_and_keeps_no_private_member() -> None:
    document = {"keys": [public(key_of(kind), kid=f"k-{kind}") for kind in KINDS]}
    jwks = parse_client_jwks(document)
    assert [k.key_type for k in jwks.keys] == KINDS
    assert all(not k.is_private for k in jwks.keys)
    assert all("d" not in member for member in jwks.as_dict()["keys"])
    assert [k.get("kid") for k in jwks.candidates("ES256", None)] == ["k-EC"]
    assert jwks.candidates("PS256", "k-EC") == []  # the kid's key does not fit the alg


@pytest.mark.parametrize("kind", KINDS)
def test_a_private_key_is_refused(kind: str) -> None:
    private_jwk = key_of(kind).as_dict(private=True)
    with pytest.raises(InvalidClientMetadata, match="private members"):
        parse_client_jwks({"keys": [private_jwk]})
    with pytest.raises(jose.JwkRefused, match="private members"):
        parse_public_jwk(private_jwk)


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_any_private_member_is_refused(member: str) -> None:
    with pytest.raises(jose.JwkRefused, match="private members"):
        parse_public_jwk({**public(key_of("RSA")), member: "AQAB"})


def test_a_private_member_is_refused_in_an_encryption_key_too() -> None:
    enc = {**public(key_of("EC", 1)), "use": "enc", "d": "AQAB"}
    with pytest.raises(InvalidClientMetadata, match="private members"):
        parse_client_jwks({"keys": [public(key_of("EC")), enc]})


def test_encryption_keys_are_left_out_of_the_signing_keys() -> None:
    enc = public(key_of("EC", 1), use="enc", kid="enc-1")
    jwks = parse_client_jwks({"keys": [public(key_of("EC"), kid="sig-1"), enc]})
    assert [k.get("kid") for k in jwks.keys] == ["sig-1"]
    with pytest.raises(InvalidClientMetadata, match="no signing key"):
        parse_client_jwks({"keys": [enc]})


def test_a_symmetric_key_is_refused() -> None:
    oct_jwk = OctKey.generate_key(256).as_dict(private=True)
    with pytest.raises(InvalidClientMetadata, match="symmetric"):
        parse_client_jwks({"keys": [oct_jwk]})


def test_the_rfc7520_keys(shared_data: Path) -> None:
    """RFC 7520's RSA public key (2048 bits) is accepted; its private key, its symmetric keys
    and its P-521 key are refused."""
    keys = shared_data / JOSE / "keys"

    def load(name: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((keys / name).read_text(encoding="utf-8"))
        return loaded

    rsa_public = parse_public_jwk(load("RFC7520-RSA-public.json"))
    assert rsa_public.get("kid") == "bilbo.baggins@hobbiton.example"
    with pytest.raises(jose.JwkRefused, match="private members"):
        parse_public_jwk(load("RFC7520-RSA-private.json"))
    with pytest.raises(jose.JwkRefused, match="private members"):
        parse_public_jwk(load("RFC7520-EC-private.json"))
    for name in ("RFC7520-oct-sig.json", "RFC7520-oct-enc.json"):
        with pytest.raises(jose.JwkRefused, match="symmetric"):
            parse_public_jwk(load(name))
    with pytest.raises(jose.JwkRefused, match="P-256"):
        parse_public_jwk(load("RFC7520-EC-public.json"))


def test_curves_and_sizes_outside_fapi_are_refused() -> None:
    p384 = ECKey.generate_key("P-384").as_dict(private=False)
    with pytest.raises(jose.JwkRefused, match="P-256"):
        parse_public_jwk(p384)
    for curve in ("Ed448", "X25519"):
        okp = OKPKey.generate_key(curve).as_dict(private=False)
        with pytest.raises(jose.JwkRefused, match="Ed25519"):
            parse_public_jwk(okp)
    # A short key on purpose: the refusal is the point.
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
    numbers = short.public_numbers()
    small = {"kty": "RSA", "e": "AQAB", "n": b64(numbers.n.to_bytes(128, "big"))}
    with pytest.raises(jose.JwkRefused, match="1024 bits"):
        parse_public_jwk(small)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"alg": "RS256"}, "alg is not one of"),
        ({"alg": "ES256"}, "does not fit its type"),
        ({"use": "enc"}, "use is not sig"),
        ({"kty": "oops"}, "kty is not"),
        ({"kid": ""}, "kid"),
        ({"n": "!!!"}, "modulus"),
        ({"n": "A" * 3_000}, "too long"),
    ],
)
def test_bad_members_are_refused(change: dict[str, str], reason: str) -> None:
    with pytest.raises(jose.JwkRefused, match=reason):
        parse_public_jwk({**public(key_of("RSA")), **change})


@pytest.mark.parametrize(
    "document",
    [
        None,
        [],
        {"keys": []},
        {"keys": "nope"},
        {"keys": [{"kty": "EC"}] * (jose.JWKS_KEYS_MAX + 1)},
    ],
)
def test_a_malformed_jwks_is_refused(document: object) -> None:
    with pytest.raises(InvalidClientMetadata):
        parse_client_jwks(document)


def test_two_keys_with_one_kid_are_refused() -> None:
    document = {"keys": [public(key_of("EC"), kid="a"), public(key_of("OKP"), kid="a")]}
    with pytest.raises(InvalidClientMetadata, match="share a kid"):
        parse_client_jwks(document)


# -- PKCE ------------------------------------------------------------------------------------


@pytest.fixture
def pkce_vector(shared_data: Path) -> dict[str, str]:
    path = shared_data / "vectors" / "strongroom-misc-vectors.json"
    loaded: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))["rfc7636_pkce_s256"]
    return loaded


def test_pkce_s256_matches_rfc7636(pkce_vector: dict[str, str]) -> None:
    verifier, challenge = pkce_vector["code_verifier"], pkce_vector["code_challenge"]
    assert pkce.s256_challenge(verifier) == challenge
    pkce.check_code_challenge("S256", challenge)
    pkce.verify_code_verifier(verifier, challenge)


@pytest.mark.parametrize("method", ["plain", None, "s256", "S512"])
def test_pkce_methods_other_than_s256_are_refused(
    method: str | None, pkce_vector: dict[str, str]
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        pkce.check_code_challenge(method, pkce_vector["code_challenge"])
    assert refused.value.code == "invalid_request"
    assert refused.value.param == "code_challenge_method"


@pytest.mark.parametrize(
    "challenge", [None, "", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c", "+" * 43]
)
def test_pkce_malformed_challenges_are_refused(challenge: str | None) -> None:
    with pytest.raises(InvalidRequest, match="code_challenge"):
        pkce.check_code_challenge("S256", challenge)


@pytest.mark.parametrize("length", [43, 128])
def test_pkce_verifiers_of_the_bounding_lengths_pass(length: int) -> None:
    verifier = ("aZ0-._~" * 20)[:length]
    pkce.verify_code_verifier(verifier, pkce.s256_challenge(verifier))


@pytest.mark.parametrize(
    "verifier",
    [None, "a" * 42, "a" * 129, "a" * 42 + "+", "a" * 42 + " ", "a" * 42 + "é", "a" * 43 + "\n"],
)
def test_pkce_malformed_verifiers_are_refused(verifier: str | None) -> None:
    challenge = pkce.s256_challenge("a" * 43)
    with pytest.raises(InvalidGrant, match="43 to 128"):
        pkce.verify_code_verifier(verifier, challenge)


def test_pkce_another_verifier_is_refused(pkce_vector: dict[str, str]) -> None:
    with pytest.raises(InvalidGrant, match="does not match"):
        pkce.verify_code_verifier("b" * 43, pkce_vector["code_challenge"])
    # The plain method's comparison (verifier == challenge) does not pass either.
    challenge = pkce_vector["code_challenge"]
    with pytest.raises(InvalidGrant, match="does not match"):
        pkce.verify_code_verifier(challenge, challenge)


# -- DPoP ------------------------------------------------------------------------------------


def proof(
    kind: str = "EC",
    *,
    signer: Key | None = None,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    n: int = 0,
) -> str:
    key = key_of(kind, n)
    head: dict[str, Any] = {"typ": "dpop+jwt", "alg": ALG_OF[kind], "jwk": public(key)}
    body: dict[str, Any] = {
        "htm": "POST",
        "htu": TOKEN_URL,
        "iat": NOW_S,
        "jti": "-BwC3ESc6acc2lTc",
    }
    head.update(header or {})
    body.update(claims or {})
    for name in drop:
        head.pop(name, None)
        body.pop(name, None)
    return signed(head, body, signer or key)


def verify(value: str, **overrides: Any) -> dpop.DpopProof:
    arguments: dict[str, Any] = {
        "method": "POST",
        "url": TOKEN_URL,
        "now_s": NOW_S,
        "max_age_s": MAX_AGE_S,
    }
    arguments.update(overrides)
    return verify_dpop_proof(value, **arguments)


@pytest.mark.parametrize("kind", KINDS)
def test_a_dpop_proof_of_each_kind_verifies(kind: str) -> None:
    checked = verify(proof(kind))
    assert checked.jkt == key_of(kind).thumbprint()
    assert checked.jti == "-BwC3ESc6acc2lTc"
    assert checked.iat_s == NOW_S
    assert checked.htm == "POST"
    assert checked.htu == TOKEN_URL
    assert checked.expires_at_s == NOW_S + MAX_AGE_S + 1  # it passes all through NOW_S + MAX_AGE_S
    assert checked.replay_key == f"dpop:{checked.jkt}:-BwC3ESc6acc2lTc"


def test_a_dpop_proof_made_by_hand_verifies() -> None:
    """An ES256 proof made with `cryptography` alone (DER signature turned into r||s), and its
    RFC 7638 thumbprint computed by hand: the checks are not joserfc agreeing with itself."""
    private = ec.generate_private_key(ec.SECP256R1())
    numbers = private.public_key().public_numbers()
    jwk = {
        "crv": "P-256",
        "kty": "EC",
        "x": b64(numbers.x.to_bytes(32, "big")),
        "y": b64(numbers.y.to_bytes(32, "big")),
    }
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
    claims = {"jti": "e1j3V_bKic8-LAEB", "htm": "GET", "htu": RESOURCE_URL, "iat": NOW_S}
    claims["ath"] = b64(hashlib.sha256(ACCESS_TOKEN.encode()).digest())
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    r, s = decode_dss_signature(private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    value = f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    checked = verify(value, method="GET", url=RESOURCE_URL, access_token=ACCESS_TOKEN)
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    assert checked.jkt == b64(hashlib.sha256(canonical).digest())


@pytest.mark.parametrize(
    ("header", "param"),
    [
        ({"typ": "JWT"}, "typ"),
        ({"typ": "DPOP+JWT"}, "typ"),
        ({"crit": ["exp"]}, "crit"),
        ({"b64": True}, "crit"),
    ],
)
def test_a_dpop_proof_with_a_bad_header_is_refused(header: dict[str, Any], param: str) -> None:
    key = key_of("EC")
    head = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public(key), "exp": NOW_S, **header}
    claims = {"htm": "POST", "htu": TOKEN_URL, "iat": NOW_S, "jti": "x" * 16}
    # Signed with a registry that knows `exp` as a header, so that crit may name it.
    lenient = jose.registry({"exp": HeaderParameter("expiry", "int")})
    value = jws.serialize_compact(head, json.dumps(claims), key, registry=lenient)
    with pytest.raises(InvalidDpopProof) as refused:
        verify(value)
    assert refused.value.param == param


def test_a_dpop_proof_without_typ_or_jwk_is_refused() -> None:
    with pytest.raises(InvalidDpopProof, match="typ"):
        verify(proof(drop=("typ",)))
    with pytest.raises(InvalidDpopProof, match="jwk header"):
        verify(proof(drop=("jwk",)))


def test_dpop_alg_none_is_refused() -> None:
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": public(key_of("EC"))}
    claims = {"htm": "POST", "htu": TOKEN_URL, "iat": NOW_S, "jti": "x" * 16}
    with pytest.raises(InvalidDpopProof, match="alg is not one of"):
        verify(unsigned(header, claims))


def test_dpop_hs256_is_refused() -> None:
    """The classic confusion: an HMAC made with a secret the attacker chose (here the key
    carried in the header, as an oct key, or the public key's bytes)."""
    secret = b"attacker-chosen-secret-32-bytes!"
    claims = {"htm": "POST", "htu": TOKEN_URL, "iat": NOW_S, "jti": "x" * 16}
    for jwk in ({"kty": "oct", "k": b64(secret)}, public(key_of("EC"))):
        header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}
        with pytest.raises(InvalidDpopProof, match="alg is not one of"):
            verify(hs256(header, claims, secret))


def test_dpop_rs256_is_refused() -> None:
    key = key_of("RSA")
    header = {"typ": "dpop+jwt", "alg": "RS256", "jwk": public(key)}
    claims = {"htm": "POST", "htu": TOKEN_URL, "iat": NOW_S, "jti": "x" * 16}
    value = jws.serialize_compact(header, json.dumps(claims), key, algorithms=["RS256"])
    with pytest.raises(InvalidDpopProof, match="alg is not one of"):
        verify(value)


@pytest.mark.parametrize("kind", KINDS)
def test_a_private_key_in_the_dpop_jwk_header_is_refused(kind: str) -> None:
    header = {"jwk": key_of(kind).as_dict(private=True)}
    with pytest.raises(InvalidDpopProof, match="private members") as refused:
        verify(proof(kind, header=header))
    assert refused.value.param == "jwk"


def test_parsed_dpop_keys_are_remembered_and_refused_ones_are_not() -> None:
    """A client proves with one key for many requests: its parsed key and thumbprint are
    kept (dpop._parsed_jwk); a key refused once is refused again, whatever came between."""
    private = {"jwk": key_of("EC").as_dict(private=True)}
    for _ in range(2):
        assert verify(proof("EC")).jkt == key_of("EC").thumbprint()
        assert verify(proof("EC", n=1)).jkt == key_of("EC", 1).thumbprint()
        with pytest.raises(InvalidDpopProof, match="private members"):
            verify(proof("EC", header=private))
    # The same members in another order are the same key.
    reordered = dict(reversed(list(public(key_of("EC")).items())))
    assert verify(proof("EC", header={"jwk": reordered})).jkt == key_of("EC").thumbprint()


def test_a_symmetric_dpop_jwk_is_refused() -> None:
    header = {"jwk": {"kty": "oct", "k": b64(b"k" * 32)}}
    with pytest.raises(InvalidDpopProof, match="symmetric"):
        verify(proof(header=header))


def test_a_dpop_jwk_of_another_type_than_its_alg_is_refused() -> None:
    with pytest.raises(InvalidDpopProof, match="does not fit its alg"):
        verify(proof("EC", header={"jwk": public(key_of("OKP"))}))


@pytest.mark.parametrize("kind", KINDS)
def test_a_dpop_proof_signed_by_another_key_than_its_jwk_is_refused(kind: str) -> None:
    with pytest.raises(InvalidDpopProof, match="signature does not verify"):
        verify(proof(kind, signer=key_of(kind, 1)))


def test_a_tampered_dpop_proof_is_refused() -> None:
    head, _, signature = proof().split(".")
    claims = {"htm": "POST", "htu": TOKEN_URL, "iat": NOW_S, "jti": "another-jti-0001"}
    with pytest.raises(InvalidDpopProof, match="signature does not verify"):
        verify(f"{head}.{b64json(claims)}.{signature}")


@pytest.mark.parametrize(
    "value",
    ["", "abc", "a.b", "a.b.c.d", "a b.c.d", "é.b.c", "..", "x" * (jose.JWS_COMPACT_CHARS_MAX + 1)],
)
def test_a_dpop_proof_that_is_not_a_jws_is_refused(value: str) -> None:
    with pytest.raises(InvalidDpopProof, match="not a compact JWS"):
        verify(value)


@pytest.mark.parametrize("payload", [b"[]", b"not json", b'"text"', b"[" * 5_000])
def test_dpop_claims_that_are_not_an_object_are_refused(payload: bytes) -> None:
    key = key_of("EC")
    value = signed({"typ": "dpop+jwt", "alg": "ES256", "jwk": public(key)}, payload, key)
    with pytest.raises(InvalidDpopProof, match="not a JSON object"):
        verify(value)


@pytest.mark.parametrize("htm", ["GET", "post", "PUT", None, 1])
def test_a_dpop_proof_for_another_method_is_refused(htm: object) -> None:
    with pytest.raises(InvalidDpopProof, match="htm") as refused:
        verify(proof(claims={"htm": htm}))
    assert refused.value.param == "htm"


@pytest.mark.parametrize(
    "htu",
    [
        "https://bank.example/oauth/par",
        "https://other.example/oauth/token",
        "http://bank.example/oauth/token",
        "https://bank.example:8443/oauth/token",
        "https://bank.example/oauth/token/",
        "https://bank.example/OAUTH/token",
        "https://user@bank.example/oauth/token",
        "bank.example/oauth/token",
        "/oauth/token",
        "https://bank.example/oauth/to ken",
        "https://bank.example:99999/oauth/token",
        None,
        42,
    ],
)
def test_a_dpop_proof_for_another_url_is_refused(htu: object) -> None:
    with pytest.raises(InvalidDpopProof, match="htu") as refused:
        verify(proof(claims={"htu": htu}))
    assert refused.value.param == "htu"


@pytest.mark.parametrize(
    "htu",
    [
        "https://bank.example/oauth/token?state=1",
        "https://bank.example/oauth/token#frag",
        "https://bank.example/oauth/token?a=b#c",
        "HTTPS://Bank.EXAMPLE/oauth/token",
        "https://bank.example:443/oauth/token",
        "https://bank.example/oauth/%74oken",
    ],
)
def test_dpop_htu_is_compared_without_query_and_normalised(htu: str) -> None:
    assert verify(proof(claims={"htu": htu})).htu == TOKEN_URL


def test_dpop_the_request_urls_query_is_ignored_too() -> None:
    value = proof(claims={"htu": RESOURCE_URL, "htm": "GET"})
    checked = verify(value, method="GET", url=RESOURCE_URL + "?fromBookingDateTime=2026-01-01")
    assert checked.htu == RESOURCE_URL


def test_normalise_htu() -> None:
    normalise = dpop.normalise_htu
    assert normalise("HTTP://Example.COM:80") == "http://example.com/"
    assert normalise("https://example.com:8443/a%2fb?q") == "https://example.com:8443/a%2Fb"
    assert normalise("https://[2001:DB8::1]:443/x") == "https://[2001:db8::1]/x"
    with pytest.raises(ValueError, match="http"):
        normalise("ftp://example.com/")


def test_dpop_iat_window() -> None:
    oldest = NOW_S - MAX_AGE_S
    assert verify(proof(claims={"iat": oldest})).expires_at_s == NOW_S + 1
    assert verify(proof(claims={"iat": NOW_S + jose.CLOCK_SKEW_S})).iat_s == NOW_S + 10
    assert verify(proof(claims={"iat": NOW_S + 0.5})).iat_s == NOW_S  # a fraction is dropped
    with pytest.raises(InvalidDpopProof, match="too old"):
        verify(proof(claims={"iat": oldest - 1}))
    with pytest.raises(InvalidDpopProof, match="in the future"):
        verify(proof(claims={"iat": NOW_S + jose.CLOCK_SKEW_S + 1}))


@pytest.mark.parametrize("iat", [None, "1767225600", True, -1, 2**53, float("nan")])
def test_dpop_a_malformed_iat_is_refused(iat: object) -> None:
    claims = {"iat": iat} if iat is not None else {}
    drop = ("iat",) if iat is None else ()
    with pytest.raises(InvalidDpopProof, match="no valid iat"):
        verify(proof(claims=claims, drop=drop))


@pytest.mark.parametrize("jti", [None, "", "j" * (jose.JTI_CHARS_MAX + 1), 12345, ["a"]])
def test_dpop_a_missing_or_malformed_jti_is_refused(jti: object) -> None:
    claims = {"jti": jti} if jti is not None else {}
    drop = ("jti",) if jti is None else ()
    with pytest.raises(InvalidDpopProof, match="jti") as refused:
        verify(proof(claims=claims, drop=drop))
    assert refused.value.param == "jti"


def test_dpop_ath_binds_the_proof_to_the_access_token() -> None:
    ath = dpop.access_token_hash(ACCESS_TOKEN)
    good = proof(claims={"ath": ath, "htm": "GET", "htu": RESOURCE_URL})
    checked = verify(good, method="GET", url=RESOURCE_URL, access_token=ACCESS_TOKEN)
    assert checked.jkt == key_of("EC").thumbprint()
    for value in (
        proof(claims={"htm": "GET", "htu": RESOURCE_URL}),  # no ath
        proof(claims={"ath": ath[:-1] + "A", "htm": "GET", "htu": RESOURCE_URL}),
        proof(claims={"ath": ACCESS_TOKEN, "htm": "GET", "htu": RESOURCE_URL}),
    ):
        with pytest.raises(InvalidDpopProof, match="ath") as refused:
            verify(value, method="GET", url=RESOURCE_URL, access_token=ACCESS_TOKEN)
        assert ACCESS_TOKEN not in str(refused.value)
    with pytest.raises(InvalidDpopProof, match="ath"):
        verify(good, method="GET", url=RESOURCE_URL, access_token=ACCESS_TOKEN + "x")


def test_dpop_ath_is_the_rfc9449_value() -> None:
    """RFC 9449 section 7.1's example: the token and its ath."""
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert dpop.access_token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


def test_a_token_presented_with_another_keys_proof_is_refused() -> None:
    """The token is bound to key 0 (its jkt); a proof signed by key 1, valid in itself, is
    refused when the caller compares the binding."""
    bound_jkt = key_of("EC", 0).thumbprint()
    ath = dpop.access_token_hash(ACCESS_TOKEN)
    claims = {"ath": ath, "htm": "GET", "htu": RESOURCE_URL}
    own = verify(proof(claims=claims), method="GET", url=RESOURCE_URL, access_token=ACCESS_TOKEN)
    check_key_binding(own, bound_jkt)
    other = verify(
        proof(claims=claims, n=1), method="GET", url=RESOURCE_URL, access_token=ACCESS_TOKEN
    )
    with pytest.raises(InvalidDpopProof, match="not the key the token is bound to"):
        check_key_binding(other, bound_jkt)


def test_dpop_nonce() -> None:
    value = proof(claims={"nonce": "eyJ7S_zG.eyJH0-Z.HX4w-7v"})
    assert verify(value, nonce="eyJ7S_zG.eyJH0-Z.HX4w-7v").jti
    with pytest.raises(UseDpopNonce, match="nonce"):
        verify(value, nonce="a-newer-nonce")
    with pytest.raises(UseDpopNonce, match="nonce"):
        verify(proof(), nonce="eyJ7S_zG.eyJH0-Z.HX4w-7v")
    assert verify(value).jti  # a nonce the server did not ask for is ignored


def test_dpop_refusals_carry_no_proof_or_key_material() -> None:
    key = key_of("EC")
    jwk = public(key)
    values = [
        proof(claims={"htu": "https://evil.example/"}),
        proof(header={"jwk": key.as_dict(private=True)}),
        proof(signer=key_of("EC", 1)),
        proof(claims={"iat": 0}),
    ]
    for value in values:
        with pytest.raises(InvalidDpopProof) as refused:
            verify(value, access_token=ACCESS_TOKEN)
        text = f"{refused.value} {refused.value.detail}"
        for secret in (value, value.split(".")[2], jwk["x"], jwk["y"], ACCESS_TOKEN):
            assert secret not in text


# -- replay cache ----------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now_s: int) -> None:
        self.now_s = now_s

    def __call__(self) -> int:
        return self.now_s


def test_jti_cache_refuses_a_replay_until_expiry() -> None:
    clock = FakeClock(NOW_S)
    cache_ = InMemoryJtiCache(now_s=clock)
    checked = verify(proof())
    assert cache_.first_use(checked.replay_key, checked.expires_at_s)
    assert not cache_.first_use(checked.replay_key, checked.expires_at_s)
    assert cache_.first_use("dpop:another-key:-BwC3ESc6acc2lTc", checked.expires_at_s)
    clock.now_s = checked.expires_at_s - 1  # the last second the iat check lets it pass
    assert verify(proof(), now_s=clock.now_s) == checked
    assert not cache_.first_use(checked.replay_key, checked.expires_at_s)
    clock.now_s = checked.expires_at_s  # expired: forgotten (the iat check refuses it now)
    with pytest.raises(InvalidDpopProof, match="too old"):
        verify(proof(), now_s=clock.now_s)
    assert cache_.first_use(checked.replay_key, checked.expires_at_s + MAX_AGE_S)
    assert len(cache_) == 1


def test_jti_cache_full_of_unexpired_keys_refuses_rather_than_forgets() -> None:
    clock = FakeClock(NOW_S)
    cache_ = InMemoryJtiCache(entries_max=3, now_s=clock)
    for i in range(3):
        assert cache_.first_use(f"k{i}", NOW_S + 10 + i)
    with pytest.raises(ReplayCacheFull) as full:
        cache_.first_use("k3", NOW_S + 60)
    assert full.value.retry_after_s == 10
    assert not cache_.first_use("k0", NOW_S + 10)  # still remembered
    clock.now_s = NOW_S + 10
    assert cache_.first_use("k3", NOW_S + 60)  # k0 expired and was dropped
    assert len(cache_) == 3


def test_jti_cache_admits_a_key_once_across_threads() -> None:
    cache_ = InMemoryJtiCache(now_s=FakeClock(NOW_S))
    threads_n = 16
    barrier = threading.Barrier(threads_n)
    results: list[bool] = []
    lock = threading.Lock()

    def offer() -> None:
        barrier.wait()
        for i in range(200):
            first = cache_.first_use(f"jti-{i}", NOW_S + 60)
            with lock:
                results.append(first)

    threads = [threading.Thread(target=offer) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 200
    assert len(results) == 200 * threads_n


def test_replay_keys_of_assertions_are_distinct_per_client() -> None:
    a = clientauth.ClientAssertion(client_id="a:b", jti="c", exp_s=NOW_S, kid=None)
    b = clientauth.ClientAssertion(client_id="a", jti="b:c", exp_s=NOW_S, kid=None)
    assert a.replay_key != b.replay_key


# -- client assertions -----------------------------------------------------------------------


def client_jwks(*kinds: str, kids: bool = True) -> jose.ClientJwks:
    members = [public(key_of(kind), **({"kid": f"kid-{kind}"} if kids else {})) for kind in kinds]
    return parse_client_jwks({"keys": members})


def assertion(
    kind: str = "EC",
    *,
    signer: Key | None = None,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
) -> str:
    head: dict[str, Any] = {"alg": ALG_OF[kind], "kid": f"kid-{kind}", "typ": "JWT"}
    body: dict[str, Any] = {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": ISSUER,
        "exp": NOW_S + 60,
        "iat": NOW_S,
        "jti": "ca-7f3c1b0e9a",
    }
    head.update(header or {})
    body.update(claims or {})
    for name in drop:
        head.pop(name, None)
        body.pop(name, None)
    return signed(head, body, signer or key_of(kind))


def authenticate(value: str, jwks: jose.ClientJwks | None = None, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "jwks": jwks or client_jwks(*KINDS),
        "audience": ISSUER,
        "now_s": NOW_S,
        "max_lifetime_s": LIFETIME_S,
        "endpoint_urls": (TOKEN_URL, PAR_URL),
    }
    arguments.update(overrides)
    return verify_client_assertion(value, **arguments)


@pytest.mark.parametrize("kind", KINDS)
def test_a_client_assertion_of_each_kind_verifies(kind: str) -> None:
    checked = authenticate(assertion(kind))
    assert checked == clientauth.ClientAssertion(
        client_id=CLIENT_ID, jti="ca-7f3c1b0e9a", exp_s=NOW_S + 60, kid=f"kid-{kind}"
    )


def test_a_client_assertion_without_kid_is_tried_against_each_fitting_key() -> None:
    jwks = parse_client_jwks(
        {"keys": [public(key_of("EC", 1)), public(key_of("EC")), public(key_of("OKP"))]}
    )
    checked = authenticate(assertion(drop=("kid", "typ")), jwks)
    assert checked.kid is None


@pytest.mark.parametrize("aud", [ISSUER, TOKEN_URL, PAR_URL, [ISSUER], [TOKEN_URL]])
def test_client_assertion_audiences_accepted(aud: object) -> None:
    assert authenticate(assertion(claims={"aud": aud})).jti


@pytest.mark.parametrize(
    "aud",
    [
        "https://other.example",
        ISSUER + "/",
        [ISSUER, "https://other.example"],
        [],
        None,
        {"aud": ISSUER},
    ],
)
def test_client_assertion_wrong_audience_is_refused(aud: object) -> None:
    with pytest.raises(InvalidClient, match="aud") as refused:
        authenticate(assertion(claims={"aud": aud}))
    assert refused.value.status == 401


def test_client_assertion_endpoint_audience_only_when_passed() -> None:
    with pytest.raises(InvalidClient, match="aud"):
        authenticate(assertion(claims={"aud": TOKEN_URL}), endpoint_urls=())


@pytest.mark.parametrize(
    ("claims", "param"),
    [
        ({"iss": "tpp_0002"}, "iss"),
        ({"sub": "tpp_0002"}, "sub"),
        ({"iss": None}, "iss"),
        ({"exp": NOW_S}, "exp"),
        ({"exp": NOW_S - 1}, "exp"),
        ({"exp": "soon"}, "exp"),
        ({"exp": NOW_S + LIFETIME_S + 1}, "exp"),
        ({"iat": NOW_S - LIFETIME_S, "exp": NOW_S + 1}, "iat"),
        ({"iat": NOW_S + jose.CLOCK_SKEW_S + 1}, "iat"),
        ({"iat": "now"}, "iat"),
        ({"nbf": NOW_S + jose.CLOCK_SKEW_S + 1}, "nbf"),
        ({"jti": ""}, "jti"),
        ({"jti": "j" * (jose.JTI_CHARS_MAX + 1)}, "jti"),
    ],
)
def test_client_assertion_bad_claims_are_refused(claims: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidClient) as refused:
        authenticate(assertion(claims=claims))
    assert refused.value.param == param


@pytest.mark.parametrize("name", ["iss", "sub", "aud", "exp", "jti"])
def test_client_assertion_missing_claims_are_refused(name: str) -> None:
    with pytest.raises(InvalidClient) as refused:
        authenticate(assertion(drop=(name,)))
    assert refused.value.param == name


def test_client_assertion_expiry_and_lifetime_bounds() -> None:
    assert authenticate(assertion(claims={"exp": NOW_S + 1})).exp_s == NOW_S + 1
    edge = {"exp": NOW_S + LIFETIME_S, "iat": NOW_S}
    assert authenticate(assertion(claims=edge)).exp_s == NOW_S + LIFETIME_S
    with pytest.raises(InvalidClient, match="expired"):
        authenticate(assertion(), now_s=NOW_S + 60)
    without_iat = assertion(claims={"exp": NOW_S + LIFETIME_S}, drop=("iat",))
    assert authenticate(without_iat).exp_s == NOW_S + LIFETIME_S


def test_client_assertion_unknown_kid_is_refused() -> None:
    with pytest.raises(InvalidClient, match="kid") as refused:
        authenticate(assertion(header={"kid": "rotated-away"}))
    assert refused.value.param == "kid"


def test_client_assertion_kid_of_a_key_of_another_type_is_refused() -> None:
    with pytest.raises(InvalidClient, match="kid"):
        authenticate(assertion("EC", header={"kid": "kid-RSA"}))


def test_client_assertion_no_key_fits_its_alg() -> None:
    with pytest.raises(InvalidClient, match="fits the assertion's alg"):
        authenticate(assertion("OKP", drop=("kid",)), client_jwks("EC", "RSA"))


def test_client_assertion_signed_by_an_unregistered_key_is_refused() -> None:
    with pytest.raises(InvalidClient, match="signature does not verify"):
        authenticate(assertion(signer=key_of("EC", 1)))
    with pytest.raises(InvalidClient, match="signature does not verify"):
        authenticate(assertion(signer=key_of("EC", 1), drop=("kid",)))


def test_client_assertion_another_clients_key_is_refused() -> None:
    """The assertion names this client but is signed by a key of another client's JWKS."""
    other_clients_jwks = client_jwks("EC")
    with pytest.raises(InvalidClient, match="signature does not verify"):
        authenticate(assertion(signer=key_of("EC", 1)), other_clients_jwks)


def test_client_assertion_alg_none_and_hs256_are_refused() -> None:
    claims = {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": ISSUER, "exp": NOW_S + 60, "jti": "j"}
    with pytest.raises(InvalidClient, match="alg is not one of"):
        authenticate(unsigned({"alg": "none"}, claims))
    # An HMAC keyed with the client's public key bytes, as if it were a shared secret.
    secret = json.dumps(public(key_of("EC"))).encode()
    with pytest.raises(InvalidClient, match="alg is not one of"):
        authenticate(hs256({"alg": "HS256", "kid": "kid-EC"}, claims, secret))


@pytest.mark.parametrize("typ", ["dpop+jwt", "at+jwt", "JOSE"])
def test_client_assertion_of_another_type_is_refused(typ: str) -> None:
    with pytest.raises(InvalidClient, match="typ"):
        authenticate(assertion(header={"typ": typ}))


def test_client_assertion_typ_may_be_absent_or_rfc7523bis() -> None:
    assert authenticate(assertion(drop=("typ",))).jti
    assert authenticate(assertion(header={"typ": "client-authentication+jwt"})).jti


def test_client_assertion_that_is_not_a_jws_is_refused() -> None:
    for value in ("", "a.b", "eyJ.eyJ.", "x" * (jose.JWS_COMPACT_CHARS_MAX + 1)):
        with pytest.raises(InvalidClient, match="not a compact JWS"):
            authenticate(value)


# -- detached JWS (x-jws-signature) ----------------------------------------------------------

BODY = b'{"Data":{"ConsentId":"pdc_0001","Status":"AWAU"},"Links":{"Self":"https://bank.example"}}'
ASPSP = "0015800001041RHAAY"


@cache
def signer_jwks() -> jose.ClientJwks:
    return parse_client_jwks({"keys": [public(key_of("RSA"), kid="ob-sig-1")]})


def detached(payload: bytes = BODY, **extra: object) -> str:
    headers = {**ob_claims(iat_s=NOW_S, iss=ASPSP), **extra}
    return sign_detached(payload, rsa_key(), "ob-sig-1", headers)


def detached_by_hand(header: dict[str, Any], payload: bytes = BODY, key: Key | None = None) -> str:
    """header..signature made with `cryptography`: RSASSA-PSS, SHA-256, MGF1-SHA-256, a
    32-byte salt (RFC 7518 section 3.5)."""
    private = (key or key_of("RSA")).private_key
    assert isinstance(private, rsa.RSAPrivateKey)
    signing_input = f"{b64json(header)}.{b64(payload)}".encode()
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signature = private.sign(signing_input, pss, hashes.SHA256())
    return f"{b64json(header)}..{b64(signature)}"


def ob_header(**changes: Any) -> dict[str, Any]:
    header: dict[str, Any] = {
        "alg": "PS256",
        "kid": "ob-sig-1",
        "typ": "JOSE",
        "cty": "application/json",
        jws_detached.OB_IAT: NOW_S,
        jws_detached.OB_ISS: ASPSP,
        jws_detached.OB_TAN: "openbanking.org.uk",
        "crit": list(jws_detached.OB_CLAIMS),
    }
    for name, value in changes.items():
        if value is None:
            header.pop(name, None)
        else:
            header[name] = value
    return header


def test_detached_jws_round_trip() -> None:
    signature = detached()
    head, middle, tail = signature.split(".")
    assert middle == ""
    assert head
    assert tail
    header = verify_detached(signature, BODY, signer_jwks(), now_s=NOW_S)
    assert header == ob_header()


def test_detached_jws_of_an_empty_body() -> None:
    assert verify_detached(detached(b""), b"", signer_jwks())["kid"] == "ob-sig-1"


def test_detached_jws_made_by_hand_verifies() -> None:
    assert verify_detached(detached_by_hand(ob_header()), BODY, signer_jwks())


def test_detached_jws_over_a_tampered_body_is_refused() -> None:
    signature = detached()
    for body in (BODY.replace(b"AWAU", b"AUTH"), BODY + b" ", b""):
        with pytest.raises(InvalidJwsSignature) as refused:
            verify_detached(signature, body, signer_jwks())
        assert refused.value.ob_code == OB_SIGNATURE_INVALID


def test_detached_jws_with_a_tampered_header_is_refused() -> None:
    head, _, tail = detached().split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    header[jws_detached.OB_IAT] = NOW_S - 3_600
    with pytest.raises(InvalidJwsSignature) as refused:
        verify_detached(f"{b64json(header)}..{tail}", BODY, signer_jwks())
    assert refused.value.ob_code == OB_SIGNATURE_INVALID


def test_detached_jws_signed_by_another_key_under_the_kid_is_refused() -> None:
    forged = detached_by_hand(ob_header(), key=key_of("RSA", 1))
    with pytest.raises(InvalidJwsSignature) as refused:
        verify_detached(forged, BODY, signer_jwks())
    assert refused.value.ob_code == OB_SIGNATURE_INVALID


def test_a_jws_with_its_payload_attached_is_refused() -> None:
    head, _, tail = detached().split(".")
    with pytest.raises(InvalidJwsSignature) as refused:
        verify_detached(f"{head}.{b64(BODY)}.{tail}", BODY, signer_jwks())
    assert refused.value.ob_code == OB_SIGNATURE_MALFORMED


@pytest.mark.parametrize("value", ["", "abc", "a..b..c", "bm90IGpzb24..c2ln", "é..x"])
def test_a_malformed_detached_jws_is_refused(value: str) -> None:
    with pytest.raises(InvalidJwsSignature) as refused:
        verify_detached(value, BODY, signer_jwks())
    assert refused.value.ob_code == OB_SIGNATURE_MALFORMED


@pytest.mark.parametrize(
    ("changes", "param", "ob_code"),
    [
        ({"alg": None}, "alg", OB_SIGNATURE_MISSING_CLAIM),
        ({"kid": None}, "kid", OB_SIGNATURE_MISSING_CLAIM),
        ({"kid": "unknown-kid"}, "kid", OB_SIGNATURE_INVALID_CLAIM),
        ({"alg": "PS384"}, "alg", OB_SIGNATURE_INVALID_CLAIM),
        ({"alg": "ES256"}, "alg", OB_SIGNATURE_INVALID_CLAIM),
        ({"typ": "JWT"}, "typ", OB_SIGNATURE_INVALID_CLAIM),
        ({"cty": "text/plain"}, "cty", OB_SIGNATURE_INVALID_CLAIM),
        ({"b64": False}, "b64", OB_SIGNATURE_INVALID_CLAIM),
        ({jws_detached.OB_IAT: None}, jws_detached.OB_IAT, OB_SIGNATURE_MISSING_CLAIM),
        ({jws_detached.OB_ISS: None}, jws_detached.OB_ISS, OB_SIGNATURE_MISSING_CLAIM),
        ({jws_detached.OB_TAN: None}, jws_detached.OB_TAN, OB_SIGNATURE_MISSING_CLAIM),
        ({jws_detached.OB_IAT: "1767225600"}, jws_detached.OB_IAT, OB_SIGNATURE_INVALID_CLAIM),
        ({jws_detached.OB_IAT: NOW_S + 60}, jws_detached.OB_IAT, OB_SIGNATURE_INVALID_CLAIM),
        ({jws_detached.OB_ISS: ""}, jws_detached.OB_ISS, OB_SIGNATURE_INVALID_CLAIM),
        ({"crit": None}, "crit", OB_SIGNATURE_MISSING_CLAIM),
        ({"crit": [jws_detached.OB_IAT, jws_detached.OB_ISS]}, "crit", OB_SIGNATURE_INVALID_CLAIM),
        ({"crit": [*jws_detached.OB_CLAIMS, "exp"]}, "crit", OB_SIGNATURE_INVALID_CLAIM),
        ({"crit": [1, 2, 3]}, "crit", OB_SIGNATURE_INVALID_CLAIM),
    ],
)
def test_detached_jws_header_rules(changes: dict[str, Any], param: str, ob_code: str) -> None:
    """Each header signed correctly (by hand), so that only the rule refuses it."""
    with pytest.raises(InvalidJwsSignature) as refused:
        verify_detached(detached_by_hand(ob_header(**changes)), BODY, signer_jwks(), now_s=NOW_S)
    assert refused.value.param == param
    assert refused.value.ob_code == ob_code


def test_detached_jws_typ_and_cty_are_optional() -> None:
    header = ob_header(typ=None, cty="json")
    assert verify_detached(detached_by_hand(header), BODY, signer_jwks())["cty"] == "json"


def test_sign_detached_refuses_to_override_what_it_sets() -> None:
    with pytest.raises(AssertionError):
        detached(alg="HS256")
    with pytest.raises(AssertionError):
        sign_detached(BODY, rsa_key(), "ob-sig-1", {})


def _rfc7520_cases() -> list[str]:
    path = SHARED_DATA / JOSE / "jws_rfc7520.json"
    if not path.is_file():
        return ["<shared data missing>"]
    return [t["name"] for t in json.loads(path.read_text(encoding="utf-8"))["tests"]]


@pytest.mark.parametrize("name", _rfc7520_cases())
def test_rfc7520_signatures_use_no_fapi_algorithm(shared_data: Path, name: str) -> None:
    """RFC 7520 section 4's signatures verify under their own algorithm (joserfc, with the
    RFC's key); detached, each is refused here for its alg."""
    doc = json.loads((shared_data / JOSE / "jws_rfc7520.json").read_text(encoding="utf-8"))
    case = next(t for t in doc["tests"] if t["name"] == name)
    key_doc = json.loads((shared_data / JOSE / "keys" / case["public_key"]).read_text("utf-8"))
    alg = case["protected"]["alg"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns about RS256 and HS256: expected here
        verified = jws.deserialize_compact(case["compact"], import_key(key_doc), [alg])
    assert verified.payload.decode("utf-8") == doc["payload"]
    head, _, tail = case["compact"].split(".")
    rsa_jwks = parse_client_jwks(
        {
            "keys": [
                json.loads(
                    (shared_data / JOSE / "keys" / "RFC7520-RSA-public.json").read_text("utf-8")
                )
            ]
        }
    )
    with pytest.raises(InvalidJwsSignature) as refused:
        verify_detached(f"{head}..{tail}", doc["payload"].encode(), rsa_jwks)
    assert refused.value.param == "alg"


def test_rfc7797_unencoded_payloads_are_refused(shared_data: Path) -> None:
    doc = json.loads((shared_data / JOSE / "jws_rfc7797.json").read_text(encoding="utf-8"))
    cases = [t for t in doc["tests"] if t["protected"].get("b64") is False]
    assert cases
    for case in cases:
        head, _, tail = case["compact"].split(".")
        payload = case.get("payload", doc["payload"]).encode()
        with pytest.raises(InvalidJwsSignature) as refused:
            verify_detached(f"{head}..{tail}", payload, signer_jwks())
        assert refused.value.param == "b64"
