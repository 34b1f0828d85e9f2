"""How the composition root (runtime.py) and the CLI build sanctions screening: the service
over the configured threshold, the keyed hash, the case queue (alerts) and the customers'
and counterparties' names (re-screening), installed as the customers' screening point."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.cases.service import CaseService
from strongroom.compliance.sanctions.gate import OnUnscreened, SanctionsGate
from strongroom.compliance.sanctions.screener import ScreenerCache
from strongroom.compliance.sanctions.service import (
    FreezeCustomer,
    Hasher,
    SanctionsService,
    Screened,
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
    screeners: ScreenerCache | None = None,
) -> SanctionsService:
    """The service, installed as `customers`' and `counterparties`' screening point.
    `freeze_customer` (KYC's account freezing) freezes a customer's accounts in the
    transaction that confirms a match of theirs; `screeners`: the payee gate's screener cache,
    shared so that the process builds one screener (gate_screeners)."""

    def names(tenant_id: str, subject: str) -> Screened | None:
        """A subject's name and evidence for re-screening, decrypted in memory only: a
        customer's date of birth (a person's). Neither a customer's address country nor a
        counterparty's country is evidence: where someone lives or banks is not a nationality,
        and a country the entry does not list lowers its score (docs/sanctions.md)."""
        kind, _, subject_id = subject.partition(":")
        try:
            if kind == "customer" and customers is not None:
                customer = customers.get(tenant_id, subject_id)
                if customer.personal is None or customer.personal.name is None:
                    return None  # erased
                return Screened(customer.personal.name, customer.personal.date_of_birth)
            if kind == "counterparty" and counterparties is not None:
                counterparty = counterparties.get(tenant_id, subject_id)
                if counterparty.personal is None:
                    return None
                return Screened(counterparty.personal.name)
        except NotFound:
            return None
        return None

    service = SanctionsService(
        engine,
        threshold=settings.screening_threshold,
        hasher=hasher,
        open_alerts=cases.open_alerts if cases is not None else None,
        decide_alerts=cases.decide_alerts_in if cases is not None else None,
        names=names,
        freeze_customer=freeze_customer,
        audit=audit,
        events=events,
        screeners=screeners,
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
    screeners = ScreenerCache(engine)
    service = SanctionsService(engine, threshold=settings.screening_threshold, screeners=screeners)

    def tenants(account_ids: Sequence[str]) -> dict[str, str]:
        return {a: tenant for a, (tenant, _) in accounts(account_ids).items()}

    return SanctionsGate(
        tenants,
        service.statuses,
        screen_name=service.payee_match,
        fail=settings.screening_fail,
        budget_ms=settings.screening_budget_ms,
        on_unscreened=on_unscreened,
        screeners=screeners,
    )


def gate_screeners(gates: Sequence[object]) -> ScreenerCache | None:
    """The screener cache of the installed payee gate, if any: the composition root hands it
    to build_sanctions, so that the gate, the screening points and ad-hoc screening share one
    screener, warmed once at startup and rebuilt once per new list version."""
    return next((g.screeners for g in gates if isinstance(g, SanctionsGate)), None)
