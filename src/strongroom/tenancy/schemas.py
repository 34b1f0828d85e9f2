"""Request and response bodies of the operator's tenant routes (pydantic, strict)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from strongroom.core.clock import Timestamp


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$",
        description="1 to 63 characters of a-z, 0-9, '_', '.', '-'",
    )


class TenantOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    object: Literal["tenant"]
    name: str
    created_at: Timestamp
    suspended_at: Timestamp | None  # while suspended, its keys authenticate no more


class TenantList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    data: list[TenantOut]
    has_more: bool
