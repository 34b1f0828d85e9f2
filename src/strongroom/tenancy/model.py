"""Pure vocabulary of tenancy: scopes, keys, idempotency outcomes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from strongroom.core.errors import InvalidRequest


class Scope(StrEnum):
    """What a principal may do. security/rbac.py maps each role onto a set of these, and every
    route declares the scopes it accepts (tenancy.access.requires): docs/permissions.md."""

    LEDGER_READ = "ledger:read"  # ledgers, accounts, balances, transfers, events
    LEDGER_WRITE = "ledger:write"
    ADMIN = "admin"  # every scope of its tenant but those of _NOT_IMPLIED_BY_ADMIN
    CUSTOMERS_READ = "customers:read"  # customers and counterparties, personal data masked
    CUSTOMERS_WRITE = "customers:write"
    # Erase a customer's or counterparty's personal data (crypto-shredding: irreversible) and
    # set or lift the legal hold that stops it. Implied by admin, not by customers:write.
    CUSTOMERS_ERASE = "customers:erase"
    PII_READ = "pii:read"  # personal data in full (each reveal is an audit leaf)
    CARDS_READ = "cards:read"  # card tokens, masked
    CARDS_WRITE = "cards:write"  # tokenize
    VAULT_REVEAL = "vault:reveal"  # detokenize (each reveal is an audit leaf)
    # The case queue (cases/): reviews of held transfers and alerts, with their decisions'
    # detail; write decides them (approve posts the held transfer, decline voids it).
    CASES_READ = "cases:read"
    CASES_WRITE = "cases:write"
    AUDIT_READ = "audit:read"  # the tenant's audit log: checkpoints, proofs, leaves, receipts
    AUDIT_WRITE = "audit:write"  # publish a checkpoint on demand
    RISK_READ = "risk:read"  # risk decisions (scores, reasons, contributions), fraud models
    RISK_WRITE = "risk:write"  # label payments as fraud or not
    ASSETS_ADMIN = "assets:admin"  # custom assets (shared by every tenant of the deployment)
    WEBHOOKS_ADMIN = "webhooks:admin"  # webhook endpoints and their delivery attempts
    USERS_ADMIN = "users:admin"  # staff user accounts of the tenant
    API_KEYS_ADMIN = "api_keys:admin"  # the tenant's API keys
    RISK_ADMIN = "risk:admin"  # put a fraud model in shadow, promote it (a user steps up)
    # Compliance (compliance/): screening results and matches, AML alerts, KYC status and
    # tiers, compliance reports; write screens names ad hoc, dismisses reviewed matches, sets a
    # customer's verification and tier.
    COMPLIANCE_READ = "compliance:read"
    COMPLIANCE_WRITE = "compliance:write"
    OWN_READ = "own:read"  # a customer's own data only: the route checks the ownership
    OWN_WRITE = "own:write"
    # Deployment-wide: create and list tenants. Honoured only on a key of the deployment's
    # system tenant (TenancyService.system_tenant), which holds no money and no personal data.
    TENANTS_ADMIN = "tenants:admin"

    @classmethod
    def parse(cls, values: list[str], param: str = "scope") -> frozenset[Scope]:
        """`param` names the input as the caller wrote it: `scope` for the CLI's `--scope`,
        `scopes` for the API's body."""
        if not values:
            raise InvalidRequest("give at least one scope", param=param, code="invalid_scope")
        known = {s.value: s for s in cls}
        out = set()
        for value in values:
            if value not in known:
                raise InvalidRequest(
                    f"unknown scope {value!r}: use one of {', '.join(known)}",
                    param=param,
                    code="invalid_scope",
                )
            out.add(known[value])
        return frozenset(out)


