"""Request and response bodies of KYC's HTTP API (pydantic, strict)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from strongroom.core.clock import Timestamp

KycStatusName = Literal["unverified", "pending", "verified", "rejected"]
TierName = Annotated[str, Field(min_length=1, max_length=64, description="e.g. `standard`")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KycUpdate(_In):
    status: KycStatusName
    tier: TierName | None = Field(
        default=None, description="one of the tenant's tiers; left out, the tier is kept"
    )


class KycOut(_Out):
    object: Literal["customer_kyc"]
    customer_id: str
    status: KycStatusName
    tier: str
    updated_by: str | None
    updated_at: Timestamp | None
