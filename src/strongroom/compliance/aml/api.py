"""HTTP routes of an account's AML profile (docs/aml.md, "Exempt accounts and jurisdictions"):
`GET /v1/accounts/{id}/aml` needs `compliance:read`, `PUT` `compliance:write`, never
`ledger:write`: a key that moves money cannot exempt its own account. Another tenant's account
answers 404, as one that does not exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from strongroom.compliance.aml.profiles import AmlProfiles
from strongroom.core.clock import Timestamp
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.params import IdPath
from strongroom.tenancy.access import authorize, requires
from strongroom.tenancy.model import Principal, Scope

Jurisdiction = Annotated[
    str, Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2, e.g. IR")
]


class AccountAmlUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    exempt: bool = Field(
        description="never an alert's subject (a cash desk, a settlement or fee account); its "
        "movements still count for its counterparties"
    )
    jurisdiction: Jurisdiction | None = Field(
        default=None, description="for the high-risk jurisdiction typology; null: none known"
    )


class AccountAmlOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["account_aml"]
    account_id: str
    exempt: bool
    jurisdiction: str | None
    updated_by: str | None
    updated_at: Timestamp | None


router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@dataclass(frozen=True)
class AmlCtx:
    key: Principal
    profiles: AmlProfiles


async def context(request: Request) -> AmlCtx:
    """The caller, authorized before the body is read (a refused key is a 403, whatever it
    sent)."""
    key: Principal = request.state.api_key
    authorize(request.scope, key)
    return AmlCtx(key, request.app.state.aml_profiles)


Ctx = Annotated[AmlCtx, Depends(context)]


@router.get(
    "/accounts/{account_id}/aml",
    response_model=AccountAmlOut,
    tags=["aml"],
    openapi_extra=error_codes("not_found") | requires(Scope.COMPLIANCE_READ),
)
async def get_account_aml(account_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """The account's AML profile; one never set is monitored, with no jurisdiction."""
    found = await run_in_threadpool(lambda: ctx.profiles.get(ctx.key.tenant_id, account_id))
    return found.to_dict()


@router.put(
    "/accounts/{account_id}/aml",
    response_model=AccountAmlOut,
    tags=["aml"],
    openapi_extra=error_codes("not_found", "invalid_country") | requires(Scope.COMPLIANCE_WRITE),
)
async def update_account_aml(
    account_id: IdPath, body: AccountAmlUpdate, ctx: Ctx
) -> dict[str, Any]:
    """Set whether the account is exempt from the AML monitor's alerts, and its jurisdiction:
    an audit leaf and an `account.aml_updated` event. The account's metadata is not read for
    either."""
    found = await run_in_threadpool(
        lambda: ctx.profiles.set(
            ctx.key.tenant_id, account_id, exempt=body.exempt, jurisdiction=body.jurisdiction,
            actor=ctx.key.actor,
        )
    )  # fmt: skip
    return found.to_dict()
