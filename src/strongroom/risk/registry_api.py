"""HTTP routes of the model registry: list and read a tenant's fraud models (`risk:read`), put
one in shadow or promote it live (`risk:admin`, implied by `admin`; a user steps up first, as
for other sensitive admin actions). Registering a model is the CLI's (`strongroom risk models
register`): an artefact is a file of the training run. Another tenant's model is a 404, as one
that does not exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from strongroom.core.limits import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.pagination import list_body
from strongroom.http.params import IdPath, OptionalIdQuery
from strongroom.risk.registry import RiskModelRegistry
from strongroom.risk.registry_schemas import RiskModelList, RiskModelOut
from strongroom.tenancy.access import authorize, require_step_up, requires
from strongroom.tenancy.model import Principal, Scope


@dataclass(frozen=True)
class ModelsCtx:
    key: Principal
    registry: RiskModelRegistry

    @property
    def tenant(self) -> str:
        return self.key.tenant_id


async def context(request: Request) -> ModelsCtx:
    """The principal is let in on the route's declared scopes before anything else is read."""
    key: Principal = request.state.api_key
    authorize(request.scope, key)
    return ModelsCtx(key, request.app.state.risk_models)


Ctx = Annotated[ModelsCtx, Depends(context)]
Limit = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)]

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@router.get(
    "/risk/models",
    response_model=RiskModelList,
    tags=["risk"],
    openapi_extra=requires(Scope.RISK_READ),
)
async def list_risk_models(
    ctx: Ctx, limit: Limit = PAGE_SIZE_DEFAULT, starting_after: OptionalIdQuery = None
) -> dict[str, Any]:
    """The tenant's fraud models by version (oldest first), with their status and hold-out
    metrics; never the artefacts' bytes."""
    page = await run_in_threadpool(
        lambda: ctx.registry.list_models(ctx.tenant, starting_after=starting_after, limit=limit)
    )
    return list_body([m.to_dict() for m in page.data], page.has_more)


@router.get(
    "/risk/models/{version}",
    response_model=RiskModelOut,
    tags=["risk"],
    openapi_extra=error_codes("not_found") | requires(Scope.RISK_READ),
)
async def get_risk_model(version: IdPath, ctx: Ctx) -> dict[str, Any]:
    model = await run_in_threadpool(lambda: ctx.registry.get(ctx.tenant, version))
    return model.to_dict()


@router.post(
    "/risk/models/{version}/promote",
    response_model=RiskModelOut,
    tags=["risk"],
    openapi_extra=error_codes("not_found", "invalid_model_transition", "step_up_required")
    | requires(Scope.RISK_ADMIN),
)
async def promote_risk_model(version: IdPath, ctx: Ctx) -> dict[str, Any]:
    """Make the model live: it decides the tenant's payments from the next refresh (about a
    second, on every server); the previous live model is retired. A registered, shadow or
    retired (a rollback) model may be promoted; the live one again changes nothing. An audit
    leaf and the event `risk.model_promoted`. Needs `risk:admin`; a user steps up first."""
    require_step_up(ctx.key)
    model = await run_in_threadpool(
        lambda: ctx.registry.promote(ctx.tenant, version, actor=ctx.key.actor)
    )
    return model.to_dict()


@router.post(
    "/risk/models/{version}/shadow",
    response_model=RiskModelOut,
    tags=["risk"],
    openapi_extra=error_codes("not_found", "invalid_model_transition", "step_up_required")
    | requires(Scope.RISK_ADMIN),
)
async def shadow_risk_model(version: IdPath, ctx: Ctx) -> dict[str, Any]:
    """Run the model in shadow: scored and logged beside the live one on every payment, acting
    on nothing; the previous shadow model goes back to registered. The live model cannot be
    put in shadow (409 `invalid_model_transition`). An audit leaf and the event
    `risk.model_shadowed`. Needs `risk:admin`; a user steps up first."""
    require_step_up(ctx.key)
    model = await run_in_threadpool(
        lambda: ctx.registry.shadow(ctx.tenant, version, actor=ctx.key.actor)
    )
    return model.to_dict()
