"""The error codes of events and webhooks (see core.errors)."""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import ErrorCode

EVENTS_ERRORS: Final = (
    ErrorCode("invalid_url", 400, "A webhook URL is malformed or not allowed", ("url",)),
    ErrorCode(
        "invalid_enabled_events", 400, "A webhook event type is unknown", ("enabled_events",)
    ),
    ErrorCode("invalid_cursor", 400, "A pagination cursor names nothing"),
    # Raised to the library's and the worker's callers (a secret to verify with, the
    # dispatcher's settings), not by a route.
    ErrorCode("invalid_secret", 400, "A webhook secret is malformed"),
    ErrorCode("invalid_dispatcher_config", 400, "A dispatcher setting is out of range"),
)
