"""How the composition root (runtime.py) and the CLI build sanctions screening: the service
over the configured threshold, the keyed hash, the case queue (alerts) and the customers'
and counterparties' names (re-screening), installed as the customers' screening point; and
the server's background job that completes a re-screening a load left owed
(`sanctions_rescreen`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Final

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.cases.service import CaseService
from strongroom.compliance.sanctions.gate import OnUnscreened, OpenCasesIn, SanctionsGate
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
from strongroom.jobs import JobSpec, Keep
from strongroom.risk.service import RiskService
from strongroom.settings import Settings

log = logging.getLogger("strongroom.compliance.sanctions")

RESCREEN_JOB: Final = "sanctions_rescreen"
# How often the job looks again after its run at start: one read of the list versions when
# nothing is owed (a load that stops half-way is rare; the next load completes it too).
RESCREEN_INTERVAL_S: Final = 3_600.0
RESCREEN_ACTOR: Final = "system:sanctions"


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
    settings: Settings,
    engine: Engine,
    *,
    on_unscreened: OnUnscreened | None = None,
    open_cases_in: OpenCasesIn | None = None,
) -> SanctionsGate:
    """The payee gate (STRONGROOM_SCREENING): payers' tenants through the risk domain's
    account lookup, payees' statuses from the stored screenings (read again inside the posting
    transaction: SanctionsGate.recheck). `on_unscreened(outcome, count)`: told of payments it
    could not screen (a metric). `open_cases_in`: the case queue's open cases of transfers, in
    a transaction (the composition root's), so that a post of a payment held for a payee
    confirmed since is refused."""
    accounts = RiskService(engine).payment_accounts
    screeners = ScreenerCache(engine)
    service = SanctionsService(engine, threshold=settings.screening_threshold, screeners=screeners)

    def tenants(account_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        return {a: (p.tenant_id, p.ledger_id) for a, p in accounts(account_ids).items()}

    return SanctionsGate(
        tenants,
        service.statuses,
        screen_name=service.payee_match,
        fail=settings.screening_fail,
        budget_ms=settings.screening_budget_ms,
        on_unscreened=on_unscreened,
        screeners=screeners,
        statuses_in=service.statuses_in,
        open_cases_in=open_cases_in,
        pending_subjects_in=service.pending_subjects_in,
    )


def gate_screeners(gates: Sequence[object]) -> ScreenerCache | None:
    """The screener cache of the installed payee gate, if any: the composition root hands it
    to build_sanctions, so that the gate, the screening points and ad-hoc screening share one
    screener, warmed once at startup and rebuilt once per new list version."""
    return next((g.screeners for g in gates if isinstance(g, SanctionsGate)), None)


class _Stopped(Exception):
    """The job's lease was lost, or the server is stopping: what is left stays owed."""


def rescreen_job(service: SanctionsService) -> Callable[[Keep], None]:
    """`serve`'s background job (jobs.py, under its lease: one process at a time), at start and
    every RESCREEN_INTERVAL_S: completes the re-screening owed by list versions a load stored
    but did not re-screen for (killed after its commit, or run with `--no-rescreen`), as the
    next load would (SanctionsService.rescreen_owed), in the background: serving does not wait
    for it. It stops between two subjects when its lease is lost or the server stops; the
    versions are recorded as re-screened only once every subject is done, so what it did not
    finish stays owed (re-screening a subject twice is harmless)."""

    def run(keep: Keep) -> None:
        if not service.owed():
            return

        def checked(done: int, total: int) -> None:
            del done, total
            if not keep():
                raise _Stopped

        try:
            subjects = service.rescreen_owed(actor=RESCREEN_ACTOR, progress=checked)
        except _Stopped:
            log.warning("sanctions: the owed re-screening stopped before it finished (still owed)")
            return
        log.info("sanctions: the owed re-screening is complete (%d subjects)", subjects)

    return run


def rescreen_spec(service: SanctionsService) -> JobSpec:
    """The job as runtime.py runs it: first at start, then every RESCREEN_INTERVAL_S."""
    return JobSpec(RESCREEN_JOB, RESCREEN_INTERVAL_S, rescreen_job(service))
