"""The ledger's HTTP routes. Every object belongs to a tenant through its ledger: another
tenant's object answers 404, exactly as one that does not exist."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from strongroom.core.errors import InvalidRequest, NotFound, StrongroomError
from strongroom.core.idempotency import RANDOM_IDS, Minter, request_of
from strongroom.core.limits import (
    AMOUNT_MAX,
    CURSOR_LENGTH_MAX,
    METADATA_BYTES_MAX,
    METADATA_KEY_LENGTH_MAX,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    PAYMENTS_PER_BATCH_MAX,
    RATE_LIMIT_UNITS_PER_BATCH_TRANSFER,
)
from strongroom.core.money import validate_amount
from strongroom.http.errors import ERROR_RESPONSES, time_param
from strongroom.http.openapi import error_codes
from strongroom.http.pagination import list_body
from strongroom.http.params import IdPath, IdQuery, OptionalIdQuery, TimeQuery
from strongroom.http.routing import json_body_route
from strongroom.ledger.coalescer import GroupCommitter
from strongroom.ledger.errors import (
    ACCOUNT_INPUT_ERRORS,
    AMOUNT_ERRORS,
    LISTING_ERRORS,
    METADATA_ERRORS,
    OWNER_REFUSALS,
    TRANSFER_INPUT_ERRORS,
    TRANSFER_REFUSALS,
)
from strongroom.ledger.listing import check_one_cursor
from strongroom.ledger.model import (
    AccountFlag,
    Action,
    Direction,
    Leg,
    NewTransfer,
    Payment,
    Status,
    TransferOutcome,
    TransferRecord,
    TransferResult,
    Verdict,
    canonical_metadata,
    derived_balances,
    record_from_row,
    validate_payment,
)
from strongroom.ledger.pipeline import DecisionDetail
from strongroom.ledger.schemas import (
    AccountCreate,
    AccountList,
    AccountOut,
    AssetCreate,
    AssetOut,
    BalanceAtOut,
    BatchCreate,
    BatchOut,
    BatchTransfer,
    EntryList,
    LedgerCreate,
    LedgerList,
    LedgerOut,
    PaymentIn,
    Resolve,
    TransferCreate,
    TransferList,
    TransferOut,
)
from strongroom.ledger.service import AccountSpec, LedgerService, transfer_to_dict
from strongroom.tenancy.access import authorize, require_scope, requires, spend
from strongroom.tenancy.model import Principal, Scope


class LedgerRefused(StrongroomError):
    """A ledger refusal as an HTTP answer: 422 with the result as the code."""

    status = 422

    def __init__(
        self, result: TransferResult, param: str | None = None, code: str | None = None
    ) -> None:
        code = code or result.value
        super().__init__(f"the ledger refused the transfer: {code}", param=param)
        self.code = code


@dataclass(frozen=True)
class Ctx:
    key: Principal
    svc: LedgerService
    committer: GroupCommitter
    ledger_tenants: dict[str, str]  # ledger -> tenant; immutable, so safe to keep
    # The ids of what this request creates: derived from its Idempotency-Key, so that a retry
    # of the request mints the same ones (core.idempotency), or new ones.
    ids: Minter
    # An earlier attempt of this same idempotent request ran: a transfer that `exists` under
    # one of its ids is one that attempt created.
    resumed: bool = False
    # The request's state: its rate-limit account (tenancy.access.spend), among others.
    request_state: Any = None

    def require(self, scope: Scope) -> None:
        require_scope(self.key, scope)

    async def own_ledger(self, ledger_id: str, param: str = "ledger_id") -> None:
        tenant = self.ledger_tenants.get(ledger_id)
        if tenant is None:
            found = await run_in_threadpool(self.svc.ledger_tenants, [ledger_id])
            tenant = found.get(ledger_id)
            if tenant is not None:
                self.ledger_tenants[ledger_id] = tenant
        if tenant != self.key.tenant_id:
            raise NotFound(f"no ledger {ledger_id}", param=param)


async def context(request: Request) -> Ctx:
    """Async: FastAPI runs a plain `def` dependency in the threadpool, a thread hop per
    request for four attribute reads."""
    state = request.app.state
    key: Principal = request.state.api_key
    authorize(request.scope, key)  # the scopes the route declares (tenancy.access.requires)
    idem = request_of(request.scope.get("state", {}))
    own = request.state
    if idem is None:
        return Ctx(key, state.ledger, state.committer, state.ledger_tenants, RANDOM_IDS, False, own)
    return Ctx(key, state.ledger, state.committer, state.ledger_tenants, idem, idem.resumed, own)


CtxDep = Annotated[Ctx, Depends(context)]
ModelT = TypeVar("ModelT", bound=BaseModel)
Endpoint = Callable[[ModelT, Ctx], Awaitable[Response]]
Limit = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)]


router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


def _ledger_out(ledger: Any) -> dict[str, Any]:
    return dict(ledger.to_dict())


def _fast_json(body: dict[str, Any], status_code: int = 200) -> Response:
    """The hot routes answer directly: FastAPI's response_model pass (validate, then encode)
    costs more than the rest of such a request. The body is built by the same to_dict()
    functions the declared models mirror, and the schemathesis test checks every answer
    against the document."""
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        status_code=status_code,
        media_type="application/json",
    )


def _one_cursor(starting_after: str | None, ending_before: str | None) -> None:
    if starting_after is not None and ending_before is not None:
        raise InvalidRequest(
            "give starting_after or ending_before, not both", param="ending_before"
        )


def _refusal(outcome: TransferOutcome) -> LedgerRefused:
    result = outcome.result
    # An account in another ledger may be another tenant's: say only that it is not found.
    if result is TransferResult.LEDGER_MISMATCH:
        result = TransferResult.ACCOUNT_NOT_FOUND
    # A gate's block answers the gate's own stable code (its domain declares it); the risk
    # gate's names its reasons' codes (never personal data).
    if result is TransferResult.BLOCKED_BY_GATE and outcome.decision is not None:
        refused = LedgerRefused(result, code=outcome.decision.code)
        detail = outcome.decision.detail
        if isinstance(detail, DecisionDetail) and detail.reason_codes():
            refused.detail = f"{refused.detail} (reasons: {', '.join(detail.reason_codes())})"
        return refused
    return LedgerRefused(result)


# -- ledgers and assets --------------------------------------------------------------------


@router.post(
    "/ledgers",
    status_code=201,
    response_model=LedgerOut,
    tags=["ledgers"],
    openapi_extra=error_codes(METADATA_ERRORS, "invalid_name") | requires(Scope.LEDGER_WRITE),
)
async def create_ledger(body: LedgerCreate, ctx: CtxDep) -> dict[str, Any]:
    ledger = await run_in_threadpool(
        lambda: ctx.svc.create_ledger(
            body.name,
            body.metadata,
            tenant_id=ctx.key.tenant_id,
            id=ctx.ids.new_id("ldg"),
            actor=ctx.key.actor,
        )
    )
    ctx.ledger_tenants[ledger.id] = ledger.tenant_id
    return _ledger_out(ledger)


@router.get(
    "/ledgers",
    response_model=LedgerList,
    tags=["ledgers"],
    openapi_extra=error_codes("invalid_cursor") | requires(Scope.LEDGER_READ),
)
async def list_ledgers(
    ctx: CtxDep,
    limit: Limit = PAGE_SIZE_DEFAULT,
    starting_after: OptionalIdQuery = None,
    ending_before: OptionalIdQuery = None,
) -> dict[str, Any]:
    _one_cursor(starting_after, ending_before)
    page = await run_in_threadpool(
        lambda: ctx.svc.list_ledgers(
            tenant_id=ctx.key.tenant_id,
            starting_after=starting_after,
            ending_before=ending_before,
            limit=limit,
        )
    )
    return list_body([_ledger_out(x) for x in page.data], page.has_more)


@router.get(
    "/ledgers/{ledger_id}",
    response_model=LedgerOut,
    tags=["ledgers"],
    openapi_extra=error_codes("not_found") | requires(Scope.LEDGER_READ),
)
async def get_ledger(ledger_id: IdPath, ctx: CtxDep) -> dict[str, Any]:
    ledger = await run_in_threadpool(
        lambda: ctx.svc.get_ledger(ledger_id, tenant_id=ctx.key.tenant_id)
    )
    return _ledger_out(ledger)


@router.post(
    "/assets",
    status_code=201,
    response_model=AssetOut,
    tags=["assets"],
    openapi_extra=error_codes("invalid_asset_code", "invalid_asset_scale", "asset_exists")
    | requires(Scope.ASSETS_ADMIN),
)
async def create_asset(body: AssetCreate, ctx: CtxDep) -> dict[str, Any]:
    """Custom assets are shared by every tenant of this server, as the ISO 4217 ones are."""
    asset = await run_in_threadpool(
        lambda: ctx.svc.create_asset(body.code, body.scale, retry=ctx.resumed, actor=ctx.key.actor)
    )
    return {"object": "asset", "code": asset.code, "scale": asset.scale}


# -- accounts ------------------------------------------------------------------------------


async def _own_account(ctx: Ctx, account_id: str) -> Any:
    try:
        account = await run_in_threadpool(ctx.svc.get_account, account_id)
        await ctx.own_ledger(account.ledger_id, "account_id")
    except NotFound:
        raise NotFound(f"no account {account_id}", param="account_id") from None
    return account


@router.post(
    "/accounts",
    status_code=201,
    response_model=AccountOut,
    tags=["accounts"],
    openapi_extra=error_codes(ACCOUNT_INPUT_ERRORS, OWNER_REFUSALS) | requires(Scope.LEDGER_WRITE),
)
async def create_account(body: AccountCreate, ctx: CtxDep) -> dict[str, Any]:
    await ctx.own_ledger(body.ledger_id)
    spec = AccountSpec(
        ledger_id=body.ledger_id,
        asset=body.asset,
        normal_balance=Direction.parse(body.normal_balance, "normal_balance"),
        flags=AccountFlag.parse(body.flags),
        name=body.name,
        metadata=body.metadata,
        id=ctx.ids.new_id("acc"),
        customer_id=body.customer_id,
    )
    accounts = await run_in_threadpool(lambda: ctx.svc.create_accounts([spec], actor=ctx.key.actor))
    return accounts[0].to_dict()


@router.get(
    "/accounts",
    response_model=AccountList,
    tags=["accounts"],
    openapi_extra=error_codes(LISTING_ERRORS) | requires(Scope.LEDGER_READ),
)
async def list_accounts(
    ctx: CtxDep,
    ledger_id: IdQuery,
    limit: Limit = PAGE_SIZE_DEFAULT,
    starting_after: OptionalIdQuery = None,
    ending_before: OptionalIdQuery = None,
) -> dict[str, Any]:
    _one_cursor(starting_after, ending_before)
    await ctx.own_ledger(ledger_id)
    page = await run_in_threadpool(
        ctx.svc.list_accounts, ledger_id, starting_after, limit, ending_before
    )
    return list_body([a.to_dict() for a in page.data], page.has_more)


@router.get(
    "/accounts/{account_id}",
    response_model=AccountOut,
    tags=["accounts"],
    openapi_extra=error_codes("not_found") | requires(Scope.LEDGER_READ),
)
async def get_account(account_id: IdPath, ctx: CtxDep) -> Response:
    account = await _own_account(ctx, account_id)
    return _fast_json(account.to_dict())


@router.get(
    "/accounts/{account_id}/balance",
    response_model=BalanceAtOut,
    tags=["accounts"],
    operation_id="getAccountBalance",
    openapi_extra=error_codes("not_found", "invalid_timestamp", "invalid_version")
    | requires(Scope.LEDGER_READ),
)
async def get_balance(
    account_id: IdPath,
    ctx: CtxDep,
    as_of: TimeQuery = None,
    version: Annotated[int | None, Query(ge=0)] = None,
) -> dict[str, Any]:
    """Balances now, after a version, or as of an RFC 3339 time."""
    account = await _own_account(ctx, account_id)
    if as_of is None and version is None:
        at, view = account.version, account.balance_view()
    else:
        if as_of is not None and version is not None:
            raise InvalidRequest("give as_of or version, not both", param="as_of")
        as_of_us = None
        if as_of is not None:
            as_of_us = time_param(as_of, "as_of")
        at, balances, normal = await run_in_threadpool(
            lambda: ctx.svc.balance_at(account_id, version=version, as_of_us=as_of_us)
        )
        view = derived_balances(normal, balances)
    return {"object": "balance", "account_id": account_id, "version": at, "balances": view}


@router.get(
    "/accounts/{account_id}/entries",
    response_model=EntryList,
    tags=["accounts"],
    operation_id="listAccountEntries",
    openapi_extra=error_codes(LISTING_ERRORS) | requires(Scope.LEDGER_READ),
)
async def list_entries(
    account_id: IdPath,
    ctx: CtxDep,
    limit: Limit = PAGE_SIZE_DEFAULT,
    starting_after: Annotated[int | None, Query(ge=1, description="an entry's version")] = None,
) -> dict[str, Any]:
    """Newest first; the cursor is the version of the last entry of the previous page."""
    account = await _own_account(ctx, account_id)
    page = await run_in_threadpool(
        lambda: ctx.svc.list_entries(account_id, starting_after=starting_after, limit=limit)
    )
    return list_body([e.to_dict(account.normal_balance) for e in page.data], page.has_more)


# -- transfers -----------------------------------------------------------------------------


def _new_transfer(
    body: TransferCreate, prefix: str = "", *, linked: bool = False, id: str
) -> NewTransfer:
    """`prefix` names the transfer inside a batch (`transfers[3].`) in error params."""
    legs = None
    if body.entries is not None:
        legs = tuple(
            Leg(
                e.account_id,
                Direction.parse(e.direction, f"{prefix}entries[{i}].direction"),
                validate_amount(e.amount, f"{prefix}entries[{i}].amount"),
            )
            for i, e in enumerate(body.entries)
        )
    elif body.amount is None:
        raise InvalidRequest(
            "give debit_account_id, credit_account_id and amount, or entries",
            param=f"{prefix}amount",
        )
    else:
        validate_amount(body.amount, f"{prefix}amount")
    return NewTransfer(
        id=id,
        ledger_id=body.ledger_id,
        debit_account_id=body.debit_account_id,
        credit_account_id=body.credit_account_id,
        amount=body.amount or 0,
        legs=legs,
        pending=body.pending,
        timeout_s=body.timeout_s,
        linked=linked,
        metadata=canonical_metadata(body.metadata, f"{prefix}metadata"),
        effective_at=_effective_at(body.effective_at, f"{prefix}effective_at"),
        payment=_payment(body.payment, f"{prefix}payment"),
    )


def _payment(body: PaymentIn | None, param: str) -> Payment | None:
    if body is None:
        return None
    return validate_payment(
        Payment(body.customer_id, body.payee, body.channel, body.device, body.ip, body.payee_name),
        param,
    )


def _effective_at(value: str | None, param: str) -> int | None:
    return None if value is None else time_param(value, param)


_BATCH_RESULT = '{"index":%d,"status":"%s","code":"%s","transfer_id":"%s"}'
# The results that are no refusal: status and code are the result itself.
_BATCH_RESULT_OK = {
    r: _BATCH_RESULT.replace('"%s","code":"%s"', f'"{r.value}","code":"{r.value}"')
    for r in TransferResult
    if r.ok
}
assert all(t.count("%") == 2 for t in _BATCH_RESULT_OK.values())


def _simple_transfer(body: BatchTransfer, id: str) -> NewTransfer | None:
    """The bulk shape (two accounts, a valid amount, no metadata, no effective time) without
    _new_transfer's general checks; None for anything else, which goes the general way."""
    amount = body.amount
    if (
        body.entries is None
        and body.metadata is None
        and body.effective_at is None
        and body.payment is None
        and type(amount) is int
        and 0 < amount <= AMOUNT_MAX
    ):
        # Positional (the order _NEW_TRANSFER_FIELDS checks): a thousand keyword calls cost
        # a third of a batch's conversion.
        return NewTransfer(
            id,
            body.ledger_id,
            body.debit_account_id,
            body.credit_account_id,
            amount,
            None,
            Action.TRANSFER,
            None,
            body.pending,
            body.timeout_s,
            body.linked,
        )
    return None


