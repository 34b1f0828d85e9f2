"""The server's RFC 9457 problems as typed exceptions.

Every error is an `ApiError` with the problem's stable `code`; its class says what kind of
failure it is, by `code` where a code has a class of its own and by HTTP status otherwise. A
code the client does not know (the API may add codes within /v1) still gets its status's class,
or plain `ApiError` for a status it does not know either: branch on `code` for the details.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

# How much of a body that is not a problem (a proxy's HTML page, say) an error keeps.
_RAW_DETAIL_CHARS_MAX: Final = 200


class ApiError(Exception):
    """An RFC 9457 problem answered by the server (`code`, `status`, `detail`, `param`,
    `request_id`), and the `Retry-After` seconds where the answer carried one."""

    def __init__(
        self,
        status: int,
        problem: Mapping[str, Any],
        *,
        retry_after_s: float | None = None,
    ) -> None:
        self.status = status
        self.code = str(problem.get("code", "unknown"))
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", ""))
        param = problem.get("param")
        self.param = str(param) if param is not None else None
        request_id = problem.get("request_id")
        self.request_id = str(request_id) if request_id is not None else None
        self.retry_after_s = retry_after_s
        self.problem = dict(problem)
        super().__init__(f"{status} {self.code}: {self.detail}")


class ApiConnectionError(ApiError):
    """No answer came: the server could not be reached (refused, timed out, connection lost),
    after the client's retries. `status` is 0 and `code` is `connection_error`; the request may
    or may not have been carried out: retry it with the same Idempotency-Key."""

    def __init__(self, base_url: str, cause: BaseException) -> None:
        super().__init__(
            0,
            {
                "code": "connection_error",
                "detail": f"no answer from {base_url} ({type(cause).__name__})",
            },
        )


class InvalidRequestError(ApiError):
    """400 (and 405, 413, 415): the request is malformed, nothing was written. Retrying it
    unchanged gets the same answer."""


class AuthenticationError(ApiError):
    """401 `unauthenticated`: no API key, or not a valid one."""


class PermissionDeniedError(ApiError):
    """403 `insufficient_scope`: the key lacks the scope the route needs."""


class NotFoundError(ApiError):
    """404 `not_found`: no such object for this tenant (another tenant's included)."""


class ConflictError(ApiError):
    """409: the request conflicts with the current state (`conflict`, `asset_exists`,
    `idempotency_key_in_use`)."""


class IdempotencyError(ApiError):
    """A problem with the request's Idempotency-Key (in use, reused, malformed)."""


class IdempotencyKeyInUseError(ConflictError, IdempotencyError):
    """409 `idempotency_key_in_use`: a request with this key is still being processed. The
    client retries it (bounded); retry later to get the first request's answer."""


class IdempotencyKeyReusedError(IdempotencyError):
    """422 `idempotency_key_reused`: the key was used with another request; use a new key."""


class InvalidIdempotencyKeyError(InvalidRequestError, IdempotencyError):
    """400 `invalid_idempotency_key`: not 1 to 255 printable characters."""


class LedgerRefusedError(ApiError):
    """422: the ledger refused the transfer and wrote nothing. `result` is the refusal
    (`insufficient_funds`, `pending_transfer_already_posted`, a gate's own code...): the same
    string as `code` and as `ledger.model.TransferResult` values."""

    @property
    def result(self) -> str:
        return self.code


class GateUnavailableError(LedgerRefusedError):
    """422 `gate_unavailable`: a check the transfer must pass could not decide in time, so
    it was not posted. Retry later."""


class CaseNotOpenError(ConflictError):
    """409 `case_not_open`: the case was already decided or closed, or its transfer was
    posted or voided elsewhere; nothing was written. Read the case to see how it ended."""


class CaseTransferRefusedError(LedgerRefusedError):
    """422 `case_transfer_refused`: the ledger refused to post or void the case's transfer
    (a gate, a limit); the case stays open."""


class DataErasedError(ApiError):
    """410 `data_erased`: the subject's personal data was erased (its data key destroyed);
    it cannot come back."""


class RateLimitedError(ApiError):
    """429 `rate_limited`: over the key's rate; `retry_after_s` says when to try again."""


class ServiceUnavailableError(ApiError):
    """503 (`overloaded`, `database_busy`, ...): nothing was written; retry after
    `retry_after_s` with the same Idempotency-Key."""


class ServerError(ApiError):
    """Another 5xx: the request may or may not have taken effect; retry it with the same
    Idempotency-Key."""


_BY_CODE: Final[Mapping[str, type[ApiError]]] = {
    "idempotency_key_in_use": IdempotencyKeyInUseError,
    "idempotency_key_reused": IdempotencyKeyReusedError,
    "invalid_idempotency_key": InvalidIdempotencyKeyError,
    "gate_unavailable": GateUnavailableError,
    "case_not_open": CaseNotOpenError,
    "case_transfer_refused": CaseTransferRefusedError,
}

_BY_STATUS: Final[Mapping[int, type[ApiError]]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: InvalidRequestError,
    409: ConflictError,
    410: DataErasedError,
    413: InvalidRequestError,
    415: InvalidRequestError,
    431: InvalidRequestError,
    # Every other 422 is a refusal: the ledger's own, or an installed gate's code.
    422: LedgerRefusedError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def error_class(status: int, code: str) -> type[ApiError]:
    """The class of the problem: by `code` first, then by status; ApiError when neither is
    known."""
    found = _BY_CODE.get(code) or _BY_STATUS.get(status)
    if found is not None:
        return found
    return ServerError if status >= 500 else ApiError


def raw_problem(text: str) -> dict[str, Any]:
    """What an error keeps of an answer that is not a problem document."""
    return {"code": "http_error", "detail": text[:_RAW_DETAIL_CHARS_MAX]}


def error_from(
    status: int, problem: Mapping[str, Any], *, retry_after_s: float | None = None
) -> ApiError:
    """The typed exception of an answer."""
    cls = error_class(status, str(problem.get("code", "unknown")))
    return cls(status, problem, retry_after_s=retry_after_s)
