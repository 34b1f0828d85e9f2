"""HTTP routes of KYC and account freezing. A customer's KYC state: `GET` needs
`compliance:read`, `PUT` `compliance:write`. Freezing an account (`POST
/v1/accounts/{id}/freeze`, `/unfreeze`) is a compliance action (a confirmed sanctions match, an
order): `compliance:write`, not `ledger:write`, so a key that moves money cannot lift a freeze.
Another tenant's customer or account answers 404, as one that does not exist. An account of a
customer confirmed on a sanctions list is not unfrozen (409 `sanctions_confirmed`: the ledger's
owner guard, compliance/sanctions/owners.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from strongroom.compliance.kyc.schemas import KycOut, KycUpdate
from strongroom.compliance.kyc.service import KycService
from strongroom.compliance.sanctions.errors import SANCTIONS_CONFIRMED
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.params import IdPath
from strongroom.ledger.schemas import AccountOut
from strongroom.tenancy.access import authorize, requires
from strongroom.tenancy.model import Principal, Scope


@dataclass(frozen=True)
class KycCtx:
    key: Principal
    kyc: KycService

    @property
    def tenant(self) -> str:
        return self.key.tenant_id


async def context(request: Request) -> KycCtx:
    key: Principal = request.state.api_key
    authorize(request.scope, key)
    return KycCtx(key, request.app.state.kyc)


Ctx = Annotated[KycCtx, Depends(context)]
router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@router.get(
    "/customers/{customer_id}/kyc",
    response_model=KycOut,
    tags=["kyc"],
    openapi_extra=error_codes("not_found") | requires(Scope.COMPLIANCE_READ),
)
async def get_customer_kyc(customer_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """The customer's verification status and tier; one never set is `unverified`."""
    state = await run_in_threadpool(lambda: ctx.kyc.get(ctx.tenant, customer_id))
    return state.to_dict()


@router.put(
    "/customers/{customer_id}/kyc",
    response_model=KycOut,
    tags=["kyc"],
    openapi_extra=error_codes("not_found", "invalid_kyc_status", "invalid_kyc_tier")
    | requires(Scope.COMPLIANCE_WRITE),
)
async def update_customer_kyc(customer_id: IdPath, body: KycUpdate, ctx: Ctx) -> dict[str, Any]:
    """Set the status (and tier): an audit leaf and a `customer.kyc_updated` event. Only a
    `verified` customer's payments post, each within its tier's caps (docs/kyc.md)."""
    state = await run_in_threadpool(
        lambda: ctx.kyc.set(ctx.tenant, customer_id, body.status, body.tier, actor=ctx.key.actor)
    )
    return state.to_dict()


@router.post(
    "/accounts/{account_id}/freeze",
    response_model=AccountOut,
    tags=["accounts"],
    openapi_extra=error_codes("not_found") | requires(Scope.COMPLIANCE_WRITE),
)
async def freeze_account(account_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """Frozen, the account refuses debits and credits (`account_frozen`); a void of its pending
    transfers still releases them. An audit leaf and an `account.frozen` event; again on a
    frozen account: the same answer, nothing recorded."""
    account = await run_in_threadpool(
        lambda: ctx.kyc.freeze_account(ctx.tenant, account_id, actor=ctx.key.actor)
    )
    return account.to_dict()


@router.post(
    "/accounts/{account_id}/unfreeze",
    response_model=AccountOut,
    tags=["accounts"],
    openapi_extra=error_codes("not_found", SANCTIONS_CONFIRMED) | requires(Scope.COMPLIANCE_WRITE),
)
async def unfreeze_account(account_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """Lift a freeze: an audit leaf and an `account.unfrozen` event. An account whose customer
    is a confirmed sanctions match stays frozen: 409 `sanctions_confirmed`, nothing written."""
    account = await run_in_threadpool(
        lambda: ctx.kyc.freeze_account(ctx.tenant, account_id, frozen=False, actor=ctx.key.actor)
    )
    return account.to_dict()
