"""The authorization server's rules that need no database: its endpoints and metadata (RFC
8414), form bodies, the parameters of a pushed authorization request (RFC 9126) and of a token
request (RFC 6749 section 4.1.3, 4.4, 6), the authorization response (with RFC 9207's `iss`),
secrets and their digests, lifetimes. Pure: no database, no HTTP.

Secrets (request_uris, codes, access and refresh tokens) are 32 random bytes in base64url
(43 characters); only `digest(secret)`, the SHA-256 of the text, is ever stored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from strongroom.core.errors import InvalidRequest
from strongroom.openbanking import pkce
from strongroom.openbanking.authz.errors import (
    InvalidScope,
    TokenRefused,
    UnsupportedGrantType,
    UnsupportedResponseType,
)
from strongroom.openbanking.clientauth import CLIENT_ASSERTION_TYPE
from strongroom.openbanking.consents import ConsentKind
from strongroom.openbanking.errors import InvalidClient
from strongroom.openbanking.jose import ALGORITHMS, JWS_COMPACT_CHARS_MAX, split_compact
from strongroom.openbanking.ports import AUTHZ_PREFIX, KIND_SCOPE, SCOPES, Grant, RegisteredClient

# -- endpoints -------------------------------------------------------------------------------
METADATA_PATH: Final = "/.well-known/oauth-authorization-server"
PAR_PATH: Final = f"{AUTHZ_PREFIX}/par"
TOKEN_PATH: Final = f"{AUTHZ_PREFIX}/token"
AUTHORIZE_PATH: Final = f"{AUTHZ_PREFIX}/authorize"  # the consent page (not this package's)
# The public keys of the deployment's response signatures (x-jws-signature of the payment
# initiation API: openbanking/payments/signing.py), a JWK Set (RFC 7517), published as jwks_uri.
JWKS_PATH: Final = f"{AUTHZ_PREFIX}/jwks"

# -- lifetimes -------------------------------------------------------------------------------
PAR_LIFETIME_S: Final = 60  # RFC 9126's expires_in: the user agent must arrive within it
# Once the user agent arrived (`begin`): time to sign in, step up and decide.
AUTHORIZATION_WINDOW_S: Final = 600
CODE_LIFETIME_S: Final = 60
# A used or expired code is kept this long, so that a late replay still revokes its tokens.
CODE_RETENTION_S: Final = 86_400
ACCESS_TOKEN_LIFETIME_S_DEFAULT: Final = 300
ACCESS_TOKEN_LIFETIME_S_MIN: Final = 10
ACCESS_TOKEN_LIFETIME_S_MAX: Final = 3_600
REFRESH_TOKEN_LIFETIME_S_DEFAULT: Final = 90 * 86_400
REFRESH_TOKEN_LIFETIME_S_MAX: Final = 400 * 86_400
# A DPoP proof is accepted for this long after its iat (its jti is remembered as long).
DPOP_PROOF_MAX_AGE_S: Final = 60
# A client assertion may live this long (exp - now): its jti is remembered until its exp.
CLIENT_ASSERTION_LIFETIME_S_MAX: Final = 300

assert PAR_LIFETIME_S <= AUTHORIZATION_WINDOW_S
assert ACCESS_TOKEN_LIFETIME_S_MIN <= ACCESS_TOKEN_LIFETIME_S_DEFAULT
assert ACCESS_TOKEN_LIFETIME_S_DEFAULT <= ACCESS_TOKEN_LIFETIME_S_MAX
assert ACCESS_TOKEN_LIFETIME_S_MAX <= REFRESH_TOKEN_LIFETIME_S_DEFAULT
assert REFRESH_TOKEN_LIFETIME_S_DEFAULT <= REFRESH_TOKEN_LIFETIME_S_MAX

# -- bounds ----------------------------------------------------------------------------------
FORM_BYTES_MAX: Final = 32_768  # two JWSs of JWS_COMPACT_CHARS_MAX and the rest
FORM_FIELDS_MAX: Final = 32
FORM_VALUE_CHARS_MAX: Final = JWS_COMPACT_CHARS_MAX  # a client assertion is the longest value
STATE_CHARS_MAX: Final = 512
REDIRECT_URI_CHARS_MAX: Final = 2_000
SCOPE_CHARS_MAX: Final = 200
ID_CHARS_MAX: Final = 64  # a client id, a consent id
SECRET_BYTES: Final = 32
SECRET_CHARS: Final = 43  # base64url of SECRET_BYTES, unpadded
JKT_CHARS: Final = 43  # base64url of a SHA-256 thumbprint

assert 2 * JWS_COMPACT_CHARS_MAX + 4 * REDIRECT_URI_CHARS_MAX <= FORM_BYTES_MAX
assert FORM_VALUE_CHARS_MAX >= REDIRECT_URI_CHARS_MAX

REQUEST_URI_PREFIX: Final = "urn:ietf:params:oauth:request_uri:"
TOKEN_TYPE: Final = "DPoP"  # noqa: S105 - the token_type, not a secret
GRANT_TYPES: Final = (
    Grant.AUTHORIZATION_CODE.value,
    "refresh_token",
    Grant.CLIENT_CREDENTIALS.value,
)
FORM_MEDIA_TYPE: Final = "application/x-www-form-urlencoded"

_SECRET = re.compile(rf"[A-Za-z0-9_-]{{{SECRET_CHARS}}}")
_JKT = re.compile(rf"[A-Za-z0-9_-]{{{JKT_CHARS}}}")
_ID = re.compile(rf"[A-Za-z0-9_.:-]{{1,{ID_CHARS_MAX}}}")
# RFC 6749 appendix A.5: state = 1*VSCHAR (printable ASCII and space)
_VSCHARS = re.compile(r"[\x20-\x7e]+")


# -- secrets ---------------------------------------------------------------------------------


def new_secret() -> str:
    """A fresh secret: SECRET_BYTES random bytes, base64url without padding."""
    value = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode()
    assert len(value) == SECRET_CHARS
    return value


def digest(secret: str) -> str:
    """What is stored of a secret: the SHA-256 of its text, base64url without padding (43
    characters)."""
    return sha256_b64(secret)


def sha256_b64(text: str) -> str:
    raw = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def is_secret(value: object) -> bool:
    """Whether `value` has the shape of a secret made by `new_secret`."""
    return isinstance(value, str) and _SECRET.fullmatch(value) is not None


def new_request_uri() -> tuple[str, str]:
    """(request_uri, its digest): RFC 9126's URN with a fresh secret."""
    secret = new_secret()
    return REQUEST_URI_PREFIX + secret, digest(secret)


