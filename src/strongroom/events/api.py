"""HTTP routes for events (replay) and webhook endpoints, with their delivery attempts.
Another tenant's endpoint or event is a 404, as one that does not exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from strongroom.core.limits import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, WEBHOOK_URL_LENGTH_MAX
from strongroom.events.service import EventService
from strongroom.http.errors import ERROR_RESPONSES, require_scope
from strongroom.http.pagination import list_body
from strongroom.tenancy.model import ApiKey, Scope


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointCreate(_In):
    url: str = Field(min_length=1, max_length=WEBHOOK_URL_LENGTH_MAX)
    enabled_events: list[str] | None = Field(default=None, max_length=16)


class EndpointOut(_Out):
    id: str
    object: Literal["webhook_endpoint"]
    tenant_id: str
    url: str
    enabled_events: list[str]
    status: Literal["enabled", "disabled"]
    failure_count: int
    created_at: str
    secret: str = Field(description="whsec_...: verify each delivery's webhook-signature with it")


class EndpointList(_Out):
    object: Literal["list"]
    data: list[EndpointOut]
    has_more: bool


class EventOut(_Out):
    id: str
    object: Literal["event"]
    type: str
    ledger_id: str
    seq: int
    data: dict[str, Any]
    created_at: str


class EventList(_Out):
    object: Literal["list"]
    data: list[EventOut]
    has_more: bool


class AttemptOut(_Out):
    object: Literal["webhook_attempt"]
    event_id: str
    endpoint_id: str
    attempt: int
    status: Literal["succeeded", "failed"]
    response_status: int | None
    error: str | None
    duration_ms: int
    next_attempt_at: str | None
    created_at: str


class AttemptList(_Out):
    object: Literal["list"]
    data: list[AttemptOut]
    has_more: bool


@dataclass(frozen=True)
class EventsCtx:
    key: ApiKey
    events: EventService

    def require(self, scope: Scope) -> None:
        require_scope(self.key, scope)


def context(request: Request) -> EventsCtx:
    return EventsCtx(request.state.api_key, request.app.state.events)


Ctx = Annotated[EventsCtx, Depends(context)]
Limit = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)]


router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


def _endpoint_out(endpoint: Any) -> dict[str, Any]:
    # The tenant's own key sees the signing secret: it is what verifies deliveries.
    return {**endpoint.to_dict(), "secret": endpoint.secret}


@router.post("/webhook_endpoints", status_code=201, response_model=EndpointOut, tags=["webhooks"])
async def create_endpoint(body: EndpointCreate, ctx: Ctx) -> dict[str, Any]:
    """Events created from now on are delivered to `url`, signed per Standard Webhooks."""
    ctx.require(Scope.ADMIN)
    endpoint = await run_in_threadpool(
        ctx.events.create_endpoint, ctx.key.tenant_id, body.url, body.enabled_events
    )
    return _endpoint_out(endpoint)


@router.get("/webhook_endpoints", response_model=EndpointList, tags=["webhooks"])
async def list_endpoints(
    ctx: Ctx, limit: Limit = PAGE_SIZE_DEFAULT, starting_after: str | None = None
) -> dict[str, Any]:
    ctx.require(Scope.ADMIN)
    page = await run_in_threadpool(
        lambda: ctx.events.list_endpoints(
            tenant_id=ctx.key.tenant_id, starting_after=starting_after, limit=limit
        )
    )
    return list_body([_endpoint_out(e) for e in page.data], page.has_more)


@router.get("/webhook_endpoints/{endpoint_id}", response_model=EndpointOut, tags=["webhooks"])
async def get_endpoint(endpoint_id: str, ctx: Ctx) -> dict[str, Any]:
    ctx.require(Scope.ADMIN)
    endpoint = await run_in_threadpool(
        lambda: ctx.events.get_endpoint(endpoint_id, tenant_id=ctx.key.tenant_id)
    )
    return _endpoint_out(endpoint)


@router.delete("/webhook_endpoints/{endpoint_id}", response_model=EndpointOut, tags=["webhooks"])
async def delete_endpoint(endpoint_id: str, ctx: Ctx) -> dict[str, Any]:
    """Stop deliveries to the endpoint: it is disabled, and its attempts stay readable."""
    ctx.require(Scope.ADMIN)
    endpoint = await run_in_threadpool(
        lambda: ctx.events.set_endpoint_enabled(endpoint_id, False, tenant_id=ctx.key.tenant_id)
    )
    return _endpoint_out(endpoint)


@router.get(
    "/webhook_endpoints/{endpoint_id}/attempts", response_model=AttemptList, tags=["webhooks"]
)
async def list_attempts(
    endpoint_id: str, ctx: Ctx, limit: Limit = PAGE_SIZE_DEFAULT
) -> dict[str, Any]:
    """The endpoint's delivery attempts, newest first."""
    ctx.require(Scope.ADMIN)
    await run_in_threadpool(
        lambda: ctx.events.get_endpoint(endpoint_id, tenant_id=ctx.key.tenant_id)
    )
    attempts = await run_in_threadpool(
        lambda: ctx.events.list_attempts(endpoint_id=endpoint_id, limit=limit)
    )
    return list_body([a.to_dict() for a in attempts], False)


@router.get("/events", response_model=EventList, tags=["events"])
async def list_events(
    ctx: Ctx,
    limit: Limit = PAGE_SIZE_DEFAULT,
    starting_after: str | None = None,
    ledger_id: str | None = None,
    type: str | None = None,
) -> dict[str, Any]:
    """Newest first, for replay: every event the tenant's ledgers produced."""
    ctx.require(Scope.LEDGER_READ)
    page = await run_in_threadpool(
        lambda: ctx.events.list_events(
            tenant_id=ctx.key.tenant_id,
            ledger_id=ledger_id,
            event_type=type,
            starting_after=starting_after,
            limit=limit,
        )
    )
    return list_body([e.to_dict() for e in page.data], page.has_more)


@router.get("/events/{event_id}", response_model=EventOut, tags=["events"])
async def get_event(event_id: str, ctx: Ctx) -> dict[str, Any]:
    ctx.require(Scope.LEDGER_READ)
    event = await run_in_threadpool(
        lambda: ctx.events.get_event(event_id, tenant_id=ctx.key.tenant_id)
    )
    return dict(event.to_dict())
