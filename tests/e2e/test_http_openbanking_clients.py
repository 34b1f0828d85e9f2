"""The operator's open banking client routes over HTTP: the operator registers, lists, reads,
rotates the keys of, disables and enables TPPs (each change a leaf of the system tenant's log);
a tenant's keys, its admin's included, are refused every route and see nothing; a refused
registration writes nothing; an operator user steps up to register."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from strongroom.tenancy.model import Scope
from tests.e2e.http_support import Api, Tenant, problem_code, running, seed_tenant
from tests.support.jwks import ec_key, jwks, okp_key, private_ec_key, rsa_key

CLIENTS = "/v1/openbanking/clients"
CB = "https://tpp.example.com/cb"
PASSWORD = "a long enough passphrase"
FAST = {"password_memory_kib": 19 * 1024, "password_time_cost": 2, "password_parallelism": 1}


@pytest.fixture
def api(sqlite_url: str) -> Iterator[Api]:
    with running(sqlite_url, dispatcher=False, **FAST) as api:
        yield api


@pytest.fixture
def operator(api: Api) -> str:
    return str(api.app.state.tenancy.create_api_key(None, [Scope.TENANTS_ADMIN.value])[1])


def _body(**fields: Any) -> dict[str, Any]:
    return {"name": "Acme TPP", "redirect_uris": [CB], "jwks": jwks(), **fields}


def _system_leaves(api: Api, client_id: str) -> list[str]:
    log_id = api.app.state.tenancy.system_tenant().id
    found = api.app.state.audit.records_for(log_id, [client_id]).get(client_id, [])
    return [leaf["type"] for leaf in found]


def _log_size(api: Api) -> int:
    log_id = api.app.state.tenancy.system_tenant().id
    return int(api.app.state.audit.leaves(log_id, 0, 1)[1])


def test_the_operator_registers_lists_rotates_disables_and_enables(api: Api, operator: str) -> None:
    keys = jwks(ec_key("a", alg="ES256", use="sig"), rsa_key("b"))
    created = api.ok(
        "POST",
        CLIENTS,
        201,
        key=operator,
        json=_body(scopes=["accounts", "payments"], software_id="sw-1", jwks=keys),
    )
    client_id = created["id"]
    assert client_id.startswith("tpp_")
    assert created["object"] == "openbanking_client"
    assert created["status"] == "active"
    assert created["scopes"] == ["accounts", "payments"]
    assert created["jwks"] == keys
    assert created["software_id"] == "sw-1"
    assert created["created_by"].startswith("api_key:")
    assert api.ok("GET", f"{CLIENTS}/{client_id}", key=operator) == created

    others = [api.ok("POST", CLIENTS, 201, key=operator, json=_body())["id"] for _ in range(2)]
    first = api.ok("GET", CLIENTS, key=operator, params={"limit": 2})
    assert first["has_more"]
    rest = api.ok(
        "GET", CLIENTS, key=operator, params={"limit": 2, "starting_after": first["data"][-1]["id"]}
    )
    assert not rest["has_more"]
    listed = [c["id"] for c in first["data"] + rest["data"]]
    assert listed == sorted([client_id, *others])

    new_keys = jwks(ec_key("a"), okp_key("c"))
    rotated = api.ok("PUT", f"{CLIENTS}/{client_id}/jwks", key=operator, json={"jwks": new_keys})
    assert rotated["jwks"] == new_keys
    disabled = api.ok("POST", f"{CLIENTS}/{client_id}/disable", key=operator)
    assert disabled["status"] == "disabled"
    assert api.ok("POST", f"{CLIENTS}/{client_id}/disable", key=operator) == disabled
    enabled = api.ok("POST", f"{CLIENTS}/{client_id}/enable", key=operator)
    assert enabled["status"] == "active"
    assert _system_leaves(api, client_id) == [
        "openbanking_client.created",
        "openbanking_client.keys_rotated",
        "openbanking_client.disabled",
        "openbanking_client.enabled",
    ]
    # What the authorization server will look up.
    found, key_set = api.app.state.openbanking_clients.active_keys(client_id)
    assert [k.kid for k in key_set.keys] == ["a", "c"]
    assert found.id == client_id

    for method, path in (
        ("GET", f"{CLIENTS}/tpp_missing"),
        ("POST", f"{CLIENTS}/tpp_missing/disable"),
        ("POST", f"{CLIENTS}/tpp_missing/enable"),
        ("PUT", f"{CLIENTS}/tpp_missing/jwks"),
    ):
        body = {"jwks": new_keys} if method == "PUT" else None
        response = api.request(method, path, key=operator, json=body)
        assert (response.status_code, problem_code(response)) == (404, "not_found"), path


def test_an_idempotency_key_registers_once(api: Api, operator: str) -> None:
    headers = {"Idempotency-Key": "register-acme-1"}
    body = _body()
    first = api.request("POST", CLIENTS, key=operator, json=body, headers=headers)
    again = api.request("POST", CLIENTS, key=operator, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert len(api.ok("GET", CLIENTS, key=operator)["data"]) == 1
    other = api.request("POST", CLIENTS, key=operator, json={**body, "name": "B"}, headers=headers)
    assert (other.status_code, problem_code(other)) == (422, "idempotency_key_reused")


@pytest.mark.parametrize(
    ("fields", "code", "param"),
    [
        ({"name": ""}, "invalid_name", "name"),
        ({"name": "x" * 101}, "invalid_name", "name"),
        ({"name": "a\x07b"}, "invalid_name", "name"),
        ({"software_id": "a b"}, "invalid_software_id", "software_id"),
        ({"software_id": "s" * 65}, "invalid_software_id", "software_id"),
        ({"redirect_uris": []}, "invalid_redirect_uri", "redirect_uris"),
        ({"redirect_uris": [CB] * 11}, "invalid_redirect_uri", "redirect_uris"),
        ({"redirect_uris": [CB, CB]}, "invalid_redirect_uri", "redirect_uris[1]"),
        ({"redirect_uris": ["https://" + "x" * 2050]}, "invalid_redirect_uri", "redirect_uris[0]"),
        ({"redirect_uris": ["http://tpp.example.com/cb"]}, "invalid_redirect_uri",
         "redirect_uris[0]"),
        ({"redirect_uris": [CB + "#f"]}, "invalid_redirect_uri", "redirect_uris[0]"),
        ({"scopes": ["cards"]}, "invalid_scope", "scopes[0]"),
        ({"scopes": []}, "invalid_scope", "scopes"),
        ({"jwks": {"keys": []}}, "invalid_jwks", "jwks.keys"),
        ({"jwks": jwks(ec_key("a"), ec_key("a"))}, "invalid_jwks", "jwks.keys[1].kid"),
        ({"jwks": jwks(ec_key(use="enc"))}, "invalid_jwks", "jwks.keys[0].use"),
        ({"jwks": jwks(ec_key(alg="RS256"))}, "invalid_jwks", "jwks.keys[0].alg"),
        ({"jwks": jwks({**ec_key(), "kty": "oct"})}, "invalid_jwks", "jwks.keys[0].kty"),
        ({"jwks": jwks({**ec_key(), "y": ec_key()["x"]})}, "invalid_jwks", "jwks.keys[0]"),
        ({"jwks": jwks(private_ec_key())}, "jwks_private_key", "jwks.keys[0].d"),
        ({"jwks": jwks({**rsa_key(), "p": "AQAB"})}, "jwks_private_key", "jwks.keys[0].p"),
        # Past a documented bound or not a member at all: the request is malformed.
        ({"jwks": {"keys": [ec_key(f"k{i}") for i in range(11)]}}, "invalid_request",
         "jwks.keys"),
        ({"jwks": jwks({**ec_key(), "x5c": ["MIIB"]})}, "invalid_request", "jwks.keys[0].x5c"),
    ],
)  # fmt: skip
def test_a_refused_registration_is_a_400_that_writes_nothing(
    api: Api, operator: str, fields: dict[str, Any], code: str, param: str
) -> None:
    size = _log_size(api)
    response = api.post(CLIENTS, key=operator, json=_body(**fields))
    assert (response.status_code, problem_code(response)) == (400, code), response.text
    assert response.json()["param"] == param
    if "jwks" in fields:
        for key in fields["jwks"]["keys"]:
            for member in ("d", "p"):
                assert str(key.get(member, "-")) not in response.text
    assert api.ok("GET", CLIENTS, key=operator)["data"] == []
    assert _log_size(api) == size


def test_a_refused_rotation_writes_nothing(api: Api, operator: str) -> None:
    client = api.ok("POST", CLIENTS, 201, key=operator, json=_body())
    path = f"{CLIENTS}/{client['id']}/jwks"
    size = _log_size(api)
    response = api.request("PUT", path, key=operator, json={"jwks": jwks(private_ec_key())})
    assert (response.status_code, problem_code(response)) == (400, "jwks_private_key")
    assert api.ok("GET", f"{CLIENTS}/{client['id']}", key=operator) == client
    assert _log_size(api) == size


def test_a_tenants_keys_are_refused_every_route_and_see_nothing(api: Api, operator: str) -> None:
    client = api.ok("POST", CLIENTS, 201, key=operator, json=_body())
    acme: Tenant = seed_tenant(api, "acme")
    tenancy = api.app.state.tenancy
    every_scope = [s.value for s in Scope if s is not Scope.TENANTS_ADMIN]
    mighty = tenancy.create_api_key("acme", every_scope)[1]
    path = f"{CLIENTS}/{client['id']}"
    calls: list[tuple[str, str, Any]] = [
        ("GET", CLIENTS, None),
        ("POST", CLIENTS, _body(name="Sneaky")),
        ("GET", path, None),
        ("PUT", f"{path}/jwks", {"jwks": jwks(ec_key("mine"))}),
        ("POST", f"{path}/disable", None),
        ("POST", f"{path}/enable", None),
    ]
    size = _log_size(api)
    for key in (acme.admin, acme.read, mighty):
        for method, target, body in calls:
            response = api.request(method, target, key=key, json=body)
            assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
            assert client["id"] not in response.text
            assert "Acme TPP" not in response.text
    # Nothing changed.
    assert api.ok("GET", CLIENTS, key=operator)["data"] == [client]
    assert _log_size(api) == size


def test_an_operator_user_steps_up_to_register_rotate_and_enable(api: Api, operator: str) -> None:
    tenancy, users = api.app.state.tenancy, api.app.state.users
    system = tenancy.system_tenant().id
    email = f"operator-{secrets.token_hex(4)}@ops.example"
    users.create_user(system, email, "operator", PASSWORD, actor="test")
    session = users.sign_in(system, email, PASSWORD, None).token
    client = api.ok("POST", CLIENTS, 201, key=operator, json=_body())
    path = f"{CLIENTS}/{client['id']}"
    # Reading and disabling need no step-up.
    assert api.ok("GET", CLIENTS, key=session)["data"] == [client]
    assert api.ok("POST", f"{path}/disable", key=session)["status"] == "disabled"
    for method, target, body in (
        ("POST", CLIENTS, _body()),
        ("PUT", f"{path}/jwks", {"jwks": jwks(ec_key("new"))}),
        ("POST", f"{path}/enable", None),
    ):
        response = api.request(method, target, key=session, json=body)
        assert (response.status_code, problem_code(response)) == (403, "step_up_required")
    assert len(api.ok("GET", CLIENTS, key=operator)["data"]) == 1
    assert api.ok("GET", path, key=operator)["status"] == "disabled"
