"""The composition root: the ledger wired to its outbox and its audit log, as `serve`, the
worker and the CLI all run it. A change committed by any of them leaves the same trail: its
events and its audit leaf, in its own transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine

from strongroom.audit.service import AuditLog
from strongroom.db.uow import UnitOfWork
from strongroom.events.outbox import Outbox
from strongroom.ledger.service import BatchObserver, LedgerService
from strongroom.settings import Settings


def build_ledger(
    engine: Engine, settings: Settings, *, on_batch: BatchObserver | None = None
) -> tuple[LedgerService, AuditLog]:
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
    ledger = LedgerService(
        engine,
        on_batch=on_batch,
        event_sink=Outbox(),
        audit_sink=audit if settings.audit else None,
    )
    audit.ledger = ledger
    return ledger, audit
