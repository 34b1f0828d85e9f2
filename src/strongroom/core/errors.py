"""Expected failures a client sees. Each has a stable snake_case `code` and an HTTP status.

Bugs are asserts; ledger refusals are result values (`ledger.model.TransferResult`), not these.
Messages never carry secrets, card numbers or personal data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from strongroom.core.limits import ERROR_ECHO_CHARS_MAX


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


def echo(text: str) -> str:
    """Client input quoted in an error's detail: at most ERROR_ECHO_CHARS_MAX characters of
    it, then "...". An error never sends back more than a short prefix of what it refuses."""
    if len(text) <= ERROR_ECHO_CHARS_MAX:
        return text
    return text[:ERROR_ECHO_CHARS_MAX] + "..."


def oauth_text(text: str) -> str:
    """`text` with only the characters RFC 6749 allows in an `error_description` (%x20-21 /
    %x23-5B / %x5D-7E: printable ASCII but `"` and `\\`), others replaced by `?`: safe in an
    OAuth error body and inside a quoted WWW-Authenticate parameter."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)


# -- the catalogue of codes ----------------------------------------------------------------
# Every code a client can see is declared once, by the domain that raises it (code, status,
# title): core here, the HTTP layer in http/errors.py, each domain in its own errors.py. The
# composition root (runtime.py) collects them into one ErrorCatalogue for the error handlers, so
# adding a domain edits no other domain's files.

_SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """`fields`: the request fields (body members, path or query parameters) whose length
    bound, declared in a request model, answers this code when it is broken: `name`, or
    `*_id` for every name that ends so. Others answer `invalid_request`."""

    code: str
    status: int
    title: str
    fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        assert _SNAKE.fullmatch(self.code), f"error code {self.code!r} is not snake_case"
        assert 400 <= self.status <= 599, self.code
        assert self.title, self.code
        assert self.status == 400 or not self.fields, "a field's bound is a 400"


class ErrorCatalogue(Mapping[str, ErrorCode]):
    """The codes of several declarations. A code may be declared by two domains only
    identically (a shared meaning, such as invalid_cursor)."""

    def __init__(self, *declarations: Iterable[ErrorCode]) -> None:
        codes: dict[str, ErrorCode] = {}
        for declaration in declarations:
            for error in declaration:
                known = codes.setdefault(error.code, error)
                assert known == error, f"{error.code} is declared twice, differently"
        self._codes = codes
        self._by_field: dict[str, str] = {}
        self._by_suffix: dict[str, str] = {}
        for error in codes.values():
            for name in error.fields:
                table = self._by_suffix if name.startswith("*") else self._by_field
                known_code = table.setdefault(name.removeprefix("*"), error.code)
                assert known_code == error.code, f"field {name} has two codes"

    def code_for_field(self, name: str) -> str | None:
        """The code that a broken length bound of the request field `name` answers, if a
        domain declared one (ErrorCode.fields)."""
        code = self._by_field.get(name)
        if code is None:
            code = next((c for s, c in self._by_suffix.items() if name.endswith(s)), None)
        return code

    def __getitem__(self, code: str) -> ErrorCode:
        return self._codes[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._codes)

    def __len__(self) -> int:
        return len(self._codes)


CORE_ERRORS: Final = (
    ErrorCode("invalid_request", 400, "The request is malformed"),
    ErrorCode("invalid_limit", 400, "limit is out of range"),
    ErrorCode("amount_not_integer", 400, "Amounts are integers of minor units"),
    ErrorCode("amount_not_positive", 400, "Amounts are positive"),
    ErrorCode("amount_too_large", 400, "Amounts are at most 2^128-1"),
    ErrorCode("invalid_asset_code", 400, "An asset code is malformed", ("asset", "code")),
    ErrorCode("invalid_asset_scale", 400, "An asset scale is out of range"),
    ErrorCode("not_found", 404, "Not found"),
    ErrorCode("conflict", 409, "The request conflicts with the current state"),
    ErrorCode("asset_exists", 409, "The asset exists already"),
    ErrorCode("schema_out_of_date", 503, "The database schema is out of date"),
    ErrorCode("overloaded", 503, "Too many transfers are waiting to be committed"),
    ErrorCode("database_busy", 503, "The database is busy with another process's write"),
)
