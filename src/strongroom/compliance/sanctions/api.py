"""HTTP routes of sanctions screening: /v1/screenings. An ad-hoc screening (a name, optional
type, date of birth and country) answers the ranked matches with their explanation; nothing of
the query is logged or stored. A customer's or counterparty's screening (by its id) is
read with `compliance:read`; screening, dismissing a match as a false positive and confirming
one need `compliance:write`. Another tenant's subject answers 404, as one never screened."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from strongroom.compliance.sanctions.countries import is_alpha2
from strongroom.compliance.sanctions.errors import INVALID_NAME, LISTS_NOT_LOADED
from strongroom.compliance.sanctions.model import EntryKind, Query
from strongroom.compliance.sanctions.schemas import (
    ConfirmationCreate,
    DismissalCreate,
    DismissalOut,
    ScreeningCreate,
    ScreeningOut,
    SubjectScreeningOut,
)
from strongroom.compliance.sanctions.service import SanctionsService, check_name
from strongroom.compliance.sanctions.views import match_dict
from strongroom.core import clock
from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import ID_LENGTH_MAX
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.tenancy.access import authorize, requires
from strongroom.tenancy.model import Principal, Scope

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


async def context(request: Request) -> tuple[Principal, SanctionsService]:
    """Async: FastAPI runs a plain `def` dependency in the threadpool. The principal is let in
    on the route's declared scopes (tenancy.access.requires) before its body is read."""
    key: Principal = request.state.api_key
    authorize(request.scope, key)
    return key, request.app.state.sanctions


Ctx = Annotated[tuple[Principal, SanctionsService], Depends(context)]
SubjectPath = Annotated[
    str,
    Path(min_length=1, max_length=ID_LENGTH_MAX, description="a customer's or counterparty's id"),
]


def subject_of(subject_id: str) -> str:
    """The stored subject of a customer's (`cus_`) or counterparty's (`cpty_`) id."""
    kind = "counterparty" if subject_id.startswith("cpty_") else "customer"
    return f"{kind}:{subject_id}"  # any other id: a customer never screened (404)


def check_date_of_birth(value: str, today: dt.date) -> str:
    """`YYYY`, `YYYY-MM` or `YYYY-MM-DD` (the schema's pattern), a real month or day, and not
    after `today`: "1967-13-45" is refused rather than compared as a near year."""
    year, _, rest = value.partition("-")
    month, _, day = rest.partition("-")
    try:
        first = dt.date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        first = None
    if first is None or first > today:
        raise InvalidRequest(
            "date_of_birth is a date YYYY, YYYY-MM or YYYY-MM-DD that exists and is not in "
            "the future",
            param="date_of_birth",
        )
    return value


def check_country(value: str) -> str:
    if not is_alpha2(value):
        raise InvalidRequest(
            "country is an ISO 3166-1 alpha-2 code", param="country", code="invalid_country"
        )
    return value


def _screen(service: SanctionsService, body: ScreeningCreate) -> dict[str, Any]:
    check_name(body.name)
    today = dt.datetime.fromtimestamp(clock.now_us() / 1_000_000, dt.UTC).date()
    query = Query(
        body.name,
        EntryKind(body.type) if body.type is not None else None,
        check_date_of_birth(body.date_of_birth, today) if body.date_of_birth else None,
        check_country(body.country) if body.country else None,
    )
    screener, versions = service.screener()
    found = screener.screen(query, limit=body.limit, min_score=body.min_score)
    return {
        "object": "screening",
        "hit": bool(found) and found[0].score >= service.threshold,
        "threshold": service.threshold,
        "lists": dict(versions),
        "matches": [match_dict(m) for m in found],
    }


@router.post(
    "/screenings",
    response_model=ScreeningOut,
    tags=["screenings"],
    operation_id="createScreening",
    openapi_extra=error_codes(LISTS_NOT_LOADED, INVALID_NAME, "invalid_country")
    | requires(Scope.COMPLIANCE_WRITE),
)
async def create_screening(body: ScreeningCreate, ctx: Ctx) -> dict[str, Any]:
    """Screen a name against every loaded sanctions list: the ranked matches (score, list,
    entry id, and which tokens matched), and whether the best is a hit. Nothing is stored.
    A name with no letter or digit answers 400 `invalid_name`, a date of birth that does not
    exist 400 `invalid_request`, a country that is no ISO 3166-1 alpha-2 code 400
    `invalid_country`: refused, never screened as clear."""
    _, service = ctx
    return await run_in_threadpool(_screen, service, body)


