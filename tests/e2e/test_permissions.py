"""The permission matrix, walked: every /v1 route of the app `serve` builds, called as every
role, twice: with an API key given exactly the role's scopes (security/rbac.py), and with a
signed-in user of that role (a session). Each answers 403 insufficient_scope exactly where the
matrix says no. The routes of a user's own session answer any user and refuse every key (403
session_required); the sign-in routes are public. Routes are enumerated from the app, so a
route added later is walked too, and one that declares neither scopes nor its access fails
here. Also: the matrix in docs/permissions.md is the app's; another tenant's ids answer 404,
never 200; the operator manages tenants and reads nothing of theirs."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom import apidoc
from strongroom.core import clock
from strongroom.core.errors import InvalidRequest
from strongroom.security.auth.api import PUBLIC_PATHS
from strongroom.security.rbac import ROLE_SCOPES, Role, Route, allowed, role_scopes, routes_of
from strongroom.tenancy.access import PUBLIC, SESSION
from strongroom.tenancy.model import SYSTEM_TENANT_NAME, Scope
from tests.e2e.http_support import Api, Tenant, app_routes, problem_code, running, seed_tenant

DOCS_PERMISSIONS = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
# What a request for `{name}` in a path gets, when the tenant has no such object.
MISSING_ID = "x_missing"
PASSWORD = "a long enough passphrase"
FAST = {"password_memory_kib": 19 * 1024, "password_time_cost": 2, "password_parallelism": 1}
# Signing out ends the session the walk goes on with: walked last, for each role.
SIGN_OUT = ("DELETE", "/v1/auth/sessions/current")
# What a principal that may call a route can still be told: a user who has not stepped up
# lately (a sensitive route), a key on a user's own route.
STEP_UP = "step_up_required"
SESSION_REQUIRED = "session_required"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    url = f"sqlite:///{tmp_path_factory.mktemp('permissions') / 'strongroom.db'}"
    with running(url, dispatcher=False, **FAST) as api:
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


def _session(api: Api, role: Role, tenant: Tenant) -> str:
    """A new session of a user of `role`: tenant alpha's, but the operator's (the system
    tenant's)."""
    tenancy, users = api.app.state.tenancy, api.app.state.users
    tenant_id = (
        tenancy.system_tenant().id
        if role is Role.OPERATOR
        else tenancy.ensure_tenant(tenant.name).id
    )
    email = f"{role.value}-{secrets.token_hex(4)}@{tenant.name}.example"
    users.create_user(tenant_id, email, role.value, PASSWORD, actor="test")
    token: str = users.sign_in(tenant_id, email, PASSWORD, None).token
    return token


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
    customer = api.ok("POST", "/v1/customers", 201, key=tenant.admin, json={"name": tenant.marker})
    counterparty = api.ok(
        "POST",
        "/v1/counterparties",
        201,
        key=tenant.admin,
        json={
            "name": tenant.marker,
            "account_identifier": "DE89370400440532013000",
            "country": "DE",
        },
    )
    card = api.ok(
        "POST",
        "/v1/cards",
        201,
        key=tenant.admin,
        json={"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "holder_name": "A"},
    )
    tenant_id = api.app.state.tenancy.ensure_tenant(tenant.name).id
    user = api.app.state.users.create_user(
        tenant_id, f"walked-{len(events)}@{tenant.name}.example", "auditor", None, actor="test"
    )
    return {
        "ledger_id": tenant.ledger,
        "account_id": tenant.alice,
        "transfer_id": tenant.posted,
        "endpoint_id": endpoint["id"],
        "event_id": events[0]["id"],
        "customer_id": customer["id"],
        "counterparty_id": counterparty["id"],
        "card_id": card["id"],
        "user_id": user.id,
        # Not the tenant's own: the walk suspends the tenant it names.
        "tenant_id": api.app.state.tenancy.ensure_tenant(f"{tenant.name}-walked").id,
        "tree_size": "1",
    }


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), MISSING_ID), path)


# The query or body a route needs before it looks at the object its path names.
QUERIES = {"/v1/accounts/{account_id}/statement": {"from": "2020-01-01T00:00:00Z", "to": "now"}}
BODIES: dict[str, dict[str, Any]] = {
    "/v1/webhook_endpoints/{endpoint_id}": {"enabled": False},
    "/v1/users/{user_id}": {"role": "auditor"},
    "/v1/cases/{case_id}/assign": {"assignee": None},
    "/v1/cases/{case_id}/notes": {"body": "a note"},
    "/v1/customers/{customer_id}/kyc": {"status": "verified"},
    "/v1/accounts/{account_id}/aml": {"exempt": False},
}


def _call(api: Api, method: str, path: str, key: str) -> Any:
    """A syntactically valid, minimal request: `{}` as the body of a write."""
    json: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    return api.request(method, path, key=key, json=json)


def test_every_v1_route_declares_its_scopes(api: Api) -> None:
    """Every /v1 route of the app is in the document with the scopes it accepts, or its
    access: public (signing in) or a user's own session."""
    declared = {(r.method, r.path): r for r in routes_of(apidoc.openapi_document(api.app))}
    for method, path in app_routes(api.app):
        if path.startswith("/v1/"):
            route = declared.get((method, path))
            assert route is not None, f"{method} {path} is not in the document"
            assert bool(route.scopes) != (route.access is not None), (
                f"{method} {path} declares no scope (or both scopes and an access)"
            )
    public = {r.path for r in declared.values() if r.access == PUBLIC}
    assert public == set(PUBLIC_PATHS), "the middleware lets through the public routes only"


