"""Events and webhooks: the vocabulary and the pure rules (payloads, backoff). No I/O here."""

from __future__ import annotations

import base64
import binascii
import json
import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from strongroom.core import clock

ALL_EVENTS = "*"
ATTEMPT_ID_PREFIX = "wa_"
# An attempt id encodes an event id, an endpoint id (64 characters at most each) and a number.
ATTEMPT_ID_LENGTH_MAX = 256


class EndpointStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    """Of one event to one endpoint."""

    PENDING = "pending"  # due at next_attempt_at (or in flight, under a lease)
    SUCCEEDED = "succeeded"  # a 2xx answer was recorded
    FAILED = "failed"  # every attempt failed: given up


class AttemptStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RecordResult(StrEnum):
    """What recording a finished attempt did. Ordered by precedence: the first that applies
    is the one reported."""

    DELIVERY_GONE = "delivery_gone"  # its endpoint was deleted meanwhile: nothing recorded
    LEASE_LOST = "lease_lost"  # recorded; another dispatcher took the delivery over
    SETTLED = "settled"  # recorded, and the delivery's state settled by this attempt


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    id: str
    ledger_id: str
    type: str
    data: str  # JSON text, sent verbatim
    created_at: int

    def payload(self) -> bytes:
        """The webhook body, the same bytes on every attempt: Standard Webhooks' envelope
        (`type`, `timestamp`, `data`) with the event id."""
        head = json.dumps(
            {"id": self.id, "type": self.type, "timestamp": clock.format_us(self.created_at)},
            separators=(",", ":"),
        )
        return f'{head[:-1]},"data":{self.data}}}'.encode()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "event",
            "type": self.type,
            "ledger_id": self.ledger_id or None,  # '': an event of no ledger (a customer's)
            "seq": self.seq,
            "data": json.loads(self.data),
            "created_at": clock.format_us(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    tenant_id: str
    url: str
    secret: str  # whsec_...; never in to_dict(), logs or errors
    enabled_events: tuple[str, ...] | None  # None: every type ("*")
    status: EndpointStatus
    failure_count: int  # consecutive failed attempts
    created_at: int
    updated_at: int

    def subscribes(self, event_type: str) -> bool:
        return self.enabled_events is None or event_type in self.enabled_events

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "webhook_endpoint",
            "tenant_id": self.tenant_id,
            "url": self.url,
            "enabled_events": (
                [ALL_EVENTS] if self.enabled_events is None else list(self.enabled_events)
            ),
            "status": self.status.value,
            "failure_count": self.failure_count,
            "created_at": clock.format_us(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """The state of one event's delivery to one endpoint."""

    event_id: str
    endpoint_id: str
    status: DeliveryStatus
    attempts: int  # attempts started (claimed), including one in flight
    next_attempt_at: int
    lease_until: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Attempt:
    """One recorded attempt. Attempt numbers are given when an attempt is claimed, so an
    attempt cut short by a crash leaves a gap in the numbers rather than a row."""

    event_id: str
    endpoint_id: str
    attempt: int
    status: AttemptStatus
    response_status: int | None
    error: str | None
    duration_ms: int
    next_attempt_at: int | None  # when the next attempt is due; None: no further attempt
    created_at: int

    @property
    def id(self) -> str:
        return attempt_id(self.event_id, self.endpoint_id, self.attempt)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "webhook_attempt",
            "event_id": self.event_id,
            "endpoint_id": self.endpoint_id,
            "attempt": self.attempt,
            "status": self.status.value,
            "response_status": self.response_status,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "next_attempt_at": (
                None if self.next_attempt_at is None else clock.format_us(self.next_attempt_at)
            ),
            "created_at": clock.format_us(self.created_at),
        }


def attempt_id(event_id: str, endpoint_id: str, attempt: int) -> str:
    """The id of an attempt: its primary key (event, endpoint, number), encoded. Opaque to
    clients, stable, and decoded again when it comes back as a cursor, so attempts need no
    id column."""
    assert ":" not in event_id, event_id
    assert ":" not in endpoint_id, endpoint_id
    assert attempt >= 1
    key = f"{event_id}:{endpoint_id}:{attempt}".encode()
    return ATTEMPT_ID_PREFIX + base64.urlsafe_b64encode(key).decode().rstrip("=")


def parse_attempt_id(text: str) -> tuple[str, str, int] | None:
    """(event id, endpoint id, attempt number) of an id attempt_id() made; None for anything
    else (only the canonical spelling of an id is accepted)."""
    if len(text) > ATTEMPT_ID_LENGTH_MAX or not text.startswith(ATTEMPT_ID_PREFIX):
        return None
    encoded = text[len(ATTEMPT_ID_PREFIX) :]
    try:
        key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    parts = key.split(":")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        return None
    event_id, endpoint_id, number = parts
    # Digits only, no leading zero, and few enough to fit the column (an INTEGER).
    if not (number.isascii() and number.isdigit()) or number[0] == "0" or len(number) > 9:
        return None
    attempt = int(number)
    if attempt_id(event_id, endpoint_id, attempt) != text:
        return None
    return event_id, endpoint_id, attempt


def backoff_ms(attempt: int, base_ms: int, max_ms: int, rng: random.Random) -> int:
    """Delay before the attempt after `attempt` (1-based): base * 2^(attempt-1), capped at
    max_ms, then "equal jitter": a uniform draw from the upper half, so retries of many
    deliveries spread out but none comes back sooner than half the schedule."""
    assert attempt >= 1
    assert 0 < base_ms <= max_ms
    delay = min(max_ms, base_ms << min(attempt - 1, 40))
    return delay - rng.randrange(delay // 2 + 1)


def response_succeeded(status: int) -> bool:
    return 200 <= status < 300


def response_disables(status: int) -> bool:
    """410 Gone: the receiver says the endpoint is gone for good (Standard Webhooks)."""
    return status == 410


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one retention pass deleted (events/retention in EventService.prune)."""

    events: int = 0
    deliveries: int = 0  # settled delivery states of the pruned events
    attempts: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(
            self.events + other.events,
            self.deliveries + other.deliveries,
            self.attempts + other.attempts,
        )
