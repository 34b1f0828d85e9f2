"""Tenancy over HTTP. The operator's routes: the deployment's tenants. Only a principal of the
system tenant holding tenants:admin (security/rbac.py, Role.OPERATOR) may call them; such a
principal can call no route of any tenant's ledger, customers or cards, whose scopes it never
holds. And a tenant's API keys: a principal holding api_keys:admin (an admin) creates one for
its own tenant; creating a key is a sensitive action, so a user must have stepped up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from strongroom.core import clock
from strongroom.core.limits import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.pagination import list_body
from strongroom.http.params import IdPath, OptionalIdQuery
from strongroom.tenancy.access import InsufficientScope, authorize, require_step_up, requires
from strongroom.tenancy.model import ApiKey, Principal, Scope, Tenant
from strongroom.tenancy.schemas import TenantCreate, TenantList, TenantOut
from strongroom.tenancy.service import TenancyService


@dataclass(frozen=True)
class OperatorCtx:
    key: Principal
    tenancy: TenancyService


async def context(request: Request) -> OperatorCtx:
    key: Principal = request.state.api_key
    authorize(request.scope, key)
    tenancy: TenancyService = request.app.state.tenancy
    system = await run_in_threadpool(tenancy.system_tenant)
    if key.tenant_id != system.id:  # tenants:admin is honoured on the system tenant's keys only
        raise InsufficientScope("only an operator of the system tenant manages tenants")
    return OperatorCtx(key, tenancy)


Ctx = Annotated[OperatorCtx, Depends(context)]
Limit = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)]

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


def _tenant_out(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "object": "tenant",
        "name": tenant.name,
        "created_at": clock.format_us(tenant.created_at),
        "suspended_at": None
        if tenant.suspended_at is None
        else clock.format_us(tenant.suspended_at),
    }


@router.post(
    "/tenants",
    status_code=201,
    response_model=TenantOut,
    tags=["tenants"],
    openapi_extra=error_codes("invalid_tenant_name", "tenant_exists")
    | requires(Scope.TENANTS_ADMIN),
)
async def create_tenant(body: TenantCreate, ctx: Ctx) -> dict[str, Any]:
    """A new tenant of this deployment (an operator's key). Its keys are made with
    `strongroom api-keys create --tenant NAME`."""
    tenant = await run_in_threadpool(
        lambda: ctx.tenancy.create_tenant(body.name, actor=ctx.key.actor)
    )
    return _tenant_out(tenant)


@router.get(
    "/tenants",
    response_model=TenantList,
    tags=["tenants"],
    openapi_extra=requires(Scope.TENANTS_ADMIN),
)
async def list_tenants(
    ctx: Ctx, limit: Limit = PAGE_SIZE_DEFAULT, starting_after: OptionalIdQuery = None
) -> dict[str, Any]:
    """The deployment's tenants by id (the system tenant is not listed)."""
    page, has_more = await run_in_threadpool(
        lambda: ctx.tenancy.list_tenants(starting_after=starting_after, limit=limit)
    )
    return list_body([_tenant_out(t) for t in page], has_more)


@router.get(
    "/tenants/{tenant_id}",
    response_model=TenantOut,
    tags=["tenants"],
    openapi_extra=error_codes("not_found") | requires(Scope.TENANTS_ADMIN),
)
async def get_tenant(tenant_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    return _tenant_out(await run_in_threadpool(ctx.tenancy.get_tenant, tenant_id))


@router.post(
    "/tenants/{tenant_id}/suspend",
    response_model=TenantOut,
    tags=["tenants"],
    openapi_extra=error_codes("not_found") | requires(Scope.TENANTS_ADMIN),
)
async def suspend_tenant(tenant_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """Suspend a tenant: its API keys authenticate no more (401), at once on this server and
    within API_KEY_CACHE_TTL_S seconds on the others; its data is kept."""
    tenant = await run_in_threadpool(
        lambda: ctx.tenancy.set_suspended(tenant_id, True, actor=ctx.key.actor)
    )
    return _tenant_out(tenant)


@router.post(
    "/tenants/{tenant_id}/resume",
    response_model=TenantOut,
    tags=["tenants"],
    openapi_extra=error_codes("not_found") | requires(Scope.TENANTS_ADMIN),
)
async def resume_tenant(tenant_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """Resume a suspended tenant: its keys (those not revoked) authenticate again."""
    tenant = await run_in_threadpool(
        lambda: ctx.tenancy.set_suspended(tenant_id, False, actor=ctx.key.actor)
    )
    return _tenant_out(tenant)


# -- API keys --------------------------------------------------------------------------------


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    scopes: list[Annotated[str, Field(max_length=32)]] = Field(min_length=1, max_length=16)
    transfer_ceiling: int | None = Field(
        default=None,
        ge=0,
        le=2**128 - 1,
        description="minor units one transfer of this key may move past the step-up threshold "
        "(STRONGROOM_STEP_UP_TRANSFER_AMOUNT); none: it is held to the threshold",
    )


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    object: str = "api_key"
    secret: str = Field(description="sk_...: shown once, never stored")
    scopes: list[str]
    transfer_ceiling: int | None


async def key_admin(request: Request) -> Principal:
    """The caller, let in on the route's declared scope (api_keys:admin) before the body is
    read."""
    principal: Principal = request.state.api_key
    authorize(request.scope, principal)
    return principal


@router.post(
    "/api_keys",
    status_code=201,
    response_model=ApiKeyOut,
    tags=["api keys"],
    openapi_extra=error_codes("invalid_scope", "step_up_required") | requires(Scope.API_KEYS_ADMIN),
)
async def create_api_key(
    body: ApiKeyCreate, request: Request, principal: Annotated[Principal, Depends(key_admin)]
) -> Any:
    """A new API key of the caller's tenant, holding only scopes the caller holds itself (an
    admin cannot mint a key that reveals: pii:read and vault:reveal are given by name with
    `strongroom api-keys create`)."""
    require_step_up(principal)
    # An unknown scope is refused naming the body's field, `scopes`.
    beyond = sorted(
        s.value for s in Scope.parse(body.scopes, param="scopes") if not principal.allows(s)
    )
    if beyond:
        raise InsufficientScope(
            f"a key is given only scopes its creator holds; not {', '.join(beyond)}"
        )
    # The ceiling stands in for a machine's step-up: a key gives one no higher than its own
    # (none: none), else a key held to the threshold would mint one that moves any amount.
    # A user has stepped up (above), and a stepped-up user moves any amount: any ceiling.
    if principal.machine and body.transfer_ceiling is not None:
        own = principal.transfer_ceiling if isinstance(principal, ApiKey) else None
        if own is None or body.transfer_ceiling > own:
            raise InsufficientScope(
                "a key gives a transfer_ceiling no higher than its own",
                param="transfer_ceiling",
            )
    tenancy: TenancyService = request.app.state.tenancy
    key, secret = await run_in_threadpool(
        lambda: tenancy.create_tenant_api_key(
            principal.tenant_id,
            body.scopes,
            actor=principal.actor,
            transfer_ceiling=body.transfer_ceiling,
        )
    )
    return {
        "id": key.id,
        "object": "api_key",
        "secret": secret,
        "scopes": sorted(s.value for s in key.scopes),
        "transfer_ceiling": key.transfer_ceiling,
    }
