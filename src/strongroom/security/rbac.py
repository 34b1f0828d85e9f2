"""Roles and the permission matrix, as data (pure).

A role is a set of scopes (tenancy.model.Scope); every /v1 route declares the scopes it accepts
(tenancy.access.requires) and lets in a principal that holds any one of them. So the matrix
(route x role -> allowed) follows from two pieces of data: ROLE_SCOPES here and each route's
declaration. docs/permissions.md is that matrix, rendered by `render_matrix` from the app's
OpenAPI document (`python -m strongroom.apidoc --permissions` writes it; a test fails when the
file differs), and tests/e2e/test_permissions.py calls every route as every role.

Least privilege, one line a role:
- admin: everything of its tenant (users:admin, api_keys:admin, customers:erase included) but
  the dedicated reveals (pii:read, vault:reveal), which a key is given by name (with the CLI:
  POST /v1/api_keys grants only what its caller holds); a user who holds one reveals only
  after a step-up (tenancy.access.require_step_up).
- operator: the deployment's tenants only (create, list); nothing of any tenant's money,
  customers or cards. Honoured only on a principal of the system tenant.
- compliance_officer: reads the ledger and the audit log, customers in full (pii:read: each
  reveal is an audit leaf; a user steps up first) and the fraud models (risk:read); works the
  case queue (cases:write) and compliance (compliance:write: screenings, dismissed matches,
  KYC verification and tiers); no ledger writes.
- fraud_analyst: works the case queue (cases:write: approve posts a held transfer, decline
  voids it), reading the ledger, customers (masked) and risk decisions to decide, and labels
  payments (risk:write); no other writes.
- support: reads the ledger, customers (masked) and cards (masked); no writes, no reveals.
- auditor: reads the ledger, the audit log, the case queue and compliance's results; no
  writes, no personal data.
- customer: their own data only (own:read, own:write): no route that serves a tenant's data
  accepts these scopes; a route that does accept them checks the row's owner itself.

API keys keep their scopes: a key made for a role (`strongroom api-keys create --role`) holds
exactly the role's scopes, and is checked like any other key. A signed-in user holds their
role's scopes (security.auth.model.UserPrincipal: `role_scopes(role)`), checked alike. The
routes of signing in are public and those of a user's own session take any user
(tenancy.access.public, session_only): the matrix shows them as such.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, Final, NamedTuple

from strongroom.tenancy.access import (
    ACCESS,
    PUBLIC,
    REQUIRED_SCOPES,
    SESSION,
    Requirement,
    describe,
    parse_required,
    satisfied,
)
from strongroom.tenancy.model import Scope, grants


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    COMPLIANCE_OFFICER = "compliance_officer"
    FRAUD_ANALYST = "fraud_analyst"
    SUPPORT = "support"
    AUDITOR = "auditor"
    CUSTOMER = "customer"


ROLE_SCOPES: Final[Mapping[Role, frozenset[Scope]]] = {
    Role.ADMIN: frozenset({Scope.ADMIN}),
    Role.OPERATOR: frozenset({Scope.TENANTS_ADMIN}),
    Role.COMPLIANCE_OFFICER: frozenset(
        {
            Scope.LEDGER_READ,
            Scope.AUDIT_READ,
            Scope.CUSTOMERS_READ,
            Scope.PII_READ,
            Scope.RISK_READ,
            Scope.CASES_WRITE,
            Scope.COMPLIANCE_WRITE,
        }
    ),
    Role.FRAUD_ANALYST: frozenset(
        {
            Scope.CASES_WRITE,
            Scope.RISK_READ,
            Scope.RISK_WRITE,
            Scope.LEDGER_READ,
            Scope.CUSTOMERS_READ,
        }
    ),
    Role.SUPPORT: frozenset({Scope.LEDGER_READ, Scope.CUSTOMERS_READ, Scope.CARDS_READ}),
    Role.AUDITOR: frozenset(
        {Scope.LEDGER_READ, Scope.AUDIT_READ, Scope.CASES_READ, Scope.COMPLIANCE_READ}
    ),
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


def allowed(role: Role, declared: Iterable[Requirement]) -> bool:
    """Whether `role` may call a route that accepts the alternatives `declared` (any one of
    them, each a set of scopes all needed)."""
    held = ROLE_SCOPES[role]
    return satisfied(declared, lambda scope: grants(held, scope))


class Route(NamedTuple):
    """An operation of the API document and who may call it."""

    method: str  # GET, POST, ...
    path: str
    scopes: tuple[Requirement, ...]  # the alternatives it accepts; () when it declares none
    access: str | None = None  # tenancy.access.PUBLIC or SESSION for a route without scopes


def routes_of(document: Mapping[str, Any]) -> list[Route]:
    """Every operation of an OpenAPI document with the scopes (`x-required-scopes`) or the
    access (`x-access`) it declares, sorted by path, then method."""
    out: list[Route] = []
    for path, item in document.get("paths", {}).items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is not None:
                scopes = parse_required(operation.get(REQUIRED_SCOPES, ()))
                out.append(Route(method.upper(), path, scopes, operation.get(ACCESS)))
    return sorted(out, key=lambda r: (r.path, HTTP_METHODS.index(r.method.lower())))


def _cells(route: Route, roles: Sequence[Role]) -> tuple[str, list[str]]:
    if route.access == PUBLIC:
        return "(public: signing in)", ["yes"] * len(roles)
    if route.access == SESSION:
        return "(a user's own session)", ["session"] * len(roles)
    accepted = describe(route.scopes) or "(none: refused)"
    return accepted, ["yes" if allowed(r, route.scopes) else "no" for r in roles]


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
        "scopes it accepts (`a and b`: both). `admin` implies every scope of its tenant but",
        "pii:read, vault:reveal, tenants:admin, own:read and own:write; a write scope implies",
        "its read; ledger:read implies audit:read.",
        "",
        "A user (a session) holds their role's scopes; an API key holds its own (a key made",
        "for a role, `strongroom api-keys create --role`, holds the role's). Sensitive routes",
        "(revealing personal data or a card, erasure, creating an API key or a user, changing",
        "a role) also need a user to have stepped up lately (`403 step_up_required`); a key",
        "passes on its scopes. The routes of signing in are public; a user's own session and",
        "factors (`/v1/auth/...`) take any user's session, whatever the role, and no API key",
        "(`403 session_required`).",
        "",
        "Lookups that would be oracles on what a reveal scope guards need that scope by name",
        "as well, checked by the route (`403 insufficient_scope`): `GET /v1/customers` with",
        "`email` or `national_id` needs pii:read (as `POST /v1/customers/search`), each lookup",
        "an audit leaf `customer.looked_up`; `GET /v1/cards` with `fingerprint` needs",
        "vault:reveal, and a card's `fingerprint` is null in the answers of a principal",
        "without it.",
        "",
        "A case carries what raised it (`decision.detail`): for a `risk_review`, the risk",
        "gate's decision on the held payment (verdict, score, reasons, model versions,",
        "features and their explanation), which cases:read shows without risk:read (the",
        "auditor role's too: reviewing a case needs the reason it was raised); its",
        "explanation, computed on the first read, is then kept with the decision. The",
        "decisions of payments that raised no case are read with risk:read only",
        "(`GET /v1/transfers/{id}/risk`). No decision holds personal data.",
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
        "The operator belongs to the deployment's system tenant, which holds no money and no",
        "personal data; `tenants:admin` is honoured on no other tenant's principal. A",
        "customer's routes check that the row is the customer's own.",
        "",
        "## Routes",
        "",
        "| route | scopes | " + " | ".join(r.value for r in roles) + " |",
        "|---|---|" + "---|" * len(roles),
    ]
    for route in routes:
        accepted, cells = _cells(route, roles)
        lines.append(f"| {route.method} {route.path} | {accepted} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _main() -> int:
    """Print the matrix of an OpenAPI document read from standard input."""
    import json

    sys.stdout.write(render_matrix(routes_of(json.load(sys.stdin))))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
