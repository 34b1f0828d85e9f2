"""API keys over HTTP: an admin of a tenant creates one for it (the CLI does too). Creating a
key is a sensitive action: a user signed in as an admin must have stepped up."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.tenancy.access import require_grantable, require_scope, require_step_up
from strongroom.tenancy.model import Principal, Scope
from strongroom.tenancy.service import TenancyService

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES, tags=["api keys"])


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


@router.post(
    "/api_keys",
    status_code=201,
    response_model=ApiKeyOut,
    openapi_extra=error_codes("invalid_scope", "step_up_required"),
)
async def create_api_key(body: ApiKeyCreate, request: Request) -> Any:
    """A new API key of the caller's tenant. A key that reveals (pii:read, vault:reveal) is
    given those scopes by name."""
    principal: Principal = request.state.api_key
    require_scope(principal, Scope.ADMIN)
    # An unknown scope is refused naming the body's field, `scopes`.
    require_grantable(principal, Scope.parse(body.scopes, param="scopes"))
    require_step_up(principal)
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
