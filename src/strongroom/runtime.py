"""The composition root: the ledger wired to its outbox and its audit log, as `serve`, the
worker and the CLI all run it. A change committed by any of them leaves the same trail: its
events and its audit leaf, in its own transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine

from strongroom.audit.service import AuditLog
from strongroom.db.uow import UnitOfWork
from strongroom.events.outbox import Outbox
from strongroom.ledger.pipeline import Gate, Sink
from strongroom.ledger.service import BatchObserver, LedgerService
from strongroom.settings import Settings


def build_ledger(
    engine: Engine,
    settings: Settings,
    *,
    on_batch: BatchObserver | None = None,
    gates: Sequence[Gate] | None = None,
) -> tuple[LedgerService, AuditLog]:
    """The ledger with its pipeline as `serve` runs it: no gate installed yet (the domains
    that decide on transfers, risk and screening, install theirs here), the outbox and the
    audit log as sinks."""
    ledger: LedgerService | None = None

    def tenant_of(ledger_ids: Sequence[str], *, uow: UnitOfWork | None = None) -> dict[str, str]:
        assert ledger is not None
        return ledger.ledger_tenants(ledger_ids, uow=uow)

    key = settings.audit_signing_key
    audit = AuditLog(
        engine,
        origin=settings.audit_origin,
        tenant_of=tenant_of,
        signer_key=key.get_secret_value() if key is not None else None,
    )
    # The pipeline's sinks in their declared order: the outbox, then the audit log last (it
    # locks the tenant's log row until the commit).
    sinks: list[Sink] = [Outbox()]
    if settings.audit:
        sinks.append(audit)
    ledger = LedgerService(
        engine,
        on_batch=on_batch,
        sinks=sinks,
        recorder=audit if settings.audit else None,
        gates=installed_gates(settings) if gates is None else gates,
    )
    audit.ledger = ledger
    return ledger, audit


def installed_gates(settings: Settings) -> list[Gate]:
    """The gates every door of the ledger passes (`serve`, the worker, the CLI): none yet.
    Risk scoring and sanctions screening install theirs here, in the order they run."""
    del settings  # which gates, and how, will come from the settings
    return []
