"""The operator's routes: the deployment's tenants. Only a key of the system tenant holding
tenants:admin (security/rbac.py, Role.OPERATOR) may call them; such a key can call no route of
any tenant's ledger, customers or cards, whose scopes it never holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from strongroom.core import clock
from strongroom.core.limits import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.pagination import list_body
from strongroom.http.params import IdPath, OptionalIdQuery
from strongroom.tenancy.access import InsufficientScope, authorize, requires
from strongroom.tenancy.model import ApiKey, Scope, Tenant
from strongroom.tenancy.schemas import TenantCreate, TenantList, TenantOut
from strongroom.tenancy.service import TenancyService


@dataclass(frozen=True)
class OperatorCtx:
    key: ApiKey
    tenancy: TenancyService


async def context(request: Request) -> OperatorCtx:
    key: ApiKey = request.state.api_key
    authorize(request.scope, key)
    tenancy: TenancyService = request.app.state.tenancy
    system = await run_in_threadpool(tenancy.system_tenant)
    if key.tenant_id != system.id:  # tenants:admin is honoured on the system tenant's keys only
        raise InsufficientScope("only an operator key of the system tenant manages tenants")
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
