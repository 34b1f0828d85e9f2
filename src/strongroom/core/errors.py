"""Expected failures a client sees. Each has a stable snake_case `code` and an HTTP status.

Bugs are asserts; ledger refusals are result values (`ledger.model.TransferResult`), not these.
Messages never carry secrets, card numbers or personal data.
"""

from __future__ import annotations


class StrongroomError(Exception):
    """Base of every expected, client-visible failure."""

    code: str = "strongroom_error"
    status: int = 500

    def __init__(self, detail: str, *, param: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.param = param

    def __str__(self) -> str:
        return f"{self.detail} (param: {self.param})" if self.param else self.detail


class InvalidRequest(StrongroomError):
    """The input is malformed: nothing was written."""

    code = "invalid_request"
    status = 400

    def __init__(self, detail: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(detail, param=param)
        if code is not None:
            self.code = code


class NotFound(StrongroomError):
    code = "not_found"
    status = 404


class Conflict(StrongroomError):
    code = "conflict"
    status = 409


class SchemaOutOfDate(StrongroomError):
    code = "schema_out_of_date"
    status = 503


class ServiceUnavailable(StrongroomError):
    """The server cannot take the request now and wrote nothing: retry after `retry_after_s`
    seconds (sent as the `Retry-After` header), with the same `Idempotency-Key`. Raise one
    of the subclasses: each names its cause with its own code."""

    status = 503

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        assert type(self) is not ServiceUnavailable, "raise a subclass, with its own code"
        assert retry_after_s >= 1
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class Overloaded(ServiceUnavailable):
    """The group-commit queue is full (GROUP_COMMIT_QUEUE_MAX)."""

    code = "overloaded"


class DatabaseBusy(ServiceUnavailable):
    """The SQLite writer lock stayed taken past the writer-lock timeout (another writer, most
    likely of another process, held it)."""

    code = "database_busy"
