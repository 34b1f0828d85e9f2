"""RFC 9457 problem details. Every `code` a client can see is in the app's ErrorCatalogue
(`app.state.errors`), which the composition root collects from each domain's declarations."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from strongroom.core import clock
from strongroom.core.errors import (
    ErrorCatalogue,
    ErrorCode,
    ServiceUnavailable,
    StrongroomError,
    echo,
    oauth_text,
)
from strongroom.core.limits import ERROR_DETAIL_CHARS_MAX, ERROR_PARAM_CHARS_MAX

log = logging.getLogger("strongroom.http")

PROBLEM_JSON = "application/problem+json"

# The HTTP layer's own codes; every domain declares its own (core.errors.ErrorCatalogue).
HTTP_ERRORS: Final = (
    ErrorCode("invalid_json", 400, "The body is not valid JSON"),
    ErrorCode(
        "invalid_timestamp",
        400,
        "A timestamp is not RFC 3339",
        ("effective_at", "as_of", "created_after", "created_before", "from", "to"),
    ),
    ErrorCode("metrics_token_required", 401, "The metrics token is required"),
    ErrorCode("method_not_allowed", 405, "Method not allowed"),
    ErrorCode("request_too_large", 413, "The request body is too large"),
    ErrorCode("unsupported_media_type", 415, "The body must be application/json"),
    ErrorCode("request_headers_too_large", 431, "The request's headers are too large"),
    ErrorCode("internal_error", 500, "Internal error"),
)


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


time_param = clock.time_param  # the one RFC 3339 parser of requests (and of the CLI)


def problem_body(
    catalogue: ErrorCatalogue,
    code: str,
    detail: str,
    request_id: str | None,
    param: str | None = None,
) -> tuple[int, bytes]:
    """(status, body) of the problem answering `code`, as the catalogue declares it. The
    detail and the param are clipped (ERROR_DETAIL_CHARS_MAX, ERROR_PARAM_CHARS_MAX), so that
    no error sends back more than a short prefix of an input, whichever code built it."""
    error = catalogue[code]
    detail = _clip(detail, ERROR_DETAIL_CHARS_MAX)
    body: dict[str, Any] = {
        "type": f"urn:strongroom:error:{code}",
        "title": error.title,
        "status": error.status,
        "detail": detail,
        "code": code,
        "request_id": request_id,
    }
    if param is not None:
        body["param"] = _clip(param, ERROR_PARAM_CHARS_MAX)
    return error.status, json.dumps(body).encode()


def _clip(text: str, chars_max: int) -> str:
    return text if len(text) <= chars_max else text[: chars_max - 3] + "..."


# A separate API's answer to a refusal the HTTP layer makes on one of its paths (a head or
# body too large, a body not JSON, a NUL, an unmatched route's 404 or 405, a 500): (the ASGI
# scope, status, code, detail) -> (status, headers, body). Its clients read its own error
# format, not RFC 9457; build_api's `separate_apis` names each by path prefix.
RefusalRenderer = Callable[[Mapping[str, Any], int, str, str], tuple[int, dict[str, str], bytes]]


def separate_renderer(scope: Mapping[str, Any]) -> RefusalRenderer | None:
    """The renderer of the separate API whose prefix `scope`'s path has, if any."""
    state = getattr(scope.get("app"), "state", None)
    table: Mapping[str, RefusalRenderer] = getattr(state, "separate_apis", None) or {}
    path = str(scope.get("path", ""))
    return next((r for prefix, r in table.items() if path.startswith(prefix)), None)


def problem(
    request: Request,
    code: str,
    detail: str,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    status, body = problem_body(catalogue_of(request), code, detail, request_id_of(request), param)
    renderer = separate_renderer(request.scope)
    if renderer is not None:
        status, own, body = renderer(request.scope, status, code, detail)
        return Response(body, status_code=status, headers={**(headers or {}), **own})
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def catalogue_of(request: Request) -> ErrorCatalogue:
    catalogue: ErrorCatalogue = request.app.state.errors
    return catalogue


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def strongroom_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StrongroomError)
    if exc.code not in catalogue_of(request):
        # A code no domain declared is a bug: the client gets no half-explained answer.
        log.error(
            "undeclared error code %s", exc.code, extra={"request_id": request_id_of(request)}
        )
        return problem(request, "internal_error", "an internal error occurred")
    headers = retry_after(exc) if isinstance(exc, ServiceUnavailable) else None
    return problem(request, exc.code, exc.detail, param=exc.param, headers=headers)


def retry_after(exc: ServiceUnavailable) -> dict[str, str]:
    """RFC 9110's Retry-After, in whole seconds."""
    return {"Retry-After": str(exc.retry_after_s)}


# A run of 8 or more digits (spaces or dashes between them allowed) in a name the client
# chose: it may be a card number or a national id sent as a member's name, and is not echoed.
_LONG_DIGITS = re.compile(r"\d(?:[ -]?\d){7,}")


def _name(part: Any) -> str:
    return echo(_LONG_DIGITS.sub("<digits>", str(part)))


