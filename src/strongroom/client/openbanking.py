"""The operator's open banking client operations as request values, for both clients (as
`resources`: each function becomes a method of `Client` and `AsyncClient`). Every one needs an
operator's key (`tenants:admin`, on the system tenant); registering, rotating keys and enabling
need a user to have stepped up. `jwks` is a JWK set `{"keys": [...]}` of public keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strongroom.client._spec import Call, Paged, model, segment
from strongroom.client.resources import _after_last_id, _data
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
