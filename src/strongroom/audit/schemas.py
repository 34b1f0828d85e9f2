"""Response bodies of the audit log's HTTP API. Hashes and leaves are standard base64."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from strongroom.core.clock import Timestamp


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckpointOut(_Out):
    object: Literal["audit_checkpoint"]
    tree_size: int
    root_hash: str
    note: str  # the C2SP signed note: checkpoint text, blank line, signature lines
    created_at: Timestamp


class InclusionProofOut(_Out):
    object: Literal["audit_inclusion_proof"]
    leaf_index: int
    tree_size: int
    leaf_hash: str
    proof: list[str]


class ConsistencyProofOut(_Out):
    object: Literal["audit_consistency_proof"]
    first: int
    second: int
    proof: list[str]


class LeafOut(_Out):
    object: Literal["audit_leaf"]
    index: int
    type: str
    leaf: str
    leaf_hash: str
    content: dict[str, Any] | None  # the leaf decoded (audit/leaf.py parse), for people


class LeafList(_Out):
    object: Literal["list"]
    data: list[LeafOut]
    has_more: bool
    tree_size: int


class KeyOut(_Out):
    object: Literal["audit_key"]
    key_id: str
    name: str
    verifier_key: str
    created_at: Timestamp
    retired_at: Timestamp | None


class KeyList(_Out):
    object: Literal["list"]
    data: list[KeyOut]
    has_more: bool


class ReceiptLeafOut(_Out):
    index: int
    type: str
    leaf: str
    inclusion_proof: list[str]


class ReceiptOut(_Out):
    object: Literal["audit_receipt"]
    version: int
    origin: str
    ref: str
    checkpoint: str
    leaves: list[ReceiptLeafOut]


class StatementLeafOut(_Out):
    index: int
    leaf: str
    inclusion_proof: list[str]


class StatementOut(_Out):
    object: Literal["audit_statement"]
    version: int
    origin: str
    account_id: str
    from_: int = Field(alias="from")
    to: int
    opening_version: int
    closing_version: int
    boundary: bool
    first_version: int = Field(description="the first account version this page proves")
    last_version: int = Field(description="the last account version this page proves")
    has_more: bool
    next_cursor: str | None = Field(
        default=None,
        description="give it as `cursor` (with the same from and to) for the next page",
    )
    checkpoint: str
    leaves: list[StatementLeafOut]
