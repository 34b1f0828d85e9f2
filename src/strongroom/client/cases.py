"""The review queue's operations as request values, for both clients (as `resources`: each
function becomes a method of `Client` and `AsyncClient`). Deciding a case that is no longer
open raises `CaseNotOpenError` (409); a refusal of the ledger to post or void its transfer
raises `CaseTransferRefusedError` (422)."""

from __future__ import annotations

from strongroom.cases.schemas import CaseList, CaseNoteList, CaseNoteOut, CaseOut, ReportOut
from strongroom.client._spec import Call, Paged, model, segment
from strongroom.client.resources import _after_last_id, _data


def list_cases(
    *,
    status: str | None = None,
    kind: str | None = None,
    assignee: str | None = None,
    limit: int | None = None,
    starting_after: str | None = None,
) -> Call[CaseList]:
    """One page of the tenant's cases, newest first (`cases:read`); `status`: open, approved,
    declined or closed; `kind`: e.g. risk_review; `assignee`: a staff user's id."""
    params = {
        "status": status,
        "kind": kind,
        "assignee": assignee,
        "limit": limit,
        "starting_after": starting_after,
    }
    return Call("GET", "/v1/cases", model(CaseList), params=params)


def iter_cases(
    *,
    status: str | None = None,
    kind: str | None = None,
    limit: int | None = None,
    starting_after: str | None = None,
) -> Paged[CaseList, CaseOut]:
    """Every case (after `starting_after`), newest first; `status="open"` is the queue."""
    first = list_cases(status=status, kind=kind, limit=limit, starting_after=starting_after)
    return Paged(first, _after_last_id, _data)


def get_case(case_id: str) -> Call[CaseOut]:
    """A case with its decision's detail and its transfer as the ledger holds it now."""
    return Call("GET", f"/v1/cases/{segment(case_id)}", model(CaseOut))


def approve_case(
    case_id: str, *, reason: str | None = None, idempotency_key: str | None = None
) -> Call[CaseOut]:
    """Post the held transfer and mark the case approved, labelled genuine (`cases:write`)."""
    body = {"reason": reason} if reason is not None else {}
    return Call(
        "POST",
        f"/v1/cases/{segment(case_id)}/approve",
        model(CaseOut),
        json=body,
        idempotency_key=idempotency_key,
    )


def decline_case(
    case_id: str,
    *,
    fraud: bool = True,
    reason: str | None = None,
    idempotency_key: str | None = None,
) -> Call[CaseOut]:
    """Void the held transfer and mark the case declined (`cases:write`), labelled fraud
    unless `fraud` is False."""
    body: dict[str, object] = {"fraud": fraud}
    if reason is not None:
        body["reason"] = reason
    return Call(
        "POST",
        f"/v1/cases/{segment(case_id)}/decline",
        model(CaseOut),
        json=body,
        idempotency_key=idempotency_key,
    )


def assign_case(
    case_id: str, assignee: str | None, *, idempotency_key: str | None = None
) -> Call[CaseOut]:
    """Assign an open case to a staff user of the tenant, or unassign it with None
    (`cases:write`)."""
    return Call(
        "POST",
        f"/v1/cases/{segment(case_id)}/assign",
        model(CaseOut),
        json={"assignee": assignee},
        idempotency_key=idempotency_key,
    )


def create_case_note(
    case_id: str, body: str, *, idempotency_key: str | None = None
) -> Call[CaseNoteOut]:
    """Add a note to a case: its report's narrative (`cases:write`)."""
    return Call(
        "POST",
        f"/v1/cases/{segment(case_id)}/notes",
        model(CaseNoteOut),
        json={"body": body},
        idempotency_key=idempotency_key,
    )


def list_case_notes(case_id: str) -> Call[CaseNoteList]:
    """A case's notes, oldest first (`cases:read`)."""
    return Call("GET", f"/v1/cases/{segment(case_id)}/notes", model(CaseNoteList))


def get_case_report(case_id: str, *, reveal: bool = False) -> Call[ReportOut]:
    """The case's suspicious-activity report draft as JSON (`cases:read`; `reveal`: the
    subject's personal data in full, with `pii:read`). The HTML page is
    GET /v1/cases/{id}/report?format=html."""
    params = {"reveal": reveal} if reveal else {}
    return Call("GET", f"/v1/cases/{segment(case_id)}/report", model(ReportOut), params=params)
