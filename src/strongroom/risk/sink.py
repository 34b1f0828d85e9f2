"""The risk sink (a Sink of the transfer pipeline): inside the posting transaction, every created
transfer that carried a payment becomes a risk event (the feature store's source of truth) and
its risk decision is recorded, so that both commit or roll back with the transfer. A batch
without payments (CommittedBatch.payments None) costs one test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from strongroom.core.money import from_stored_int
from strongroom.ledger.model import Direction, Payment, TransferRow, legs_from_json
from strongroom.ledger.pipeline import TR_AMOUNT, TR_ID, CommittedBatch
from strongroom.risk import store
from strongroom.risk.gate import Scored, decision_row, scored_of
from strongroom.risk.payments import Hasher, keyed

if TYPE_CHECKING:
    from strongroom.db.uow import UnitOfWork

_CREATED = "transfer.created"
_TR_DEBIT = 5
_TR_LEGS = 8


@dataclass(frozen=True, slots=True)
class _Created:
    transfer_id: str
    amount: int
    scale: int
    payment: Payment


class RiskSink:
    def __init__(self, hasher: Hasher) -> None:
        self.hasher = hasher

    def __call__(self, uow: UnitOfWork, batch: CommittedBatch) -> None:
        payments = batch.payments
        if payments is None:
            return
        created = [
            row
            for kind, row in zip(batch.kinds, batch.transfers, strict=True)
            if kind == _CREATED and row[TR_ID] in payments
        ]
        if not created:
            return
        # The payer's tenant and scale as the gate found them when it scored the payment; read
        # for the others (a payment the gate did not score: fail open, no gate installed).
        scored_by_id: dict[str, Scored | None] = {}
        known: dict[str, tuple[str, int]] = {}
        payers: dict[str, str] = {}
        for row in created:
            tid = row[TR_ID]
            scored = scored_of(batch.decisions.get(tid)) or scored_of(batch.allowed.get(tid))
            scored_by_id[tid] = scored
            if scored is not None and scored.scale is not None and scored.tenant_id:
                known[tid] = (scored.tenant_id, scored.scale)
            else:
                payers[tid] = _payer(row)
        if payers:
            accounts = store.payment_accounts(uow, sorted(set(payers.values())))
            for tid, account_id in payers.items():
                payer_account = accounts[account_id]  # a created transfer's payer exists
                known[tid] = (payer_account.tenant_id, payer_account.scale)
        by_tenant: dict[str, list[_Created]] = {}
        for row in created:
            tid = row[TR_ID]
            tenant_id, scale = known[tid]
            amount = row[TR_AMOUNT]
            by_tenant.setdefault(tenant_id, []).append(
                _Created(
                    tid,
                    amount if type(amount) is int else from_stored_int(amount),
                    scale,
                    payments[tid],
                )
            )
        events: list[store.EventRow] = []
        decisions: list[store.DecisionRow] = []
        # Tenants in one order, so two transactions lock their counters in the same order.
        for tenant_id, items in sorted(by_tenant.items()):
            first = store.draw_seqs(uow, tenant_id, len(items))
            for offset, c in enumerate(items):
                tid = c.transfer_id
                scored = scored_by_id[tid]
                # The gate's hashes of this payment, when it scored it for this tenant.
                if (
                    scored is not None
                    and scored.keyed is not None
                    and scored.tenant_id == tenant_id
                ):
                    payee, device, ip = scored.keyed
                else:
                    payee, device, ip = keyed(c.payment, tenant_id, self.hasher)
                # The time its features were computed at, when scored: a replay then computes
                # what the gate did (the commit comes a moment later).
                at_us = batch.at_us if scored is None or scored.at_us is None else scored.at_us
                events.append(
                    store.EventRow(
                        tenant_id=tenant_id,
                        seq=first + offset,
                        transfer_id=c.transfer_id,
                        at_us=at_us,
                        amount=c.amount,
                        scale=c.scale,
                        customer_id=c.payment.customer_id,
                        payee=payee,
                        channel=c.payment.channel,
                        device=device,
                        ip=ip,
                    )
                )
                if scored is not None:
                    decisions.append(decision_row(tid, scored, batch.at_us, tenant_id))
        store.insert_events(uow, events)
        store.upsert_decisions(uow, decisions, replace=True)


def _payer(row: TransferRow) -> str:
    debit = row[_TR_DEBIT]
    if isinstance(debit, str):
        return debit
    legs = row[_TR_LEGS]
    assert isinstance(legs, str)
    return next(leg.account_id for leg in legs_from_json(legs) if leg.direction is Direction.DEBIT)