_NEW_TRANSFER_FIELDS = (
    "id",
    "ledger_id",
    "debit_account_id",
    "credit_account_id",
    "amount",
    "legs",
    "action",
    "target_id",
    "pending",
    "timeout_s",
    "linked",
)
# The fields _simple_transfer passes by position, in NewTransfer's order; the rest default.
assert tuple(f.name for f in fields(NewTransfer))[: len(_NEW_TRANSFER_FIELDS)] == (
    _NEW_TRANSFER_FIELDS
)


def _api_param(exc: InvalidRequest) -> InvalidRequest:
    """The ledger calls a transfer's legs `legs`; the API calls them `entries`."""
    if exc.param is not None:
        exc.param = exc.param.replace("legs", "entries")
    return exc


async def _committed(ctx: Ctx, t: NewTransfer) -> dict[str, Any]:
    # A payment naming no customer of the tenant is refused alone by the coalescer (one read
    # for the payments of the batch it gathers), never failing the requests it is posted with.
    try:
        outcome = await ctx.committer.submit_async(t, ctx.key.actor)
    except InvalidRequest as exc:
        raise _api_param(exc) from None
    if not outcome.result.ok:
        raise _refusal(outcome)
    if outcome.row is not None:  # created now: the row is the answer, no read-back
        out = _transfer_out(record_from_row(outcome.row))
        # Held for review: the answer says why. (isinstance of a runtime-checkable protocol
        # costs ~15 us even for None: only a gate's decision is checked.) In the thread pool:
        # a gate may explain its decision only now (the risk gate's tree SHAP, milliseconds).
        if outcome.decision is not None:
            detail = outcome.decision.detail
            if isinstance(detail, DecisionDetail):
                out[detail.answer_key] = await run_in_threadpool(detail.answer)
        return out
    record = await run_in_threadpool(ctx.svc.get_transfer, t.id)
    return _transfer_out(record)


