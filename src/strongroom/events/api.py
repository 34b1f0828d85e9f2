"""HTTP routes for events (replay) and webhook endpoints, with their delivery attempts.
Another tenant's endpoint or event is a 404, as one that does not exist."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from strongroom.core.idempotency import RANDOM_IDS, Minter, minter_for
from strongroom.core.limits import (
    CURSOR_LENGTH_MAX,
    EVENT_TYPE_LENGTH_MAX,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
)
from strongroom.events.hooks import EventType
from strongroom.events.model import ATTEMPT_ID_LENGTH_MAX
from strongroom.events.schemas import (
    AttemptList,
    DomainWebhookEvent,
    EndpointCreate,
    EndpointDeleted,
    EndpointList,
    EndpointOut,
    EndpointUpdate,
    EventList,
    EventOut,
    WebhookEvent,
)
from strongroom.events.service import EVENT_TYPES, EventService
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.pagination import list_body
from strongroom.http.params import IdPath, OptionalIdQuery
from strongroom.tenancy.access import authorize, require_scope, requires
from strongroom.tenancy.model import Principal, Scope


@dataclass(frozen=True)
class EventsCtx:
    key: Principal
    events: EventService

    ids: Minter = RANDOM_IDS  # derived from the request's Idempotency-Key, if any

    def require(self, scope: Scope) -> None:
        require_scope(self.key, scope)

    def new_id(self, prefix: str) -> str:
        return self.ids.new_id(prefix)

    @property
    def actor(self) -> str:
        """Who asked, as the audit log records it: the API key's or the user's id (never a
        secret)."""
        return self.key.actor


def context(request: Request) -> EventsCtx:
    key: Principal = request.state.api_key
    authorize(request.scope, key)
    return EventsCtx(key, request.app.state.events, minter_for(request.scope.get("state", {})))


Ctx = Annotated[EventsCtx, Depends(context)]
Limit = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)]
AttemptCursor = Annotated[
    str | None, Query(min_length=1, max_length=ATTEMPT_ID_LENGTH_MAX, description="an attempt's id")
]


router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


def _endpoint_out(endpoint: Any) -> dict[str, Any]:
    # The tenant's own key sees the signing secret: it is what verifies deliveries.
    return {**endpoint.to_dict(), "secret": endpoint.secret}


@router.post(
    "/webhook_endpoints",
    status_code=201,
    response_model=EndpointOut,
    tags=["webhooks"],
    operation_id="createWebhookEndpoint",
    openapi_extra=error_codes("invalid_url", "invalid_enabled_events", "conflict")
    | requires(Scope.WEBHOOKS_ADMIN),
)
async def create_endpoint(body: EndpointCreate, ctx: Ctx) -> dict[str, Any]:
    """Events created from now on are delivered to `url`, signed per Standard Webhooks."""
    endpoint = await run_in_threadpool(
        lambda: ctx.events.create_endpoint(
            ctx.key.tenant_id, body.url, body.enabled_events, actor=ctx.actor, id=ctx.new_id("we")
        )
    )
    return _endpoint_out(endpoint)


@router.get(
    "/webhook_endpoints",
    response_model=EndpointList,
    tags=["webhooks"],
    operation_id="listWebhookEndpoints",
    openapi_extra=error_codes("invalid_cursor") | requires(Scope.WEBHOOKS_ADMIN),
)
async def list_endpoints(
    ctx: Ctx, limit: Limit = PAGE_SIZE_DEFAULT, starting_after: OptionalIdQuery = None
) -> dict[str, Any]:
    page = await run_in_threadpool(
        lambda: ctx.events.list_endpoints(
            tenant_id=ctx.key.tenant_id, starting_after=starting_after, limit=limit
        )
    )
    return list_body([_endpoint_out(e) for e in page.data], page.has_more)


@router.get(
    "/webhook_endpoints/{endpoint_id}",
    response_model=EndpointOut,
    tags=["webhooks"],
    operation_id="getWebhookEndpoint",
    openapi_extra=error_codes("not_found") | requires(Scope.WEBHOOKS_ADMIN),
)
async def get_endpoint(endpoint_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    endpoint = await run_in_threadpool(
        lambda: ctx.events.get_endpoint(endpoint_id, tenant_id=ctx.key.tenant_id)
    )
    return _endpoint_out(endpoint)


@router.post(
    "/webhook_endpoints/{endpoint_id}",
    response_model=EndpointOut,
    tags=["webhooks"],
    operation_id="updateWebhookEndpoint",
    openapi_extra=error_codes("not_found") | requires(Scope.WEBHOOKS_ADMIN),
)
async def update_endpoint(endpoint_id: IdPath, body: EndpointUpdate, ctx: Ctx) -> dict[str, Any]:
    """Disable the endpoint (`enabled: false`: its deliveries wait, events created meanwhile
    are not queued for it) or enable it again (its failures forgotten, deliveries resume)."""
    endpoint = await run_in_threadpool(
        lambda: ctx.events.set_endpoint_enabled(
            endpoint_id, body.enabled, tenant_id=ctx.key.tenant_id, actor=ctx.actor
        )
    )
    return _endpoint_out(endpoint)


@router.delete(
    "/webhook_endpoints/{endpoint_id}",
    response_model=EndpointDeleted,
    tags=["webhooks"],
    operation_id="deleteWebhookEndpoint",
    openapi_extra=error_codes("not_found") | requires(Scope.WEBHOOKS_ADMIN),
)
async def delete_endpoint(endpoint_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """Delete the endpoint, its pending deliveries and its recorded attempts, for good. To
    pause deliveries instead, disable it (POST with `enabled: false`)."""
    endpoint = await run_in_threadpool(
        lambda: ctx.events.delete_endpoint(
            endpoint_id, tenant_id=ctx.key.tenant_id, actor=ctx.actor
        )
    )
    return {"id": endpoint.id, "object": "webhook_endpoint", "deleted": True}


@router.get(
    "/webhook_endpoints/{endpoint_id}/attempts",
    response_model=AttemptList,
    tags=["webhooks"],
    operation_id="listWebhookAttempts",
    openapi_extra=error_codes("not_found", "invalid_cursor") | requires(Scope.WEBHOOKS_ADMIN),
)
async def list_attempts(
    endpoint_id: IdPath,
    ctx: Ctx,
    limit: Limit = PAGE_SIZE_DEFAULT,
    starting_after: AttemptCursor = None,
    ending_before: AttemptCursor = None,
) -> dict[str, Any]:
    """The endpoint's delivery attempts, newest first; the cursors are attempt ids."""
    page = await run_in_threadpool(
        lambda: ctx.events.list_endpoint_attempts(
            endpoint_id,
            tenant_id=ctx.key.tenant_id,
            starting_after=starting_after,
            ending_before=ending_before,
            limit=limit,
        )
    )
    return list_body([a.to_dict() for a in page.data], page.has_more)


