"""The roles' least privilege, as the matrix states it (security/rbac.py), and the scopes that
keys made before roles existed keep."""

from __future__ import annotations

import pytest

from strongroom.security.auth.model import UserKind, UserPrincipal
from strongroom.security.rbac import ROLE_SCOPES, Role, Route, allowed, render_matrix, routes_of
from strongroom.tenancy.access import (
    ACCESS,
    REQUIRED_SCOPES,
    SESSION,
    InsufficientScope,
    authorize,
    requires,
    requires_all,
)
from strongroom.tenancy.model import DEDICATED_SCOPES, ApiKey, Scope, grants

WRITES = {
    Scope.LEDGER_WRITE,
    Scope.CUSTOMERS_WRITE,
    Scope.CUSTOMERS_ERASE,
    Scope.CARDS_WRITE,
    Scope.AUDIT_WRITE,
    Scope.ASSETS_ADMIN,
    Scope.WEBHOOKS_ADMIN,
    Scope.USERS_ADMIN,
    Scope.API_KEYS_ADMIN,
    Scope.RISK_ADMIN,
    Scope.RISK_WRITE,
    Scope.CASES_WRITE,
    Scope.COMPLIANCE_WRITE,
}
TENANT_DATA = {
    Scope.LEDGER_READ,
    Scope.AUDIT_READ,
    Scope.CUSTOMERS_READ,
    Scope.PII_READ,
    Scope.CARDS_READ,
    Scope.VAULT_REVEAL,
    Scope.RISK_READ,
    Scope.CASES_READ,
    Scope.COMPLIANCE_READ,
}


def _can(role: Role) -> set[Scope]:
    return {s for s in Scope if grants(ROLE_SCOPES[role], s)}


def test_only_the_admin_writes_and_nobody_reveals_through_admin() -> None:
    """But the fraud analyst, who decides the review queue's cases and labels payments, and
    the compliance officer, who decides the queue's cases and compliance's own writes
    (screenings, dismissals, KYC), and nothing else."""
    for role in Role:
        if role is Role.FRAUD_ANALYST:
            assert _can(role) & WRITES == {Scope.CASES_WRITE, Scope.RISK_WRITE}
        elif role is Role.COMPLIANCE_OFFICER:
            assert _can(role) & WRITES == {Scope.CASES_WRITE, Scope.COMPLIANCE_WRITE}
        elif role is not Role.ADMIN:
            assert not (_can(role) & WRITES), role
    assert not (_can(Role.ADMIN) & DEDICATED_SCOPES)
    assert Scope.TENANTS_ADMIN not in _can(Role.ADMIN)


def test_each_roles_reach() -> None:
    assert _can(Role.OPERATOR) == {Scope.TENANTS_ADMIN}
    assert _can(Role.AUDITOR) == {
        Scope.LEDGER_READ,
        Scope.AUDIT_READ,
        Scope.CASES_READ,
        Scope.COMPLIANCE_READ,
    }
    assert _can(Role.FRAUD_ANALYST) == {
        Scope.CASES_WRITE,
        Scope.CASES_READ,
        Scope.RISK_READ,
        Scope.RISK_WRITE,
        Scope.LEDGER_READ,
        Scope.AUDIT_READ,
        Scope.CUSTOMERS_READ,
    }
    assert Scope.CASES_READ in _can(Role.COMPLIANCE_OFFICER)
    # The officer works the queue (alerts of screening and monitoring) and compliance itself,
    # but moves no money.
    assert Scope.CASES_WRITE in _can(Role.COMPLIANCE_OFFICER)
    assert {Scope.COMPLIANCE_WRITE, Scope.COMPLIANCE_READ} <= _can(Role.COMPLIANCE_OFFICER)
    assert Scope.LEDGER_WRITE not in _can(Role.COMPLIANCE_OFFICER)
    assert _can(Role.SUPPORT) == {
        Scope.LEDGER_READ,
        Scope.AUDIT_READ,
        Scope.CUSTOMERS_READ,
        Scope.CARDS_READ,
    }
    assert Scope.PII_READ in _can(Role.COMPLIANCE_OFFICER)
    assert Scope.VAULT_REVEAL not in _can(Role.COMPLIANCE_OFFICER)
    assert Scope.CARDS_READ not in _can(Role.COMPLIANCE_OFFICER)
    # A customer reaches no tenant-wide data: only routes that check the row is theirs.
    assert not (_can(Role.CUSTOMER) & TENANT_DATA)
    assert _can(Role.CUSTOMER) == {Scope.OWN_READ, Scope.OWN_WRITE}