_TRANSFER_OPTIONAL = ("debit_account_id", "credit_account_id", "entries", "target_id", "expires_at")


def _transfer_out(record: TransferRecord) -> dict[str, Any]:
    """As TransferOut renders it: every optional field present, null when it does not apply."""
    out = transfer_to_dict(record)
    for name in _TRANSFER_OPTIONAL:
        out.setdefault(name, None)
    return out


def _hot_post(
    path: str, model: type[ModelT], **options: Any
) -> Callable[[Endpoint[ModelT]], Endpoint[ModelT]]:
    """`router.post` for a route whose endpoint takes (body, ctx) and nothing else: its plain
    JSON requests skip FastAPI's body handling and dependency solving (http.routing)."""

    def register(endpoint: Endpoint[ModelT]) -> Endpoint[ModelT]:
        async def fast(request: Request, body: ModelT) -> Response:
            return await endpoint(body, await context(request))

        route_class = json_body_route(model, fast)
        router.add_api_route(
            path, endpoint, methods=["POST"], route_class_override=route_class, **options
        )
        return endpoint

    return register


@_hot_post(
    "/transfers",
    TransferCreate,
    status_code=201,
    response_model=TransferOut,
    tags=["transfers"],
    openapi_extra=error_codes(TRANSFER_INPUT_ERRORS, TRANSFER_REFUSALS, gates=True)
    | requires(Scope.LEDGER_WRITE),
)
async def create_transfer(body: TransferCreate, ctx: CtxDep) -> Response:
    """A transfer (simple or multi-leg), through the group-commit coalescer."""
    await ctx.own_ledger(body.ledger_id)
    return _fast_json(await _committed(ctx, _new_transfer(body, id=ctx.ids.new_id("tr"))), 201)


