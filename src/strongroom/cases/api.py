"""HTTP routes of the case queue: /v1/cases. Reading needs `cases:read`; approving and
declining `cases:write`. Another tenant's case answers 404, as one that does not exist; a case
no longer open answers 409 `case_not_open` with nothing written. The POSTs take an
Idempotency-Key like every POST (the middleware replays the answer); without one, a retry
after a crash still completes the decision the first attempt carried out in the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from strongroom.cases import report as case_report
from strongroom.cases.model import Case
from strongroom.cases.schemas import (
    CaseApprove,
    CaseAssign,
    CaseDecline,
    CaseList,
    CaseNoteCreate,
    CaseNoteList,
    CaseNoteOut,
    CaseOut,
    CaseStatusName,
    ReportOut,
)
from strongroom.cases.service import CaseService, CaseView
from strongroom.cases.work import CaseWork
from strongroom.core.limits import CASE_KIND_LENGTH_MAX, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.pagination import list_body
from strongroom.http.params import IdPath, OptionalIdQuery
from strongroom.ledger.views import transfer_to_dict
from strongroom.tenancy.access import authorize, require_scope, require_step_up, requires
from strongroom.tenancy.model import Principal, Scope


@dataclass(frozen=True)
class CasesCtx:
    key: Principal
    cases: CaseService
    work: CaseWork

    @property
    def tenant(self) -> str:
        return self.key.tenant_id


async def context(request: Request) -> CasesCtx:
    """Async: FastAPI runs a plain `def` dependency in the threadpool. The principal is let in
    on the route's declared scopes (tenancy.access.requires) before its body is read."""
    key: Principal = request.state.api_key
    authorize(request.scope, key)
    return CasesCtx(key, request.app.state.cases, request.app.state.case_work)


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


async def _may_decide(ctx: CasesCtx, case_id: str) -> None:
    """A case of a restricted kind (a sanctions or AML alert: compliance's) is decided only by
    a principal that also holds its scope (403 `insufficient_scope`, nothing written)."""
    view = await run_in_threadpool(lambda: ctx.cases.get(ctx.tenant, case_id, complete=False))
    needed = ctx.cases.required_scope(view.case.kind)
    if needed is not None:
        require_scope(ctx.key, Scope(needed))


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
    assignee: OptionalIdQuery = None,
) -> dict[str, Any]:
    """Newest first, each with its decision (gate, code, detail: score, reasons, features);
    `status=open` is the queue to work, `assignee=usr_...` one officer's."""
    page = await run_in_threadpool(
        lambda: ctx.cases.list_cases(
            ctx.tenant,
            status=status,
            kind=kind,
            assignee=assignee,
            starting_after=starting_after,
            limit=limit,
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
    await _may_decide(ctx, case_id)
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
    await _may_decide(ctx, case_id)
    reason = body.reason if body is not None else None
    fraud = body.fraud if body is not None else True
    view = await run_in_threadpool(
        lambda: ctx.cases.decline(
            ctx.tenant, case_id, actor=ctx.key.actor, reason=reason, fraud=fraud
        )
    )
    return _view(view)


@router.post(
    "/cases/{case_id}/assign",
    response_model=CaseOut,
    tags=["cases"],
    openapi_extra=error_codes("not_found", "case_not_open") | requires(Scope.CASES_WRITE),
)
async def assign_case(case_id: IdPath, body: CaseAssign, ctx: Ctx) -> dict[str, Any]:
    """Assigns an open case to a staff user of the tenant (`assignee: null` unassigns it). An
    audit leaf and an event `case.assigned`."""
    case = await run_in_threadpool(
        lambda: ctx.work.assign(ctx.tenant, case_id, body.assignee, actor=ctx.key.actor)
    )
    return _case(case)


@router.post(
    "/cases/{case_id}/notes",
    status_code=201,
    response_model=CaseNoteOut,
    tags=["cases"],
    openapi_extra=error_codes("not_found", "case_notes_full") | requires(Scope.CASES_WRITE),
)
async def create_case_note(case_id: IdPath, body: CaseNoteCreate, ctx: Ctx) -> dict[str, Any]:
    """A note on a case (open or decided): the narrative of its report. An audit leaf and an
    event `case.note_added`, each naming the note's id, never its text."""
    note = await run_in_threadpool(
        lambda: ctx.work.add_note(ctx.tenant, case_id, body.body, actor=ctx.key.actor)
    )
    return note.to_dict()


@router.get(
    "/cases/{case_id}/notes",
    response_model=CaseNoteList,
    tags=["cases"],
    openapi_extra=error_codes("not_found") | requires(Scope.CASES_READ),
)
async def list_case_notes(case_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """The case's notes, oldest first (a case holds at most 500)."""
    notes = await run_in_threadpool(lambda: ctx.work.notes(ctx.tenant, case_id))
    return list_body([n.to_dict() for n in notes], False)


@router.get(
    "/cases/{case_id}/report",
    response_model=ReportOut,
    tags=["cases"],
    responses={200: {"content": {"text/html": {}}}},
    openapi_extra=error_codes("not_found", "step_up_required", "data_erased")
    | requires(Scope.CASES_READ),
)
async def get_case_report(
    case_id: IdPath,
    ctx: Ctx,
    request: Request,
    reveal: Annotated[
        bool,
        Query(
            description="the subject's personal data in full: needs `pii:read` too (a user "
            "steps up first); the reveal is an audit leaf of the customer"
        ),
    ] = False,
) -> Response | dict[str, Any]:
    """A suspicious-activity report draft of the case: the reporting institution, the subject,
    the activity (category, dates, the transfers it names with their totals per asset), the
    narrative (its notes) and the decision. JSON, or a self-contained HTML page for a request
    that accepts `text/html` and not `application/json` (a browser). A draft for an officer
    to complete and file: Strongroom files nothing."""
    if reveal:
        require_step_up(ctx.key, Scope.PII_READ)
    body = await run_in_threadpool(
        lambda: ctx.work.report(ctx.tenant, case_id, actor=ctx.key.actor, reveal=reveal)
    )
    accept = request.headers.get("accept", "")
    if "text/html" in accept and "application/json" not in accept:
        return HTMLResponse(case_report.to_html(body))
    return body
