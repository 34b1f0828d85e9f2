"""How the composition root (runtime.py) and the CLI build sanctions screening: the service
over the configured threshold, the keyed hash, the case queue (alerts) and the customers'
and counterparties' names (re-screening), installed as the customers' screening point."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.cases.service import CaseService
from strongroom.compliance.sanctions.gate import OnUnscreened, SanctionsGate
from strongroom.compliance.sanctions.model import EntryKind
from strongroom.compliance.sanctions.service import (
    FreezeCustomer,
    Hasher,
    SanctionsService,
)
from strongroom.core.errors import NotFound
from strongroom.customers.counterparties import CounterpartyService
from strongroom.customers.service import CustomerService
from strongroom.events.hooks import EventEmitter
from strongroom.risk.service import RiskService
from strongroom.settings import Settings


def build_sanctions(
    settings: Settings,
    engine: Engine,
    hasher: Hasher,
    *,
    customers: CustomerService | None = None,
    counterparties: CounterpartyService | None = None,
    cases: CaseService | None = None,
    audit: AuditRecorder | None = None,
    events: EventEmitter | None = None,
    freeze_customer: FreezeCustomer | None = None,
) -> SanctionsService:
    """The service, installed as `customers`' and `counterparties`' screening point.
    `freeze_customer` (KYC's account freezing) freezes a customer's accounts in the
    transaction that confirms a match of theirs."""

    def names(tenant_id: str, subject: str) -> tuple[str, EntryKind | None] | None:
        kind, _, subject_id = subject.partition(":")
        try:
            if kind == "customer" and customers is not None:
                customer = customers.get(tenant_id, subject_id)
                if customer.personal is None or customer.personal.name is None:
                    return None  # erased
                entry_kind = (
                    EntryKind.PERSON if customer.kind.value == "person" else EntryKind.ORGANIZATION
                )
                return customer.personal.name, entry_kind
            if kind == "counterparty" and counterparties is not None:
                counterparty = counterparties.get(tenant_id, subject_id)
                if counterparty.personal is None:
                    return None
                return counterparty.personal.name, None
        except NotFound:
            return None
        return None

    service = SanctionsService(
        engine,
        threshold=settings.screening_threshold,
        hasher=hasher,
        open_alerts=cases.open_alerts if cases is not None else None,
        names=names,
        freeze_customer=freeze_customer,
        audit=audit,
        events=events,
    )
    if customers is not None:
        customers.screen_name = service.screen_name
        customers.forget_screening = service.forget_subject
    if counterparties is not None:
        counterparties.screen_name = service.screen_name
        counterparties.forget_screening = service.forget_subject
    return service


def sanctions_gate(
    settings: Settings, engine: Engine, *, on_unscreened: OnUnscreened | None = None
) -> SanctionsGate:
    """The payee gate (STRONGROOM_SCREENING): payers' tenants through the risk domain's
    account lookup, payees' statuses from the stored screenings. `on_unscreened(outcome,
    count)`: told of payments it could not screen (a metric)."""
    accounts = RiskService(engine).payment_accounts
    service = SanctionsService(engine, threshold=settings.screening_threshold)

    def tenants(account_ids: Sequence[str]) -> dict[str, str]:
        return {a: tenant for a, (tenant, _) in accounts(account_ids).items()}

    return SanctionsGate(
        tenants,
        service.statuses,
        screen_name=service.is_hit,
        fail=settings.screening_fail,
        budget_ms=settings.screening_budget_ms,
        on_unscreened=on_unscreened,
    )