def request_uri_digest(request_uri: object) -> str:
    """The digest a request_uri of ours is stored under; InvalidRequest for anything else."""
    if not isinstance(request_uri, str) or not request_uri.startswith(REQUEST_URI_PREFIX):
        raise InvalidRequest("request_uri is not one this server issued", param="request_uri")
    secret = request_uri[len(REQUEST_URI_PREFIX) :]
    if not is_secret(secret):
        raise InvalidRequest("request_uri is not one this server issued", param="request_uri")
    return digest(secret)


# -- endpoints and metadata ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The server's URLs under its issuer identifier (an absolute http(s) URL, no trailing
    slash, no query: settings.public_base_url)."""

    issuer: str

    def __post_init__(self) -> None:
        parts = urlsplit(self.issuer)
        assert parts.scheme in ("http", "https"), self.issuer
        assert parts.hostname, self.issuer
        assert not parts.query, self.issuer
        assert not parts.fragment, self.issuer
        assert not self.issuer.endswith("/"), self.issuer

    @property
    def par(self) -> str:
        return self.issuer + PAR_PATH

    @property
    def token(self) -> str:
        return self.issuer + TOKEN_PATH

    @property
    def authorize(self) -> str:
        return self.issuer + AUTHORIZE_PATH

    @property
    def jwks(self) -> str:
        return self.issuer + JWKS_PATH


def metadata(endpoints: Endpoints) -> dict[str, Any]:
    """RFC 8414 authorization server metadata, as FAPI 2.0 asks a client to read it."""
    return {
        "issuer": endpoints.issuer,
        "authorization_endpoint": endpoints.authorize,
        "token_endpoint": endpoints.token,
        "pushed_authorization_request_endpoint": endpoints.par,
        "jwks_uri": endpoints.jwks,
        "require_pushed_authorization_requests": True,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "scopes_supported": sorted(SCOPES),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "code_challenge_methods_supported": [pkce.S256],
        "dpop_signing_alg_values_supported": list(ALGORITHMS),
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,  # only the request_uris of PAR
    }


# -- forms -----------------------------------------------------------------------------------


def form_pairs(body: bytes, fields_max: int, noun: str) -> list[tuple[str, str]]:
    """An application/x-www-form-urlencoded body's (name, value) pairs, in order. Refused
    (InvalidRequest): a body over FORM_BYTES_MAX bytes or not ASCII, more than `fields_max`
    pairs (`noun` names them in the message), bad UTF-8 in a percent-encoding."""
    if len(body) > FORM_BYTES_MAX:
        raise InvalidRequest(f"the form is over {FORM_BYTES_MAX} bytes")
    if not body.isascii():
        raise InvalidRequest("the form is not percent-encoded ASCII")
    try:
        return parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            encoding="utf-8",
            errors="strict",
            max_num_fields=fields_max,
        )
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(f"the body is not a form of at most {fields_max} {noun}") from None


def parse_form(body: bytes) -> dict[str, str]:
    """An application/x-www-form-urlencoded body: its parameters by name. Refused
    (InvalidRequest): what `form_pairs` refuses (FORM_FIELDS_MAX parameters), a name given
    twice (RFC 6749 section 3.1), a value over FORM_VALUE_CHARS_MAX characters, a NUL. A
    parameter without a value is left out, as if omitted (RFC 6749 section 3.1)."""
    pairs = form_pairs(body, FORM_FIELDS_MAX, "parameters")
    form: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise InvalidRequest("text may not contain the NUL character")
        if len(name) > ID_CHARS_MAX:
            raise InvalidRequest("a parameter's name is too long")
        if name in seen:
            raise InvalidRequest(f"{name} is given more than once", param=name)
        seen.add(name)
        if len(value) > FORM_VALUE_CHARS_MAX:
            raise InvalidRequest(f"{name} is too long", param=name)
        if value:
            form[name] = value
    return form


def media_type_is_form(content_type: str | None) -> bool:
    media = (content_type or "").partition(";")[0].strip().lower()
    return media == FORM_MEDIA_TYPE


# -- client authentication -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """The private_key_jwt parameters of a request (RFC 7523 section 2.2): the client it
    claims to be and the assertion, not yet verified."""

    client_id: str
    assertion: str


def client_credentials(form: Mapping[str, str]) -> ClientCredentials:
    """The request's client authentication: `client_assertion_type` is the JWT bearer type,
    `client_assertion` a compact JWS; the client is the form's `client_id` or, without one,
    the assertion's `sub` (unverified here: the signature check compares it with `iss` and
    `sub`). Refused with InvalidClient: no other client authentication is accepted."""
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
        raise InvalidClient(
            "client authentication is private_key_jwt: client_assertion_type must be "
            f"{CLIENT_ASSERTION_TYPE}",
            param="client_assertion_type",
        )
    assertion = form.get("client_assertion")
    try:
        assertion = split_compact(assertion)
    except ValueError:
        raise InvalidClient(
            "client_assertion is not a compact JWS", param="client_assertion"
        ) from None
    client_id = form.get("client_id") or _unverified_subject(assertion)
    if client_id is None or not _ID.fullmatch(client_id):
        raise InvalidClient("the client is not identified (client_id)", param="client_id")
    return ClientCredentials(client_id, assertion)


def _unverified_subject(assertion: str) -> str | None:
    segment = assertion.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, RecursionError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else None


# -- scopes ----------------------------------------------------------------------------------


def parse_scope(value: str | None, *, param: str = "scope") -> frozenset[str]:
    """A scope parameter (space-separated names, RFC 6749 section 3.3): every name one of
    ports.SCOPES, else InvalidScope. None or empty: the empty set."""
    if value is None:
        return frozenset()
    if len(value) > SCOPE_CHARS_MAX:
        raise InvalidScope(f"{param} is over {SCOPE_CHARS_MAX} characters", param=param)
    names = frozenset(value.split())
    unknown = names - SCOPES
    if unknown:
        raise InvalidScope(f"{param} names a scope this server does not know", param=param)
    return names


def scope_text(scopes: frozenset[str]) -> str:
    return " ".join(sorted(scopes))


# -- pushed authorization requests -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushedRequest:
    """The parameters of a pushed authorization request that passed `parse_pushed` (and
    the consent's checks, `check_consent`): what the code will carry."""

    client_id: str
    redirect_uri: str
    scopes: frozenset[str]
    state: str
    code_challenge: str
    consent_id: str
    dpop_jkt: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": scope_text(self.scopes),
                "state": self.state,
                "code_challenge": self.code_challenge,
                "consent_id": self.consent_id,
                "dpop_jkt": self.dpop_jkt,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> PushedRequest:
        stored = json.loads(text)
        return cls(
            client_id=stored["client_id"],
            redirect_uri=stored["redirect_uri"],
            scopes=frozenset(stored["scope"].split()),
            state=stored["state"],
            code_challenge=stored["code_challenge"],
            consent_id=stored["consent_id"],
            dpop_jkt=stored["dpop_jkt"],
        )


def parse_pushed(form: Mapping[str, str], client: RegisteredClient) -> PushedRequest:
    """The authorization request a client pushed (RFC 9126 section 2.1), authenticated as
    `client`; refused (with the code of RFC 6749 section 4.1.2.1) unless:

    - no `request_uri` (RFC 9126 section 2.1) and no `request` object (not supported);
    - `client_id`, when given, is the authenticated client;
    - `response_type` is `code` (unsupported_response_type otherwise);
    - `redirect_uri` is exactly one of the client's registered URIs;
    - `scope` names only known scopes, all of them the client's (invalid_scope);
    - `state` is 1 to STATE_CHARS_MAX printable ASCII characters;
    - `code_challenge_method` is S256 and `code_challenge` an S256 challenge (pkce.py);
    - `consent_id` is given (what it names is `check_consent`'s);
    - `dpop_jkt`, when given (RFC 9449 section 10), is a JWK SHA-256 thumbprint.
    """
    if "request_uri" in form:
        raise InvalidRequest("a pushed request may not carry a request_uri", param="request_uri")
    if "request" in form:
        raise InvalidRequest("request objects are not supported", param="request")
    if form.get("client_id", client.id) != client.id:
        raise InvalidRequest("client_id is not the authenticated client", param="client_id")
    response_type = form.get("response_type")
    if response_type is None:
        raise InvalidRequest("response_type is required", param="response_type")
    if response_type != "code":
        raise UnsupportedResponseType("response_type must be code", param="response_type")
    redirect_uri = form.get("redirect_uri")
    if redirect_uri is None:
        raise InvalidRequest("redirect_uri is required", param="redirect_uri")
    if redirect_uri not in client.redirect_uris:
        raise InvalidRequest(
            "redirect_uri is not one of the client's registered URIs (exact match)",
            param="redirect_uri",
        )
    scopes = parse_scope(form.get("scope"))
    if not scopes:
        raise InvalidScope("scope is required", param="scope")
    if not scopes <= client.scopes:
        raise InvalidScope("scope names a scope the client may not ask for", param="scope")
    state = form.get("state")
    if state is None:
        raise InvalidRequest("state is required", param="state")
    if len(state) > STATE_CHARS_MAX or not _VSCHARS.fullmatch(state):
        raise InvalidRequest(
            f"state is 1 to {STATE_CHARS_MAX} printable ASCII characters", param="state"
        )
    challenge = form.get("code_challenge")
    pkce.check_code_challenge(form.get("code_challenge_method"), challenge)
    assert challenge is not None
    consent_id = form.get("consent_id")
    if consent_id is None or not _ID.fullmatch(consent_id):
        raise InvalidRequest("consent_id is required: the consent to authorise", param="consent_id")
    dpop_jkt = form.get("dpop_jkt")
    if dpop_jkt is not None and not _JKT.fullmatch(dpop_jkt):
        raise InvalidRequest("dpop_jkt is not a JWK SHA-256 thumbprint", param="dpop_jkt")
    return PushedRequest(
        client_id=client.id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=state,
        code_challenge=challenge,
        consent_id=consent_id,
        dpop_jkt=dpop_jkt,
    )


UNKNOWN_CONSENT: Final = "consent_id names no consent of this client awaiting authorisation"


def check_consent_scope(request: PushedRequest, kind: ConsentKind) -> None:
    """The scope asked for is exactly the consent kind's (ports.KIND_SCOPE)."""
    if request.scopes != {KIND_SCOPE[kind]}:
        raise InvalidScope(
            f"the consent is authorised under the scope {KIND_SCOPE[kind]} alone", param="scope"
        )


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """A pushed request whose user agent arrived at the authorization endpoint (`begin`),
    for the consent page to show and decide (`complete`). `handle` names the stored request
    (the digest of its request_uri, not the request_uri)."""

    handle: str
    client_id: str
    client_name: str
    redirect_uri: str
    scopes: frozenset[str]
    state: str
    consent_id: str
    consent_kind: ConsentKind
    tenant_id: str
    code_challenge: str
    dpop_jkt: str | None
    expires_at_us: int  # the end of the authorization window


# -- the authorization response --------------------------------------------------------------


def authorization_response(redirect_uri: str, params: Mapping[str, str]) -> str:
    """`redirect_uri` with `params` added to its query (a query it has is kept: RFC 6749
    section 3.1.2)."""
    parts = urlsplit(redirect_uri)
    query = urlencode(list(params.items()))
    joined = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, ""))