@_hot_post(
    "/transfers/batch",
    BatchCreate,
    response_model=BatchOut,
    tags=["transfers"],
    operation_id="createTransferBatch",
    openapi_extra=error_codes(TRANSFER_INPUT_ERRORS, "batch_too_large")
    | requires(Scope.LEDGER_WRITE),
)
async def create_batch(body: BatchCreate, ctx: CtxDep) -> Response:
    """Up to 8,190 transfers in one transaction, each with its own result; `linked` chains a
    transfer with the next, `atomic` makes the whole batch one chain. It costs 1 + N/100
    rate-limit tokens for N transfers."""
    await spend(ctx.request_state, len(body.transfers) * RATE_LIMIT_UNITS_PER_BATCH_TRANSFER)
    for ledger_id in {t.ledger_id for t in body.transfers}:
        await ctx.own_ledger(ledger_id, "transfers.ledger_id")
    payments = sum(1 for t in body.transfers if t.payment is not None)
    if payments > PAYMENTS_PER_BATCH_MAX:
        raise InvalidRequest(
            f"a batch carries at most {PAYMENTS_PER_BATCH_MAX} payments (transfers with a "
            f"`payment`, each scored before it posts), not {payments}",
            param="transfers",
            code="batch_too_large",
        )
    new_ids = ctx.ids.new_ids("tr", len(body.transfers))
    batch = [
        _simple_transfer(t, new_ids[i])
        or _new_transfer(t, f"transfers[{i}].", linked=t.linked, id=new_ids[i])
        for i, t in enumerate(body.transfers)
    ]
    try:
        outcomes = await run_in_threadpool(
            lambda: ctx.svc.post_transfers(batch, atomic=body.atomic, actor=ctx.key.actor)
        )
    except InvalidRequest as exc:
        raise _api_param(exc) from None
    # Formatted directly: a result per transfer, and every string in it (statuses, codes, the
    # ids this route generated) needs no JSON escaping. A created or existing transfer's
    # result has its status and code in its template already (a refusal's code is worked out).
    ok_results = _BATCH_RESULT_OK
    if ctx.resumed:
        # An earlier attempt of this same request ran: a transfer that `exists` under an id it
        # minted is one that attempt created, and its lost answer said so.
        ok_results = {**ok_results, TransferResult.EXISTS: ok_results[TransferResult.CREATED]}
    results: list[str] = []
    append = results.append
    for o in outcomes:
        template = ok_results.get(o.result)
        if template is not None:
            held = o.decision
            if held is not None and held.verdict is Verdict.REVIEW and held.code:
                # Held for review (pending until its case is decided): the review's code, as
                # the single transfer's 201 answers `pending` with the decision.
                append(_BATCH_RESULT % (o.index, "created", held.code, o.transfer_id))
            else:
                append(template % (o.index, o.transfer_id))
        else:
            append(_BATCH_RESULT % (o.index, "refused", _refusal(o).code, o.transfer_id))
    return Response(
        ('{"object":"batch","results":[' + ",".join(results) + "]}").encode(),
        media_type="application/json",
    )


