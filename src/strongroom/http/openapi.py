"""The OpenAPI document, made true to the wire and useful to SDK generators.

FastAPI writes the document from the routes; `finish` then adds what no route signature says:
- operationIds that make SDK method names: the camelCase of each route's name
  (`create_transfer` -> `createTransfer`), unique (`operation_id`);
- `Idempotency-Key` on every POST, with its semantics;
- each operation's own error codes: the route declares the codes it answers (`error_codes(...)`
  in its `openapi_extra`), the layers every request crosses add theirs (authentication, rate
  limit, idempotency, body limit), and each error status lists its codes (in its description and
  in `x-error-codes`), every one of them in the app's error catalogue;
- bearer authentication on every /v1 operation;
- `application/problem+json` bodies for errors, and the answers a webhook receiver gives.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, Final

from fastapi.routing import APIRoute

from strongroom.core.errors import ErrorCatalogue
from strongroom.core.limits import IDEMPOTENCY_KEY_LENGTH_MAX, IDEMPOTENCY_RETENTION_S
from strongroom.http.errors import PROBLEM_JSON

# The extension naming an operation's error codes (on the operation: all of them; on each error
# response: those of its status).
ERROR_CODES: Final = "x-error-codes"
CAMEL_CASE: Final = re.compile(r"[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*")

# Codes any /v1 operation can answer, from the layers a request crosses before its route: the
# body limit (413, 431 for a head over its cap, and 400 for a NUL anywhere), authentication,
# the scope check, the rate limit and the validation of parameters; and 500 for a bug.
V1_ERRORS: Final = (
    "invalid_request",
    "request_too_large",
    "request_headers_too_large",
    "unauthenticated",
    "insufficient_scope",
    "rate_limited",
    "internal_error",
)
# A POST's, from the body limit (a body that is not JSON) and the Idempotency-Key layer; with a
# JSON body, a malformed one too. Every write may find the SQLite writer lock busy.
POST_ERRORS: Final = (
    "unsupported_media_type",
    "invalid_idempotency_key",
    "idempotency_key_in_use",
    "idempotency_key_reused",
)
BODY_ERRORS: Final = ("invalid_json",)
WRITE_ERRORS: Final = ("database_busy",)

# Statuses whose answers carry Retry-After: always (429, 503), or for some codes (409).
_RETRY_AFTER_REQUIRED: Final = frozenset({"429", "503"})
_RETRY_AFTER_SOMETIMES: Final = frozenset({"409"})

IDEMPOTENCY_KEY_PARAMETER: Final = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes the request safe to retry: a unique string you choose per request (a UUID). "
        "Keys are scoped to the tenant (any of its API keys) and remembered for "
        f"{IDEMPOTENCY_RETENTION_S // 3600} hours with the request's method, path and body. "
        "The same key with the same request answers what the first attempt answered "
        "(`Idempotent-Replayed: true`), and nothing is done twice, even when the first "
        "attempt failed with a 5xx or the server crashed under it: the retry finds what it "
        "committed. The same key with another request is a 422 `idempotency_key_reused`; "
        "while an attempt still holds the key, a 409 `idempotency_key_in_use` with "
        "`Retry-After`. An attempt whose server died holds its key for at most one lease "
        "(STRONGROOM_IDEMPOTENCY_LEASE_S)."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_LENGTH_MAX},
}
_REPLAYED_HEADER: Final = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer of an earlier attempt",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
_RETRY_AFTER_HEADER: Final = {
    "description": "Seconds to wait before retrying (with the same Idempotency-Key)",
    "schema": {"type": "integer", "minimum": 1},
}


# Set by error_codes(..., gates=True) on a route that runs the transfer pipeline: it answers
# the codes of the gates installed (risk, screening...) too, whichever they are.
_GATES: Final = "x-strongroom-gates"


def error_codes(*codes: str | Iterable[str], gates: bool = False) -> dict[str, Any]:
    """A route's `openapi_extra` naming the error codes it answers itself, besides the layers'
    (V1_ERRORS and, for writes, POST_ERRORS...): `openapi_extra=error_codes("not_found", ...)`.
    `gates`: the route runs the transfer pipeline, so the installed gates' codes are its too."""
    found: set[str] = set()
    for item in codes:
        found.update([item] if isinstance(item, str) else item)
    extra: dict[str, Any] = {ERROR_CODES: sorted(found)}
    if gates:
        extra[_GATES] = True
    return extra