# -- token requests --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeGrant:
    code: str
    redirect_uri: str | None
    code_verifier: str | None


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    refresh_token: str
    scopes: frozenset[str]  # empty: as granted


@dataclass(frozen=True, slots=True)
class ClientGrant:
    scopes: frozenset[str]  # empty: every scope of the client


TokenGrant = CodeGrant | RefreshGrant | ClientGrant


def parse_grant(form: Mapping[str, str]) -> TokenGrant:
    """The grant of a token request: `authorization_code` (code, redirect_uri,
    code_verifier), `refresh_token` (refresh_token, scope) or `client_credentials` (scope);
    unsupported_grant_type for any other. A code or a refresh token that is not of our shape
    is invalid_grant later, as an unknown one is."""
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("grant_type is required", param="grant_type")
    if grant_type == Grant.AUTHORIZATION_CODE:
        code = form.get("code")
        if code is None:
            raise InvalidRequest("code is required", param="code")
        return CodeGrant(code, form.get("redirect_uri"), form.get("code_verifier"))
    if grant_type == "refresh_token":
        token = form.get("refresh_token")
        if token is None:
            raise InvalidRequest("refresh_token is required", param="refresh_token")
        return RefreshGrant(token, parse_scope(form.get("scope")))
    if grant_type == Grant.CLIENT_CREDENTIALS:
        return ClientGrant(parse_scope(form.get("scope")))
    raise UnsupportedGrantType(f"grant_type is one of {', '.join(GRANT_TYPES)}", param="grant_type")


