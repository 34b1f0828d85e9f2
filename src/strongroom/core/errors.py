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
