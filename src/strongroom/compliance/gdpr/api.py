"""The GDPR export route. `GET /v1/customers/{customer_id}/export` needs `pii:read`, the scope
of every reveal of personal data (granted by name, never implied by `admin`; a user steps up
first): an export is a reveal of everything at once. Each export is an audit leaf
`customer.exported` (counts, no values), besides the reveal's `customer.pii_revealed`. Another
tenant's customer is a 404, as one that does not exist."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from strongroom.compliance.gdpr.service import GdprService
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.params import IdPath, OptionalIdQuery
from strongroom.tenancy.access import authorize, require_step_up, requires
from strongroom.tenancy.model import Principal, Scope

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@router.get(
    "/customers/{customer_id}/export",
    tags=["customers"],
    openapi_extra=error_codes("not_found", "key_unavailable", "step_up_required")
    | requires(Scope.PII_READ),
)
async def get_customer_export(
    customer_id: IdPath, request: Request, starting_after: OptionalIdQuery = None
) -> dict[str, Any]:
    """Everything held about the customer as one JSON document (GDPR Art. 15 and 20): the
    profile and the personal data in full (null once erased), the accounts with their balances
    and each account's newest 1,000 transfers (`transfers_has_more` and
    `transfers_next_cursor` continue through `GET /v1/transfers?account_id=...&cursor=...`), the
    counterparties and cards those transfers name (masked), the risk decisions on them and the
    cases about them or the customer. Bounded, not streamed: at most 10,000 transfers and 1,000
    accounts in one answer; past them `truncated` is true and the accounts left follow with
    `?starting_after=` the answer's `next_starting_after` (docs/gdpr.md)."""
    key: Principal = request.state.api_key
    authorize(request.scope, key)
    require_step_up(key, Scope.PII_READ)
    gdpr: GdprService = request.app.state.gdpr
    return await run_in_threadpool(
        lambda: gdpr.export(
            key.tenant_id, customer_id, actor=key.actor, starting_after=starting_after
        )
    )
