"""Events and webhooks: the vocabulary and the pure rules (payloads, backoff). No I/O here."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from strongroom.core import clock

ALL_EVENTS = "*"


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
            "ledger_id": self.ledger_id,
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

    def to_dict(self) -> dict[str, Any]:
        return {
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
