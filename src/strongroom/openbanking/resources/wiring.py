"""How the composition root installs the consent resources: the consent service, the reads,
the router's dependencies, and the consent expiry job (under its lease, as every job)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.events.hooks import EventEmitter
from strongroom.http.errors import RefusalRenderer
from strongroom.jobs import JobSpec, Keep
from strongroom.ledger.service import LedgerService
from strongroom.openbanking.model_errors import OPENBANKING_MODEL_ERRORS
from strongroom.openbanking.ports import RESOURCE_BASE
from strongroom.openbanking.resources.api import Resources, render_refusal, router
from strongroom.openbanking.resources.errors import OB_RESOURCES_ERRORS
from strongroom.openbanking.resources.reads import AccountInformation
from strongroom.openbanking.resources.service import OB_CONSENT_EVENT_TYPES, ConsentService
from strongroom.tenancy.model import SYSTEM_TENANT_NAME
from strongroom.tenancy.service import TenancyService

__all__ = ["ERRORS", "OB_CONSENT_EVENT_TYPES", "OpenBankingResources", "build"]

# The codes the consents may raise where the /v1 error handlers answer (the consent page calls
# authorise and reject): the OB model's (a refused transition: consent_state) and our own.
ERRORS: Final = (*OPENBANKING_MODEL_ERRORS, *OB_RESOURCES_ERRORS)

CONSENT_EXPIRY_JOB: Final = "openbanking_consent_expiry"


@dataclass
class OpenBankingResources:
    consents: ConsentService
    resources: Resources  # app.state.ob_resources: what the router reads
    jobs: list[JobSpec] = field(default_factory=list)
    routers: list[Any] = field(default_factory=lambda: [router])  # outside /v1: api.py
    # Path prefix -> renderer of the HTTP layer's refusals on the OB paths (build_api).
    separate_apis: dict[str, RefusalRenderer] = field(
        default_factory=lambda: {RESOURCE_BASE.split("{", 1)[0]: render_refusal}
    )


def tenant_resolver(tenancy: TenancyService) -> Callable[[str], str | None]:
    """A tenant's name in the OB path -> its id: None for a name no tenant has, the system
    tenant (it holds no customers) and a suspended tenant (its API is closed)."""

    def tenant_id(name: str) -> str | None:
        if name == SYSTEM_TENANT_NAME or not name.isascii() or len(name) > 63:
            return None
        tenant = tenancy.tenant_by_name(name)
        if tenant is None or tenant.suspended_at is not None:
            return None
        return tenant.id

    return tenant_id


def expiry_job(consents: ConsentService) -> Callable[[Keep], None]:
    """Consents past their ExpirationDateTime become EXPD (their tokens revoked), a batch per
    transaction until none is due."""

    def run(keep: Keep) -> None:
        while keep() and consents.expire_due():
            pass

    return run


def build(
    engine: Engine,
    ledger: LedgerService,
    tenancy: TenancyService,
    *,
    audit: AuditRecorder | None,
    events: EventEmitter | None,
    interval_s: float,
) -> OpenBankingResources:
    consents = ConsentService(engine, ledger, audit=audit, events=events)
    resources = Resources(consents, AccountInformation(ledger), tenant_resolver(tenancy))
    job = JobSpec(CONSENT_EXPIRY_JOB, interval_s, expiry_job(consents))
    return OpenBankingResources(consents, resources, [job])
