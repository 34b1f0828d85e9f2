"""The risk domain's HTTP routes: a payment's recorded decision (`risk:read`) and labels
(`risk:write`). Another tenant's transfer answers 404, as one that does not exist."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.params import IdPath
from strongroom.risk.errors import RISK_DECISION_DAMAGED
from strongroom.risk.schemas import LabelCreate, LabelOut, RiskDecisionOut
from strongroom.risk.service import RiskService
from strongroom.tenancy.access import authorize, requires
from strongroom.tenancy.model import Principal, Scope

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


async def context(request: Request) -> tuple[Principal, RiskService]:
    """Async: FastAPI runs a plain `def` dependency in the threadpool. The principal is let in
    on the route's declared scopes (tenancy.access.requires) before its body is read."""
    key: Principal = request.state.api_key
    authorize(request.scope, key)
    return key, request.app.state.risk


Ctx = Annotated[tuple[Principal, RiskService], Depends(context)]


@router.get(
    "/transfers/{transfer_id}/risk",
    response_model=RiskDecisionOut,
    tags=["risk"],
    operation_id="getTransferRisk",
    openapi_extra=error_codes("not_found", RISK_DECISION_DAMAGED) | requires(Scope.RISK_READ),
)
async def get_transfer_risk(transfer_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """The risk decision recorded on a payment (allowed, held or blocked: a blocked payment
    has a decision and no transfer), with its top feature contributions."""
    key, risk = ctx
    return await run_in_threadpool(risk.decision, key.tenant_id, transfer_id)


@router.post(
    "/risk/labels",
    status_code=201,
    response_model=LabelOut,
    tags=["risk"],
    operation_id="createRiskLabel",
    openapi_extra=error_codes("not_found") | requires(Scope.RISK_WRITE),
)
async def create_risk_label(body: LabelCreate, ctx: Ctx) -> dict[str, Any]:
    """Label a payment as fraud or not (a chargeback, an analyst's finding): the feature store
    and the next training run learn it. An audit leaf and a `risk.labelled` event."""
    key, risk = ctx
    return await run_in_threadpool(
        risk.label, key.tenant_id, body.transfer_id, body.fraud, key.actor
    )
