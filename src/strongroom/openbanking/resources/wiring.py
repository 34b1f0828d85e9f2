"""How the composition root installs the consent resources: the consent service, the reads,
the router's dependencies, and the consent expiry job (under its lease, as every job)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.core.limits import API_KEY_CACHE_TTL_S
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
TENANT_NAMES_CACHED: Final = 1_024


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


def tenant_resolver(
    tenancy: TenancyService, now_s: Callable[[], float] = time.monotonic
) -> Callable[[str], str | None]:
    """A tenant's name in the OB path -> its id: None for a name no tenant has, the system
    tenant (it holds no customers) and a suspended tenant (its API is closed). A name found is
    remembered for API_KEY_CACHE_TTL_S, as API keys are: a suspension reaches this process
    within that time; at most TENANT_NAMES_CACHED names, the cache emptied when full."""
    found: dict[str, tuple[str, float]] = {}

    def tenant_id(name: str) -> str | None:
        if name == SYSTEM_TENANT_NAME or not name.isascii() or len(name) > 63:
            return None
        cached = found.get(name)
        if cached is not None and now_s() - cached[1] < API_KEY_CACHE_TTL_S:
            return cached[0]
        tenant = tenancy.tenant_by_name(name)
        if tenant is None or tenant.suspended_at is not None:
            found.pop(name, None)
            return None
        if len(found) >= TENANT_NAMES_CACHED:
            found.clear()
        found[name] = (tenant.id, now_s())
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
    request_mac_key: bytes,
) -> OpenBankingResources:
    """`request_mac_key`: the key of the created leaves' `request_mac` (model.request_mac_key)."""
    consents = ConsentService(
        engine, ledger, request_mac_key=request_mac_key, audit=audit, events=events
    )
    resources = Resources(consents, AccountInformation(ledger), tenant_resolver(tenancy))
    job = JobSpec(CONSENT_EXPIRY_JOB, interval_s, expiry_job(consents))
    return OpenBankingResources(consents, resources, [job])
