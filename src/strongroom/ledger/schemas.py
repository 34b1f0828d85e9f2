"""Request and response bodies of the ledger's HTTP API (pydantic, strict: a float or a string
where an integer belongs is refused, never coerced)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, WithJsonSchema

from strongroom.core.clock import Timestamp
from strongroom.core.limits import (
    ACCOUNT_FLAG_LENGTH_MAX,
    ASSET_CODE_LENGTH_MAX,
    BATCH_TRANSFERS_MAX,
    ID_LENGTH_MAX,
    LEGS_PER_TRANSFER_MAX,
    METADATA_BYTES_MAX,
    METADATA_KEY_LENGTH_MAX,
    METADATA_KEYS_MAX,
    NAME_LENGTH_MAX,
    PAYMENT_IP_LENGTH_MAX,
    PAYMENT_REF_LENGTH_MAX,
    SCREENING_NAME_CHARS_MAX,
    TIMESTAMP_LENGTH_MAX,
)

# Every string of a request has a bound (core.limits), stated in the OpenAPI document.
Id = Annotated[str, Field(min_length=1, max_length=ID_LENGTH_MAX)]
Name = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH_MAX)]
TimestampIn = Annotated[Timestamp, Field(max_length=TIMESTAMP_LENGTH_MAX)]
# Metadata's bounds are checked where it is made canonical (ledger.model.canonical_metadata),
# which answers invalid_metadata or metadata_too_large; the schema states them. A string value
# is at most METADATA_BYTES_MAX characters since the whole is at most that many bytes.
MetadataIn = Annotated[
    dict[str, str | StrictInt | StrictBool | None],
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": METADATA_KEYS_MAX,
            "propertyNames": {"minLength": 1, "maxLength": METADATA_KEY_LENGTH_MAX},
            "additionalProperties": {
                "anyOf": [
                    {"type": "string", "maxLength": METADATA_BYTES_MAX},
                    {"type": "integer"},
                    {"type": "boolean"},
                    {"type": "null"},
                ]
            },
            "description": f"at most {METADATA_KEYS_MAX} keys and {METADATA_BYTES_MAX} bytes "
            "as canonical JSON",
        }
    ),
]
DirectionName = Literal["debit", "credit"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ------------------------------------------------------------------------------


class LedgerCreate(_In):
    name: Name
    metadata: MetadataIn | None = None


class AssetCreate(_In):
    code: str = Field(min_length=2, max_length=ASSET_CODE_LENGTH_MAX)
    scale: StrictInt = Field(ge=0, le=18)


class AccountCreate(_In):
    ledger_id: Id
    asset: str = Field(max_length=ASSET_CODE_LENGTH_MAX)
    normal_balance: DirectionName
    name: Name | None = None
    flags: list[Annotated[str, Field(max_length=ACCOUNT_FLAG_LENGTH_MAX)]] = Field(
        default_factory=list, max_length=2
    )
    metadata: MetadataIn | None = None
    customer_id: Id | None = Field(
        default=None, description="cus_...: the customer who owns the account, of your tenant"
    )


class LegIn(_In):
    account_id: Id
    direction: DirectionName
    amount: StrictInt


class PaymentIn(_In):
    """Marks a transfer as a payment, which the risk gate scores before it posts (when
    STRONGROOM_RISK is on). Only a plain transfer may carry one."""

    customer_id: Id = Field(description="cus_...: the paying customer, of your tenant")
    payee: str | None = Field(
        default=None,
        min_length=1,
        max_length=PAYMENT_REF_LENGTH_MAX,
        description="the other side: a terminal or counterparty id",
    )
    channel: (
        Literal["card_present", "card_not_present", "bank_transfer", "wallet", "other"] | None
    ) = None
    device: str | None = Field(
        default=None,
        min_length=1,
        max_length=PAYMENT_REF_LENGTH_MAX,
        description="a device id you vouch for",
    )
    ip: str | None = Field(
        default=None,
        min_length=1,
        max_length=PAYMENT_IP_LENGTH_MAX,
        description="the payer's IPv4 or IPv6 address",
    )
    payee_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=SCREENING_NAME_CHARS_MAX,
        description="the payee's name, where `payee` is no counterparty of yours: screened "
        "against the sanctions lists (STRONGROOM_SCREENING) in memory, never stored",
    )


class TransferCreate(_In):
    ledger_id: Id
    debit_account_id: Id | None = None
    credit_account_id: Id | None = None
    amount: StrictInt | None = None
    entries: list[LegIn] | None = Field(default=None, max_length=LEGS_PER_TRANSFER_MAX)
    pending: StrictBool = False
    timeout_s: StrictInt = 0
    effective_at: TimestampIn | None = Field(
        default=None,
        description="RFC 3339 time the transfer counts from for reporting (backdating); "
        "default: when it is recorded.",
    )
    metadata: MetadataIn | None = None
    payment: PaymentIn | None = None


class BatchTransfer(TransferCreate):
    linked: StrictBool = False


class BatchCreate(_In):
    transfers: list[BatchTransfer] = Field(min_length=1, max_length=BATCH_TRANSFERS_MAX)
    atomic: StrictBool = False


class Resolve(_In):
    amount: StrictInt | None = None
    metadata: MetadataIn | None = None


# -- responses -----------------------------------------------------------------------------


class LedgerOut(_Out):
    id: str
    object: Literal["ledger"]
    name: str
    metadata: dict[str, str | int | bool | None]
    created_at: Timestamp


class AssetOut(_Out):
    object: Literal["asset"]
    code: str
    scale: int


class BalancesOut(_Out):
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    posted: int
    pending: int
    available: int


class AccountOut(_Out):
    id: str
    object: Literal["account"]
    ledger_id: str
    customer_id: str | None
    name: str | None
    asset: str
    normal_balance: DirectionName
    flags: list[str]
    closed: bool
    frozen: bool = False  # a server before 0022 does not send it
    metadata: dict[str, str | int | bool | None]
    balances: BalancesOut
    version: int
    created_at: Timestamp


class BalanceAtOut(_Out):
    object: Literal["balance"]
    account_id: str
    version: int
    balances: BalancesOut


class EntryOut(_Out):
    object: Literal["entry"]
    account_id: str
    version: int
    transfer_id: str
    direction: DirectionName
    amount: int
    pending_amount: int
    balance_after: BalancesOut
    created_at: Timestamp


class LegOut(_Out):
    account_id: str
    direction: DirectionName
    amount: int


class ReasonOut(_Out):
    code: str
    text: str


class ContributionOut(_Out):
    feature: str
    value: float
    contribution: float


class RiskOut(_Out):
    """The risk gate's decision, in the answer of a payment it held for review."""

    verdict: Literal["allow", "review", "block"]
    score: float | None
    reasons: list[ReasonOut]
    model_version: str | None
    rules_version: str | None
    contributions: list[ContributionOut]


