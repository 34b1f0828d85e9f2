"""Open banking's error codes (see core.errors): the OAuth 2.0 codes of the authorization
server (RFC 6749 section 5.2, RFC 7591 section 3.2.2, RFC 9449 sections 5 and 7) and the
refusal of a detached JWS (`x-jws-signature`), which also names its UK Open Banking code.

A detail says which check failed; it never carries a token, a proof, a key, a signature or a
client's claim values. Malformed PKCE parameters and `code_challenge_method=plain` are core's
`invalid_request` (core.errors.InvalidRequest).
"""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import ErrorCode, ServiceUnavailable, StrongroomError

OPENBANKING_JOSE_ERRORS: Final = (
    ErrorCode("invalid_dpop_proof", 400, "The DPoP proof is missing, malformed or invalid"),
    ErrorCode("use_dpop_nonce", 400, "The DPoP proof must carry the server's current nonce"),
    ErrorCode("invalid_client", 401, "Client authentication failed"),
    ErrorCode(
        "invalid_grant",
        400,
        "The authorization grant is invalid, expired, used or does not match its PKCE verifier",
    ),
    ErrorCode(
        "invalid_client_metadata",
        400,
        "A client's metadata (its JWKS) is refused: the detail says which rule it breaks",
    ),
    ErrorCode("invalid_jws_signature", 400, "The detached JWS signature is refused"),
    ErrorCode(
        "replay_cache_full",
        503,
        "The replay cache is full of unexpired entries: retry after Retry-After seconds",
    ),
)


class InvalidDpopProof(StrongroomError):
    """A DPoP proof fails a check of RFC 9449 section 4.3 (or its key is not the key the
    access token is bound to). The token endpoint answers it 400 (RFC 9449 section 5); a
    resource server answers 401 with `WWW-Authenticate: DPoP error="invalid_dpop_proof"`
    (section 7.1): the HTTP layer maps the status."""

    code = "invalid_dpop_proof"
    status = 400


class UseDpopNonce(StrongroomError):
    """The server requires a nonce in DPoP proofs (RFC 9449 section 8) and the proof carries
    none, or not the current one: the answer sends the current one in `DPoP-Nonce`. 400 at the
    token endpoint, 401 at a resource server (mapped by the HTTP layer, as above)."""

    code = "use_dpop_nonce"
    status = 400


class InvalidClient(StrongroomError):
    """The client assertion (private_key_jwt, RFC 7523) is refused."""

    code = "invalid_client"
    status = 401


class InvalidGrant(StrongroomError):
    """The grant is refused; here, a PKCE code verifier that is malformed or does not match
    the code challenge (RFC 7636 section 4.6)."""

    code = "invalid_grant"
    status = 400


class InvalidClientMetadata(StrongroomError):
    """A client's JWKS breaks a rule (a private or symmetric key, a curve or size outside the
    FAPI 2.0 set, a duplicate kid...): nothing was registered."""

    code = "invalid_client_metadata"
    status = 400


# UK Open Banking's codes for a refused x-jws-signature (OB_Internal_Codeset.csv, U015-U018).
OB_SIGNATURE_INVALID: Final = "UK.OBIE.Signature.Invalid"
OB_SIGNATURE_INVALID_CLAIM: Final = "UK.OBIE.Signature.InvalidClaim"
OB_SIGNATURE_MISSING_CLAIM: Final = "UK.OBIE.Signature.MissingClaim"
OB_SIGNATURE_MALFORMED: Final = "UK.OBIE.Signature.Malformed"
OB_SIGNATURE_CODES: Final = frozenset(
    {
        OB_SIGNATURE_INVALID,
        OB_SIGNATURE_INVALID_CLAIM,
        OB_SIGNATURE_MISSING_CLAIM,
        OB_SIGNATURE_MALFORMED,
    }
)


class InvalidJwsSignature(StrongroomError):
    """A detached JWS is refused. `ob_code` is its UK Open Banking error code (the OB error
    body's `ErrorCode`); `param` names the header claim at fault, where there is one (the OB
    error's `Path`)."""

    code = "invalid_jws_signature"
    status = 400

    def __init__(self, detail: str, *, ob_code: str, param: str | None = None) -> None:
        assert ob_code in OB_SIGNATURE_CODES, ob_code
        super().__init__(detail, param=param)
        self.ob_code = ob_code


class ReplayCacheFull(ServiceUnavailable):
    """A replay store holds its maximum of unexpired entries (the in-process cache in all, the
    replay file in the set a key hashes to): a new `jti` cannot be remembered, so it is
    refused rather than forgetting one that could then be replayed."""

    code = "replay_cache_full"
