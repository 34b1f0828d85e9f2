"""Response bodies of the model registry's HTTP API (pydantic), shared with the Python client."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from strongroom.core.clock import Timestamp


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RiskModelOut(_Out):
    object: Literal["risk_model"]
    version: str = Field(description="the artefact's version id, mdl_...")
    status: Literal["registered", "shadow", "live", "retired"]
    sha256: str = Field(description="of the artefact's bytes, hex")
    metrics: dict[str, Any] = Field(
        description="the artefact's hold-out metrics: average_precision, roc_auc, ..."
    )
    created_at: Timestamp
    created_by: str = Field(description="the actor who registered it")
    promoted_at: Timestamp | None = Field(description="when it last went live")


class RiskModelList(_Out):
    object: Literal["list"]
    data: list[RiskModelOut]
    has_more: bool
