"""The dashboard's /v1 routes: a customer's open banking consents, and revoking one.

Who sees what (the scopes decide the mode, tenancy.access.requires lets the caller in first):
- staff holding customers:read list one customer's consents of their tenant (`customer_id`,
  required: the listing reads that customer's index range, never the whole tenant's); holding
  customers:write they revoke any consent of their tenant;
- anyone else let in (own:read, own:write: a customer user) sees and revokes their own
  consents only: those they authorised or rejected, in their tenant. A principal that acts as
  no customer (a customer-role API key, a customer user bound to no customer) owns nothing:
  an empty list, and 404 on a revoke.
Another tenant's consent, or another customer's, is 404 not_found, word for word as an id
nobody has.

No step-up for revoking (docs/openbanking.md, "The consent dashboard"): revoking only takes
access away (the worst a stolen session does with it is end a TPP's access, which the customer
can grant again), withdrawing a consent must be easy (GDPR article 7(3): as easy as giving
it), and a customer with no second factor enrolled must still be able to do it; the TPP's own
DELETE and an operator's disabling of a TPP need none either. What guards it: a live session
(a SameSite=Strict cookie, and the middleware's Sec-Fetch-Site check against another origin's
POST), and the page's frame-ancestors 'none' against clickjacking. Every revoke is an audit
leaf and an event naming the user who did it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.pagination import list_body
from strongroom.http.params import IdPath, OptionalIdQuery
from strongroom.openbanking.dashboard.schemas import OpenbankingConsentList, OpenbankingConsentOut
from strongroom.openbanking.dashboard.service import ConsentDashboard, Owner
from strongroom.tenancy.access import InsufficientScope, authorize, requires
from strongroom.tenancy.model import Principal, Scope

router = APIRouter(prefix="/v1/openbanking", responses=ERROR_RESPONSES, tags=["open banking"])

# The staff scopes: reading a customer's consents, and revoking one for them.
STAFF_READ = Scope.CUSTOMERS_READ
STAFF_WRITE = Scope.CUSTOMERS_WRITE


@dataclass(frozen=True)
class DashboardCtx:
    key: Principal
    dashboard: ConsentDashboard


async def context(request: Request) -> DashboardCtx:
    """The caller, let in on the route's declared scopes before anything else is read."""
    key: Principal = request.state.api_key
    authorize(request.scope, key)
    dashboard: ConsentDashboard = request.app.state.ob_dashboard
    return DashboardCtx(key, dashboard)


Ctx = Annotated[DashboardCtx, Depends(context)]
Limit = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)]


async def _owner(ctx: DashboardCtx, staff_scope: Scope) -> Owner:
    tenant_id = ctx.key.tenant_id
    if ctx.key.allows(staff_scope):
        return Owner(tenant_id, None, staff=True)
    customer_id = await run_in_threadpool(ctx.dashboard.customer_of, ctx.key)
    return Owner(tenant_id, customer_id)


@router.get(
    "/consents",
    response_model=OpenbankingConsentList,
    openapi_extra=requires(Scope.OWN_READ, STAFF_READ),
)
async def list_openbanking_consents(
    ctx: Ctx,
    limit: Limit = PAGE_SIZE_DEFAULT,
    starting_after: OptionalIdQuery = None,
    customer_id: OptionalIdQuery = None,
) -> Any:
    """The open banking consents of a customer, by id: which TPP has which access, to which
    accounts, until when. A customer user gets their own (`customer_id` may only name them);
    staff with customers:read name the customer of their tenant (`customer_id`, required)."""
    owner = await _owner(ctx, STAFF_READ)
    if owner.staff:
        if customer_id is None:
            raise InvalidRequest(
                "name the customer whose consents to list: customer_id", param="customer_id"
            )
        whose: str | None = customer_id
    else:
        if customer_id is not None and customer_id != owner.customer_id:
            raise InsufficientScope("a customer lists their own consents only")
        whose = owner.customer_id
    if whose is None:  # a principal that acts as no customer owns no consent
        return list_body([], False)
    page, has_more = await run_in_threadpool(
        lambda: ctx.dashboard.page(
            owner.tenant_id, whose, starting_after=starting_after, limit=limit
        )
    )
    return list_body(page, has_more)


@router.post(
    "/consents/{consent_id}/revoke",
    response_model=OpenbankingConsentOut,
    openapi_extra=error_codes("not_found", "consent_state")
    | requires(Scope.OWN_WRITE, STAFF_WRITE),
)
async def revoke_openbanking_consent(consent_id: IdPath, ctx: Ctx) -> Any:
    """Revoke a consent (status CANC): the TPP's access ends at once, its access tokens with
    it. A customer revokes their own; staff with customers:write any of their tenant's. One
    already revoked, rejected, expired or consumed is 409 consent_state, and nothing is
    written."""
    owner = await _owner(ctx, STAFF_WRITE)
    return await run_in_threadpool(
        lambda: ctx.dashboard.revoke(consent_id, owner, actor=ctx.key.actor)
    )
