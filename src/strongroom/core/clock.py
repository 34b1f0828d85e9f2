"""Time as integer microseconds since the Unix epoch (UTC), monotonic within a process."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import GetJsonSchemaHandler
from pydantic_core import CoreSchema

from strongroom.core.errors import InvalidRequest


def now_us() -> int:
    return time.time_ns() // 1_000


class MonotonicClock:
    """Never goes backwards within a process, even if the wall clock does."""

    def __init__(self) -> None:
        self._last_us = 0
        self._lock = threading.Lock()

    def now_us(self) -> int:
        with self._lock:
            t = max(now_us(), self._last_us)
            self._last_us = t
            return t


def to_datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).replace(microsecond=us % 1_000_000)


def from_datetime(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# The last whole second format_us wrote, and its text up to the seconds: a response carries
# two or three timestamps, mostly of the same second (one tuple, replaced whole: thread-safe).
_last_second: tuple[int, str] = (-1, "")


def format_us(us: int) -> str:
    """RFC 3339 in UTC with a Z, microseconds when there are any (as datetime.isoformat
    writes them): "2026-12-07T04:20:00.123456Z", "2026-12-07T04:20:00Z"."""
    global _last_second
    second, micro = divmod(us, 1_000_000)
    cached, text = _last_second
    if second != cached:
        text = to_datetime(second * 1_000_000).isoformat()[:19]
        _last_second = (second, text)
    return f"{text}.{micro:06d}Z" if micro else f"{text}Z"


def parse_timestamp(text: str) -> int:
    """Parse an RFC 3339 timestamp (or a bare integer of microseconds) into epoch microseconds."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        us = int(text)
    else:
        us = from_datetime(datetime.fromisoformat(text.replace("Z", "+00:00")))
    if not 0 <= us <= _MAX_US:
        raise ValueError("a timestamp must lie between 1970 and 9999")
    return us


_MAX_US = from_datetime(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))


def time_param(text: str, param: str) -> int:
    """A request's RFC 3339 time (epoch microseconds), or a 400 `invalid_timestamp` naming
    the parameter (an API query parameter, a CLI option)."""
    try:
        return parse_timestamp(text)
    except ValueError:
        raise InvalidRequest(
            f"{param} must be an RFC 3339 time between 1970 and 9999",
            param=param,
            code="invalid_timestamp",
        ) from None


class _DateTime:
    """Marks text as an RFC 3339 time in the JSON schema (`format: date-time`) and changes
    nothing else: such text is parsed where it is used (time_param), so that a malformed one
    answers `invalid_timestamp`, and a rendered one (format_us) is sent as it is."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        found: dict[str, Any] = handler(schema)
        return {**found, "format": "date-time"}

    def __repr__(self) -> str:
        return "DateTime"


# A time in a request or an answer: RFC 3339 text, `format: date-time` in the OpenAPI document.
Timestamp = Annotated[str, _DateTime()]
