"""How the composition root installs the payments: the consent gate among the ledger's gates
(installed_gates), the payment sink among its sinks (before the audit log's), and the service,
the signer and the routers of the payment initiation API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.events.hooks import EventEmitter
from strongroom.http.errors import RefusalRenderer
from strongroom.ledger.service import LedgerService
from strongroom.openbanking.payments.api import (
    PaymentResources,
    keys_router,
    refusal_renderer,
    router,
)
from strongroom.openbanking.payments.errors import CONSENT_GATE_ERRORS, OB_PAYMENTS_ERRORS
from strongroom.openbanking.payments.gate import GATE_NAME, ConsentGate
from strongroom.openbanking.payments.service import PaymentService
from strongroom.openbanking.payments.signing import ResponseSigner
from strongroom.openbanking.payments.sink import OB_PAYMENT_EVENT_TYPES, PaymentSink
from strongroom.openbanking.ports import RESOURCE_BASE
from strongroom.openbanking.resources.service import ConsentService
from strongroom.security.sealing import SecretSealer

__all__ = [
    "CONSENT_GATE_NAME",
    "ERRORS",
    "OB_PAYMENT_EVENT_TYPES",
    "ConsentGate",
    "OpenBankingPayments",
    "PaymentSink",
    "build",
]

ERRORS: Final = (*OB_PAYMENTS_ERRORS, *CONSENT_GATE_ERRORS)
CONSENT_GATE_NAME: Final = GATE_NAME


@dataclass
class OpenBankingPayments:
    payments: PaymentService
    resources: PaymentResources  # app.state.ob_payments: what the routers read
    routers: list[Any] = field(default_factory=lambda: [router, keys_router])
    # Replaces the resources' renderer of the OB paths (the same prefix): the same answers,
    # those on the payment paths signed (api.refusal_renderer).
    separate_apis: dict[str, RefusalRenderer] = field(default_factory=dict)


def build(
    engine: Engine,
    ledger: LedgerService,
    consents: ConsentService,
    *,
    audit: AuditRecorder | None,
    events: EventEmitter | None,
    sealer: SecretSealer | None,
    issuer: str,
) -> OpenBankingPayments:
    payments = PaymentService(
        engine, ledger, consents, audit=audit, events=events, now_us=lambda: consents.now_us()
    )
    signer = ResponseSigner(engine, issuer=issuer, sealer=sealer)
    renderers = {RESOURCE_BASE.split("{", 1)[0]: refusal_renderer(signer)}
    return OpenBankingPayments(
        payments, PaymentResources(payments, signer), separate_apis=renderers
    )