class TransferOut(_Out):
    id: str
    object: Literal["transfer"]
    ledger_id: str
    action: Literal["transfer", "post", "void", "reverse"]
    status: Literal["posted", "pending", "voided", "expired"]
    amount: int
    pending: bool
    metadata: dict[str, str | int | bool | None]
    created_at: Timestamp
    effective_at: Timestamp
    debit_account_id: str | None = None
    credit_account_id: str | None = None
    entries: list[LegOut] | None = None
    target_id: str | None = None
    expires_at: Timestamp | None = None
    risk: RiskOut | None = Field(
        default=None,
        description="a payment held for review: the risk decision (in the answer that "
        "created it only; GET /v1/transfers/{id}/risk reads it later)",
    )


class BatchResultOut(_Out):
    index: int
    status: Literal["created", "exists", "refused"]
    code: str = Field(
        description="the result: `created` or `exists`; a refusal's code (docs/errors.md); for "
        "a transfer created pending because a gate holds it for review, the review's code "
        "(`risk_review`): read the transfer for its decision"
    )
    transfer_id: str


class BatchOut(_Out):
    object: Literal["batch"]
    results: list[BatchResultOut]


class LedgerList(_Out):
    object: Literal["list"]
    data: list[LedgerOut]
    has_more: bool


class AccountList(_Out):
    object: Literal["list"]
    data: list[AccountOut]
    has_more: bool


class TransferList(_Out):
    object: Literal["list"]
    data: list[TransferOut]
    has_more: bool
    next_cursor: str | None = Field(
        default=None,
        description="where the next page starts (give it as `cursor`); present when has_more. "
        "A page may hold fewer than `limit` items, even none, while has_more is true: a "
        "filtered listing examines a bounded number of rows per request.",
    )


class EntryList(_Out):
    object: Literal["list"]
    data: list[EntryOut]
    has_more: bool
