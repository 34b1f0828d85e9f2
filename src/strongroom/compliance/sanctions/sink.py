"""The payment subjects sink (a Sink of the transfer pipeline): inside the posting transaction,
every payment created pending (a two-phase payment, or one a gate held for review) has its
payer and payee subjects recorded (store.payment_subjects, migration 0033), so that a later
post of it, by its client or by a case's approval, is screened again against them inside that
post's transaction (gate.SanctionsGate.recheck): a payee or payer confirmed a match since is
then refused. A batch without payments (CommittedBatch.payments None) costs one test; one
without a pending payment, one pass over its rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from strongroom.compliance.sanctions import store
from strongroom.compliance.sanctions.gate import payment_subjects
from strongroom.ledger.model import Status
from strongroom.ledger.pipeline import TR_ID, TR_LEDGER_ID, TR_STATUS, CommittedBatch

if TYPE_CHECKING:
    from strongroom.db.uow import UnitOfWork

_CREATED = "transfer.created"
_PENDING = int(Status.PENDING)

# The tenant of each ledger, read in the caller's transaction (LedgerService.ledger_tenants).
TenantsOf = Callable[..., dict[str, str]]


class PaymentSubjectsSink:
    def __init__(self, tenants_of: TenantsOf) -> None:
        self.tenants_of = tenants_of

    def __call__(self, uow: UnitOfWork, batch: CommittedBatch) -> None:
        payments = batch.payments
        if payments is None:
            return
        pending = [
            row
            for kind, row in zip(batch.kinds, batch.transfers, strict=True)
            if kind == _CREATED and row[TR_STATUS] == _PENDING and row[TR_ID] in payments
        ]
        if not pending:
            return
        ledger_ids: Sequence[str] = sorted({row[TR_LEDGER_ID] for row in pending})
        tenants = self.tenants_of(ledger_ids, uow=uow)
        rows = []
        for row in pending:
            payer, payee = payment_subjects(payments[row[TR_ID]])
            rows.append(store.PaymentSubjects(row[TR_ID], tenants[row[TR_LEDGER_ID]], payer, payee))
        store.put_payment_subjects(uow, rows, batch.at_us)
