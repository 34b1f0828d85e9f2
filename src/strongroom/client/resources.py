"""Every operation of the HTTP API as a request value, written once for both clients.

Each function here becomes a method of `Client` (answering the model) and of `AsyncClient`
(answering an awaitable of it), with the same name, signature and docstring. `iter_*` walk a
listing page after page, exactly as the server says to go on (`starting_after` the last item,
or `cursor=next_cursor` on listings that examine a bounded range per request and may answer a
short or empty page while `has_more` is true).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

from strongroom.audit.schemas import (
    CheckpointOut,
    ConsistencyProofOut,
    InclusionProofOut,
    KeyList,
    LeafList,
    LeafOut,
    ReceiptOut,
    StatementOut,
)
from strongroom.client import people as _people
from strongroom.client._spec import Call, Paged, model, segment
from strongroom.events.schemas import (
    AttemptList,
    AttemptOut,
    EndpointDeleted,
    EndpointList,
    EndpointOut,
    EventList,
    EventOut,
)
from strongroom.ledger.schemas import (
    AccountList,
    AccountOut,
    AssetOut,
    BalanceAtOut,
    BatchOut,
    EntryList,
    EntryOut,
    LedgerList,
    LedgerOut,
    TransferList,
    TransferOut,
)
from strongroom.security.auth.schemas import UserList, UserOut
from strongroom.security.vault.schemas import CardDeleted, CardList, CardNumberOut, CardOut
from strongroom.tenancy.schemas import TenantList, TenantOut

# -- how each listing goes on --------------------------------------------------------------


class _WithId(Protocol):
    @property
    def id(self) -> str: ...


class _WithVersion(Protocol):
    @property
    def version(self) -> int: ...


class _IdPage(Protocol):
    @property
    def has_more(self) -> bool: ...
    @property
    def data(self) -> Sequence[_WithId]: ...


class _VersionPage(Protocol):
    @property
    def has_more(self) -> bool: ...
    @property
    def data(self) -> Sequence[_WithVersion]: ...


class _CursorPage(Protocol):
    @property
    def has_more(self) -> bool: ...
    @property
    def next_cursor(self) -> str | None: ...


IP = TypeVar("IP", bound=_IdPage)
VP = TypeVar("VP", bound=_VersionPage)
CP = TypeVar("CP", bound=_CursorPage)


def _after_last_id(call: Call[IP], page: IP) -> Call[IP] | None:
    """Listings whose cursor is the last item's id."""
    if not page.has_more:
        return None
    if not page.data:
        raise RuntimeError(f"{call.path} answered an empty page with has_more: a server bug")
    return call.with_params(starting_after=page.data[-1].id, ending_before=None)


def _after_last_version(call: Call[VP], page: VP) -> Call[VP] | None:
    """An account's entries: the cursor is the last entry's version."""
    if not page.has_more:
        return None
    if not page.data:
        raise RuntimeError(f"{call.path} answered an empty page with has_more: a server bug")
    return call.with_params(starting_after=page.data[-1].version)


def _next_cursor(call: Call[CP], page: CP) -> Call[CP] | None:
    """Listings with a scan budget (transfers, events) and statements: a page may be short,
    even empty, while has_more is true; `next_cursor` goes on from where it stopped."""
    if not page.has_more:
        return None
    if page.next_cursor is None:
        raise RuntimeError(f"{call.path} answered has_more without next_cursor: a server bug")
    return call.with_params(cursor=page.next_cursor, starting_after=None, ending_before=None)


def _after_last_leaf(call: Call[LeafList], page: LeafList) -> Call[LeafList] | None:
    if not page.has_more or not page.data:
        return None
    return call.with_params(start=page.data[-1].index + 1)


def _data(page: Any) -> Sequence[Any]:
    data: Sequence[Any] = page.data
    return data


def _metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return dict(metadata) if metadata else None


# -- ledgers and assets --------------------------------------------------------------------