async def _own_transfer(ctx: Ctx, transfer_id: str) -> TransferRecord:
    try:
        record = await run_in_threadpool(ctx.svc.get_transfer, transfer_id)
        await ctx.own_ledger(record.ledger_id, "transfer_id")
    except NotFound:
        raise NotFound(f"no transfer {transfer_id}", param="transfer_id") from None
    return record


async def _resolve(ctx: Ctx, transfer_id: str, action: Action, body: Resolve | None) -> Any:
    target = await _own_transfer(ctx, transfer_id)
    amount = 0
    if body is not None and body.amount is not None:
        amount = validate_amount(body.amount)
    t = NewTransfer(
        id=ctx.ids.new_id("tr"),
        ledger_id=target.ledger_id,
        action=action,
        target_id=target.id,
        amount=amount,
        metadata=canonical_metadata(body.metadata if body else None),
    )
    return await _committed(ctx, t)


@router.post(
    "/transfers/{transfer_id}/post",
    status_code=201,
    response_model=TransferOut,
    tags=["transfers"],
    openapi_extra=error_codes(
        AMOUNT_ERRORS, METADATA_ERRORS, "not_found", TRANSFER_REFUSALS, gates=True
    )
    | requires(Scope.LEDGER_WRITE),
)
async def post_transfer(transfer_id: IdPath, ctx: CtxDep, body: Resolve | None = None) -> Any:
    """Post a pending transfer, fully or `amount` of it (the rest is released)."""
    return await _resolve(ctx, transfer_id, Action.POST, body)


