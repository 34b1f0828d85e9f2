"""HTTP routes for customers and counterparties. Answers are masked; the personal data in full
comes from the `.../personal-data` reads, which need the `pii:read` scope (never implied by
`admin`; a user steps up first) and are each an audit leaf. Erasure and legal holds need
`customers:erase`. An exact lookup by email or national id (the listing's filters, the search)
is an oracle on personal data (with a mask's last characters, a few thousand guesses find a
national id), so it needs `pii:read` too and each is an audit leaf `customer.looked_up`.
Every route declares its scopes (tenancy.access.requires), enforced by
the request context before the body is read. Another tenant's customer is a 404, as one that
does not exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from strongroom.core.errors import InvalidRequest
from strongroom.core.idempotency import RANDOM_IDS, Minter, concerns, minter_for
from strongroom.core.limits import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from strongroom.customers.counterparties import CounterpartyService
from strongroom.customers.model import PII_FIELDS
from strongroom.customers.schemas import (
    EMAIL_SENT_LENGTH_MAX,
    NATIONAL_ID_SENT_LENGTH_MAX,
    CounterpartyCreate,
    CounterpartyList,
    CounterpartyOut,
    CustomerAccountList,
    CustomerCreate,
    CustomerList,
    CustomerOut,
    CustomerSearch,
    CustomerUpdate,
    PersonalDataOut,
)
from strongroom.customers.service import CustomerService
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.pagination import list_body
from strongroom.http.params import IdPath, OptionalIdQuery
from strongroom.tenancy.access import (
    authorize,
    require_scope,
    require_step_up,
    requires,
    requires_all,
)
from strongroom.tenancy.model import Principal, Scope


@dataclass(frozen=True)
class CustomersCtx:
    key: Principal
    customers: CustomerService
    counterparties: CounterpartyService
    ids: Minter = RANDOM_IDS  # derived from the request's Idempotency-Key, if any

    @property
    def tenant(self) -> str:
        return self.key.tenant_id


async def context(request: Request) -> CustomersCtx:
    """Async: FastAPI runs a plain `def` dependency in the threadpool. The principal is let in
    on the route's declared scopes (tenancy.access.requires) before its body is read."""
    state = request.app.state
    key: Principal = request.state.api_key
    authorize(request.scope, key)
    return CustomersCtx(
        key, state.customers, state.counterparties, minter_for(request.scope.get("state", {}))
    )


Ctx = Annotated[CustomersCtx, Depends(context)]
Limit = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)]
EmailQuery = Annotated[
    str | None,
    Query(
        min_length=3,
        max_length=EMAIL_SENT_LENGTH_MAX,
        description="exact, any case; needs `pii:read` (an audit leaf `customer.looked_up`)",
    ),
]
NationalIdQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=NATIONAL_ID_SENT_LENGTH_MAX,
        description="exact; needs `pii:read` (an audit leaf `customer.looked_up`)",
    ),
]
FieldsQuery = Annotated[
    str | None,
    Query(
        max_length=100,
        description=f"comma-separated, among {', '.join(PII_FIELDS)}; default: all",
    ),
]

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)

INPUT_ERRORS = (
    "invalid_personal_data",
    "invalid_name",
    "invalid_country",
    "invalid_metadata",
    "metadata_too_large",
)
LOOKUP_ERRORS = ("invalid_personal_data", "invalid_lookup", "key_unavailable")


def _person(body: CustomerCreate | CustomerUpdate) -> dict[str, object]:
    values = body.model_dump(include=set(PII_FIELDS))
    if body.address is not None:
        values["address"] = body.address.model_dump(exclude_none=True)
    return values