def _dismissal(row: Any) -> dict[str, Any]:
    return {
        "object": "sanctions_dismissal",
        "id": row.id,
        "subject_id": row.subject.partition(":")[2],
        "list": row.source,
        "entry_id": row.entry_id,
        "reviewer": row.reviewer,
        "reason": row.reason,
        "created_at": clock.format_us(row.created_at),
    }


@router.post(
    "/screenings/dismissals",
    status_code=201,
    response_model=DismissalOut,
    tags=["screenings"],
    operation_id="createScreeningDismissal",
    openapi_extra=error_codes("not_found") | requires(Scope.COMPLIANCE_WRITE),
)
async def create_dismissal(body: DismissalCreate, ctx: Ctx) -> dict[str, Any]:
    """A reviewed false positive: the subject's match of this list entry alerts no more until
    the subject's name or the entry changes. The reviewer is recorded; an audit leaf and a
    `sanctions.match_dismissed` event. The match's open `sanctions_match` alert case is
    approved in the same transaction (the reviewer decides it, with the reason)."""
    key, service = ctx
    row = await run_in_threadpool(
        lambda: service.dismiss(
            key.tenant_id, subject_of(body.subject_id), body.list, body.entry_id,
            reviewer=key.actor, reason=body.reason,
        )
    )  # fmt: skip
    return _dismissal(row)


def _subject(service: SanctionsService, tenant_id: str, subject: str) -> dict[str, Any]:
    row, results = service.subject(tenant_id, subject)
    return {
        "object": "sanctions_subject",
        "subject_id": row.subject.partition(":")[2],
        "status": row.status,
        "best_score": row.best_score,
        "screened_at": clock.format_us(row.screened_at),
        "matches": [
            {
                "list": r.source,
                "entry_id": r.entry_id,
                "score": r.score,
                "list_version": r.list_version,
                "case_id": r.case_id,
                "dismissed": dismissed,
                "screened_at": clock.format_us(r.screened_at),
            }
            for r, dismissed in results
        ],
    }


@router.post(
    "/screenings/confirmations",
    response_model=SubjectScreeningOut,
    tags=["screenings"],
    operation_id="createScreeningConfirmation",
    openapi_extra=error_codes("not_found") | requires(Scope.COMPLIANCE_WRITE),
)
async def create_confirmation(body: ConfirmationCreate, ctx: Ctx) -> dict[str, Any]:
    """A confirmed match: the subject is `confirmed` (the payee gate blocks payments to it), a
    customer's accounts are frozen; an audit leaf and a `sanctions.match_confirmed` event. The
    match's open `sanctions_match` alert case is declined in the same transaction (the
    reviewer decides it, with the reason)."""
    key, service = ctx

    def run() -> dict[str, Any]:
        subject = subject_of(body.subject_id)
        service.confirm(
            key.tenant_id, subject, body.list, body.entry_id, actor=key.actor,
            reason=body.reason,
        )  # fmt: skip
        return _subject(service, key.tenant_id, subject)

    return await run_in_threadpool(run)


@router.get(
    "/screenings/subjects/{subject_id}",
    response_model=SubjectScreeningOut,
    tags=["screenings"],
    operation_id="getScreeningSubject",
    openapi_extra=error_codes("not_found") | requires(Scope.COMPLIANCE_READ),
)
async def get_subject(subject_id: SubjectPath, ctx: Ctx) -> dict[str, Any]:
    """A customer's or counterparty's screening: its status (`clear`, `probable`,
    `confirmed`) and its stored matches (list, entry, score, alert case, dismissed)."""
    key, service = ctx
    return await run_in_threadpool(_subject, service, key.tenant_id, subject_of(subject_id))
