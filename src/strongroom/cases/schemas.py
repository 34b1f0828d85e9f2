"""Request and response bodies of the case queue's HTTP API (pydantic, strict)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from strongroom.core.clock import Timestamp
from strongroom.core.limits import CASE_NOTE_CHARS_MAX, CASE_REASON_CHARS_MAX
from strongroom.ledger.schemas import TransferOut

Reason = Annotated[
    str,
    Field(
        min_length=1,
        max_length=CASE_REASON_CHARS_MAX,
        description="why, for the case's record (not in the audit leaf or the event: it is "
        "free text)",
    ),
]
CaseStatusName = Literal["open", "approved", "declined", "closed"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseApprove(_In):
    reason: Reason | None = None


class CaseDecline(_In):
    reason: Reason | None = None
    fraud: bool = Field(
        default=True,
        description="the label the decision gives the transfer for training: false when it "
        "is declined for another reason than fraud",
    )


class CaseAssign(_In):
    assignee: str | None = Field(
        min_length=1,
        max_length=64,
        description="the id of a staff user of the tenant (`usr_...`); null unassigns the case",
    )


class CaseNoteCreate(_In):
    body: str = Field(
        min_length=1,
        max_length=CASE_NOTE_CHARS_MAX,
        description="the note: free text for the case's record and its report's narrative "
        "(never in an audit leaf or an event)",
    )


class CaseNoteOut(_Out):
    id: str
    object: Literal["case_note"]
    case_id: str
    author: str = Field(description="who wrote it: an actor")
    body: str
    created_at: Timestamp


class CaseNoteList(_Out):
    object: Literal["list"]
    data: list[CaseNoteOut]
    has_more: bool


class DecisionOut(_Out):
    gate: str | None = Field(description="the gate that held the transfer (`risk`, ...)")
    code: str | None = Field(description="why it held it (`risk_review`, ...)")
    detail: dict[str, Any] = Field(
        description="what the gate said of its decision, where it says anything: score, "
        "reasons, model and rule-set versions, features, contributions (no personal data; "
        "a risk review's contributions are computed when the case is read by id, empty in "
        "a list)"
    )


class CaseOut(_Out):
    id: str
    object: Literal["case"]
    kind: str = Field(description="`risk_review`, or `<gate>_review` for another gate's hold")
    status: CaseStatusName
    transfer_id: str | None = Field(description="the held transfer (pending while open)")
    decision: DecisionOut
    created_at: Timestamp
    decided_at: Timestamp | None
    decided_by: str | None = Field(description="who decided or closed it: an actor")
    reason: str | None = Field(
        description="the analyst's reason; for a closed case, what closed it "
        "(`transfer_posted`, `transfer_voided`, `transfer_expired`)"
    )
    label: Literal["fraud", "genuine"] | None = Field(
        description="the decision as a training label: approved is genuine, declined is "
        "fraud unless the decline said otherwise; null while open and when closed"
    )
    assignee: str | None = Field(
        default=None, description="the staff user working the case (a user id), if assigned"
    )
    transfer: TransferOut | None = Field(
        default=None, description="the held transfer as the ledger holds it now (a case's GET)"
    )


class CaseList(_Out):
    object: Literal["list"]
    data: list[CaseOut]
    has_more: bool


class ReportOut(_Out):
    """A suspicious-activity report draft (cases/report.py): an officer completes and files
    it; Strongroom files nothing."""

    object: Literal["suspicious_activity_report_draft"]
    status: Literal["draft"]
    generated_at: Timestamp
    generated_by: str
    reporting_institution: dict[str, Any]
    case: CaseOut
    subject: dict[str, Any] = Field(
        description="the case's subject (a customer or counterparty): masked, or in full with "
        "`reveal=true` (pii:read)"
    )
    suspicious_activity: dict[str, Any] = Field(
        description="category (the case's kind), code, reason, first and last dates, the "
        "transfers with their assets and the totals per asset"
    )
    narrative: list[CaseNoteOut]
    officer: str | None
    decision: dict[str, Any]