@router.post(
    "/transfers/{transfer_id}/void",
    status_code=201,
    response_model=TransferOut,
    tags=["transfers"],
    openapi_extra=error_codes(
        AMOUNT_ERRORS, METADATA_ERRORS, "not_found", TRANSFER_REFUSALS, gates=True
    )
    | requires(Scope.LEDGER_WRITE),
)
async def void_transfer(transfer_id: IdPath, ctx: CtxDep, body: Resolve | None = None) -> Any:
    """Void a pending transfer, releasing its reservation."""
    if body is not None and body.amount is not None:
        raise InvalidRequest("a void releases the whole reservation", param="amount")
    return await _resolve(ctx, transfer_id, Action.VOID, body)


@router.post(
    "/transfers/{transfer_id}/reverse",
    status_code=201,
    response_model=TransferOut,
    tags=["transfers"],
    openapi_extra=error_codes(
        AMOUNT_ERRORS, METADATA_ERRORS, "not_found", TRANSFER_REFUSALS, gates=True
    )
    | requires(Scope.LEDGER_WRITE),
)
async def reverse_transfer(transfer_id: IdPath, ctx: CtxDep, body: Resolve | None = None) -> Any:
    """Reverse a posted transfer, fully or `amount` of it; the original never changes."""
    return await _resolve(ctx, transfer_id, Action.REVERSE, body)


