"""Roles of the people who sign in, and the scopes each role grants: the one table to refine
(the RBAC matrix). A role is per tenant, but `operator`, which manages tenants, is
deployment-wide."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from strongroom.tenancy.model import Scope


class Role(StrEnum):
    ADMIN = "admin"  # everything in its tenant; reveals only after a step-up
    OPERATOR = "operator"  # the deployment's operator: manages tenants
    COMPLIANCE_OFFICER = "compliance_officer"
    SUPPORT = "support"
    AUDITOR = "auditor"
    CUSTOMER = "customer"  # a customer of the tenant: their own accounts only (later waves)


# What each role may do, as API-key scopes (tenancy.model.scopes_allow applies: admin implies
# all but the dedicated reveals, write implies read). A sensitive action also needs a recent
# step-up (tenancy.access.require_step_up).
ROLE_SCOPES: Final[dict[Role, frozenset[Scope]]] = {
    Role.ADMIN: frozenset({Scope.ADMIN, Scope.PII_READ, Scope.VAULT_REVEAL}),
    Role.OPERATOR: frozenset({Scope.ADMIN}),
    Role.COMPLIANCE_OFFICER: frozenset({Scope.LEDGER_READ, Scope.CUSTOMERS_READ, Scope.PII_READ}),
    Role.SUPPORT: frozenset({Scope.LEDGER_READ, Scope.CUSTOMERS_READ, Scope.CARDS_READ}),
    Role.AUDITOR: frozenset({Scope.LEDGER_READ}),
    Role.CUSTOMER: frozenset(),
}
assert set(ROLE_SCOPES) == set(Role), "every role has its scopes"
