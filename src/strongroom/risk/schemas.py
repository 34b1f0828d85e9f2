"""Request and response bodies of the risk API (pydantic, strict), and the `risk` object a held
transfer's answer carries."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from strongroom.core.clock import Timestamp
from strongroom.core.limits import ID_LENGTH_MAX
from strongroom.ledger.schemas import RiskOut


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    transfer_id: Annotated[str, Field(min_length=1, max_length=ID_LENGTH_MAX)]
    fraud: StrictBool = Field(description="true: fraud (a chargeback, an analyst's finding)")


class RiskDecisionOut(RiskOut):
    object: Literal["risk_decision"]
    transfer_id: str
    features: dict[str, float] = Field(
        description="The features the decision was made on (risk/features.py): numbers only"
    )
    shadow_score: float | None
    shadow_version: str | None
    created_at: Timestamp


class LabelOut(_Out):
    object: Literal["risk_label"]
    transfer_id: str
    fraud: bool
    labelled_at: Timestamp