_METADATA_PARAM = re.compile(r"^metadata\[([^\]]+)\]$")
METADATA_FILTER: dict[str, Any] = {
    "name": "metadata",
    "in": "query",
    "style": "deepObject",
    "explode": True,
    "required": False,
    "description": "`metadata[key]=value`: only transfers whose metadata has that value under "
    "that key (a key of letters, digits, '_', '-' or '.'); one filter a request, the last one "
    "given counts.",
    "schema": {
        "type": "object",
        "additionalProperties": {"type": "string", "maxLength": METADATA_BYTES_MAX},
        "propertyNames": {"minLength": 1, "maxLength": METADATA_KEY_LENGTH_MAX},
        "maxProperties": 1,
    },
}


@router.get(
    "/transfers",
    response_model=TransferList,
    tags=["transfers"],
    openapi_extra={
        **error_codes(LISTING_ERRORS, "invalid_metadata_filter", "invalid_timestamp")
        | requires(Scope.LEDGER_READ),
        # Read from the query string by hand (below): FastAPI cannot declare it.
        "parameters": [METADATA_FILTER],
    },
)
async def list_transfers(
    request: Request,
    ctx: CtxDep,
    ledger_id: OptionalIdQuery = None,
    account_id: OptionalIdQuery = None,
    status: Annotated[str | None, Query(pattern="^(posted|pending|voided|expired)$")] = None,
    created_after: TimeQuery = None,
    created_before: TimeQuery = None,
    limit: Limit = PAGE_SIZE_DEFAULT,
    starting_after: OptionalIdQuery = None,
    ending_before: OptionalIdQuery = None,
    cursor: Annotated[
        str | None,
        Query(description="`next_cursor` of the previous page", max_length=CURSOR_LENGTH_MAX),
    ] = None,
) -> dict[str, Any]:
    """Newest first; an account's transfers in the order they touched it. Filter by
    `metadata[key]=value` too. Give ledger_id or account_id. Each request examines a bounded
    number of transfers (or of the account's entries), so a filtered page may hold fewer than
    `limit` items, even none, while `has_more` is true: go on with `cursor=next_cursor`."""
    _one_cursor(starting_after, ending_before)
    check_one_cursor(starting_after, ending_before, cursor)
    if ledger_id is None and account_id is None:
        raise InvalidRequest("give ledger_id or account_id", param="ledger_id")
    if ledger_id is not None:
        await ctx.own_ledger(ledger_id)
    if account_id is not None:
        await _own_account(ctx, account_id)
    # A cursor must be one of this tenant's transfers: another tenant's answers exactly as an
    # unknown one, so cursors cannot probe for ids.
    for name, transfer_id in (("starting_after", starting_after), ("ending_before", ending_before)):
        if transfer_id is not None:
            try:
                await _own_transfer(ctx, transfer_id)
            except NotFound:
                raise InvalidRequest(
                    f"no transfer {transfer_id}", param=name, code="invalid_cursor"
                ) from None
    metadata = None
    for key, value in request.query_params.multi_items():
        match = _METADATA_PARAM.match(key)
        if match:
            metadata = (match.group(1), value)
    times = {}
    for name, text in (("created_after", created_after), ("created_before", created_before)):
        if text is not None:
            times[name] = time_param(text, name)
    page = await run_in_threadpool(
        lambda: ctx.svc.list_transfers(
            ledger_id=ledger_id,
            account_id=account_id,
            status=Status[status.upper()] if status else None,
            created_after=times.get("created_after"),
            created_before=times.get("created_before"),
            metadata=metadata,
            starting_after=starting_after,
            ending_before=ending_before,
            cursor=cursor,
            limit=limit,
        )
    )
    return list_body([transfer_to_dict(r) for r in page.data], page.has_more, page.next_cursor)


@router.get(
    "/transfers/{transfer_id}",
    response_model=TransferOut,
    tags=["transfers"],
    openapi_extra=error_codes("not_found") | requires(Scope.LEDGER_READ),
)
async def get_transfer(transfer_id: IdPath, ctx: CtxDep) -> dict[str, Any]:
    return transfer_to_dict(await _own_transfer(ctx, transfer_id))


# The hot routes are matched first: FastAPI tries routes in order, and a request for one of
# these would otherwise test a dozen patterns before its own (paths do not overlap, so the
# order changes nothing else).
_HOT_ROUTES = frozenset({"create_transfer", "get_account"})
router.routes.sort(key=lambda route: getattr(route, "name", "") not in _HOT_ROUTES)
