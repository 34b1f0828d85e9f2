"""The error codes of tenants, API keys, authentication, rate limits and idempotency (see
core.errors)."""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import ErrorCode

TENANCY_ERRORS: Final = (
    ErrorCode("invalid_scope", 400, "A scope is unknown"),
    ErrorCode("invalid_tenant_name", 400, "A tenant name is malformed"),
    ErrorCode("invalid_idempotency_key", 400, "An Idempotency-Key is malformed"),
    ErrorCode("unauthenticated", 401, "A valid API key or session is required"),
    ErrorCode("insufficient_scope", 403, "The principal lacks a scope this request needs"),
    ErrorCode("step_up_required", 403, "This action needs a recent step-up (passkey or TOTP)"),
    ErrorCode("tenant_exists", 409, "A tenant of this name exists"),
    ErrorCode("idempotency_key_in_use", 409, "A request with this Idempotency-Key is in flight"),
    ErrorCode("idempotency_key_reused", 422, "The Idempotency-Key was used with another request"),
    ErrorCode("rate_limited", 429, "Too many requests"),
)
