"""The permission matrix, walked: every /v1 route of the app `serve` builds, called as every
role (an API key given exactly the role's scopes, security/rbac.py), answers 403
insufficient_scope exactly where the matrix says no. Routes are enumerated from the app, so a
route added later is walked too, and one that declares no scope fails here. Also: the matrix
in docs/permissions.md is the app's; another tenant's ids answer 404, never 200; the operator
manages tenants and reads nothing of theirs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom import apidoc
from strongroom.core import clock
from strongroom.core.errors import InvalidRequest
from strongroom.security.rbac import ROLE_SCOPES, Role, allowed, role_scopes, routes_of
from strongroom.tenancy.model import SYSTEM_TENANT_NAME, Scope
from tests.e2e.http_support import Api, Tenant, app_routes, problem_code, running, seed_tenant

DOCS_PERMISSIONS = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
# What a request for `{name}` in a path gets, when the tenant has no such object.
MISSING_ID = "x_missing"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    url = f"sqlite:///{tmp_path_factory.mktemp('permissions') / 'strongroom.db'}"
    with running(url, dispatcher=False) as api:
        yield api


@pytest.fixture(scope="module")
def tenants(api: Api) -> tuple[Tenant, Tenant]:
    return seed_tenant(api, "alpha"), seed_tenant(api, "beta")


@pytest.fixture(scope="module")
def role_keys(api: Api, tenants: tuple[Tenant, Tenant]) -> dict[Role, str]:
    """A secret per role: tenant alpha's, but the operator's (the system tenant's)."""
    tenancy = api.app.state.tenancy
    keys = {}
    for role in Role:
        tenant = None if role is Role.OPERATOR else tenants[0].name
        scopes = sorted(s.value for s in role_scopes(role))
        keys[role] = tenancy.create_api_key(tenant, scopes, role=role.value)[1]
    return keys


def _ids(api: Api, tenant: Tenant) -> dict[str, str]:
    """An object of each kind the routes' paths name, owned by `tenant`."""
    endpoint = api.ok(
        "POST",
        "/v1/webhook_endpoints",
        201,
        key=tenant.admin,
        json={"url": f"https://hooks.example.com/{tenant.name}"},
    )
    events = api.ok("GET", "/v1/events", key=tenant.read)["data"]
    return {
        "ledger_id": tenant.ledger,
        "account_id": tenant.alice,
        "transfer_id": tenant.posted,
        "endpoint_id": endpoint["id"],
        "event_id": events[0]["id"],
        # Not the tenant's own: the walk suspends the tenant it names.
        "tenant_id": api.app.state.tenancy.ensure_tenant(f"{tenant.name}-walked").id,
        "tree_size": "1",
    }


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), MISSING_ID), path)


# The query or body a route needs before it looks at the object its path names.
QUERIES = {"/v1/accounts/{account_id}/statement": {"from": "2020-01-01T00:00:00Z", "to": "now"}}
BODIES: dict[str, dict[str, Any]] = {"/v1/webhook_endpoints/{endpoint_id}": {"enabled": False}}


def _call(api: Api, method: str, path: str, key: str) -> Any:
    """A syntactically valid, minimal request: `{}` as the body of a write."""
    json: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    return api.request(method, path, key=key, json=json)


def test_every_v1_route_declares_its_scopes(api: Api) -> None:
    """Every /v1 route of the app is in the document with the scopes it accepts."""
    declared = {(m, p): s for m, p, s in routes_of(apidoc.openapi_document(api.app))}
    for method, path in app_routes(api.app):
        if path.startswith("/v1/"):
            assert declared.get((method, path)), f"{method} {path} declares no scope"


def test_every_route_as_every_role_is_refused_exactly_where_the_matrix_says(
    api: Api, tenants: tuple[Tenant, Tenant], role_keys: dict[Role, str]
) -> None:
    ids = _ids(api, tenants[0])
    routes = routes_of(apidoc.openapi_document(api.app))
    assert len(routes) >= 36
    wrong = []
    for method, path, scopes in routes:
        for role in Role:
            response = _call(api, method, _fill(path, ids), role_keys[role])
            refused = response.status_code == 403
            if refused:
                assert problem_code(response) == "insufficient_scope", response.text
            if refused == allowed(role, scopes):
                wrong.append(f"{role.value} {method} {path}: {response.status_code}")
            assert response.status_code < 500, (role, method, path, response.text)
            assert response.status_code != 401, (role, method, path)
    assert not wrong, "\n".join(wrong)


def test_the_committed_matrix_is_the_apps() -> None:
    document = apidoc.build_document()
    committed = DOCS_PERMISSIONS.read_text(encoding="utf-8") if DOCS_PERMISSIONS.exists() else ""
    assert committed == apidoc.permissions(document), (
        f"docs/permissions.md differs from the app's matrix: run {apidoc.PERMISSIONS_COMMAND}"
    )


