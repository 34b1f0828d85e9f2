"""The customers' and counterparties' operations as request values, for both clients (as
`resources`: each function becomes a method of `Client` and `AsyncClient`). Answers are masked
but for the `get_*_personal_data` reads, which need the `pii:read` scope and are each recorded
in the audit log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strongroom.client._spec import Call, Paged, model, segment
from strongroom.client.resources import _after_last_id, _data, _metadata
from strongroom.customers.schemas import (
    CounterpartyList,
    CounterpartyOut,
    CustomerAccountList,
    CustomerList,
    CustomerOut,
    PersonalDataOut,
)
from strongroom.ledger.schemas import AccountOut

# The personal-data members of a customer: name, date_of_birth ("YYYY-MM-DD"), address (a
# mapping: line1, line2, city, region, postal_code, country), email, phone, national_id.


def _personal(
    name: str | None,
    date_of_birth: str | None,
    address: Mapping[str, Any] | None,
    email: str | None,
    phone: str | None,
    national_id: str | None,
) -> dict[str, Any]:
    values = {
        "name": name,
        "date_of_birth": date_of_birth,
        "address": dict(address) if address is not None else None,
        "email": email,
        "phone": phone,
        "national_id": national_id,
    }
    return {k: v for k, v in values.items() if v is not None}


def create_customer(
    name: str,
    *,
    kind: str = "person",
    date_of_birth: str | None = None,
    address: Mapping[str, Any] | None = None,
    email: str | None = None,
    phone: str | None = None,
    national_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Call[CustomerOut]:
    """Create a customer (`customers:write`); `kind` is "person" or "business". Metadata is
    in clear: never personal data in it."""
    body = {
        "kind": kind,
        **_personal(name, date_of_birth, address, email, phone, national_id),
        "metadata": _metadata(metadata),
    }
    return Call(
        "POST", "/v1/customers", model(CustomerOut), json=body, idempotency_key=idempotency_key
    )


def list_customers(
    *,
    limit: int | None = None,
    starting_after: str | None = None,
    email: str | None = None,
    national_id: str | None = None,
) -> Call[CustomerList]:
    """One page of the tenant's customers, masked; `email` or `national_id`: those whose
    value is exactly that (see search_customers to keep the value out of URLs)."""
    params = {
        "limit": limit,
        "starting_after": starting_after,
        "email": email,
        "national_id": national_id,
    }
    return Call("GET", "/v1/customers", model(CustomerList), params=params)


def iter_customers(
    *, limit: int | None = None, starting_after: str | None = None
) -> Paged[CustomerList, CustomerOut]:
    """Every customer (after `starting_after`), masked."""
    return Paged(list_customers(limit=limit, starting_after=starting_after), _after_last_id, _data)


def search_customers(
    *,
    email: str | None = None,
    national_id: str | None = None,
    idempotency_key: str | None = None,
) -> Call[CustomerList]:
    """The customers whose email or national id (one of them) is exactly that, the value in
    the request's body."""
    body = {k: v for k, v in (("email", email), ("national_id", national_id)) if v is not None}
    return Call(
        "POST",
        "/v1/customers/search",
        model(CustomerList),
        json=body,
        idempotency_key=idempotency_key,
    )


def get_customer(customer_id: str) -> Call[CustomerOut]:
    """Masked; an erased customer has `erased` true and no personal data."""
    return Call("GET", f"/v1/customers/{segment(customer_id)}", model(CustomerOut))