def operation_id(route: APIRoute) -> str:
    """The camelCase of the route's name: `list_accounts` -> `listAccounts`. FastAPI's
    `generate_unique_id_function`; a route's own `operation_id=` takes precedence."""
    head, *rest = route.name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def finish(
    document: dict[str, Any], catalogue: ErrorCatalogue, gate_codes: Sequence[str] = ()
) -> dict[str, Any]:
    """The document FastAPI generated, completed (see the module's docstring). Asserts what
    must hold: camelCase unique operationIds, every code in the catalogue. `gate_codes`: the
    codes of the installed gates, answered by the routes that run the transfer pipeline."""
    document.setdefault("components", {})["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "sk_... (an API key)"}
    }
    seen: dict[str, str] = {}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            op_id = operation.get("operationId", "")
            assert CAMEL_CASE.fullmatch(op_id), f"{where}: operationId {op_id!r} is not camelCase"
            assert op_id not in seen, f"{where} and {seen[op_id]} share operationId {op_id}"
            seen[op_id] = where
            if not path.startswith("/v1/"):
                continue
            operation["security"] = [{"apiKey": []}]
            codes = _codes_of(operation, method) + _bound_codes(document, operation, catalogue)
            if operation.pop(_GATES, False):
                codes += list(gate_codes)
            codes = sorted(set(codes))
            if method == "post":
                operation.setdefault("parameters", []).append(dict(IDEMPOTENCY_KEY_PARAMETER))
                for status, answer in operation["responses"].items():
                    if status.startswith("2"):
                        answer.setdefault("headers", {}).update(_REPLAYED_HEADER)
            _document_errors(operation, codes, catalogue, where)
    for name, item in document.get("webhooks", {}).items():
        for operation in item.values():
            op_id = operation.get("operationId", "")
            assert CAMEL_CASE.fullmatch(op_id), f"webhook {name}: operationId {op_id!r}"
            assert op_id not in seen, f"webhook {name} and {seen[op_id]} share {op_id}"
            seen[op_id] = f"webhook {name}"
            # What a receiver answers: a status, no body the server reads; FastAPI adds a 422
            # for its own validation, which a receiver does not give.
            operation["responses"].pop("422", None)
            for answer in operation["responses"].values():
                answer.pop("content", None)
    schemas = document.get("components", {}).get("schemas", {})
    assert "Problem" in schemas, "the routers' responses name the Problem model"
    # FastAPI's own validation answers, replaced everywhere above: every error is a Problem.
    if "#/components/schemas/HTTPValidationError" not in json.dumps(document):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return document


def _codes_of(operation: dict[str, Any], method: str) -> list[str]:
    codes = set(operation.get(ERROR_CODES, ())) | set(V1_ERRORS)
    if method in ("post", "put", "patch", "delete"):
        codes.update(WRITE_ERRORS)
    if method == "post":
        codes.update(POST_ERRORS)
    if "requestBody" in operation:
        codes.update(BODY_ERRORS)
    return sorted(codes)


def _bound_codes(
    document: dict[str, Any], operation: dict[str, Any], catalogue: ErrorCatalogue
) -> list[str]:
    """The codes that the operation's length bounds answer when broken: a field's own
    (ErrorCatalogue.code_for_field: `invalid_id` for an id...), by the names of its bounded
    parameters and body members."""
    names: set[str] = set()
    for parameter in operation.get("parameters", []):
        if _bounded(document, parameter.get("schema", {})):
            names.add(parameter["name"])
    for media in operation.get("requestBody", {}).get("content", {}).values():
        _bounded_members(document, media.get("schema", {}), names, set())
    codes = (catalogue.code_for_field(name) for name in names)
    return [code for code in codes if code is not None]


def _resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if not ref.startswith("#/components/schemas/"):
        return schema
    found: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def _options(document: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolved(document, schema)
    found = [schema]
    for option in schema.get("anyOf", []) + schema.get("allOf", []):
        found += _options(document, option)
    return found


_LENGTH_BOUNDS: Final = frozenset({"minLength", "maxLength", "minItems", "maxItems"})


def _bounded(document: dict[str, Any], schema: dict[str, Any]) -> bool:
    for option in _options(document, schema):
        if _LENGTH_BOUNDS & set(option):
            return True
        if option.get("type") == "array" and _bounded(document, option.get("items", {})):
            return True
    return False


def _bounded_members(
    document: dict[str, Any], schema: dict[str, Any], names: set[str], seen: set[int]
) -> None:
    for option in _options(document, schema):
        if id(option) in seen:
            continue
        seen.add(id(option))
        for name, member in option.get("properties", {}).items():
            if _bounded(document, member):
                names.add(name)
            _bounded_members(document, member, names, seen)
        if option.get("type") == "array":
            _bounded_members(document, option.get("items", {}), names, seen)


def _document_errors(
    operation: dict[str, Any], codes: list[str], catalogue: ErrorCatalogue, where: str
) -> None:
    """Replaces FastAPI's error answers with one per status the operation can answer."""
    responses: dict[str, Any] = operation["responses"]
    for key in [k for k in responses if k[0] in "45"]:
        del responses[key]
    by_status: dict[int, list[str]] = {}
    for code in codes:
        assert code in catalogue, f"{where} declares {code}, which no domain declares"
        by_status.setdefault(catalogue[code].status, []).append(code)
    operation[ERROR_CODES] = codes
    for status, found in sorted(by_status.items()):
        key = str(status)
        by_title: dict[str, list[str]] = {}
        for code in found:
            by_title.setdefault(catalogue[code].title, []).append(code)
        lines = "\n".join(
            f"- {', '.join(f'`{c}`' for c in names)}: {title}" for title, names in by_title.items()
        )
        answer: dict[str, Any] = {
            "description": f"A problem (RFC 9457) whose `code` is one of:\n{lines}",
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            ERROR_CODES: found,
        }
        if key in _RETRY_AFTER_REQUIRED or key in _RETRY_AFTER_SOMETIMES:
            header = dict(_RETRY_AFTER_HEADER, required=key in _RETRY_AFTER_REQUIRED)
            answer["headers"] = {"Retry-After": header}
        responses[key] = answer
