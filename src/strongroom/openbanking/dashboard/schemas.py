"""Response bodies of the dashboard's routes (pydantic): what the OpenAPI document and the
Python client read. model.consent_view makes them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from strongroom.core.clock import Timestamp


class OpenbankingConsentTpp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="the TPP's client id (tpp_...)")
    name: str | None = Field(description="its registered name; null if it is registered no more")


class OpenbankingConsentOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    object: Literal["openbanking_consent"]
    tpp: OpenbankingConsentTpp
    kind: Literal["account_access", "domestic_payment", "funds_confirmation"]
    status: Literal["AWAU", "AUTH", "RJCT", "EXPD", "CANC", "COND"] = Field(
        description="UK Open Banking's consent status: AUTH authorised, CANC revoked, EXPD "
        "expired, RJCT rejected, AWAU awaiting authorisation, COND consumed (a payment)"
    )
    in_force: bool = Field(
        description="authorised and its expiry not passed: whether it opens anything now"
    )
    customer_id: str | None
    permissions: list[str] = Field(
        description="an account access consent's OB permissions, in the order requested"
    )
    covers: str = Field(description="what it lets the TPP do, in one line")
    account_ids: list[str] = Field(description="the accounts the customer granted")
    created_at: Timestamp
    authorised_at: Timestamp | None = Field(
        description="when it was authorised, while it is (status AUTH); null otherwise"
    )
    status_updated_at: Timestamp
    expires_at: Timestamp | None = Field(description="its ExpirationDateTime; null: none")


class OpenbankingConsentList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    data: list[OpenbankingConsentOut]
    has_more: bool
