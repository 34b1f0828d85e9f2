"""Request and response bodies of the events' and webhooks' HTTP API (pydantic, strict)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from strongroom.core.clock import Timestamp
from strongroom.core.limits import (
    ENABLED_EVENTS_MAX,
    EVENT_TYPE_LENGTH_MAX,
    WEBHOOK_URL_LENGTH_MAX,
)
from strongroom.ledger.schemas import TransferOut


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ------------------------------------------------------------------------------


class EndpointCreate(_In):
    url: str = Field(min_length=1, max_length=WEBHOOK_URL_LENGTH_MAX)
    enabled_events: list[Annotated[str, Field(max_length=EVENT_TYPE_LENGTH_MAX)]] | None = Field(
        default=None, max_length=ENABLED_EVENTS_MAX
    )


class EndpointUpdate(_In):
    enabled: StrictBool = Field(
        description="false: stop deliveries (pending ones wait); true: resume them and forget "
        "the failures that disabled the endpoint"
    )


# -- responses -----------------------------------------------------------------------------


class EndpointOut(_Out):
    id: str
    object: Literal["webhook_endpoint"]
    tenant_id: str
    url: str
    enabled_events: list[str]
    status: Literal["enabled", "disabled"]
    failure_count: int
    created_at: Timestamp
    secret: str = Field(description="whsec_...: verify each delivery's webhook-signature with it")


class EndpointList(_Out):
    object: Literal["list"]
    data: list[EndpointOut]
    has_more: bool


class EndpointDeleted(_Out):
    id: str
    object: Literal["webhook_endpoint"]
    deleted: Literal[True]


class EventOut(_Out):
    id: str
    object: Literal["event"]
    type: str
    ledger_id: str | None  # null for an event of no ledger (a customer's)
    seq: int
    data: dict[str, Any]
    created_at: Timestamp


class EventList(_Out):
    object: Literal["list"]
    data: list[EventOut]
    has_more: bool
    # Where the next page goes on (as `cursor`): a page examines a bounded range of events.
    next_cursor: str | None = None


class AttemptOut(_Out):
    id: str = Field(description="wa_...: opaque and stable; a cursor for the attempts list")
    object: Literal["webhook_attempt"]
    event_id: str
    endpoint_id: str
    attempt: int
    status: Literal["succeeded", "failed"]
    response_status: int | None
    error: str | None
    duration_ms: int
    next_attempt_at: Timestamp | None
    created_at: Timestamp


class AttemptList(_Out):
    object: Literal["list"]
    data: list[AttemptOut]
    has_more: bool


# -- what the server sends -----------------------------------------------------------------


class WebhookEvent(_Out):
    """A webhook delivery's body: Standard Webhooks' envelope, the same bytes on every attempt
    (events.model.Event.payload)."""

    id: str = Field(description="evt_...: the event's id, also the webhook-id header")
    type: str = Field(description="the event type, as the webhook's name says")
    timestamp: Timestamp = Field(description="when the event happened")
    data: TransferOut = Field(description="the transfer as the API renders it, as it was then")


class DomainWebhookEvent(_Out):
    """A delivery of an event of no ledger (a customer's): the same envelope, its data the ids
    of what changed and never personal data."""

    id: str = Field(description="evt_...: the event's id, also the webhook-id header")
    type: str = Field(description="the event type, as the webhook's name says")
    timestamp: Timestamp = Field(description="when the event happened")
    data: dict[str, Any] = Field(description="`id` and `object` of what changed, and the like")