def _param_of(loc: tuple[Any, ...]) -> str:
    """`transfers[3].ledger_id` of pydantic's location; each name in it is clipped (an unknown
    member's name, a metadata key: they come from the client) and long runs of digits in it
    are not echoed."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{_name(p)}" if out else _name(p))
    return out or "body"


# pydantic's error types of a length bound (a string's, a list's), answered with the code a
# domain declared for the field (ErrorCode.fields), if any.
_LENGTH_ERRORS = frozenset({"string_too_short", "string_too_long", "too_short", "too_long"})


# -- OAuth 2.0 error bodies -------------------------------------------------------------------
# The authorization server's endpoints (openbanking/authz/api.py) answer errors as OAuth 2.0
# does (RFC 6749 section 5.2, RFC 9126 section 2.3), not as problems: {"error": code,
# "error_description": detail}, application/json. The codes are still the catalogue's, with
# the status each is declared with.


def oauth_error(
    request: Request, exc: StrongroomError, headers: dict[str, str] | None = None
) -> Response:
    """The OAuth error answering `exc`: its code as `error`, its detail (clipped) as
    `error_description`; Retry-After for a ServiceUnavailable. A code no domain declared is a
    bug: `server_error` (RFC 6749 section 4.1.2.1), 500."""
    catalogue = catalogue_of(request)
    if exc.code not in catalogue:
        log.error(
            "undeclared error code %s", exc.code, extra={"request_id": request_id_of(request)}
        )
        body = {"error": "server_error", "error_description": "an internal error occurred"}
        return Response(json.dumps(body).encode(), status_code=500, media_type="application/json")
    all_headers = dict(headers or {})
    if isinstance(exc, ServiceUnavailable):
        all_headers.update(retry_after(exc))
    body = {
        "error": exc.code,
        "error_description": oauth_text(_clip(exc.detail, ERROR_DETAIL_CHARS_MAX)),
    }
    return Response(
        json.dumps(body).encode(),
        status_code=catalogue[exc.code].status,
        media_type="application/json",
        headers=all_headers,
    )


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    loc = tuple(first.get("loc", ()))
    param = _param_of(loc)
    kind = str(first.get("type", ""))
    code = "invalid_request"
    metadata = _metadata_refusal(loc, kind)
    if metadata is not None:
        # As the ledger's own check answers it (ledger.model.canonical_metadata), not in
        # pydantic's words for the union of value types it tried.
        param, detail = metadata
        return problem(request, "invalid_metadata", detail, param=param)
    if kind == "json_invalid":
        code, param = "invalid_json", "body"
    elif param.endswith("amount") and kind in ("int_type", "int_parsing", "int_from_float"):
        code = "amount_not_integer"
    elif "payment" in loc and kind not in _NOT_A_VALUE:
        # A payment's field out of its bounds (a payee of 129 characters...): as the ledger's
        # own check of a payment answers it (ledger.model.validate_payment).
        code = "invalid_payment"
    elif kind in _LENGTH_ERRORS:
        names = [p for p in first.get("loc", ()) if isinstance(p, str)]
        declared = catalogue_of(request).code_for_field(names[-1]) if names else None
        code = declared or "invalid_request"
    # pydantic's messages name the rule broken, not the input (which is never sent back).
    message = str(first.get("msg", "invalid"))
    return problem(request, code, f"{param}: {message}", param=param)


# pydantic's error types that are no refusal of a value given: a member the body takes none
# of, or one it needs and lacks.
_NOT_A_VALUE: Final = frozenset({"extra_forbidden", "missing"})


def _metadata_refusal(loc: tuple[Any, ...], kind: str) -> tuple[str, str] | None:
    """(param, detail) when pydantic refused a `metadata` member's value (a float, an object,
    a list...) or a `metadata` that is no object: `metadata[key]` as the ledger names it. None
    for anything else, such as a `metadata` member where the body allows none."""
    if "metadata" not in loc or kind in _NOT_A_VALUE:
        return None
    at = loc.index("metadata")
    head = _param_of(loc[: at + 1])
    rest = loc[at + 1 :]
    if rest and isinstance(rest[0], str):
        param = f"{head}[{_name(rest[0])}]"
        return param, f"{param} must be a string, integer, boolean or null"
    return head, f"{head} must be an object of strings, integers, booleans and nulls"


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
        exc.status_code, "invalid_request"
    )
    headers = {"Allow": _allowed(request)} if exc.status_code == 405 else None
    return problem(request, code, str(exc.detail), headers=headers)


_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed(request: Request) -> str:
    """A 405's Allow (RFC 9110 section 15.5.6): every method some route of the app takes at
    this path, asked of the routes as a request would (Starlette names only the methods of
    the first route that matched the path)."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


async def unencodable_text_handler(request: Request, exc: Exception) -> Response:
    """Text with a lone surrogate cannot be stored in any database column."""
    return problem(request, "invalid_request", "text must be valid Unicode (no lone surrogates)")


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    # The exception is logged by the server; the client gets no internals.
    return problem(request, "internal_error", "an internal error occurred")
