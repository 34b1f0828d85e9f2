"""HTTP routes of the case queue: /v1/cases. Reading needs `cases:read`; approving and
declining `cases:write`. Another tenant's case answers 404, as one that does not exist; a case
no longer open answers 409 `case_not_open` with nothing written. The POSTs take an
Idempotency-Key like every POST (the middleware replays the answer); without one, a retry
after a crash still completes the decision the first attempt carried out in the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from strongroom.cases.model import Case
from strongroom.cases.schemas import CaseApprove, CaseDecline, CaseList, CaseOut, CaseStatusName
from strongroom.cases.service import CaseService, CaseView
from strongroom.core.limits import CASE_KIND_LENGTH_MAX, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.pagination import list_body
from strongroom.http.params import IdPath, OptionalIdQuery
from strongroom.ledger.views import transfer_to_dict
from strongroom.tenancy.access import authorize, requires
from strongroom.tenancy.model import Principal, Scope


@dataclass(frozen=True)
class CasesCtx:
    key: Principal
    cases: CaseService

    @property
    def tenant(self) -> str:
        return self.key.tenant_id


async def context(request: Request) -> CasesCtx:
    """Async: FastAPI runs a plain `def` dependency in the threadpool. The principal is let in
    on the route's declared scopes (tenancy.access.requires) before its body is read."""
    key: Principal = request.state.api_key
    authorize(request.scope, key)
    return CasesCtx(key, request.app.state.cases)


Ctx = Annotated[CasesCtx, Depends(context)]
Limit = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)]
KindQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=CASE_KIND_LENGTH_MAX, description="e.g. `risk_review`"),
]

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
DECISION_ERRORS = ("not_found", "case_not_open", "case_transfer_refused")


def _case(case: Case) -> dict[str, Any]:
    return case.to_dict()


def _view(view: CaseView) -> dict[str, Any]:
    out = view.case.to_dict()
    out["transfer"] = transfer_to_dict(view.transfer) if view.transfer is not None else None
    return out


@router.get(
    "/cases",
    response_model=CaseList,
    tags=["cases"],
    openapi_extra=error_codes() | requires(Scope.CASES_READ),
)
async def list_cases(
    ctx: Ctx,
    limit: Limit = PAGE_SIZE_DEFAULT,
    starting_after: OptionalIdQuery = None,
    status: CaseStatusName | None = None,
    kind: KindQuery = None,
) -> dict[str, Any]:
    """Newest first, each with its decision (gate, code, detail: score, reasons, features);
    `status=open` is the queue to work."""
    page = await run_in_threadpool(
        lambda: ctx.cases.list_cases(
            ctx.tenant, status=status, kind=kind, starting_after=starting_after, limit=limit
        )
    )
    return list_body([_case(c) for c in page.data], page.has_more)


@router.get(
    "/cases/{case_id}",
    response_model=CaseOut,
    tags=["cases"],
    openapi_extra=error_codes("not_found") | requires(Scope.CASES_READ),
)
async def get_case(case_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """The case, its decision's detail (features, score, reasons, contributions) and its
    transfer as the ledger holds it now (amount, accounts, status)."""
    return _view(await run_in_threadpool(lambda: ctx.cases.get(ctx.tenant, case_id)))


@router.post(
    "/cases/{case_id}/approve",
    response_model=CaseOut,
    tags=["cases"],
    openapi_extra=error_codes(DECISION_ERRORS) | requires(Scope.CASES_WRITE),
)
async def approve_case(
    case_id: IdPath, ctx: Ctx, body: Annotated[CaseApprove | None, Body()] = None
) -> dict[str, Any]:
    """Posts the held transfer (through the ledger's pipeline), then marks the case approved,
    labelled genuine. An audit leaf and an event `case.approved`."""
    reason = body.reason if body is not None else None
    view = await run_in_threadpool(
        lambda: ctx.cases.approve(ctx.tenant, case_id, actor=ctx.key.actor, reason=reason)
    )
    return _view(view)


@router.post(
    "/cases/{case_id}/decline",
    response_model=CaseOut,
    tags=["cases"],
    openapi_extra=error_codes(DECISION_ERRORS) | requires(Scope.CASES_WRITE),
)
async def decline_case(
    case_id: IdPath, ctx: Ctx, body: Annotated[CaseDecline | None, Body()] = None
) -> dict[str, Any]:
    """Voids the held transfer, then marks the case declined, labelled fraud unless the body
    says `"fraud": false`. An audit leaf and an event `case.declined`."""
    reason = body.reason if body is not None else None
    fraud = body.fraud if body is not None else True
    view = await run_in_threadpool(
        lambda: ctx.cases.decline(
            ctx.tenant, case_id, actor=ctx.key.actor, reason=reason, fraud=fraud
        )
    )
    return _view(view)
