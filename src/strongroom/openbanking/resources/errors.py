"""The consent resources' error codes (see core.errors). The OB API answers them as OB error
bodies (api.py maps each to its OB code); the customer's decision (authorise, reject), called
by the consent page, may surface them through the /v1 error handlers: all are declared here.

None carries personal data: they name consents, accounts and fields by id or path.
"""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import ErrorCode, InvalidRequest, NotFound, StrongroomError

OB_RESOURCES_ERRORS: Final = (
    ErrorCode(
        "consent_forbidden",
        403,
        "The consent is another client's: only the client that created a consent reads, "
        "uses or deletes it",
    ),
    ErrorCode(
        "consent_not_in_force",
        403,
        "The consent is not authorised now (awaiting authorisation, rejected, revoked or expired)",
    ),
    ErrorCode(
        "consent_permission_missing",
        403,
        "The consent's permissions do not open this endpoint",
    ),
    ErrorCode(
        "ob_token_not_allowed",
        403,
        "The access token's grant or scope does not allow this operation",
    ),
    ErrorCode(
        "consent_accounts_invalid",
        400,
        "The selected accounts are not the customer's accounts of the consent's tenant in a "
        "currency Open Banking can express, or are repeated, none or too many",
    ),
    ErrorCode(
        "consent_currency_mismatch",
        400,
        "The amount's currency is not the currency of the consent's account",
    ),
    ErrorCode(
        "consent_request_too_large",
        400,
        "The consent request's Data is larger than this server keeps",
    ),
    ErrorCode(
        "ob_idempotency_key_reused",
        400,
        "The x-idempotency-key was used before with another request",
    ),
    ErrorCode(
        "ob_header_invalid",
        400,
        "A header is malformed: x-fapi-interaction-id is a UUID (RFC 4122), x-idempotency-key "
        "1 to 40 printable characters",
    ),
    ErrorCode(
        "ob_consent_id_mismatch",
        400,
        "Data.ConsentId is not the consent the access token was issued under",
    ),
    ErrorCode("ob_tenant_not_found", 404, "No account provider of that name"),
    ErrorCode(
        "ob_unauthenticated",
        401,
        "No valid DPoP-bound access token (or no authorization server is configured)",
    ),
)


class ConsentForbidden(StrongroomError):
    code = "consent_forbidden"
    status = 403


class ConsentNotInForce(StrongroomError):
    code = "consent_not_in_force"
    status = 403


class PermissionMissing(StrongroomError):
    code = "consent_permission_missing"
    status = 403


class TokenNotAllowed(StrongroomError):
    """RFC 6750's insufficient_scope: a valid token that does not cover the operation."""

    code = "ob_token_not_allowed"
    status = 403


class TenantNotFound(NotFound):
    code = "ob_tenant_not_found"


class Unauthenticated(StrongroomError):
    """What the token check answers when no authorization server is wired in."""

    code = "ob_unauthenticated"
    status = 401


def accounts_invalid(detail: str) -> InvalidRequest:
    return InvalidRequest(detail, param="account_ids", code="consent_accounts_invalid")
