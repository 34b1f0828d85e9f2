"""The operator's open banking client routes: the third-party providers registered with the
deployment's authorization server. Only a principal of the system tenant holding
tenants:admin may call them (tenancy.api's operator context); a tenant's keys, its admin's
included, are refused (403). Registering a client, rotating its keys and enabling it let a TPP
authenticate, so a user (not a key) must have stepped up for them; disabling needs no step-up."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from strongroom.core.idempotency import minter_for
from strongroom.core.limits import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.pagination import list_body
from strongroom.http.params import IdPath, OptionalIdQuery
from strongroom.openbanking.tpp.schemas import (
    OpenbankingClientCreate,
    OpenbankingClientJwksUpdate,
    OpenbankingClientList,
    OpenbankingClientOut,
)
from strongroom.openbanking.tpp.service import TppService
from strongroom.tenancy.access import require_step_up, requires
from strongroom.tenancy.api import Ctx
from strongroom.tenancy.model import Scope

Limit = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)]
# A registration's and a key rotation's own refusals.
JWKS_ERRORS = ("invalid_jwks", "jwks_private_key")
REGISTRATION_ERRORS = (
    "invalid_name",
    "invalid_software_id",
    "invalid_redirect_uri",
    "invalid_scope",
    *JWKS_ERRORS,
)

router = APIRouter(prefix="/v1/openbanking", responses=ERROR_RESPONSES)


def _clients(request: Request) -> TppService:
    clients: TppService = request.app.state.openbanking_clients
    return clients


@router.post(
    "/clients",
    status_code=201,
    response_model=OpenbankingClientOut,
    tags=["open banking"],
    openapi_extra=error_codes(*REGISTRATION_ERRORS, "step_up_required")
    | requires(Scope.TENANTS_ADMIN),
)
async def create_openbanking_client(
    body: OpenbankingClientCreate, request: Request, ctx: Ctx
) -> Any:
    """Register a third-party provider (TPP) with the deployment's authorization server: its
    public signing keys (a JWK set), redirect URIs and scopes (docs/openbanking-tpp.md). It
    starts active. Every field is checked first: a refusal writes nothing."""
    require_step_up(ctx.key)
    client_id = minter_for(request.scope.get("state", {})).new_id("tpp")
    jwks = body.jwks.model_dump(exclude_unset=True)
    client = await run_in_threadpool(
        lambda: _clients(request).register(
            name=body.name,
            redirect_uris=body.redirect_uris,
            jwks=jwks,
            scopes=body.scopes,
            software_id=body.software_id,
            actor=ctx.key.actor,
            id=client_id,
        )
    )
    return client.public()


@router.get(
    "/clients",
    response_model=OpenbankingClientList,
    tags=["open banking"],
    openapi_extra=requires(Scope.TENANTS_ADMIN),
)
async def list_openbanking_clients(
    request: Request,
    ctx: Ctx,
    limit: Limit = PAGE_SIZE_DEFAULT,
    starting_after: OptionalIdQuery = None,
) -> Any:
    """The registered clients by id, active and disabled."""
    del ctx  # the operator's: checked by the dependency
    page, has_more = await run_in_threadpool(
        lambda: _clients(request).list_clients(starting_after=starting_after, limit=limit)
    )
    return list_body([c.public() for c in page], has_more)


@router.get(
    "/clients/{client_id}",
    response_model=OpenbankingClientOut,
    tags=["open banking"],
    openapi_extra=error_codes("not_found") | requires(Scope.TENANTS_ADMIN),
)
async def get_openbanking_client(client_id: IdPath, request: Request, ctx: Ctx) -> Any:
    del ctx
    return (await run_in_threadpool(_clients(request).get, client_id)).public()


@router.put(
    "/clients/{client_id}/jwks",
    response_model=OpenbankingClientOut,
    tags=["open banking"],
    openapi_extra=error_codes("not_found", "step_up_required", *JWKS_ERRORS)
    | requires(Scope.TENANTS_ADMIN),
)
async def update_openbanking_client_jwks(
    client_id: IdPath, body: OpenbankingClientJwksUpdate, request: Request, ctx: Ctx
) -> Any:
    """Rotate the client's keys: the set given replaces the registered one (keep the current
    key in it until the TPP signs with the new one). Keys left out stop verifying at once."""
    require_step_up(ctx.key)
    jwks = body.jwks.model_dump(exclude_unset=True)
    client = await run_in_threadpool(
        lambda: _clients(request).rotate_keys(client_id, jwks, actor=ctx.key.actor)
    )
    return client.public()


@router.post(
    "/clients/{client_id}/disable",
    response_model=OpenbankingClientOut,
    tags=["open banking"],
    openapi_extra=error_codes("not_found") | requires(Scope.TENANTS_ADMIN),
)
async def disable_openbanking_client(client_id: IdPath, request: Request, ctx: Ctx) -> Any:
    """Disable the client: the authorization server refuses it from now on; its registration
    is kept. Disabling a disabled client changes nothing."""
    client = await run_in_threadpool(
        lambda: _clients(request).set_enabled(client_id, False, actor=ctx.key.actor)
    )
    return client.public()


@router.post(
    "/clients/{client_id}/enable",
    response_model=OpenbankingClientOut,
    tags=["open banking"],
    openapi_extra=error_codes("not_found", "step_up_required") | requires(Scope.TENANTS_ADMIN),
)
async def enable_openbanking_client(client_id: IdPath, request: Request, ctx: Ctx) -> Any:
    """Enable a disabled client again."""
    require_step_up(ctx.key)
    client = await run_in_threadpool(
        lambda: _clients(request).set_enabled(client_id, True, actor=ctx.key.actor)
    )
    return client.public()