@router.get(
    "/events",
    response_model=EventList,
    tags=["events"],
    # An unknown starting_after is a 404 of that event (not an invalid_cursor, as elsewhere).
    openapi_extra=error_codes("invalid_cursor", "not_found") | requires(Scope.LEDGER_READ),
)
async def list_events(
    ctx: Ctx,
    limit: Limit = PAGE_SIZE_DEFAULT,
    starting_after: OptionalIdQuery = None,
    cursor: Annotated[
        str | None,
        Query(description="`next_cursor` of the previous page", max_length=CURSOR_LENGTH_MAX),
    ] = None,
    ledger_id: OptionalIdQuery = None,
    type: Annotated[str | None, Query(max_length=EVENT_TYPE_LENGTH_MAX)] = None,
) -> dict[str, Any]:
    """Newest first, for replay: every event the tenant's ledgers produced. A page examines a
    bounded range of all events, so it may hold fewer than `limit` events, even none, while
    `has_more` is true: go on with `cursor=next_cursor`."""
    page = await run_in_threadpool(
        lambda: ctx.events.list_events(
            tenant_id=ctx.key.tenant_id,
            ledger_id=ledger_id,
            event_type=type,
            starting_after=starting_after,
            cursor=cursor,
            limit=limit,
        )
    )
    return list_body([e.to_dict() for e in page.data], page.has_more, page.next_cursor)