# Never implied by `admin`: a key that reveals personal data or card numbers says so.
DEDICATED_SCOPES: frozenset[Scope] = frozenset({Scope.PII_READ, Scope.VAULT_REVEAL})
# Not a tenant admin's either: the deployment's tenants (the operator's), and a customer's own
# data (a route that serves only its owner has no owner to serve an admin).
_NOT_IMPLIED_BY_ADMIN: frozenset[Scope] = DEDICATED_SCOPES | {
    Scope.TENANTS_ADMIN,
    Scope.OWN_READ,
    Scope.OWN_WRITE,
}
# (held, implied): write implies read; ledger:read reads the audit log of the ledger's changes
# (as it did before audit:read existed).
_IMPLIED: tuple[tuple[Scope, Scope], ...] = (
    (Scope.LEDGER_WRITE, Scope.LEDGER_READ),
    (Scope.LEDGER_WRITE, Scope.AUDIT_READ),
    (Scope.LEDGER_READ, Scope.AUDIT_READ),
    (Scope.CUSTOMERS_WRITE, Scope.CUSTOMERS_READ),
    (Scope.CARDS_WRITE, Scope.CARDS_READ),
    (Scope.CASES_WRITE, Scope.CASES_READ),
    (Scope.OWN_WRITE, Scope.OWN_READ),
    (Scope.RISK_ADMIN, Scope.RISK_READ),
    (Scope.COMPLIANCE_WRITE, Scope.COMPLIANCE_READ),
)


def grants(held: Iterable[Scope], scope: Scope) -> bool:
    """Whether a principal holding the scopes `held` may do what `scope` allows."""
    if not isinstance(held, frozenset):
        held = frozenset(held)
    return (
        scope in held
        or (Scope.ADMIN in held and scope not in _NOT_IMPLIED_BY_ADMIN)
        or any(scope is implied and have in held for have, implied in _IMPLIED)
    )


class Principal(Protocol):
    """Whoever authenticated a request: an API key (a machine) or a signed-in user (its
    session). Routes see only this (tenancy.access.authorize, require_step_up)."""

    @property
    def id(self) -> str: ...

    @property
    def tenant_id(self) -> str: ...

    @property
    def actor(self) -> str:
        """Who asked, as rows and audit leaves record it: `api_key:<id>`, `user:<id>`."""
        ...

    @property
    def machine(self) -> bool:
        """True for an API key: it cannot step up; dedicated scopes stand in for it."""
        ...

    @property
    def stepped_up_until_us(self) -> int:
        """Until when the session's last step-up counts (0: none, or a machine)."""
        ...

    def allows(self, scope: Scope) -> bool: ...


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    tenant_id: str
    scopes: frozenset[Scope]
    hint: str  # the last characters of the secret, to tell keys apart; never the secret
    role: str | None = None  # the role (security.rbac.Role) whose scopes it was given, if any
    # Minor units one transfer of this key may move past the step-up threshold (None: none).
    transfer_ceiling: int | None = None

    @property
    def actor(self) -> str:
        """Who asked, as rows and audit leaves record it."""
        return f"api_key:{self.id}"

    @property
    def machine(self) -> bool:
        return True

    @property
    def stepped_up_until_us(self) -> int:
        return 0

    def allows(self, scope: Scope) -> bool:
        # write implies read; admin implies everything of its tenant but the reveals, which a
        # key is given by name only (they stand in for a person's step-up)
        return grants(self.scopes, scope)


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    created_at: int
    suspended_at: int | None = None  # while suspended, its keys authenticate no more


# The deployment's own tenant (the operator's keys): a name no tenant can take.
SYSTEM_TENANT_NAME = "_system"
_TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def validate_tenant_name(name: str) -> str:
    if not _TENANT_NAME.match(name):
        raise InvalidRequest(
            "a tenant name is 1 to 63 characters of a-z, 0-9, '_', '.', '-'",
            param="tenant",
            code="invalid_tenant_name",
        )
    return name


class IdempotencyState(StrEnum):
    STARTED = "started"  # this request holds the key now (a first attempt, or a retry)
    REPLAY = "replay"  # the key was used with the same request: send the stored response
    IN_FLIGHT = "in_flight"  # another attempt holds the key's lease now
    MISMATCH = "mismatch"  # the key was used with a different request


@dataclass(frozen=True, slots=True)
class IdempotencyOutcome:
    state: IdempotencyState
    status_code: int | None = None
    body: bytes | None = None  # the stored answer (REPLAY)
    # STARTED: when the key was claimed (the ids of the request hang on it), whether an earlier
    # attempt ran, and the owner token that finishing or releasing the record needs.
    claimed_at_us: int = 0
    resumed: bool = False
    owner: str = ""
    retry_after_s: int = 0  # IN_FLIGHT: when the holder's lease ends
