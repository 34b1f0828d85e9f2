"""Request and response bodies of the screening API (pydantic, strict)."""

from __future__ import annotations

import builtins
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from strongroom.core.clock import Timestamp
from strongroom.core.limits import ID_LENGTH_MAX, SCREENING_MATCHES_MAX, SCREENING_NAME_CHARS_MAX

SubjectId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=ID_LENGTH_MAX,
        pattern=r"^(cus|cpty)_[0-9a-z]+$",
        description="a customer's or a counterparty's id",
    ),
]
ListName = Annotated[
    Literal["un", "ofac_sdn", "ofac_cons", "bis_dpl", "pep"], Field(description="the list")
]
EntryId = Annotated[str, Field(min_length=1, max_length=128)]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScreeningCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[str, Field(min_length=1, max_length=SCREENING_NAME_CHARS_MAX)]
    type: Literal["person", "organization"] | None = Field(
        default=None, description="narrows the candidates (a person is not matched to vessels)"
    )
    date_of_birth: Annotated[
        str | None,
        Field(
            default=None,
            max_length=10,
            pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$",
            description="YYYY[-MM[-DD]]",
        ),
    ] = None
    country: Annotated[
        str | None,
        Field(default=None, max_length=2, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2"),
    ] = None
    limit: Annotated[int, Field(ge=1, le=SCREENING_MATCHES_MAX)] = 10
    min_score: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5


class TokenOut(_Out):
    query: str
    entry: str
    score: float


class ExplanationOut(_Out):
    matched_name: str
    name_score: float
    tokens: builtins.list[TokenOut]
    date_of_birth: str | None
    country: str | None


class MatchOut(_Out):
    score: float = Field(description="calibrated, in [0, 1]")
    list: str
    entry_id: str
    entry_name: str | None
    kind: str
    programs: builtins.list[str]
    explanation: ExplanationOut


class ScreeningOut(_Out):
    object: Literal["screening"]
    hit: bool = Field(description="the best match scores at least the configured threshold")
    threshold: float
    lists: dict[str, int] = Field(description="the version of each list screened against")
    matches: builtins.list[MatchOut]


class DismissalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    subject_id: SubjectId
    list: ListName
    entry_id: EntryId
    reason: Annotated[str | None, Field(default=None, max_length=2_000)] = None


class DismissalOut(_Out):
    object: Literal["sanctions_dismissal"]
    id: str
    subject_id: str
    list: str
    entry_id: str
    reviewer: str
    reason: str | None
    created_at: Timestamp


class ConfirmationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    subject_id: SubjectId
    list: ListName
    entry_id: EntryId
    reason: Annotated[
        str | None,
        Field(
            default=None,
            max_length=2_000,
            description="why: the reason of the alert case this confirmation declines",
        ),
    ] = None


class SubjectMatchOut(_Out):
    list: str
    entry_id: str
    score: float
    list_version: int
    case_id: str | None
    dismissed: bool
    screened_at: Timestamp


class SubjectScreeningOut(_Out):
    object: Literal["sanctions_subject"]
    subject_id: str
    status: Literal["clear", "probable", "confirmed"]
    best_score: float
    screened_at: Timestamp
    matches: builtins.list[SubjectMatchOut]