def update_customer(
    customer_id: str,
    *,
    name: str | None = None,
    date_of_birth: str | None = None,
    address: Mapping[str, Any] | None = None,
    email: str | None = None,
    phone: str | None = None,
    national_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Call[CustomerOut]:
    """Replace the fields given (`customers:write`); those left out are kept."""
    body = _personal(name, date_of_birth, address, email, phone, national_id)
    if metadata is not None:
        body["metadata"] = dict(metadata)
    return Call("PATCH", f"/v1/customers/{segment(customer_id)}", model(CustomerOut), json=body)


def get_customer_personal_data(
    customer_id: str, *, fields: Sequence[str] | None = None
) -> Call[PersonalDataOut]:
    """The personal data in full (`pii:read`; an audit leaf records each call)."""
    return Call(
        "GET",
        f"/v1/customers/{segment(customer_id)}/personal-data",
        model(PersonalDataOut),
        params={"fields": ",".join(fields) if fields else None},
    )


def delete_customer_personal_data(customer_id: str) -> Call[CustomerOut]:
    """Erasure by crypto-shredding (`admin`); refused while a legal hold is set."""
    path = f"/v1/customers/{segment(customer_id)}/personal-data"
    return Call("DELETE", path, model(CustomerOut))


def create_customer_legal_hold(
    customer_id: str, *, idempotency_key: str | None = None
) -> Call[CustomerOut]:
    """Set a legal hold (`admin`): erasure is refused until it is cleared."""
    return Call(
        "POST",
        f"/v1/customers/{segment(customer_id)}/legal-hold",
        model(CustomerOut),
        idempotency_key=idempotency_key,
    )


def delete_customer_legal_hold(customer_id: str) -> Call[CustomerOut]:
    """Clear the legal hold (`admin`)."""
    return Call("DELETE", f"/v1/customers/{segment(customer_id)}/legal-hold", model(CustomerOut))


def list_customer_accounts(
    customer_id: str,
    *,
    limit: int | None = None,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> Call[CustomerAccountList]:
    """One page of the accounts that name the customer (`customers:read` and `ledger:read`)."""
    return Call(
        "GET",
        f"/v1/customers/{segment(customer_id)}/accounts",
        model(CustomerAccountList),
        params={"limit": limit, "starting_after": starting_after, "ending_before": ending_before},
    )


def iter_customer_accounts(
    customer_id: str, *, limit: int | None = None, starting_after: str | None = None
) -> Paged[CustomerAccountList, AccountOut]:
    first = list_customer_accounts(customer_id, limit=limit, starting_after=starting_after)
    return Paged(first, _after_last_id, _data)


# -- counterparties ------------------------------------------------------------------------


def create_counterparty(
    name: str, account_identifier: str, country: str, *, idempotency_key: str | None = None
) -> Call[CounterpartyOut]:
    """A payee who is not a customer (`customers:write`); `country` is ISO 3166-1 alpha-2."""
    body = {"name": name, "account_identifier": account_identifier, "country": country}
    return Call(
        "POST",
        "/v1/counterparties",
        model(CounterpartyOut),
        json=body,
        idempotency_key=idempotency_key,
    )


def list_counterparties(
    *, limit: int | None = None, starting_after: str | None = None
) -> Call[CounterpartyList]:
    params = {"limit": limit, "starting_after": starting_after}
    return Call("GET", "/v1/counterparties", model(CounterpartyList), params=params)


def iter_counterparties(
    *, limit: int | None = None, starting_after: str | None = None
) -> Paged[CounterpartyList, CounterpartyOut]:
    first = list_counterparties(limit=limit, starting_after=starting_after)
    return Paged(first, _after_last_id, _data)


def get_counterparty(counterparty_id: str) -> Call[CounterpartyOut]:
    return Call("GET", f"/v1/counterparties/{segment(counterparty_id)}", model(CounterpartyOut))


def get_counterparty_personal_data(counterparty_id: str) -> Call[CounterpartyOut]:
    """In full (`pii:read`; an audit leaf records each call)."""
    path = f"/v1/counterparties/{segment(counterparty_id)}/personal-data"
    return Call("GET", path, model(CounterpartyOut))


def delete_counterparty_personal_data(counterparty_id: str) -> Call[CounterpartyOut]:
    """Erasure by crypto-shredding (`admin`)."""
    path = f"/v1/counterparties/{segment(counterparty_id)}/personal-data"
    return Call("DELETE", path, model(CounterpartyOut))