def test_another_tenants_ids_answer_404_never_200(
    api: Api, tenants: tuple[Tenant, Tenant], role_keys: dict[Role, str]
) -> None:
    """Every route that names an object in its path, called by tenant alpha's admin and
    support with tenant beta's ids: not found, as an object that does not exist."""
    theirs = _ids(api, tenants[1])
    walked = set()
    for method, path, _ in routes_of(apidoc.openapi_document(api.app)):
        if "{" not in path or path.startswith("/v1/tenants") or "tree_size" in path:
            continue
        for key in (tenants[0].admin, role_keys[Role.SUPPORT]):
            params = dict(QUERIES.get(path, {}))
            if params.get("to") == "now":
                params["to"] = clock.format_us(clock.now_us())
            json = BODIES.get(path, {}) if method == "POST" else None
            response = api.request(method, _fill(path, theirs), key=key, params=params, json=json)
            assert response.status_code in (403, 404), (method, path, response.text)
            assert tenants[1].marker not in response.text
        walked.add(path.split("/")[2])
    assert walked >= {"accounts", "ledgers", "transfers", "events", "webhook_endpoints"}


def test_the_operator_manages_tenants_and_reads_nothing_of_theirs(
    api: Api, tenants: tuple[Tenant, Tenant], role_keys: dict[Role, str]
) -> None:
    operator = role_keys[Role.OPERATOR]
    created = api.ok("POST", "/v1/tenants", 201, key=operator, json={"name": "gamma"})
    assert created["object"] == "tenant"
    assert created["name"] == "gamma"
    again = api.request("POST", "/v1/tenants", key=operator, json={"name": "gamma"})
    assert (again.status_code, problem_code(again)) == (409, "tenant_exists")
    listed = api.ok("GET", "/v1/tenants", key=operator, params={"limit": 100})["data"]
    names = {t["name"] for t in listed}
    assert {"alpha", "beta", "gamma"} <= names
    assert SYSTEM_TENANT_NAME not in names
    got = api.ok("GET", f"/v1/tenants/{created['id']}", key=operator)
    assert got == created
    # Suspended, a tenant's keys authenticate no more; resumed, they do again.
    gamma_key = api.app.state.tenancy.create_api_key("gamma", ["ledger:read"])[1]
    assert api.get("/v1/ledgers", key=gamma_key).status_code == 200
    suspended = api.ok("POST", f"/v1/tenants/{created['id']}/suspend", key=operator)
    assert suspended["suspended_at"] is not None
    assert api.get("/v1/ledgers", key=gamma_key).status_code == 401
    resumed = api.ok("POST", f"/v1/tenants/{created['id']}/resume", key=operator)
    assert resumed["suspended_at"] is None
    assert api.get("/v1/ledgers", key=gamma_key).status_code == 200
    system = api.app.state.tenancy.system_tenant().id
    response = api.post(f"/v1/tenants/{system}/suspend", key=operator)
    assert response.status_code == 404  # the operator cannot lock itself out
    # Nothing of any tenant's money: each of beta's objects is refused, not merely not found.
    beta = tenants[1]
    for path in (
        "/v1/ledgers",
        f"/v1/ledgers/{beta.ledger}",
        f"/v1/accounts/{beta.alice}",
        f"/v1/transfers/{beta.posted}",
        "/v1/audit/leaves",
        "/v1/events",
    ):
        response = api.get(path, key=operator)
        assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
        assert beta.marker not in response.text
    # A tenant's admin cannot manage tenants.
    for key in (beta.admin, tenants[0].admin):
        response = api.get("/v1/tenants", key=key)
        assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")


def test_tenants_admin_is_the_system_tenants_alone(api: Api) -> None:
    tenancy = api.app.state.tenancy
    with pytest.raises(InvalidRequest):
        tenancy.create_api_key("alpha", [Scope.TENANTS_ADMIN.value])
    with pytest.raises(InvalidRequest):
        tenancy.create_api_key(None, [Scope.TENANTS_ADMIN.value, Scope.LEDGER_READ.value])
    key, _ = tenancy.create_api_key(None, [Scope.TENANTS_ADMIN.value])
    assert key.tenant_id == tenancy.system_tenant().id


def test_a_role_key_holds_exactly_its_roles_scopes(
    api: Api, role_keys: dict[Role, str], tenants: tuple[Tenant, Tenant]
) -> None:
    tenancy = api.app.state.tenancy
    for role, secret in role_keys.items():
        key = tenancy.authenticate(secret)
        assert key is not None
        assert (key.scopes, key.role) == (ROLE_SCOPES[role], role.value)