def token_response(
    access_token: str, expires_in_s: int, scopes: frozenset[str], refresh_token: str | None
) -> dict[str, Any]:
    """The token endpoint's answer (RFC 6749 section 5.1, RFC 9449 section 5)."""
    body: dict[str, Any] = {
        "access_token": access_token,
        "token_type": TOKEN_TYPE,
        "expires_in": expires_in_s,
        "scope": scope_text(scopes),
    }
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    return body


def lifetime_end_us(now_us: int, lifetime_s: int, *caps_us: int | None) -> int:
    """now + lifetime, but never past any of `caps_us` (a consent's expiry, a refresh
    token's): a token does not outlive what it was issued under."""
    end = now_us + lifetime_s * 1_000_000
    return min([end, *(c for c in caps_us if c is not None)])


# -- resource requests -----------------------------------------------------------------------


def access_token_of(authorization: str | None) -> str:
    """The access token of an `Authorization: DPoP <token>` header (RFC 9449 section 7.1);
    TokenRefused otherwise: no header (no error code, RFC 6750 section 3.1), a Bearer one
    (the tokens here are DPoP-bound: section 7.2), another scheme or a malformed token."""
    if authorization is None or not authorization.strip():
        raise TokenRefused("send the access token as 'Authorization: DPoP <token>'", error=None)
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer":
        raise TokenRefused(
            "the access token is DPoP-bound: send it as 'Authorization: DPoP <token>' with a "
            "DPoP proof",
            error="invalid_request",
        )
    if scheme.lower() != "dpop":
        raise TokenRefused("the authorization scheme is not DPoP", error="invalid_request")
    if not is_secret(token):
        raise TokenRefused("the access token is malformed", error="invalid_token")
    return token