@router.get(
    "/events/{event_id}",
    response_model=EventOut,
    tags=["events"],
    openapi_extra=error_codes("not_found") | requires(Scope.LEDGER_READ),
)
async def get_event(event_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    event = await run_in_threadpool(
        lambda: ctx.events.get_event(event_id, tenant_id=ctx.key.tenant_id)
    )
    return dict(event.to_dict())


# -- the requests the server sends (the OpenAPI document's `webhooks`) ----------------------

_WEBHOOK_ABOUT = {
    "transfer.created": "A transfer was recorded: posted at once, or pending (a reservation that "
    "a later post, void or expiry settles).",
    "transfer.posted": "A pending transfer was posted, fully or in part: the data is the posting "
    "transfer (`action: post`, `target_id`: the pending one).",
    "transfer.voided": "A pending transfer was voided: the data is the voiding transfer "
    "(`action: void`).",
    "transfer.reversed": "A posted transfer was reversed, fully or in part: the data is the "
    "reversing transfer (`action: reverse`).",
    "transfer.expired": "A pending transfer reached its timeout unsettled: the data is that "
    "transfer, its status `expired`.",
}
assert set(_WEBHOOK_ABOUT) == EVENT_TYPES, "describe every event type the server sends"

_DELIVERY = (
    " Sent as a POST to each enabled webhook endpoint subscribed to the type, signed per Standard "
    "Webhooks; a retry carries the same `webhook-id`, so handle each id once. Answer any 2xx "
    "within the deadline; anything else, or no answer, is retried with backoff; a 410 disables "
    "the endpoint."
)

WebhookId = Annotated[str, Header(description="the event id; the same on every retry")]
WebhookTimestamp = Annotated[
    int, Header(description="the attempt's time, Unix seconds: refuse an old one (replay)")
]
WebhookSignature = Annotated[
    str,
    Header(
        description="`v1,` and the base64 HMAC-SHA256, keyed by the endpoint's secret, of "
        "`{webhook-id}.{webhook-timestamp}.{body}` (several, space-separated, while a "
        "secret rotates)"
    ),
]


async def _delivery(
    event: WebhookEvent,
    webhook_id: WebhookId,
    webhook_timestamp: WebhookTimestamp,
    webhook_signature: WebhookSignature,
) -> None:
    """Documents a delivery; the server never routes a request here."""
    raise AssertionError("a webhook is sent, not served")


async def _domain_delivery(
    event: DomainWebhookEvent,
    webhook_id: WebhookId,
    webhook_timestamp: WebhookTimestamp,
    webhook_signature: WebhookSignature,
) -> None:
    """Documents a delivery of another domain's event; never routed."""
    raise AssertionError("a webhook is sent, not served")


def webhooks_router(domain_types: Sequence[EventType] = ()) -> APIRouter:
    """The webhooks the server sends: the transfers', and the event types other domains
    declare (events.hooks.EventType), whose data is a small object of ids."""
    webhooks = APIRouter()
    about = dict(_WEBHOOK_ABOUT)
    handlers: dict[str, Any] = dict.fromkeys(EVENT_TYPES, _delivery)
    for domain_type in domain_types:
        assert domain_type.name not in about, f"event type {domain_type.name} declared twice"
        about[domain_type.name] = domain_type.about
        handlers[domain_type.name] = _domain_delivery
    for name in sorted(about):
        webhooks.add_api_route(
            name,
            handlers[name],
            methods=["POST"],
            name=name.replace(".", "_"),
            summary=name,
            description=about[name] + _DELIVERY,
            tags=["webhooks"],
            responses={
                200: {"description": "Any 2xx: delivered"},
                410: {"description": "Gone: the endpoint is disabled, no further deliveries"},
            },
        )
    return webhooks


webhooks = webhooks_router()  # the transfers' alone
