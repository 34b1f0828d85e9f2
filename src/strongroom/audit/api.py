"""HTTP routes of the audit log. Each tenant reads its own log only: the log is chosen by the
API key, so another tenant's transfer has no leaf here (404)."""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from strongroom.audit.errors import CheckpointPending
from strongroom.audit.merkle import leaf_hash
from strongroom.audit.schemas import (
    CheckpointOut,
    ConsistencyProofOut,
    InclusionProofOut,
    KeyList,
    LeafList,
    ReceiptOut,
    StatementOut,
)
from strongroom.audit.service import AuditLog
from strongroom.core import clock
from strongroom.core.clock import Timestamp
from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import (
    AUDIT_CHECKPOINT_POLL_S,
    AUDIT_CHECKPOINT_WAIT_S_MAX,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    STATEMENT_CURSOR_LENGTH_MAX,
    STATEMENT_PAGE_ENTRIES_MAX,
    TIMESTAMP_LENGTH_MAX,
)
from strongroom.http.errors import ERROR_RESPONSES, time_param
from strongroom.http.openapi import error_codes
from strongroom.http.pagination import list_body
from strongroom.http.params import IdPath, OptionalIdQuery
from strongroom.tenancy.access import authorize, require_scope, requires
from strongroom.tenancy.model import Principal, Scope


@dataclass(frozen=True)
class AuditCtx:
    key: Principal
    audit: AuditLog
    checkpoint_interval_s: float  # how often `serve` publishes checkpoints

    @property
    def log(self) -> str:
        return self.key.tenant_id

    def require(self, scope: Scope) -> None:
        require_scope(self.key, scope)


async def context(request: Request) -> AuditCtx:
    key: Principal = request.state.api_key
    authorize(request.scope, key)
    settings = request.app.state.settings
    return AuditCtx(key, request.app.state.audit, settings.audit_checkpoint_interval_s)