@router.post(
    "/customers",
    status_code=201,
    response_model=CustomerOut,
    tags=["customers"],
    openapi_extra=error_codes(INPUT_ERRORS, "data_erased") | requires(Scope.CUSTOMERS_WRITE),
)
async def create_customer(body: CustomerCreate, ctx: Ctx, request: Request) -> dict[str, Any]:
    """Each personal-data field is sealed under the customer's own data key; the answer is
    masked. Its stored Idempotency-Key answer, if any, becomes a 410 `data_erased` when the
    customer is erased."""
    customer = await run_in_threadpool(
        lambda: ctx.customers.create(
            ctx.tenant,
            body.kind,
            _person(body),
            body.metadata,
            actor=ctx.key.actor,
            id=ctx.ids.new_id("cus"),
        )
    )
    concerns(request.scope.setdefault("state", {}), customer.id)
    return customer.to_dict()


@router.get(
    "/customers",
    response_model=CustomerList,
    tags=["customers"],
    openapi_extra=error_codes(LOOKUP_ERRORS) | requires(Scope.CUSTOMERS_READ),
)
async def list_customers(
    ctx: Ctx,
    limit: Limit = PAGE_SIZE_DEFAULT,
    starting_after: OptionalIdQuery = None,
    email: EmailQuery = None,
    national_id: NationalIdQuery = None,
) -> dict[str, Any]:
    """By id; with `email` or `national_id`, the customers whose value is exactly that (after
    normalisation), found by a blind index. A lookup needs `pii:read` as well (403
    `insufficient_scope` without it: it confirms guesses of personal data) and is an audit
    leaf `customer.looked_up` (who, which field, how many found; never the value). A query
    string may be logged by a proxy: `POST /v1/customers/search` takes the value in its
    body."""
    if email is not None or national_id is not None:
        require_scope(ctx.key, Scope.PII_READ)
    page = await run_in_threadpool(
        lambda: ctx.customers.list_customers(
            ctx.tenant,
            starting_after=starting_after,
            limit=limit,
            email=email,
            national_id=national_id,
            actor=ctx.key.actor,
        )
    )
    return list_body([c.to_dict() for c in page.data], page.has_more)


@router.post(
    "/customers/search",
    response_model=CustomerList,
    tags=["customers"],
    openapi_extra=error_codes(LOOKUP_ERRORS) | requires(Scope.PII_READ),
)
async def search_customers(body: CustomerSearch, ctx: Ctx) -> dict[str, Any]:
    """Exact lookup by `email` or `national_id` (one of them), as the listing's filters, with
    the value in the body. Up to 100 matches. Needs `pii:read` (granted by name, never implied
    by `admin`): a lookup confirms guesses of personal data. Each is an audit leaf
    `customer.looked_up` (who, which field, how many found; never the value)."""
    if body.email is None and body.national_id is None:
        raise InvalidRequest("give email or national_id", param="email", code="invalid_lookup")
    page = await run_in_threadpool(
        lambda: ctx.customers.list_customers(
            ctx.tenant,
            limit=PAGE_SIZE_MAX,
            email=body.email,
            national_id=body.national_id,
            actor=ctx.key.actor,
        )
    )
    return list_body([c.to_dict() for c in page.data], page.has_more)


