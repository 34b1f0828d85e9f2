"""What the sync and the async client share, none of it doing I/O: a request as a value
(`Call`), a listing as a chain of calls (`Paged`), the retry policy, the parsing of answers and
the configuration from the environment. The clients only send what these describe."""

from __future__ import annotations

import email.utils
import functools
import os
import secrets
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

import strongroom
from strongroom.client.errors import ApiError, error_from, raw_problem

M = TypeVar("M")
L = TypeVar("L")
T = TypeVar("T")
B = TypeVar("B", bound=BaseModel)

API_KEY_ENV: Final = "STRONGROOM_API_KEY"
BASE_URL_ENV: Final = "STRONGROOM_BASE_URL"
DEFAULT_BASE_URL: Final = "http://127.0.0.1:8000"
RETRIES_MAX: Final = 3
RETRY_BACKOFF_S: Final = 0.05
# A Retry-After past this is not waited for: the error is raised with `retry_after_s` set.
RETRY_AFTER_MAX_S: Final = 30.0
TIMEOUT_S: Final = 30.0
USER_AGENT: Final = f"strongroom-python/{strongroom.__version__}"


class MissingApiKeyError(ValueError):
    """No API key was given and STRONGROOM_API_KEY is not set."""


@dataclass(frozen=True, slots=True)
class Config:
    base_url: str
    api_key: str = field(repr=False)  # never printed
    timeout_s: float
    retry: RetryPolicy

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "User-Agent": USER_AGENT}


def config(
    base_url: str | None,
    api_key: str | None,
    *,
    timeout_s: float,
    max_retries: int,
    retry_after_max_s: float,
) -> Config:
    """The arguments, else STRONGROOM_BASE_URL and STRONGROOM_API_KEY."""
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
    if not key.strip():
        raise MissingApiKeyError(
            f"no API key: pass api_key=... or set {API_KEY_ENV} "
            "(`strongroom api-keys create` prints one)"
        )
    base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    assert max_retries >= 0
    return Config(
        base_url=base.rstrip("/"),
        api_key=key.strip(),
        timeout_s=timeout_s,
        retry=RetryPolicy(retries_max=max_retries, retry_after_max_s=retry_after_max_s),
    )


# -- a request as a value ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call(Generic[M]):
    """One request and how to read its answer. A POST without an idempotency key gets a fresh
    one when it is sent, kept across its retries."""

    method: str
    path: str
    parse: Callable[[Any], M]
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    idempotency_key: str | None = None

    def with_params(self, **changes: Any) -> Call[M]:
        return replace(self, params={**self.params, **changes})


def segment(value: str | int) -> str:
    """A path parameter, escaped: an id never reaches another route."""
    return quote(str(value), safe="")


def query(params: Mapping[str, Any]) -> dict[str, Any]:
    """Unset parameters left out; booleans as the server reads them."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


@functools.cache
def model(cls: type[B]) -> Callable[[Any], B]:
    """The parser of a response model that ignores fields it does not know: the API may add
    fields within /v1 (docs/versioning.md), and the server's models forbid extra ones."""

    def parse(data: Any) -> B:
        return cls.model_validate(_known(cls, data))

    return parse


@functools.cache
def _fields(cls: type[BaseModel]) -> Mapping[str, Any]:
    """A model's fields by the name they have in JSON, with their types."""
    return {(f.alias or name): f.annotation for name, f in cls.model_fields.items()}


def _known(tp: Any, value: Any) -> Any:
    """`value` without the object keys that `tp` (a model, a list or union of them) does not
    declare, at every depth."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if not isinstance(value, dict):
            return value
        fields = _fields(tp)
        return {k: _known(fields[k], v) for k, v in value.items() if k in fields}
    origin = typing.get_origin(tp)
    if origin is list and isinstance(value, list):
        (item,) = typing.get_args(tp)
        return [_known(item, v) for v in value]
    if origin in (typing.Union, types.UnionType) and isinstance(value, dict):
        for option in typing.get_args(tp):
            if isinstance(option, type) and issubclass(option, BaseModel):
                return _known(option, value)
    return value


# -- listings ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Paged(Generic[L, T]):
    """A listing read page after page: `follow` gives the call of the page after `page` (None
    at the end), `items` what a page yields."""

    first: Call[L]
    follow: Callable[[Call[L], L], Call[L] | None]
    items: Callable[[L], Sequence[T]]

    def next_call(self, call: Call[L], page: L) -> Call[L] | None:
        following = self.follow(call, page)
        if following is not None and following.params == call.params:
            # The server said has_more without a way on: stop rather than loop forever.
            raise RuntimeError(f"the listing {call.path} did not advance: a server bug")
        return following


# -- retries -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Retry:
    delay_s: float


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Transport errors, 5xx and a key still in flight (409 idempotency_key_in_use) are
    retried with exponential backoff; 429 and 503 after their Retry-After, when it is at most
    `retry_after_max_s`. A POST keeps its Idempotency-Key, so a retry never posts twice."""

    retries_max: int = RETRIES_MAX
    backoff_s: float = RETRY_BACKOFF_S
    retry_after_max_s: float = RETRY_AFTER_MAX_S

    def backoff(self, attempt: int) -> Retry | None:
        return Retry(self.backoff_s * 2**attempt) if attempt < self.retries_max else None

    def after(self, error: ApiError, attempt: int) -> Retry | None:
        if attempt >= self.retries_max:
            return None
        if error.status in (429, 503) and error.retry_after_s is not None:
            if error.retry_after_s > self.retry_after_max_s:
                return None
            return Retry(error.retry_after_s)
        if error.status >= 500 or error.code == "idempotency_key_in_use":
            return self.backoff(attempt)
        return None


def retry_after_s(header: str | None, now: datetime | None = None) -> float | None:
    """RFC 9110 Retry-After: delay seconds or an HTTP date."""
    if header is None:
        return None
    text = header.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# -- one exchange: a call's request and the reading of each answer -------------------------


class Exchange(Generic[M]):
    """A call in flight: the request it sends on every attempt, and what each answer means
    (the parsed model, a Retry, or a raised ApiError)."""

    def __init__(self, call: Call[M], policy: RetryPolicy) -> None:
        self.call = call
        self.policy = policy
        headers: dict[str, str] = {}
        if call.method == "POST":
            headers["Idempotency-Key"] = call.idempotency_key or secrets.token_urlsafe(18)
        self.request: dict[str, Any] = {
            "method": call.method,
            "url": call.path,
            "params": query(call.params),
            "headers": headers,
        }
        if call.json is not None:
            self.request["json"] = call.json

    def after_transport_error(self, attempt: int) -> Retry | None:
        return self.policy.backoff(attempt)

    def after_response(self, response: httpx.Response, attempt: int) -> M | Retry:
        if response.status_code < 400:
            return self.call.parse(response.json())
        try:
            problem = response.json()
        except ValueError:
            problem = None
        if not isinstance(problem, dict):
            problem = raw_problem(response.text)
        wait = retry_after_s(response.headers.get("retry-after"))
        error = error_from(response.status_code, problem, retry_after_s=wait)
        retry = self.policy.after(error, attempt)
        if retry is None:
            raise error
        return retry
