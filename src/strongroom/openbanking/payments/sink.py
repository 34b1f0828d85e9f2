"""A payment consent is consumed exactly once, in the transaction that writes its payment.

`PaymentSink` is a sink of the transfer pipeline (ledger/pipeline.py), installed before the
audit log's: inside the posting transaction, for each transfer it created that carries a
payment naming a consent (Payment.consent_id), it locks the consent's row, requires it
authorised (AUTH, unexpired), moves it to COND and writes the payment's row, with the consent's
audit leaf and event. Two submissions under one consent that both passed the consent gate (which
reads a moment stale) meet here: the second waits on the lock (PostgreSQL; SQLite has one
writer), finds COND and raises ConsentNotInForce, which rolls its transaction back: no transfer,
no payment. The payments' unique index on the consent holds it a second time.

`consume` is also the refusal's path (service.py): a payment refused before posting consumes its
consent as well, with the refusal's code on its row, in a transaction of its own.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from strongroom.audit.hooks import AuditRecorder
from strongroom.db.uow import UnitOfWork
from strongroom.events.hooks import EventEmitter, EventType
from strongroom.ledger.pipeline import TR_ID, CommittedBatch
from strongroom.openbanking import consents as machine
from strongroom.openbanking.consents import ConsentEvent, ConsentKind
from strongroom.openbanking.payments import store
from strongroom.openbanking.resources import store as consent_store
from strongroom.openbanking.resources.errors import ConsentNotInForce
from strongroom.openbanking.resources.model import CONSENT_EVENT_NAMES, Consent, leaf_data

CONSENT_CONSUMED: Final = CONSENT_EVENT_NAMES[ConsentEvent.CONSUME]
OB_PAYMENT_EVENT_TYPES: Final = (
    EventType(
        CONSENT_CONSUMED,
        "A TPP submitted the payment a domestic payment consent authorised: ids of the "
        "consent, the customer and the payment (its ledger transfer's id), and the refusal's "
        "code when the payment was refused before posting.",
    ),
)
_CREATED: Final = "transfer.created"
UNKNOWN_ACTOR: Final = "unknown"


def consume(
    uow: UnitOfWork,
    consent_id: str,
    *,
    payment_id: str,
    at_us: int,
    actor: str,
    audit: AuditRecorder | None,
    events: EventEmitter | None,
    refusal: str | None = None,
) -> Consent:
    """COND for the consent, locked, if it is an authorised domestic payment consent in force
    at `at_us` (ConsentNotInForce otherwise: the caller's transaction must roll back), and the
    payment's row; its audit leaf and event, in `uow`."""
    consent = consent_store.get(uow, consent_id, lock=True)
    if consent is None or consent.kind is not ConsentKind.DOMESTIC_PAYMENT:
        raise ConsentNotInForce("the payment names no domestic payment consent")
    if not consent.in_force(at_us):
        raise ConsentNotInForce(
            f"the consent is {consent.status}: a payment consent is used once, once authorised"
        )
    state, transition = machine.apply(consent.state, ConsentEvent.CONSUME, at_us)
    after = dataclasses.replace(consent, state=state)
    consent_store.update(uow, after)
    store.insert(
        uow,
        store.PaymentRow(
            payment_id, consent.tenant_id, consent.client_id, consent.id, at_us, refusal
        ),
    )
    data = {**leaf_data(after, transition), "payment_id": payment_id}
    if refusal is not None:
        data["refusal"] = refusal
    if audit is not None:
        audit.record_all(uow, consent.tenant_id, actor, [(CONSENT_CONSUMED, consent.id, data)])
    if events is not None:
        events.emit(uow, consent.tenant_id, [(CONSENT_CONSUMED, data)])
    return after


class PaymentSink:
    """ledger.pipeline.Sink: a batch without payments (CommittedBatch.payments None, every bulk
    batch) costs one test."""

    def __init__(
        self, *, audit: AuditRecorder | None = None, events: EventEmitter | None = None
    ) -> None:
        self.audit = audit
        self.events = events

    def __call__(self, uow: UnitOfWork, batch: CommittedBatch) -> None:
        payments = batch.payments
        if payments is None:
            return
        for kind, row in zip(batch.kinds, batch.transfers, strict=True):
            if kind != _CREATED:
                continue
            transfer_id = row[TR_ID]
            payment = payments.get(transfer_id)
            if payment is None or payment.consent_id is None:
                continue
            actor = (batch.actors or {}).get(transfer_id) or batch.actor or UNKNOWN_ACTOR
            consume(
                uow,
                payment.consent_id,
                payment_id=transfer_id,
                at_us=batch.at_us,
                actor=actor,
                audit=self.audit,
                events=self.events,
            )
