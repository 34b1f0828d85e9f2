"""Roles and the permission matrix, as data (pure).

A role is a set of scopes (tenancy.model.Scope); every /v1 route declares the scopes it accepts
(tenancy.access.requires) and lets in a principal that holds any one of them. So the matrix
(route x role -> allowed) follows from two pieces of data: ROLE_SCOPES here and each route's
declaration. docs/permissions.md is that matrix, rendered by `render_matrix` from the app's
OpenAPI document (`python -m strongroom.apidoc --permissions` writes it; a test fails when the
file differs), and tests/e2e/test_permissions.py calls every route as every role.

Least privilege, one line a role:
- admin: everything of its tenant but the dedicated reveals (pii:read, vault:reveal), which a
  principal is given by name, and a user only after a step-up.
- operator: the deployment's tenants only (create, list); nothing of any tenant's money,
  customers or cards. Honoured only on a principal of the system tenant.
- compliance_officer: reads the ledger and the audit log, customers in full (pii:read: each
  reveal is an audit leaf; a user steps up first); no writes.
- support: reads the ledger, customers (masked) and cards (masked); no writes, no reveals.
- auditor: reads the ledger and the audit log; no writes, no personal data.
- customer: their own data only (own:read, own:write): no route that serves a tenant's data
  accepts these scopes; a route that does accept them checks the row's owner itself.

API keys keep their scopes: a key made for a role (`strongroom api-keys create --role`) holds
exactly the role's scopes, and is checked like any other key.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, Final

from strongroom.tenancy.access import REQUIRED_SCOPES
from strongroom.tenancy.model import Scope, grants


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    COMPLIANCE_OFFICER = "compliance_officer"
    SUPPORT = "support"
    AUDITOR = "auditor"
    CUSTOMER = "customer"


ROLE_SCOPES: Final[Mapping[Role, frozenset[Scope]]] = {
    Role.ADMIN: frozenset({Scope.ADMIN}),
    Role.OPERATOR: frozenset({Scope.TENANTS_ADMIN}),
    Role.COMPLIANCE_OFFICER: frozenset(
        {Scope.LEDGER_READ, Scope.AUDIT_READ, Scope.CUSTOMERS_READ, Scope.PII_READ}
    ),
    Role.SUPPORT: frozenset({Scope.LEDGER_READ, Scope.CUSTOMERS_READ, Scope.CARDS_READ}),
    Role.AUDITOR: frozenset({Scope.LEDGER_READ, Scope.AUDIT_READ}),
    Role.CUSTOMER: frozenset({Scope.OWN_READ, Scope.OWN_WRITE}),
}
assert set(ROLE_SCOPES) == set(Role), "every role has its scopes"
# The operator's scope is the only one a system-tenant principal holds, and nobody else's.
OPERATOR_SCOPES: Final = ROLE_SCOPES[Role.OPERATOR]
assert all(
    not (scopes & OPERATOR_SCOPES) for role, scopes in ROLE_SCOPES.items() if role != Role.OPERATOR
)

HTTP_METHODS: Final = ("get", "put", "post", "delete", "patch")


def role_scopes(role: str | Role) -> frozenset[Scope]:
    """The scopes of a role named `role` (ValueError: no such role)."""
    return ROLE_SCOPES[Role(role)]


def allowed(role: Role, declared: Iterable[Scope]) -> bool:
    """Whether `role` may call a route that accepts any one of the scopes `declared`."""
    held = ROLE_SCOPES[role]
    return any(grants(held, scope) for scope in declared)


Route = tuple[str, str, tuple[Scope, ...]]  # (METHOD, path, the scopes it accepts)


def routes_of(document: Mapping[str, Any]) -> list[Route]:
    """Every operation of an OpenAPI document with the scopes it declares (`x-required-scopes`;
    () when it declares none), sorted by path, then method."""
    out: list[Route] = []
    for path, item in document.get("paths", {}).items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is not None:
                scopes = tuple(Scope(v) for v in operation.get(REQUIRED_SCOPES, ()))
                out.append((method.upper(), path, scopes))
    return sorted(out, key=lambda r: (r[1], HTTP_METHODS.index(r[0].lower())))


def render_matrix(routes: Sequence[Route]) -> str:
    """docs/permissions.md: the roles' scopes, then one table, route x role -> allowed."""
    roles = list(Role)
    lines = [
        "# Permissions",
        "",
        "Generated from `src/strongroom/security/rbac.py` and the scopes each route declares",
        "(`x-required-scopes` in docs/openapi.json): regenerate with",
        "`.venv/bin/python -m strongroom.apidoc --permissions`; a test fails when it drifts.",
        "A route lets in a principal (API key, staff user, customer) holding any one of the",
        "scopes it accepts. `admin` implies every scope of its tenant but pii:read,",
        "vault:reveal, tenants:admin, own:read and own:write; a write scope implies its read;",
        "ledger:read implies audit:read.",
        "",
        "## Roles",
        "",
        "| role | scopes |",
        "|---|---|",
    ]
    for role in roles:
        lines.append(f"| {role.value} | {', '.join(sorted(ROLE_SCOPES[role]))} |")
    lines += [
        "",
        "The operator's key belongs to the deployment's system tenant, which holds no money",
        "and no personal data; `tenants:admin` is honoured on no other tenant's key. A",
        "customer's routes check that the row is the customer's own.",
        "",
        "## Routes",
        "",
        "| route | scopes | " + " | ".join(r.value for r in roles) + " |",
        "|---|---|" + "---|" * len(roles),
    ]
    for method, path, scopes in routes:
        cells = ["yes" if allowed(r, scopes) else "no" for r in roles]
        accepted = " or ".join(s.value for s in scopes) or "(none: refused)"
        lines.append(f"| {method} {path} | {accepted} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _main() -> int:
    """Print the matrix of an OpenAPI document read from standard input."""
    import json

    sys.stdout.write(render_matrix(routes_of(json.load(sys.stdin))))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
