"""RFC 9457 problem details. Every `code` a client can see is listed in ERROR_CODES."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from strongroom.core import clock
from strongroom.core.errors import InvalidRequest, ServiceUnavailable, StrongroomError
from strongroom.ledger.model import AccountResult, TransferResult
from strongroom.tenancy.model import ApiKey, Scope

PROBLEM_JSON = "application/problem+json"

# code -> (HTTP status, title). Ledger refusals (TransferResult) are added below, all 422.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "The request is malformed"),
    "invalid_json": (400, "The body is not valid JSON"),
    "amount_not_integer": (400, "Amounts are integers of minor units"),
    "amount_not_positive": (400, "Amounts are positive"),
    "amount_too_large": (400, "Amounts are at most 2^128-1"),
    "invalid_id": (400, "An id is malformed"),
    "invalid_name": (400, "A name is malformed"),
    "invalid_metadata": (400, "Metadata is malformed"),
    "metadata_too_large": (400, "Metadata is too large"),
    "invalid_metadata_filter": (400, "A metadata filter is malformed"),
    "invalid_legs": (400, "Transfer legs are malformed"),
    "unbalanced_legs": (400, "Debits and credits differ"),
    "duplicate_leg_account": (400, "An account appears in two legs"),
    "invalid_direction": (400, "A direction is 'debit' or 'credit'"),
    "invalid_flags": (400, "Account flags are malformed"),
    "flags_are_mutually_exclusive": (400, "Account flags contradict each other"),
    "invalid_timeout": (400, "timeout_s is out of range"),
    "invalid_asset_code": (400, "An asset code is malformed"),
    "invalid_asset_scale": (400, "An asset scale is out of range"),
    "unknown_asset": (400, "The asset does not exist"),
    "batch_too_large": (400, "Too many items in one request"),
    "invalid_limit": (400, "limit is out of range"),
    "invalid_cursor": (400, "A pagination cursor names nothing"),
    "invalid_version": (400, "A version is out of range"),
    "invalid_timestamp": (400, "A timestamp is not RFC 3339"),
    "invalid_scope": (400, "A scope is unknown"),
    "invalid_url": (400, "A webhook URL is malformed or not allowed"),
    "invalid_enabled_events": (400, "A webhook event type is unknown"),
    "invalid_tenant_name": (400, "A tenant name is malformed"),
    "invalid_idempotency_key": (400, "An Idempotency-Key is malformed"),
    "unauthenticated": (401, "A valid API key is required"),
    "insufficient_scope": (403, "The API key lacks a scope this request needs"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "conflict": (409, "The request conflicts with the current state"),
    "asset_exists": (409, "The asset exists already"),
    "idempotency_key_in_use": (409, "A request with this Idempotency-Key is in flight"),
    "request_too_large": (413, "The request body is too large"),
    "unsupported_media_type": (415, "The body must be application/json"),
    "idempotency_key_reused": (422, "The Idempotency-Key was used with another request"),
    "rate_limited": (429, "Too many requests"),
    "internal_error": (500, "Internal error"),
    "schema_out_of_date": (503, "The database schema is out of date"),
    # A fail-closed gate of the transfer pipeline could not decide within its time budget.
    "gate_unavailable": (422, "A check the transfer must pass is unavailable; retry later"),
    "overloaded": (503, "Too many transfers are waiting to be committed"),
    "database_busy": (503, "The database is busy with another process's write"),
    "unsupported_database": (500, "The database URL is not supported"),
}
for _result in TransferResult:
    if not _result.ok:
        ERROR_CODES[_result.value] = (422, "The ledger refused the transfer")
for _account_result in AccountResult:
    if not _account_result.ok:
        # Shared with transfers' (exists_with_different_ledger_id, ..._metadata): the same
        # meaning, an id that names an object with other content.
        ERROR_CODES.setdefault(_account_result.value, (422, "The account exists with other fields"))


class Problem(BaseModel):
    """An RFC 9457 problem, as every error is answered."""

    model_config = ConfigDict(extra="forbid")
    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None
    param: str | None = None


# The error answers every /v1 route may give, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": text}
    for status, text in (
        (400, "Malformed request"),
        (401, "No valid API key"),
        (403, "Insufficient scope"),
        (404, "Not found"),
        (409, "Conflict"),
        (413, "Body too large"),
        (415, "Not JSON"),
        (422, "Ledger refusal or Idempotency-Key reuse"),
        (429, "Rate limited"),
        (503, "Busy: nothing was written, retry after Retry-After seconds"),
    )
}
ERROR_RESPONSES[503]["headers"] = {
    "Retry-After": {
        "description": "Seconds to wait before retrying (with the same Idempotency-Key)",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


class InsufficientScope(StrongroomError):
    code = "insufficient_scope"
    status = 403


def time_param(text: str, param: str) -> int:
    """A request's RFC 3339 time (epoch microseconds), or a 400 `invalid_timestamp` naming
    the parameter."""
    try:
        return clock.parse_timestamp(text)
    except ValueError:
        raise InvalidRequest(
            f"{param} must be an RFC 3339 time between 1970 and 9999",
            param=param,
            code="invalid_timestamp",
        ) from None


def require_scope(key: ApiKey, scope: Scope) -> None:
    if not key.allows(scope):
        raise InsufficientScope(f"this API key lacks the scope {scope.value}")


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    request_id: str | None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    assert code in ERROR_CODES, code
    body: dict[str, Any] = {
        "type": f"urn:strongroom:error:{code}",
        "title": ERROR_CODES[code][1],
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id,
    }
    if param is not None:
        body["param"] = param
    return Response(json.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def strongroom_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StrongroomError)
    code = exc.code if exc.code in ERROR_CODES else "invalid_request"
    status = ERROR_CODES[code][0] if exc.code in ERROR_CODES else exc.status
    headers = retry_after(exc) if isinstance(exc, ServiceUnavailable) else None
    return problem(
        status,
        code,
        exc.detail,
        request_id=request_id_of(request),
        param=exc.param,
        headers=headers,
    )


def retry_after(exc: ServiceUnavailable) -> dict[str, str]:
    """RFC 9110's Retry-After, in whole seconds."""
    return {"Retry-After": str(exc.retry_after_s)}


def _param_of(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    param = _param_of(tuple(first.get("loc", ())))
    kind = str(first.get("type", ""))
    code = "invalid_request"
    if kind == "json_invalid":
        code, param = "invalid_json", "body"
    elif param.endswith("amount") and kind in ("int_type", "int_parsing", "int_from_float"):
        code = "amount_not_integer"
    message = str(first.get("msg", "invalid"))
    return problem(400, code, f"{param}: {message}", request_id=request_id_of(request), param=param)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
        exc.status_code, "invalid_request"
    )
    status = exc.status_code if code != "invalid_request" else 400
    return problem(status, code, str(exc.detail), request_id=request_id_of(request))


async def unencodable_text_handler(request: Request, exc: Exception) -> Response:
    """Text with a lone surrogate cannot be stored in any database column."""
    return problem(
        400,
        "invalid_request",
        "text must be valid Unicode (no lone surrogates)",
        request_id=request_id_of(request),
    )


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    # The exception is logged by the server; the client gets no internals.
    return problem(
        500, "internal_error", "an internal error occurred", request_id=request_id_of(request)
    )
