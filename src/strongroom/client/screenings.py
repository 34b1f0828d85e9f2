"""Sanctions screening's operations as request values, for both clients (as `resources`: each
function becomes a method of `Client` and `AsyncClient`). Screening, dismissing and confirming
need `compliance:write`; reading a subject's screening `compliance:read`."""

from __future__ import annotations

from typing import Any

from strongroom.client._spec import Call, model, segment
from strongroom.compliance.sanctions.schemas import (
    DismissalOut,
    ScreeningOut,
    SubjectScreeningOut,
)


def create_screening(
    name: str,
    *,
    type: str | None = None,
    date_of_birth: str | None = None,
    country: str | None = None,
    limit: int | None = None,
    min_score: float | None = None,
    idempotency_key: str | None = None,
) -> Call[ScreeningOut]:
    """Screen a name against every loaded sanctions list: the ranked matches with score,
    list, entry id and explanation, and whether the best is a hit. Nothing is stored."""
    body: dict[str, Any] = {"name": name}
    for key, value in (
        ("type", type),
        ("date_of_birth", date_of_birth),
        ("country", country),
        ("limit", limit),
        ("min_score", min_score),
    ):
        if value is not None:
            body[key] = value
    return Call(
        "POST", "/v1/screenings", model(ScreeningOut), json=body, idempotency_key=idempotency_key
    )


def get_screening_subject(subject_id: str) -> Call[SubjectScreeningOut]:
    """A customer's or counterparty's screening: its status and stored matches."""
    path = f"/v1/screenings/subjects/{segment(subject_id)}"
    return Call("GET", path, model(SubjectScreeningOut))


def dismiss_screening_match(
    subject_id: str,
    list: str,
    entry_id: str,
    *,
    reason: str | None = None,
    idempotency_key: str | None = None,
) -> Call[DismissalOut]:
    """A reviewed false positive: no alert again until the name or the entry changes."""
    body = {"subject_id": subject_id, "list": list, "entry_id": entry_id, "reason": reason}
    return Call(
        "POST",
        "/v1/screenings/dismissals",
        model(DismissalOut),
        json=body,
        idempotency_key=idempotency_key,
    )


def confirm_screening_match(
    subject_id: str,
    list: str,
    entry_id: str,
    *,
    reason: str | None = None,
    idempotency_key: str | None = None,
) -> Call[SubjectScreeningOut]:
    """A confirmed match: the subject is blocked as a payee; a customer's accounts frozen;
    the match's open alert case declined with `reason`."""
    body: dict[str, str | None] = {"subject_id": subject_id, "list": list, "entry_id": entry_id}
    if reason is not None:
        body["reason"] = reason
    return Call(
        "POST",
        "/v1/screenings/confirmations",
        model(SubjectScreeningOut),
        json=body,
        idempotency_key=idempotency_key,
    )