def test_keys_made_before_roles_keep_what_they_could_do() -> None:
    admin = ApiKey("key_1", "ten_1", frozenset({Scope.ADMIN}), "abcd")
    reader = ApiKey("key_2", "ten_1", frozenset({Scope.LEDGER_READ}), "abcd")
    for scope in (Scope.LEDGER_WRITE, Scope.ASSETS_ADMIN, Scope.WEBHOOKS_ADMIN, Scope.AUDIT_WRITE):
        assert admin.allows(scope)
    assert reader.allows(Scope.AUDIT_READ)
    assert not reader.allows(Scope.LEDGER_WRITE)


def test_the_matrix_renders_each_route_for_each_role() -> None:
    document = {
        "paths": {
            "/v1/things": {
                "get": {REQUIRED_SCOPES: ["ledger:read"]},
                "post": {REQUIRED_SCOPES: ["ledger:write"]},
            },
            "/v1/tenants": {"get": {REQUIRED_SCOPES: ["tenants:admin"]}},
            "/v1/both": {"get": {REQUIRED_SCOPES: ["customers:read ledger:read"]}},
            "/v1/me": {"get": {ACCESS: SESSION}},
        }
    }
    routes = routes_of(document)
    assert routes[2] == Route("GET", "/v1/tenants", ((Scope.TENANTS_ADMIN,),))
    assert routes[0].scopes == ((Scope.CUSTOMERS_READ, Scope.LEDGER_READ),)
    assert routes[1] == Route("GET", "/v1/me", (), SESSION)
    text = render_matrix(routes)
    assert "| GET /v1/things | ledger:read | yes | no | yes | yes | yes | yes | no |" in text
    assert "| POST /v1/things | ledger:write | yes | no | no | no | no | no | no |" in text
    # Both scopes needed: the auditor reads the ledger, not customers.
    assert (
        "| GET /v1/both | customers:read and ledger:read | yes | no | yes | yes | yes | no | no |"
        in text
    )
    assert "| GET /v1/me | (a user's own session) |" in text
    assert allowed(Role.OPERATOR, ((Scope.TENANTS_ADMIN,),))
    assert not allowed(Role.ADMIN, ((Scope.TENANTS_ADMIN,),))


def test_a_route_is_refused_unless_it_declares_a_scope_its_caller_holds() -> None:
    reader = ApiKey("key_2", "ten_1", frozenset({Scope.LEDGER_READ}), "abcd")

    class Route:
        def __init__(self, extra: dict[str, object] | None) -> None:
            self.openapi_extra = extra

    authorize({"route": Route(requires(Scope.LEDGER_WRITE, Scope.AUDIT_READ))}, reader)
    for extra in (
        None,
        {},
        requires(Scope.LEDGER_WRITE),
        requires(Scope.TENANTS_ADMIN),
        requires_all(Scope.LEDGER_READ, Scope.CUSTOMERS_READ),
        {ACCESS: SESSION},  # a user's own route: no scope lets anyone in through authorize
    ):
        with pytest.raises(InsufficientScope):
            authorize({"route": Route(extra)}, reader)
    with pytest.raises(InsufficientScope):
        authorize({}, reader)  # no route matched: nothing declared
    both = ApiKey("key_3", "ten_1", frozenset({Scope.LEDGER_READ, Scope.CUSTOMERS_READ}), "ab")
    authorize({"route": Route(requires_all(Scope.LEDGER_READ, Scope.CUSTOMERS_READ))}, both)


def test_a_user_holds_the_scopes_of_their_role_from_the_one_matrix() -> None:
    for role in Role:
        user = UserPrincipal("usr_1", "ten_1", role, UserKind.STAFF, "ses_1", 0)
        assert user.scopes == ROLE_SCOPES[role]
        assert {s for s in Scope if user.allows(s)} == _can(role)
    admin = UserPrincipal("usr_1", "ten_1", Role.ADMIN, UserKind.STAFF, "ses_1", 0)
    assert not admin.allows(Scope.PII_READ)  # a reveal is granted by name, never by admin
    assert admin.allows(Scope.CUSTOMERS_ERASE)