def create_ledger(
    name: str,
    metadata: Mapping[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
) -> Call[LedgerOut]:
    """Create a ledger (`ledger:write`)."""
    return Call(
        "POST",
        "/v1/ledgers",
        model(LedgerOut),
        json={"name": name, "metadata": _metadata(metadata)},
        idempotency_key=idempotency_key,
    )


def list_ledgers(
    *,
    limit: int | None = None,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> Call[LedgerList]:
    """One page of the tenant's ledgers."""
    params = {"limit": limit, "starting_after": starting_after, "ending_before": ending_before}
    return Call("GET", "/v1/ledgers", model(LedgerList), params=params)


def iter_ledgers(
    *, limit: int | None = None, starting_after: str | None = None
) -> Paged[LedgerList, LedgerOut]:
    """Every ledger (after `starting_after`), fetching pages of `limit` as needed."""
    return Paged(list_ledgers(limit=limit, starting_after=starting_after), _after_last_id, _data)


def get_ledger(ledger_id: str) -> Call[LedgerOut]:
    return Call("GET", f"/v1/ledgers/{segment(ledger_id)}", model(LedgerOut))


def create_asset(code: str, scale: int, *, idempotency_key: str | None = None) -> Call[AssetOut]:
    """Create a custom asset, shared by every tenant of the server (`admin`)."""
    return Call(
        "POST",
        "/v1/assets",
        model(AssetOut),
        json={"code": code, "scale": scale},
        idempotency_key=idempotency_key,
    )


# -- accounts ------------------------------------------------------------------------------


def create_account(
    ledger_id: str,
    asset: str,
    normal_balance: str,
    *,
    name: str | None = None,
    flags: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    customer_id: str | None = None,
    idempotency_key: str | None = None,
) -> Call[AccountOut]:
    """Create an account; `normal_balance` is "debit" or "credit"; `customer_id` names its
    owner."""
    body = {
        "ledger_id": ledger_id,
        "asset": asset,
        "normal_balance": normal_balance,
        "name": name,
        "flags": list(flags),
        "metadata": _metadata(metadata),
        "customer_id": customer_id,
    }
    return Call(
        "POST", "/v1/accounts", model(AccountOut), json=body, idempotency_key=idempotency_key
    )


def list_accounts(
    ledger_id: str,
    *,
    limit: int | None = None,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> Call[AccountList]:
    """One page of a ledger's accounts."""
    params = {
        "ledger_id": ledger_id,
        "limit": limit,
        "starting_after": starting_after,
        "ending_before": ending_before,
    }
    return Call("GET", "/v1/accounts", model(AccountList), params=params)


def iter_accounts(
    ledger_id: str, *, limit: int | None = None, starting_after: str | None = None
) -> Paged[AccountList, AccountOut]:
    """Every account of the ledger (after `starting_after`)."""
    first = list_accounts(ledger_id, limit=limit, starting_after=starting_after)
    return Paged(first, _after_last_id, _data)


def get_account(account_id: str) -> Call[AccountOut]:
    return Call("GET", f"/v1/accounts/{segment(account_id)}", model(AccountOut))


def get_balance(
    account_id: str, *, as_of: str | None = None, version: int | None = None
) -> Call[BalanceAtOut]:
    """Balances now, after a version, or as of an RFC 3339 time (one of them)."""
    return Call(
        "GET",
        f"/v1/accounts/{segment(account_id)}/balance",
        model(BalanceAtOut),
        params={"as_of": as_of, "version": version},
    )


def list_entries(
    account_id: str, *, limit: int | None = None, starting_after: int | None = None
) -> Call[EntryList]:
    """One page of the account's entries, newest first; `starting_after` is an entry's
    version."""
    return Call(
        "GET",
        f"/v1/accounts/{segment(account_id)}/entries",
        model(EntryList),
        params={"limit": limit, "starting_after": starting_after},
    )


def iter_entries(
    account_id: str, *, limit: int | None = None, starting_after: int | None = None
) -> Paged[EntryList, EntryOut]:
    """Every entry of the account, newest first (below version `starting_after`)."""
    first = list_entries(account_id, limit=limit, starting_after=starting_after)
    return Paged(first, _after_last_version, _data)


def statement(
    account_id: str,
    from_: str,
    to: str,
    *,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[StatementOut]:
    """One page of the account's statement for (from_, to] (RFC 3339), each leaf with its
    inclusion proof in a signed checkpoint."""
    return Call(
        "GET",
        f"/v1/accounts/{segment(account_id)}/statement",
        model(StatementOut),
        params={"from": from_, "to": to, "limit": limit, "cursor": cursor},
    )


def iter_statement_pages(
    account_id: str, from_: str, to: str, *, limit: int | None = None
) -> Paged[StatementOut, StatementOut]:
    """Every page of the statement for (from_, to], in order."""
    return Paged(statement(account_id, from_, to, limit=limit), _next_cursor, lambda p: [p])


def statement_pages(
    account_id: str, from_: str, to: str, *, limit: int | None = None
) -> Paged[StatementOut, dict[str, Any]]:
    """Every page of the statement, as the documents audit.statement.verify_statement
    (and `strongroom audit verify-statement`) checks together."""
    first = statement(account_id, from_, to, limit=limit)
    return Paged(first, _next_cursor, lambda p: [p.model_dump(by_alias=True)])


# -- transfers -----------------------------------------------------------------------------


def create_transfer(
    ledger_id: str,
    *,
    debit_account_id: str | None = None,
    credit_account_id: str | None = None,
    amount: int | None = None,
    entries: Sequence[Mapping[str, Any]] | None = None,
    pending: bool = False,
    timeout_s: int = 0,
    effective_at: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    payment: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Call[TransferOut]:
    """A transfer between two accounts (`debit_account_id`, `credit_account_id`, `amount`)
    or with multi-leg `entries`; `pending` reserves it until posted, voided or expired.
    `payment` ({customer_id, payee, channel, device, ip}) marks it as a payment, which risk
    scoring may hold for review (answered `pending`, with `risk`) or block (`risk_blocked`)."""
    body: dict[str, Any] = {"ledger_id": ledger_id, "pending": pending, "timeout_s": timeout_s}
    if entries is not None:
        body["entries"] = [dict(e) for e in entries]
    else:
        body.update(
            debit_account_id=debit_account_id, credit_account_id=credit_account_id, amount=amount
        )
    if effective_at is not None:
        body["effective_at"] = effective_at
    if metadata:
        body["metadata"] = dict(metadata)
    if payment is not None:
        body["payment"] = dict(payment)
    return Call(
        "POST", "/v1/transfers", model(TransferOut), json=body, idempotency_key=idempotency_key
    )


def create_batch(
    transfers: Sequence[Mapping[str, Any]],
    *,
    atomic: bool = False,
    idempotency_key: str | None = None,
) -> Call[BatchOut]:
    """Up to 8,190 transfers in one transaction, each with its own result."""
    body = {"transfers": [dict(t) for t in transfers], "atomic": atomic}
    return Call(
        "POST", "/v1/transfers/batch", model(BatchOut), json=body, idempotency_key=idempotency_key
    )


def _resolve(
    transfer_id: str,
    action: str,
    amount: int | None,
    metadata: Mapping[str, Any] | None,
    idempotency_key: str | None,
) -> Call[TransferOut]:
    body: dict[str, Any] = {}
    if amount is not None:
        body["amount"] = amount
    if metadata:
        body["metadata"] = dict(metadata)
    return Call(
        "POST",
        f"/v1/transfers/{segment(transfer_id)}/{action}",
        model(TransferOut),
        json=body or None,
        idempotency_key=idempotency_key,
    )


def post_transfer(
    transfer_id: str,
    amount: int | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Call[TransferOut]:
    """Post a pending transfer, fully or `amount` of it (the rest is released)."""
    return _resolve(transfer_id, "post", amount, metadata, idempotency_key)


def void_transfer(
    transfer_id: str,
    *,
    metadata: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Call[TransferOut]:
    """Void a pending transfer, releasing its reservation."""
    return _resolve(transfer_id, "void", None, metadata, idempotency_key)


def reverse_transfer(
    transfer_id: str,
    amount: int | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Call[TransferOut]:
    """Reverse a posted transfer, fully or `amount` of it."""
    return _resolve(transfer_id, "reverse", amount, metadata, idempotency_key)


def list_transfers(
    *,
    ledger_id: str | None = None,
    account_id: str | None = None,
    status: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    metadata: Mapping[str, str] | None = None,
    limit: int | None = None,
    starting_after: str | None = None,
    ending_before: str | None = None,
    cursor: str | None = None,
) -> Call[TransferList]:
    """A page; with a filter it may hold fewer than `limit` transfers while has_more is
    true (each request examines a bounded number): pass its next_cursor as `cursor`, or use
    iter_transfers."""
    params: dict[str, Any] = {
        "ledger_id": ledger_id,
        "account_id": account_id,
        "status": status,
        "created_after": created_after,
        "created_before": created_before,
        "limit": limit,
        "starting_after": starting_after,
        "ending_before": ending_before,
        "cursor": cursor,
    }
    for key, value in (metadata or {}).items():
        params[f"metadata[{key}]"] = value
    return Call("GET", "/v1/transfers", model(TransferList), params=params)


def iter_transfers(
    *,
    ledger_id: str | None = None,
    account_id: str | None = None,
    status: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    metadata: Mapping[str, str] | None = None,
    limit: int | None = None,
    starting_after: str | None = None,
) -> Paged[TransferList, TransferOut]:
    """Every matching transfer, newest first, following next_cursor through short pages."""
    first = list_transfers(
        ledger_id=ledger_id,
        account_id=account_id,
        status=status,
        created_after=created_after,
        created_before=created_before,
        metadata=metadata,
        limit=limit,
        starting_after=starting_after,
    )
    return Paged(first, _next_cursor, _data)


def get_transfer(transfer_id: str) -> Call[TransferOut]:
    return Call("GET", f"/v1/transfers/{segment(transfer_id)}", model(TransferOut))


def get_transfer_receipt(transfer_id: str) -> Call[ReceiptOut]:
    """A self-contained receipt: the transfer's leaves with their inclusion proofs in a signed
    checkpoint (`strongroom audit verify-receipt` checks it offline)."""
    return Call("GET", f"/v1/transfers/{segment(transfer_id)}/receipt", model(ReceiptOut))


# -- events --------------------------------------------------------------------------------


def list_events(
    *,
    ledger_id: str | None = None,
    type: str | None = None,
    limit: int | None = None,
    starting_after: str | None = None,
    cursor: str | None = None,
) -> Call[EventList]:
    """One page of events, newest first; it may be short, even empty, while has_more is true
    (each request examines a bounded range): pass next_cursor as `cursor`, or use
    iter_events."""
    params = {
        "ledger_id": ledger_id,
        "type": type,
        "limit": limit,
        "starting_after": starting_after,
        "cursor": cursor,
    }
    return Call("GET", "/v1/events", model(EventList), params=params)


def iter_events(
    *,
    ledger_id: str | None = None,
    type: str | None = None,
    limit: int | None = None,
    starting_after: str | None = None,
) -> Paged[EventList, EventOut]:
    """Every matching event, newest first, following next_cursor through short pages."""
    first = list_events(ledger_id=ledger_id, type=type, limit=limit, starting_after=starting_after)
    return Paged(first, _next_cursor, _data)


def get_event(event_id: str) -> Call[EventOut]:
    return Call("GET", f"/v1/events/{segment(event_id)}", model(EventOut))


# -- cards (the card vault) ----------------------------------------------------------------


def create_card(
    number: str,
    exp_month: int,
    exp_year: int,
    holder_name: str,
    *,
    cvc: str | None = None,
    idempotency_key: str | None = None,
) -> Call[CardOut]:
    """Tokenize a card (`cards:write`): a new `card_...` token, masked; `cvc` is checked and
    forgotten by the server, never stored."""
    body = {
        "number": number,
        "exp_month": exp_month,
        "exp_year": exp_year,
        "holder_name": holder_name,
        "cvc": cvc,
    }
    return Call("POST", "/v1/cards", model(CardOut), json=body, idempotency_key=idempotency_key)


def list_cards(
    *,
    fingerprint: str | None = None,
    limit: int | None = None,
    starting_after: str | None = None,
) -> Call[CardList]:
    """One page of the tenant's card tokens, newest first; `fingerprint`: one card's tokens
    (needs `vault:reveal`, as the fingerprints themselves: null to a key without it)."""
    params = {"fingerprint": fingerprint, "limit": limit, "starting_after": starting_after}
    return Call("GET", "/v1/cards", model(CardList), params=params)


def iter_cards(
    *,
    fingerprint: str | None = None,
    limit: int | None = None,
    starting_after: str | None = None,
) -> Paged[CardList, CardOut]:
    """Every card token (of `fingerprint`: needs `vault:reveal`), newest first."""
    first = list_cards(fingerprint=fingerprint, limit=limit, starting_after=starting_after)
    return Paged(first, _after_last_id, _data)


def get_card(card_id: str) -> Call[CardOut]:
    """The card, masked (`cards:read`)."""
    return Call("GET", f"/v1/cards/{segment(card_id)}", model(CardOut))


def get_card_number(card_id: str) -> Call[CardNumberOut]:
    """The card's number and holder in clear (`vault:reveal`; each call is an audit leaf)."""
    return Call("GET", f"/v1/cards/{segment(card_id)}/number", model(CardNumberOut))


def delete_card(card_id: str) -> Call[CardDeleted]:
    """Delete the card for good (its data key is shredded)."""
    return Call("DELETE", f"/v1/cards/{segment(card_id)}", model(CardDeleted))


# -- webhook endpoints (an admin key) ------------------------------------------------------


def create_webhook_endpoint(
    url: str,
    enabled_events: Sequence[str] | None = None,
    *,
    idempotency_key: str | None = None,
) -> Call[EndpointOut]:
    """Deliver events created from now on to `url`, signed per Standard Webhooks; the answer
    carries the endpoint's `whsec_...` secret."""
    body = {
        "url": url,
        "enabled_events": list(enabled_events) if enabled_events is not None else None,
    }
    return Call(
        "POST",
        "/v1/webhook_endpoints",
        model(EndpointOut),
        json=body,
        idempotency_key=idempotency_key,
    )


def list_webhook_endpoints(
    *, limit: int | None = None, starting_after: str | None = None
) -> Call[EndpointList]:
    return Call(
        "GET",
        "/v1/webhook_endpoints",
        model(EndpointList),
        params={"limit": limit, "starting_after": starting_after},
    )


def iter_webhook_endpoints(
    *, limit: int | None = None, starting_after: str | None = None
) -> Paged[EndpointList, EndpointOut]:
    first = list_webhook_endpoints(limit=limit, starting_after=starting_after)
    return Paged(first, _after_last_id, _data)


def get_webhook_endpoint(endpoint_id: str) -> Call[EndpointOut]:
    return Call("GET", f"/v1/webhook_endpoints/{segment(endpoint_id)}", model(EndpointOut))


def update_webhook_endpoint(
    endpoint_id: str, *, enabled: bool, idempotency_key: str | None = None
) -> Call[EndpointOut]:
    """Disable (enabled=False) or enable again."""
    return Call(
        "POST",
        f"/v1/webhook_endpoints/{segment(endpoint_id)}",
        model(EndpointOut),
        json={"enabled": enabled},
        idempotency_key=idempotency_key,
    )


def delete_webhook_endpoint(endpoint_id: str) -> Call[EndpointDeleted]:
    """Deletes the endpoint with its pending deliveries and recorded attempts."""
    return Call("DELETE", f"/v1/webhook_endpoints/{segment(endpoint_id)}", model(EndpointDeleted))


def list_webhook_attempts(
    endpoint_id: str,
    *,
    limit: int | None = None,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> Call[AttemptList]:
    """Newest first; the cursors are attempt ids (`has_more` says whether a page follows
    in the direction asked)."""
    return Call(
        "GET",
        f"/v1/webhook_endpoints/{segment(endpoint_id)}/attempts",
        model(AttemptList),
        params={"limit": limit, "starting_after": starting_after, "ending_before": ending_before},
    )


def iter_webhook_attempts(
    endpoint_id: str, *, limit: int | None = None, starting_after: str | None = None
) -> Paged[AttemptList, AttemptOut]:
    """Every delivery attempt of the endpoint, newest first."""
    first = list_webhook_attempts(endpoint_id, limit=limit, starting_after=starting_after)
    return Paged(first, _after_last_id, _data)


# -- the audit log -------------------------------------------------------------------------


def get_latest_checkpoint() -> Call[CheckpointOut]:
    """The latest signed checkpoint of the tenant's log."""
    return Call("GET", "/v1/audit/checkpoint", model(CheckpointOut))


def publish_checkpoint(*, idempotency_key: str | None = None) -> Call[CheckpointOut]:
    """Sign and publish a checkpoint of the log as it is now (`admin`)."""
    return Call(
        "POST", "/v1/audit/checkpoints", model(CheckpointOut), idempotency_key=idempotency_key
    )


def get_checkpoint(tree_size: int) -> Call[CheckpointOut]:
    """A past checkpoint, by its tree size."""
    return Call("GET", f"/v1/audit/checkpoints/{segment(tree_size)}", model(CheckpointOut))


def list_audit_keys() -> Call[KeyList]:
    """The public keys that sign checkpoints, retired ones included."""
    return Call("GET", "/v1/audit/keys", model(KeyList))


def list_audit_leaves(*, start: int | None = None, limit: int | None = None) -> Call[LeafList]:
    """One page of the log's leaves in index order from `start`."""
    return Call("GET", "/v1/audit/leaves", model(LeafList), params={"start": start, "limit": limit})


def iter_audit_leaves(
    *, start: int | None = None, limit: int | None = None
) -> Paged[LeafList, LeafOut]:
    """Every leaf from `start` to the end of the log as it grows while read."""
    return Paged(list_audit_leaves(start=start, limit=limit), _after_last_leaf, _data)


def get_inclusion_proof(
    tree_size: int, *, leaf_index: int | None = None, transfer_id: str | None = None
) -> Call[InclusionProofOut]:
    """The RFC 9162 inclusion proof of a leaf (by index, or a transfer's first leaf) in the
    tree of `tree_size` leaves."""
    return Call(
        "GET",
        "/v1/audit/proofs/inclusion",
        model(InclusionProofOut),
        params={"tree_size": tree_size, "leaf_index": leaf_index, "transfer_id": transfer_id},
    )


def get_consistency_proof(first: int, second: int) -> Call[ConsistencyProofOut]:
    """The RFC 9162 consistency proof between the trees of `first` and `second` leaves."""
    return Call(
        "GET",
        "/v1/audit/proofs/consistency",
        model(ConsistencyProofOut),
        params={"first": first, "second": second},
    )


# -- the operator's: the deployment's tenants (a key of the system tenant, tenants:admin) ----


def create_tenant(name: str, *, idempotency_key: str | None = None) -> Call[TenantOut]:
    """Create a tenant of this deployment (`tenants:admin`, an operator's key)."""
    return Call(
        "POST",
        "/v1/tenants",
        model(TenantOut),
        json={"name": name},
        idempotency_key=idempotency_key,
    )


def list_tenants(
    *, limit: int | None = None, starting_after: str | None = None
) -> Call[TenantList]:
    """One page of the deployment's tenants, by id."""
    params = {"limit": limit, "starting_after": starting_after}
    return Call("GET", "/v1/tenants", model(TenantList), params=params)


def iter_tenants(
    *, limit: int | None = None, starting_after: str | None = None
) -> Paged[TenantList, TenantOut]:
    """Every tenant (after `starting_after`), fetching pages of `limit` as needed."""
    return Paged(list_tenants(limit=limit, starting_after=starting_after), _after_last_id, _data)


def get_tenant(tenant_id: str) -> Call[TenantOut]:
    return Call("GET", f"/v1/tenants/{segment(tenant_id)}", model(TenantOut))


def suspend_tenant(tenant_id: str, *, idempotency_key: str | None = None) -> Call[TenantOut]:
    """Suspend a tenant: its keys authenticate no more (`tenants:admin`)."""
    path = f"/v1/tenants/{segment(tenant_id)}/suspend"
    return Call("POST", path, model(TenantOut), idempotency_key=idempotency_key)


def resume_tenant(tenant_id: str, *, idempotency_key: str | None = None) -> Call[TenantOut]:
    """Resume a suspended tenant (`tenants:admin`)."""
    path = f"/v1/tenants/{segment(tenant_id)}/resume"
    return Call("POST", path, model(TenantOut), idempotency_key=idempotency_key)


# -- people: signing in, factors, users, API keys (client/people.py) ----------------------

create_session = _people.create_session
get_current_session = _people.get_current_session
delete_current_session = _people.delete_current_session
create_totp_enrolment = _people.create_totp_enrolment
confirm_totp = _people.confirm_totp
create_passkey_registration_options = _people.create_passkey_registration_options
create_passkey = _people.create_passkey
create_passkey_authentication_options = _people.create_passkey_authentication_options
create_passkey_session = _people.create_passkey_session
create_step_up_options = _people.create_step_up_options
step_up = _people.step_up
create_user = _people.create_user
accept_invitation = _people.accept_invitation
list_users = _people.list_users


def iter_users(
    *, limit: int | None = None, starting_after: str | None = None
) -> Paged[UserList, UserOut]:
    """Every user of the tenant (after `starting_after`), never their addresses."""
    call = _people.list_users(limit=limit, starting_after=starting_after)
    return Paged(call, _after_last_id, _data)


get_user = _people.get_user
update_user = _people.update_user
create_api_key = _people.create_api_key