async def _published(ctx: AuditCtx, read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`read` (a receipt or a statement page, proved against a published checkpoint), once a
    published checkpoint holds what it proves: the next publication is waited for, up to
    AUDIT_CHECKPOINT_WAIT_S_MAX, then 503 `checkpoint_pending` with the seconds until the next
    one is due as Retry-After. A read never signs a checkpoint itself."""
    deadline = time.monotonic() + min(AUDIT_CHECKPOINT_WAIT_S_MAX, ctx.checkpoint_interval_s)
    while True:
        try:
            return await run_in_threadpool(read)
        except CheckpointPending as exc:
            if time.monotonic() >= deadline:
                interval_us = ctx.checkpoint_interval_s * 1e6
                due_us = (exc.published_at_us or 0) + interval_us
                wait_s = min(max(due_us - clock.now_us(), 0), interval_us) / 1e6
                raise CheckpointPending(
                    f"no published checkpoint holds this yet; checkpoints are published every "
                    f"{ctx.checkpoint_interval_s:g} s",
                    retry_after_s=max(1, math.ceil(wait_s)),
                    published_at_us=exc.published_at_us,
                ) from None
        await asyncio.sleep(AUDIT_CHECKPOINT_POLL_S)


Ctx = Annotated[AuditCtx, Depends(context)]
Size = Annotated[int, Query(ge=1, le=2**62)]
Index = Annotated[int, Query(ge=0, le=2**62)]

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@router.get(
    "/audit/checkpoint",
    response_model=CheckpointOut,
    tags=["audit"],
    operation_id="getLatestCheckpoint",
    openapi_extra=error_codes("not_found") | requires(Scope.AUDIT_READ),
)
async def latest_checkpoint(ctx: Ctx) -> dict[str, Any]:
    """The latest signed checkpoint of the tenant's log (published at an interval by `serve`,
    or on demand with POST /v1/audit/checkpoints)."""
    found = await run_in_threadpool(ctx.audit.latest, ctx.log)
    return found.to_dict()


@router.post(
    "/audit/checkpoints",
    response_model=CheckpointOut,
    tags=["audit"],
    openapi_extra=error_codes("not_found") | requires(Scope.AUDIT_WRITE),
)
async def publish_checkpoint(ctx: Ctx) -> dict[str, Any]:
    """Sign and publish a checkpoint of the log as it is now (the latest one if the log has
    not grown since)."""
    published = await run_in_threadpool(ctx.audit.publish, [ctx.log])
    if not published:
        found = await run_in_threadpool(ctx.audit.latest, ctx.log)  # an empty log: 404
        return found.to_dict()
    return published[0].to_dict()


@router.get(
    "/audit/checkpoints/{tree_size}",
    response_model=CheckpointOut,
    tags=["audit"],
    openapi_extra=error_codes("not_found") | requires(Scope.AUDIT_READ),
)
async def get_checkpoint(
    tree_size: Annotated[int, Path(ge=1, le=2**62)], ctx: Ctx
) -> dict[str, Any]:
    """A past checkpoint, by its tree size: every checkpoint ever published is kept."""
    found = await run_in_threadpool(ctx.audit.checkpoint, ctx.log, tree_size)
    return found.to_dict()


@router.get(
    "/audit/proofs/inclusion",
    response_model=InclusionProofOut,
    tags=["audit"],
    operation_id="getInclusionProof",
    openapi_extra=error_codes("not_found") | requires(Scope.AUDIT_READ),
)
async def inclusion_proof(
    ctx: Ctx,
    tree_size: Size,
    leaf_index: Index | None = None,
    transfer_id: OptionalIdQuery = None,
) -> dict[str, Any]:
    """The RFC 9162 inclusion proof of a leaf, by index or by transfer id (the transfer's
    first leaf: its creation), in the tree of `tree_size` leaves."""
    if (leaf_index is None) == (transfer_id is None):
        raise InvalidRequest("give leaf_index or transfer_id, one of them", param="leaf_index")
    if leaf_index is None:
        assert transfer_id is not None
        indexes = await run_in_threadpool(ctx.audit.leaf_indexes, ctx.log, transfer_id)
        leaf_index = indexes[0]
    index = leaf_index
    proof = await run_in_threadpool(ctx.audit.inclusion, ctx.log, index, tree_size)
    rows, _size = await run_in_threadpool(ctx.audit.leaves, ctx.log, index, 1)
    return {
        "object": "audit_inclusion_proof",
        "leaf_index": index,
        "tree_size": tree_size,
        "leaf_hash": rows[0]["leaf_hash"] if rows else _b64(leaf_hash(b"")),
        "proof": [_b64(h) for h in proof],
    }


@router.get(
    "/audit/proofs/consistency",
    response_model=ConsistencyProofOut,
    tags=["audit"],
    operation_id="getConsistencyProof",
    openapi_extra=error_codes("not_found") | requires(Scope.AUDIT_READ),
)
async def consistency_proof(ctx: Ctx, first: Size, second: Size) -> dict[str, Any]:
    """The RFC 9162 consistency proof between the trees of `first` and `second` leaves."""
    if first > second:
        raise InvalidRequest("first must not be greater than second", param="first")
    proof = await run_in_threadpool(ctx.audit.consistency, ctx.log, first, second)
    return {
        "object": "audit_consistency_proof",
        "first": first,
        "second": second,
        "proof": [_b64(h) for h in proof],
    }


@router.get(
    "/audit/leaves",
    response_model=LeafList,
    tags=["audit"],
    operation_id="listAuditLeaves",
    openapi_extra=requires(Scope.AUDIT_READ),
)
async def list_leaves(
    ctx: Ctx,
    start: Index = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    """Leaves in index order from `start`; the next page starts at the last index + 1."""
    data, size = await run_in_threadpool(ctx.audit.leaves, ctx.log, start, limit)
    has_more = bool(data) and data[-1]["index"] + 1 < size
    return {**list_body(data, has_more), "tree_size": size}


@router.get(
    "/audit/keys",
    response_model=KeyList,
    tags=["audit"],
    operation_id="listAuditKeys",
    openapi_extra=requires(Scope.AUDIT_READ),
)
async def list_keys(ctx: Ctx) -> dict[str, Any]:
    """The public keys that sign checkpoints (C2SP verifier keys), retired ones included."""
    keys = await run_in_threadpool(ctx.audit.verifier_keys)
    return list_body(keys, False)


@router.get(
    "/accounts/{account_id}/statement",
    response_model=StatementOut,
    tags=["audit"],
    operation_id="getAccountStatement",
    openapi_extra=error_codes(
        "not_found", "invalid_timestamp", "invalid_cursor", "invalid_limit", "checkpoint_pending"
    )
    | requires(Scope.AUDIT_READ),
)
async def account_statement(
    account_id: IdPath,
    ctx: Ctx,
    from_: Annotated[
        Timestamp,
        Query(
            alias="from",
            description="RFC 3339; the period excludes it",
            max_length=TIMESTAMP_LENGTH_MAX,
        ),
    ],
    to: Annotated[
        Timestamp,
        Query(description="RFC 3339; the period includes it", max_length=TIMESTAMP_LENGTH_MAX),
    ],
    limit: Annotated[
        int, Query(ge=1, le=STATEMENT_PAGE_ENTRIES_MAX, description="entries on this page")
    ] = STATEMENT_PAGE_ENTRIES_MAX,
    cursor: Annotated[
        str | None,
        Query(
            description="`next_cursor` of the previous page (with the same from and to)",
            max_length=STATEMENT_CURSOR_LENGTH_MAX,
        ),
    ] = None,
) -> dict[str, Any]:
    """The account's entries in (from, to], with the entry in force at `from` and the first
    after `to`, in pages of at most 1,000 entries (`has_more`, `next_cursor`), each leaf with
    its inclusion proof in a published signed checkpoint: complete and unaltered, as
    `strongroom audit verify-statement PAGE... --public-key KEY` checks offline across the
    pages (each names the versions it proves, and they must join without a gap). Entries newer
    than the latest checkpoint wait for the next one (503 `checkpoint_pending` past a short
    wait). A page costs 1 + limit/50 rate-limit tokens."""
    start, end = time_param(from_, "from"), time_param(to, "to")
    return await _published(
        ctx,
        lambda: ctx.audit.statement(
            ctx.log, account_id, start, end, limit=limit, cursor=cursor, publish=False
        ),
    )


@router.get(
    "/transfers/{transfer_id}/receipt",
    response_model=ReceiptOut,
    tags=["audit"],
    operation_id="getTransferReceipt",
    openapi_extra=error_codes("not_found", "checkpoint_pending") | requires(Scope.AUDIT_READ),
)
async def transfer_receipt(transfer_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """A self-contained receipt: the transfer's leaves, their inclusion proofs and the latest
    published signed checkpoint, which holds them. A transfer newer than that checkpoint waits
    for the next one (`serve` publishes every STRONGROOM_AUDIT_CHECKPOINT_INTERVAL_S), at most
    2 s, then 503 `checkpoint_pending` with Retry-After: a read never signs a checkpoint.
    `strongroom audit verify-receipt FILE --public-key KEY` checks it offline."""
    return await _published(ctx, lambda: ctx.audit.receipt(ctx.log, transfer_id, publish=False))
