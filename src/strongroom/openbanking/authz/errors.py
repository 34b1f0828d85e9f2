"""The authorization server's own error codes (RFC 6749 sections 4.1.2.1 and 5.2, RFC 9101
section 6.2, RFC 6750 section 3.1), beside openbanking.errors' (invalid_client, invalid_grant,
invalid_dpop_proof...) and core's invalid_request. At /oauth2/par and /oauth2/token each is
answered as an OAuth error body, `{"error": code, "error_description": detail}`.

A detail names the check that failed; it never carries a code, a token, a request_uri, a
proof or an assertion.
"""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import ErrorCode, StrongroomError, oauth_text
from strongroom.openbanking.jose import ALGORITHMS

AUTHZ_ERRORS: Final = (
    ErrorCode("unsupported_grant_type", 400, "The grant type is not supported"),
    ErrorCode("unsupported_response_type", 400, "Only response_type=code is supported"),
    # Declared as tenancy declares it for API keys' scopes (one code, one declaration).
    ErrorCode("invalid_scope", 400, "A scope is unknown"),
    ErrorCode(
        "invalid_request_uri",
        400,
        "The request_uri is unknown, expired, used already or another client's",
    ),
    ErrorCode(
        "invalid_token",
        401,
        "The access token or its DPoP proof is refused: WWW-Authenticate names which",
    ),
)


class UnsupportedGrantType(StrongroomError):
    code = "unsupported_grant_type"
    status = 400


class UnsupportedResponseType(StrongroomError):
    code = "unsupported_response_type"
    status = 400


class InvalidScope(StrongroomError):
    code = "invalid_scope"
    status = 400


class InvalidRequestUri(StrongroomError):
    code = "invalid_request_uri"
    status = 400


# What a resource server's 401 may name in WWW-Authenticate (RFC 6750 3.1, RFC 9449 7.1).
TOKEN_ERRORS: Final = frozenset({"invalid_token", "invalid_dpop_proof", "invalid_request"})


class TokenRefused(StrongroomError):
    """A resource request's access token or DPoP proof is refused (ports.TokenCheck): 401,
    with `www_authenticate` for the answer's `WWW-Authenticate` header. `error` is the RFC's
    code it names: `invalid_token` (unknown, expired, revoked, or its consent no longer
    authorised), `invalid_dpop_proof` (the proof fails a check, is replayed or was made with
    another key than the token's), `invalid_request` (a Bearer scheme for a DPoP-bound token),
    or None when the request carries no access token at all (RFC 6750 3.1: no error code)."""

    code = "invalid_token"
    status = 401

    def __init__(self, detail: str, *, error: str | None, param: str | None = None) -> None:
        assert error is None or error in TOKEN_ERRORS, error
        super().__init__(detail, param=param)
        self.error = error

    @property
    def www_authenticate(self) -> str:
        algs = " ".join(ALGORITHMS)
        if self.error is None:
            return f'DPoP algs="{algs}"'
        return (
            f'DPoP error="{self.error}", error_description="{oauth_text(self.detail)}", '
            f'algs="{algs}"'
        )
