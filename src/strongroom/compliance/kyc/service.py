"""KYC's use cases: read and set a customer's verification status and tier, each change an
audit leaf and a `customer.kyc_updated` event in its transaction; freeze and unfreeze accounts
through the ledger (its leaves), with an `account.frozen` / `account.unfrozen` event each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.compliance.kyc import store
from strongroom.compliance.kyc.limit import KycLimit
from strongroom.compliance.kyc.model import (
    DEFAULT_TABLE,
    DEFAULT_TIER,
    Status,
    TierTable,
    parse_tiers,
)
from strongroom.core import clock
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.db.uow import UnitOfWork
from strongroom.events.hooks import EventEmitter, EventType
from strongroom.ledger.base import CustomerCheck
from strongroom.ledger.pipeline import Limit
from strongroom.ledger.service import Account, LedgerService

KYC_UPDATED: Final = "customer.kyc_updated"
KYC_EVENT_TYPES: Final = (
    EventType(KYC_UPDATED, "A customer's KYC status or tier was set: its id, status and tier."),
    EventType("account.frozen", "An account was frozen: it refuses debits and credits."),
    EventType("account.unfrozen", "An account was unfrozen."),
)


@dataclass(frozen=True, slots=True)
class KycState:
    tenant_id: str
    customer_id: str
    status: Status
    tier: str
    updated_by: str | None
    updated_at: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "customer_kyc",
            "customer_id": self.customer_id,
            "status": self.status.value,
            "tier": self.tier,
            "updated_by": self.updated_by,
            "updated_at": None if self.updated_at is None else clock.format_us(self.updated_at),
        }


def load_tiers(path: str | None) -> TierTable:
    """The tier table of STRONGROOM_KYC_TIERS (a JSON file), else the defaults in code."""
    if path is None:
        return DEFAULT_TABLE
    try:
        return parse_tiers(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"STRONGROOM_KYC_TIERS {path}: {exc}") from None


def kyc_limits(enabled: bool, tiers: TierTable) -> list[Limit]:
    """The limits the composition root installs in the ledger: the KYC caps when enabled
    (STRONGROOM_KYC_LIMITS), else none (and a transfer costs nothing more)."""
    return [KycLimit(tiers)] if enabled else []


class KycService:
    def __init__(
        self,
        engine: Engine,
        ledger: LedgerService,
        *,
        customers: CustomerCheck,
        tiers: TierTable = DEFAULT_TABLE,
        audit: AuditRecorder | None = None,
        events: EventEmitter | None = None,
        clock_: clock.MonotonicClock | None = None,
    ) -> None:
        self.engine = engine
        self.ledger = ledger
        self.tiers = tiers
        self._customers = customers
        self._audit = audit
        self._events = events
        self.clock = clock_ or clock.MonotonicClock()

    def _check_customer(self, uow: UnitOfWork, tenant_id: str, customer_id: str) -> None:
        if not self._customers(uow, tenant_id, [customer_id]):
            raise NotFound(f"no customer {customer_id}", param="customer_id")

    def get(self, tenant_id: str, customer_id: str) -> KycState:
        """A customer never set is `unverified` in the default tier."""
        with UnitOfWork(self.engine, write=False) as uow:
            self._check_customer(uow, tenant_id, customer_id)
            row = store.get_state(uow, tenant_id, customer_id)
        if row is None:
            return KycState(tenant_id, customer_id, Status.UNVERIFIED, DEFAULT_TIER, None, None)
        return KycState(tenant_id, customer_id, Status(row[2]), row[3], row[4], row[5])

    def set(
        self, tenant_id: str, customer_id: str, status: str, tier: str | None, *, actor: str
    ) -> KycState:
        """Set the status (and the tier: kept when None) of a customer of `tenant_id`; the
        tier must be one of the tenant's table (invalid_kyc_tier)."""
        try:
            new_status = Status(status)
        except ValueError:
            raise InvalidRequest(
                f"a KYC status is one of {', '.join(s.value for s in Status)}",
                param="status",
                code="invalid_kyc_status",
            ) from None
        if tier is not None and tier not in self.tiers.for_tenant(tenant_id):
            raise InvalidRequest(
                f"no such KYC tier: one of {', '.join(sorted(self.tiers.for_tenant(tenant_id)))}",
                param="tier",
                code="invalid_kyc_tier",
            )
        now = self.clock.now_us()
        with UnitOfWork(self.engine) as uow:
            self._check_customer(uow, tenant_id, customer_id)
            # Locked: a payment's check of this customer waits for this change, or goes first.
            rows = [r for r in store.lock_states(uow, [customer_id]) if r[0] == tenant_id]
            kept = rows[0][3] if rows else DEFAULT_TIER
            row = (tenant_id, customer_id, new_status.value, tier or kept, actor, now)
            store.put_state(uow, row)
            data = {"customer_id": customer_id, "status": row[2], "tier": row[3]}
            if self._audit is not None:
                self._audit.record_all(uow, tenant_id, actor, [(KYC_UPDATED, customer_id, data)])
            if self._events is not None:
                self._events.emit(
                    uow, tenant_id, [(KYC_UPDATED, {"object": "customer_kyc", **data})]
                )
            uow.commit()
        return KycState(tenant_id, customer_id, new_status, row[3], actor, now)

    # -- freezing ----------------------------------------------------------------------------

    def _emit_freeze(self, uow: UnitOfWork, tenant_id: str, account_id: str, frozen: bool) -> None:
        if self._events is not None:
            kind = "account.frozen" if frozen else "account.unfrozen"
            self._events.emit(
                uow, tenant_id, [(kind, {"object": "account", "id": account_id, "frozen": frozen})]
            )

    def freeze_account(
        self, tenant_id: str, account_id: str, *, frozen: bool = True, actor: str
    ) -> Account:
        return self.ledger.freeze_account(
            account_id, frozen=frozen, tenant_id=tenant_id, actor=actor, on_change=self._emit_freeze
        )

    def freeze_customer_accounts(
        self, tenant_id: str, customer_id: str, actor: str, *, frozen: bool = True
    ) -> list[str]:
        """Freeze every account the customer owns in the tenant, in one transaction of its
        own; the ids of those frozen now."""
        with UnitOfWork(self.engine, write=False) as uow:
            self._check_customer(uow, tenant_id, customer_id)
        return self.ledger.freeze_customer_accounts(
            tenant_id, customer_id, actor, frozen=frozen, on_change=self._emit_freeze
        )

    def freeze_customer_accounts_in(
        self, uow: UnitOfWork, tenant_id: str, customer_id: str, actor: str
    ) -> list[str]:
        """Freeze every account the customer owns in the tenant inside the caller's write
        transaction: a confirmed sanctions match (the sanctions domain's `freeze_customer`
        port), which commits with the confirmation or not at all. The same leaves and events
        as freeze_customer_accounts; the ids of those frozen now."""
        self._check_customer(uow, tenant_id, customer_id)
        return self.ledger.freeze_customer_accounts_in(
            uow, tenant_id, customer_id, actor, on_change=self._emit_freeze
        )
