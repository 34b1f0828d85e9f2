"""How the composition root (runtime.py) and the CLI build the GDPR and controls services and
their two leased jobs, so that runtime.py gains a few lines only.

- `aml_retention`: every STRONGROOM_AML_RETENTION_INTERVAL_S, erases the customers past their
  AML retention period (GdprService.erase_due), a customer per transaction.
- `compliance_controls`: looks every hour at most (or every interval, if shorter) and runs the
  controls when the latest stored report is older than STRONGROOM_COMPLIANCE_CHECK_INTERVAL_S,
  so a restart neither skips a run nor repeats one. Both first look one poll after start."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.audit.service import AuditLog
from strongroom.compliance.aml.profiles import AML_EVENT_TYPES, AmlProfiles
from strongroom.compliance.controls.checks import Sources, Thresholds
from strongroom.compliance.controls.service import CONTROL_EVENT_TYPES, ControlsService
from strongroom.compliance.gdpr.service import (
    GDPR_EVENT_TYPES,
    GdprService,
    PastRetention,
    count_past_retention,
)
from strongroom.core import clock
from strongroom.customers.counterparties import CounterpartyService
from strongroom.customers.service import CustomerService
from strongroom.events.hooks import EventEmitter
from strongroom.jobs import JobSpec, Keep
from strongroom.ledger.service import LedgerService
from strongroom.openbanking import records as ob_records
from strongroom.openbanking.resources.model import request_mac_key as ob_request_mac_key
from strongroom.security.kms import KeyManager
from strongroom.settings import Settings

log = logging.getLogger("strongroom.compliance")

COMPLIANCE_EVENT_TYPES: Final = (*GDPR_EVENT_TYPES, *CONTROL_EVENT_TYPES, *AML_EVENT_TYPES)
AML_RETENTION_JOB: Final = "aml_retention"
CONTROLS_JOB: Final = "compliance_controls"
CONTROLS_POLL_S_MAX: Final = 3600.0
CONTROLS_ACTOR: Final = "system:compliance"


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        key_rotation_days=settings.key_rotation_days,
        case_sla_hours=settings.case_sla_hours,
        sanctions_list_max_age_days=settings.sanctions_list_max_age_days,
        aml_retention_days=settings.aml_retention_days,
    )


def controls_service(
    settings: Settings,
    engine: Engine,
    kms: KeyManager,
    audit: AuditLog,
    events: EventEmitter | None,
) -> ControlsService:
    def past_retention() -> PastRetention:
        return count_past_retention(engine, settings.aml_retention_days, clock.now_us())

    # The consent service's key (runtime.py): the created leaves' request_mac is checked with it.
    request_mac_key = ob_request_mac_key(kms.mac)
    sources = Sources(
        engine=engine,
        kms=kms,
        verify_audit=lambda say: audit.verify(progress=say),
        past_retention=past_retention,
        record_leaves=audit.record_leaves,
        kyc_limits=settings.kyc_limits,
        openbanking_records=lambda leaves, add, say: ob_records.check(
            engine, leaves, add, say, request_mac_key=request_mac_key
        ).counts(),
    )
    return ControlsService(engine, sources, thresholds(settings), audit=audit, events=events)


@dataclass(frozen=True, slots=True)
class Compliance:
    gdpr: GdprService
    controls: ControlsService
    aml_profiles: AmlProfiles
    jobs: list[JobSpec]
    routers: list[Any]


def build(
    settings: Settings,
    engine: Engine,
    *,
    kms: KeyManager,
    audit: AuditLog,
    events: EventEmitter,
    customers: CustomerService,
    counterparties: CounterpartyService,
    ledger: LedgerService,
    cards: Callable[[str, str], dict[str, Any] | None] | None = None,
    on_erased: Callable[[int], None] | None = None,
) -> Compliance:
    """The services and jobs; the customers' and counterparties' erasure is given its holds
    here (AML record keeping, open compliance alerts)."""
    from strongroom.compliance.aml import api as aml_api
    from strongroom.compliance.controls import api as controls_api
    from strongroom.compliance.gdpr import api as gdpr_api

    recorder: AuditRecorder = audit
    gdpr = GdprService(
        engine,
        customers,
        counterparties,
        ledger,
        retention_days=settings.aml_retention_days,
        audit=recorder,
        events=events,
        cards=cards,
    )
    customers.retention_hold = gdpr.hold_reason
    counterparties.retention_hold = gdpr.counterparty_hold_reason
    controls = controls_service(settings, engine, kms, audit, events)
    return Compliance(
        gdpr,
        controls,
        AmlProfiles(engine, ledger, audit=recorder, events=events),
        [
            JobSpec(
                AML_RETENTION_JOB,
                settings.aml_retention_interval_s,
                retention_job(gdpr, on_erased),
                first_run_delayed=True,
            ),
            JobSpec(
                CONTROLS_JOB,
                min(CONTROLS_POLL_S_MAX, settings.compliance_check_interval_s),
                controls_job(controls, settings.compliance_check_interval_s),
                first_run_delayed=True,
            ),
        ],
        [gdpr_api.router, controls_api.router, aml_api.router],
    )


def retention_job(
    gdpr: GdprService, on_erased: Callable[[int], None] | None = None
) -> Callable[[Keep], None]:
    def run(keep: Keep) -> None:
        done = gdpr.erase_due(keep)
        if on_erased is not None:
            on_erased(done.erased)

    return run


def controls_job(controls: ControlsService, interval_s: float) -> Callable[[Keep], None]:
    def run(keep: Keep) -> None:
        last = controls.latest_at()
        if last is not None and clock.now_us() - last < interval_s * 1_000_000:
            return
        if keep():
            report = controls.run(actor=CONTROLS_ACTOR, progress=log.debug)
            log.info(
                "compliance controls: report %s: %s (%s failed)",
                report.id,
                report.outcome.value,
                ", ".join(c.name for c in report.failed) or "none",
            )

    return run


def card_view(vault: Any) -> Callable[[str, str], dict[str, Any] | None]:
    """The vault's masked view of a card (VaultService.find), for an export."""

    def view(tenant_id: str, card_id: str) -> dict[str, Any] | None:
        card = vault.find(tenant_id, card_id)
        if card is None:
            return None
        return {
            "id": card.id,
            "object": "card",
            "brand": card.brand.value,
            "bin": card.bin,
            "last4": card.last4,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "created_at": clock.format_us(card.created_at),
        }

    return view