@router.get(
    "/customers/{customer_id}",
    response_model=CustomerOut,
    tags=["customers"],
    openapi_extra=error_codes("not_found", "key_unavailable") | requires(Scope.CUSTOMERS_READ),
)
async def get_customer(customer_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """Masked. An erased customer is answered, `erased: true`, its personal data null."""
    customer = await run_in_threadpool(lambda: ctx.customers.get(ctx.tenant, customer_id))
    return customer.to_dict()


@router.patch(
    "/customers/{customer_id}",
    response_model=CustomerOut,
    tags=["customers"],
    openapi_extra=error_codes(
        INPUT_ERRORS, "not_found", "customer_erased", "key_unavailable", "unsupported_media_type"
    )
    | requires(Scope.CUSTOMERS_WRITE),
)
async def update_customer(customer_id: IdPath, body: CustomerUpdate, ctx: Ctx) -> dict[str, Any]:
    """The fields given are replaced (sealed again); those left out are kept."""
    customer = await run_in_threadpool(
        lambda: ctx.customers.update(
            ctx.tenant, customer_id, _person(body), body.metadata, actor=ctx.key.actor
        )
    )
    return customer.to_dict()


@router.get(
    "/customers/{customer_id}/personal-data",
    response_model=PersonalDataOut,
    tags=["customers"],
    openapi_extra=error_codes("not_found", "data_erased", "key_unavailable", "step_up_required")
    | requires(Scope.PII_READ),
)
async def get_customer_personal_data(
    customer_id: IdPath, ctx: Ctx, fields: FieldsQuery = None
) -> dict[str, Any]:
    """The personal data in full. Needs `pii:read` (granted by name, never implied by
    `admin`), and a user steps up first; every call is an audit leaf `customer.pii_revealed`
    naming the principal, the customer and the fields, never the values. After erasure: 410
    `data_erased`."""
    require_step_up(ctx.key, Scope.PII_READ)
    only = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    return await run_in_threadpool(
        lambda: ctx.customers.reveal(ctx.tenant, customer_id, actor=ctx.key.actor, fields=only)
    )


@router.delete(
    "/customers/{customer_id}/personal-data",
    response_model=CustomerOut,
    tags=["customers"],
    openapi_extra=error_codes("not_found", "legal_hold", "step_up_required")
    | requires(Scope.CUSTOMERS_ERASE),
)
async def delete_customer_personal_data(customer_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """Erasure (crypto-shredding): the customer's data key is destroyed, so its personal data
    cannot be recovered by anyone; the customer, its accounts, the ledger and the audit log
    remain and verify. Needs `customers:erase` (implied by `admin`); a user steps up first.
    Refused with 409 `legal_hold` while a hold is set (a manual one, AML record keeping, an
    open compliance case on the customer). Again on an erased customer: the same
    answer, nothing more done."""
    require_step_up(ctx.key)
    customer = await run_in_threadpool(
        lambda: ctx.customers.erase(ctx.tenant, customer_id, actor=ctx.key.actor)
    )
    return customer.to_dict()


@router.post(
    "/customers/{customer_id}/legal-hold",
    response_model=CustomerOut,
    tags=["customers"],
    openapi_extra=error_codes("not_found", "key_unavailable", "data_erased")
    | requires(Scope.CUSTOMERS_ERASE),
)
async def create_customer_legal_hold(
    customer_id: IdPath, ctx: Ctx, request: Request
) -> dict[str, Any]:
    """While held, erasure is refused (409 `legal_hold`). Needs `customers:erase` (implied by
    `admin`)."""
    concerns(request.scope.setdefault("state", {}), customer_id)
    customer = await run_in_threadpool(
        lambda: ctx.customers.set_legal_hold(ctx.tenant, customer_id, True, actor=ctx.key.actor)
    )
    return customer.to_dict()


@router.delete(
    "/customers/{customer_id}/legal-hold",
    response_model=CustomerOut,
    tags=["customers"],
    openapi_extra=error_codes("not_found", "key_unavailable") | requires(Scope.CUSTOMERS_ERASE),
)
async def delete_customer_legal_hold(customer_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    customer = await run_in_threadpool(
        lambda: ctx.customers.set_legal_hold(ctx.tenant, customer_id, False, actor=ctx.key.actor)
    )
    return customer.to_dict()


@router.get(
    "/customers/{customer_id}/accounts",
    response_model=CustomerAccountList,
    tags=["customers"],
    openapi_extra=error_codes("not_found") | requires_all(Scope.CUSTOMERS_READ, Scope.LEDGER_READ),
)
async def list_customer_accounts(
    customer_id: IdPath,
    ctx: Ctx,
    limit: Limit = PAGE_SIZE_DEFAULT,
    starting_after: OptionalIdQuery = None,
    ending_before: OptionalIdQuery = None,
) -> dict[str, Any]:
    """The accounts that name this customer, by id. Needs `customers:read` and
    `ledger:read`."""
    if starting_after is not None and ending_before is not None:
        raise InvalidRequest(
            "give starting_after or ending_before, not both", param="ending_before"
        )
    page = await run_in_threadpool(
        lambda: ctx.customers.accounts(
            ctx.tenant,
            customer_id,
            starting_after=starting_after,
            ending_before=ending_before,
            limit=limit,
        )
    )
    return list_body([a.to_dict() for a in page.data], page.has_more)


# -- counterparties ------------------------------------------------------------------------


@router.post(
    "/counterparties",
    status_code=201,
    response_model=CounterpartyOut,
    tags=["counterparties"],
    openapi_extra=error_codes(
        "invalid_personal_data", "invalid_name", "invalid_country", "data_erased"
    )
    | requires(Scope.CUSTOMERS_WRITE),
)
async def create_counterparty(
    body: CounterpartyCreate, ctx: Ctx, request: Request
) -> dict[str, Any]:
    """A payee who is not a customer: its name and account identifier sealed under its own
    data key, its country in clear. The answer is masked."""
    counterparty = await run_in_threadpool(
        lambda: ctx.counterparties.create(
            ctx.tenant,
            body.name,
            body.account_identifier,
            body.country,
            actor=ctx.key.actor,
            id=ctx.ids.new_id("cpty"),
        )
    )
    concerns(request.scope.setdefault("state", {}), counterparty.id)
    return counterparty.to_dict()


@router.get(
    "/counterparties",
    response_model=CounterpartyList,
    tags=["counterparties"],
    openapi_extra=error_codes("key_unavailable") | requires(Scope.CUSTOMERS_READ),
)
async def list_counterparties(
    ctx: Ctx, limit: Limit = PAGE_SIZE_DEFAULT, starting_after: OptionalIdQuery = None
) -> dict[str, Any]:
    page = await run_in_threadpool(
        lambda: ctx.counterparties.list_counterparties(
            ctx.tenant, starting_after=starting_after, limit=limit
        )
    )
    return list_body([c.to_dict() for c in page.data], page.has_more)


@router.get(
    "/counterparties/{counterparty_id}",
    response_model=CounterpartyOut,
    tags=["counterparties"],
    openapi_extra=error_codes("not_found", "key_unavailable") | requires(Scope.CUSTOMERS_READ),
)
async def get_counterparty(counterparty_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    counterparty = await run_in_threadpool(
        lambda: ctx.counterparties.get(ctx.tenant, counterparty_id)
    )
    return counterparty.to_dict()


@router.get(
    "/counterparties/{counterparty_id}/personal-data",
    response_model=CounterpartyOut,
    tags=["counterparties"],
    openapi_extra=error_codes("not_found", "data_erased", "key_unavailable", "step_up_required")
    | requires(Scope.PII_READ),
)
async def get_counterparty_personal_data(counterparty_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """In full: needs `pii:read`; every call is an audit leaf `counterparty.pii_revealed`."""
    require_step_up(ctx.key, Scope.PII_READ)
    counterparty = await run_in_threadpool(
        lambda: ctx.counterparties.reveal(ctx.tenant, counterparty_id, actor=ctx.key.actor)
    )
    return counterparty.to_dict(reveal=True)


@router.delete(
    "/counterparties/{counterparty_id}/personal-data",
    response_model=CounterpartyOut,
    tags=["counterparties"],
    openapi_extra=error_codes("not_found", "legal_hold", "step_up_required")
    | requires(Scope.CUSTOMERS_ERASE),
)
async def delete_counterparty_personal_data(counterparty_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """Erasure by crypto-shredding, as a customer's: `customers:erase` (implied by `admin`);
    a user steps up first. Refused with 409 `legal_hold` while a compliance case on the
    counterparty is open."""
    require_step_up(ctx.key)
    counterparty = await run_in_threadpool(
        lambda: ctx.counterparties.erase(ctx.tenant, counterparty_id, actor=ctx.key.actor)
    )
    return counterparty.to_dict()