def _walk(
    api: Api, routes: list[Route], ids: dict[str, str], role: Role, secret: str, *, user: bool
) -> list[str]:
    """Calls every route as `secret` (a key or a session of `role`); what went wrong."""
    wrong = []
    for route in routes:
        response = _call(api, route.method, _fill(route.path, ids), secret)
        status, code = response.status_code, None
        if status == 403:
            code = problem_code(response)
        where = f"{'user' if user else 'key'} {role.value} {route.method} {route.path}: {status}"
        assert status < 500, (where, response.text)
        assert status != 401 or route.access == PUBLIC, (where, response.text)
        if route.access == PUBLIC:
            ok = status != 403
        elif route.access == SESSION:
            ok = code is None if user else code == SESSION_REQUIRED
        else:
            may = allowed(role, route.scopes)
            # A user who may call a sensitive route is told to step up first; a key never is.
            ok = (code == "insufficient_scope") != may and (code != STEP_UP or (user and may))
            assert code in (None, "insufficient_scope", STEP_UP), (where, response.text)
        if not ok:
            wrong.append(f"{where} {code}")
    return wrong


def test_every_route_as_every_role_is_refused_exactly_where_the_matrix_says(
    api: Api, tenants: tuple[Tenant, Tenant], role_keys: dict[Role, str]
) -> None:
    ids = _ids(api, tenants[0])
    routes = routes_of(apidoc.openapi_document(api.app))
    assert len(routes) >= 70
    first = [r for r in routes if (r.method, r.path) != SIGN_OUT]
    last = [r for r in routes if (r.method, r.path) == SIGN_OUT]
    wrong = []
    for role in Role:
        wrong += _walk(api, first + last, ids, role, role_keys[role], user=False)
        session = _session(api, role, tenants[0])
        wrong += _walk(api, first + last, ids, role, session, user=True)
        # Signed out last: the session is gone.
        assert api.get("/v1/auth/sessions/current", key=session).status_code == 401
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
    for method, path, _, _ in routes_of(apidoc.openapi_document(api.app)):
        if "{" not in path or path.startswith("/v1/tenants") or "tree_size" in path:
            continue
        for key in (tenants[0].admin, role_keys[Role.SUPPORT]):
            params = dict(QUERIES.get(path, {}))
            if params.get("to") == "now":
                params["to"] = clock.format_us(clock.now_us())
            json = BODIES.get(path, {}) if method in ("POST", "PATCH", "PUT") else None
            response = api.request(method, _fill(path, theirs), key=key, params=params, json=json)
            assert response.status_code in (403, 404), (method, path, response.text)
            assert tenants[1].marker not in response.text
        walked.add(path.split("/")[2])
    assert walked >= {
        "accounts",
        "ledgers",
        "transfers",
        "events",
        "webhook_endpoints",
        "customers",
        "counterparties",
        "cards",
        "users",
    }


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
    # Its users' sessions too, and its users sign in no more.
    gamma_key = api.app.state.tenancy.create_api_key("gamma", ["ledger:read"])[1]
    api.app.state.users.create_user(
        created["id"], "eve@gamma.example", "auditor", PASSWORD, actor="test"
    )
    sign_in = {"tenant": "gamma", "email": "eve@gamma.example", "password": PASSWORD}
    gamma_user = api.ok("POST", "/v1/auth/sessions", 201, json=sign_in)["token"]
    for secret in (gamma_key, gamma_user):
        assert api.get("/v1/ledgers", key=secret).status_code == 200
    suspended = api.ok("POST", f"/v1/tenants/{created['id']}/suspend", key=operator)
    assert suspended["suspended_at"] is not None
    for secret in (gamma_key, gamma_user):
        assert api.get("/v1/ledgers", key=secret).status_code == 401
    refused = api.post("/v1/auth/sessions", json=sign_in)
    assert (refused.status_code, problem_code(refused)) == (401, "invalid_credentials")
    resumed = api.ok("POST", f"/v1/tenants/{created['id']}/resume", key=operator)
    assert resumed["suspended_at"] is None
    for secret in (gamma_key, gamma_user):
        assert api.get("/v1/ledgers", key=secret).status_code == 200
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


def test_a_key_is_given_only_scopes_its_creator_holds(
    api: Api, tenants: tuple[Tenant, Tenant]
) -> None:
    """POST /v1/api_keys cannot widen what its caller may do: an admin mints no key that
    reveals personal data or cards, nor an operator's."""
    admin = tenants[0].admin
    for scope in ("pii:read", "vault:reveal", "tenants:admin"):
        response = api.post("/v1/api_keys", key=admin, json={"scopes": ["ledger:read", scope]})
        assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
        assert scope in response.json()["detail"]
    made = api.ok("POST", "/v1/api_keys", 201, key=admin, json={"scopes": ["customers:erase"]})
    assert made["scopes"] == ["customers:erase"]


def test_a_users_reveal_waits_for_a_step_up_and_a_keys_does_not(
    api: Api, tenants: tuple[Tenant, Tenant], role_keys: dict[Role, str]
) -> None:
    """A compliance officer may reveal personal data: as a key at once, as a user only after
    stepping up (tests/e2e/test_http_auth.py steps up)."""
    alpha = tenants[0]
    customer = api.ok("POST", "/v1/customers", 201, key=alpha.admin, json={"name": "Ada"})
    path = f"/v1/customers/{customer['id']}/personal-data"
    assert api.ok("GET", path, key=role_keys[Role.COMPLIANCE_OFFICER])["name"] == "Ada"
    officer = _session(api, Role.COMPLIANCE_OFFICER, alpha)
    response = api.get(path, key=officer)
    assert (response.status_code, problem_code(response)) == (403, STEP_UP)
    assert "Ada" not in response.text
