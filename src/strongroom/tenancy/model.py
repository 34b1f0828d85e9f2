"""Pure vocabulary of tenancy: scopes, keys, idempotency outcomes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from strongroom.core.errors import InvalidRequest


class Scope(StrEnum):
    LEDGER_READ = "ledger:read"
    LEDGER_WRITE = "ledger:write"
    ADMIN = "admin"
    CUSTOMERS_READ = "customers:read"  # customers and counterparties, personal data masked
    CUSTOMERS_WRITE = "customers:write"
    PII_READ = "pii:read"  # personal data in full (each reveal is an audit leaf)
    CARDS_READ = "cards:read"  # card tokens, masked
    CARDS_WRITE = "cards:write"  # tokenize
    VAULT_REVEAL = "vault:reveal"  # detokenize (each reveal is an audit leaf)

    @classmethod
    def parse(cls, values: list[str]) -> frozenset[Scope]:
        if not values:
            raise InvalidRequest("give at least one scope", param="scope", code="invalid_scope")
        known = {s.value: s for s in cls}
        out = set()
        for value in values:
            if value not in known:
                raise InvalidRequest(
                    f"unknown scope {value!r}: use one of {', '.join(known)}",
                    param="scope",
                    code="invalid_scope",
                )
            out.add(known[value])
        return frozenset(out)


# Never implied by `admin`: a key that reveals personal data or card numbers says so.
DEDICATED_SCOPES: frozenset[Scope] = frozenset({Scope.PII_READ, Scope.VAULT_REVEAL})
_IMPLIED_READS: tuple[tuple[Scope, Scope], ...] = (
    (Scope.LEDGER_WRITE, Scope.LEDGER_READ),
    (Scope.CUSTOMERS_WRITE, Scope.CUSTOMERS_READ),
    (Scope.CARDS_WRITE, Scope.CARDS_READ),
)


def scopes_allow(scopes: Iterable[Scope], scope: Scope) -> bool:
    """Whether holding `scopes` allows `scope`: write implies read; admin implies everything
    but the reveals, which are given by name only (for a key they stand in for a person's
    step-up)."""
    held = scopes if isinstance(scopes, frozenset) else frozenset(scopes)
    return (
        scope in held
        or (Scope.ADMIN in held and scope not in DEDICATED_SCOPES)
        or any(scope is read and write in held for write, read in _IMPLIED_READS)
    )


class Principal(Protocol):
    """Whoever authenticated a request: an API key (a machine) or a signed-in user (its
    session). Routes see only this (`ctx.require(scope)`, tenancy.access.require_step_up)."""

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
        return scopes_allow(self.scopes, scope)


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    created_at: int


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
