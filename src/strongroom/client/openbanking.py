"""Open banking's operations as request values, for both clients (as `resources`: each
function becomes a method of `Client` and `AsyncClient`).

- The operator's TPP registry: every one needs an operator's key (`tenants:admin`, on the
  system tenant); registering, rotating keys and enabling need a user to have stepped up.
  `jwks` is a JWK set `{"keys": [...]}` of public keys.
- The consent dashboard's: a customer's consents and revoking one, as that customer (a
  customer user's session token, `st_...`) or as staff of their tenant (customers:read to
  list, naming the customer; customers:write to revoke)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strongroom.client._spec import Call, Paged, model, segment
from strongroom.client.resources import _after_last_id, _data
from strongroom.openbanking.dashboard.schemas import OpenbankingConsentList, OpenbankingConsentOut
from strongroom.openbanking.tpp.schemas import OpenbankingClientList, OpenbankingClientOut


def create_openbanking_client(
    name: str,
    redirect_uris: Sequence[str],
    jwks: Mapping[str, Any],
    *,
    scopes: Sequence[str] | None = None,
    software_id: str | None = None,
    idempotency_key: str | None = None,
) -> Call[OpenbankingClientOut]:
    """Register a third-party provider (TPP): its redirect URIs (exact https URIs), public
    signing keys and scopes (accounts, payments, fundsconfirmations; all when None)."""
    body: dict[str, Any] = {"name": name, "redirect_uris": list(redirect_uris), "jwks": jwks}
    if scopes is not None:
        body["scopes"] = list(scopes)
    if software_id is not None:
        body["software_id"] = software_id
    return Call(
        "POST",
        "/v1/openbanking/clients",
        model(OpenbankingClientOut),
        json=body,
        idempotency_key=idempotency_key,
    )


def list_openbanking_clients(
    *, limit: int | None = None, starting_after: str | None = None
) -> Call[OpenbankingClientList]:
    """One page of the registered clients, by id."""
    params = {"limit": limit, "starting_after": starting_after}
    return Call("GET", "/v1/openbanking/clients", model(OpenbankingClientList), params=params)


def iter_openbanking_clients(
    *, limit: int | None = None, starting_after: str | None = None
) -> Paged[OpenbankingClientList, OpenbankingClientOut]:
    """Every registered client (after `starting_after`), fetching pages of `limit` as needed."""
    first = list_openbanking_clients(limit=limit, starting_after=starting_after)
    return Paged(first, _after_last_id, _data)


def get_openbanking_client(client_id: str) -> Call[OpenbankingClientOut]:
    return Call("GET", f"/v1/openbanking/clients/{segment(client_id)}", model(OpenbankingClientOut))


def update_openbanking_client_jwks(
    client_id: str, jwks: Mapping[str, Any]
) -> Call[OpenbankingClientOut]:
    """Rotate the client's keys: `jwks` replaces the registered set."""
    path = f"/v1/openbanking/clients/{segment(client_id)}/jwks"
    return Call("PUT", path, model(OpenbankingClientOut), json={"jwks": jwks})


def disable_openbanking_client(
    client_id: str, *, idempotency_key: str | None = None
) -> Call[OpenbankingClientOut]:
    """Disable the client: the authorization server refuses it; its registration is kept."""
    path = f"/v1/openbanking/clients/{segment(client_id)}/disable"
    return Call("POST", path, model(OpenbankingClientOut), idempotency_key=idempotency_key)


def enable_openbanking_client(
    client_id: str, *, idempotency_key: str | None = None
) -> Call[OpenbankingClientOut]:
    """Enable a disabled client again."""
    path = f"/v1/openbanking/clients/{segment(client_id)}/enable"
    return Call("POST", path, model(OpenbankingClientOut), idempotency_key=idempotency_key)


def list_openbanking_consents(
    *,
    customer_id: str | None = None,
    limit: int | None = None,
    starting_after: str | None = None,
) -> Call[OpenbankingConsentList]:
    """One page of a customer's open banking consents, by id: a customer user's own
    (`customer_id` None, or theirs), or, for staff with customers:read, the customer named."""
    params = {"customer_id": customer_id, "limit": limit, "starting_after": starting_after}
    return Call("GET", "/v1/openbanking/consents", model(OpenbankingConsentList), params=params)


def iter_openbanking_consents(
    *,
    customer_id: str | None = None,
    limit: int | None = None,
    starting_after: str | None = None,
) -> Paged[OpenbankingConsentList, OpenbankingConsentOut]:
    """Every consent of the customer (after `starting_after`), fetching pages as needed."""
    first = list_openbanking_consents(
        customer_id=customer_id, limit=limit, starting_after=starting_after
    )
    return Paged(first, _after_last_id, _data)


def revoke_openbanking_consent(
    consent_id: str, *, idempotency_key: str | None = None
) -> Call[OpenbankingConsentOut]:
    """Revoke the consent (status CANC): the TPP's access and its tokens end at once. One
    already ended is a ConflictError (consent_state)."""
    path = f"/v1/openbanking/consents/{segment(consent_id)}/revoke"
    return Call("POST", path, model(OpenbankingConsentOut), idempotency_key=idempotency_key)
