"""The error codes of the TPP client registry (see core.errors). A refusal names the field
and the rule broken; it never echoes key material. `invalid_name` (the ledger's) and
`invalid_scope` (tenancy's) are shared codes, declared by their domains."""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import ErrorCode, StrongroomError

TPP_ERRORS: Final = (
    ErrorCode(
        "invalid_redirect_uri",
        400,
        "A redirect URI is not an absolute https URI without a fragment (http only for "
        "loopback), or the list is empty, too long or repeats one",
        ("redirect_uris",),
    ),
    ErrorCode("invalid_jwks", 400, "A JWK set or one of its keys is malformed or not allowed"),
    ErrorCode(
        "jwks_private_key",
        400,
        "A JWK set holds private key material: only public keys are registered",
    ),
    ErrorCode("invalid_software_id", 400, "A software id is malformed", ("software_id",)),
    ErrorCode("openbanking_client_disabled", 403, "The open banking client is disabled"),
)


class ClientDisabled(StrongroomError):
    """A disabled client asked for something (the authorization server's lookup)."""

    code = "openbanking_client_disabled"
    status = 403
