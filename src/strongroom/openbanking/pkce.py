"""PKCE (RFC 7636) with S256 only, as FAPI 2.0 requires (Security Profile section 5.3.2.2):
the `plain` method is refused. Pure: no database, no HTTP.

At the pushed authorization request, `check_code_challenge` (refusals: invalid_request, RFC
7636 section 4.4.1); at the token endpoint, `verify_code_verifier` (refusals: invalid_grant,
section 4.6).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Final

from strongroom.core.errors import InvalidRequest
from strongroom.openbanking.errors import InvalidGrant

S256: Final = "S256"
VERIFIER_CHARS_MIN: Final = 43
VERIFIER_CHARS_MAX: Final = 128
CHALLENGE_CHARS: Final = 43  # base64url of a SHA-256 digest, without padding
# RFC 7636 section 4.1: code-verifier = 43*128unreserved, unreserved = ALPHA / DIGIT / - . _ ~
_VERIFIER = re.compile(rf"[A-Za-z0-9\-._~]{{{VERIFIER_CHARS_MIN},{VERIFIER_CHARS_MAX}}}")
_CHALLENGE = re.compile(rf"[A-Za-z0-9_-]{{{CHALLENGE_CHARS}}}")


def s256_challenge(verifier: str) -> str:
    """The S256 code challenge of a verifier: base64url(SHA-256(ASCII(verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_code_challenge(method: str | None, challenge: str | None) -> None:
    """A pushed authorization request's `code_challenge_method` is S256 (plain, absent or
    anything else is refused) and its `code_challenge` is 43 base64url characters."""
    if method != S256:
        raise InvalidRequest(
            "code_challenge_method must be S256 (plain is refused)",
            param="code_challenge_method",
        )
    if challenge is None or not _CHALLENGE.fullmatch(challenge):
        raise InvalidRequest(
            "code_challenge must be the S256 challenge: 43 base64url characters",
            param="code_challenge",
        )


def verify_code_verifier(verifier: str | None, challenge: str) -> None:
    """The token request's `code_verifier` is 43 to 128 unreserved characters and its S256
    challenge equals the authorization's `challenge` (compared in constant time); else
    InvalidGrant."""
    if verifier is None or not _VERIFIER.fullmatch(verifier):
        raise InvalidGrant(
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
            param="code_verifier",
        )
    computed = s256_challenge(verifier).encode("ascii")
    if not hmac.compare_digest(computed, challenge.encode("utf-8")):
        raise InvalidGrant("code_verifier does not match the code challenge", param="code_verifier")
