"""The consent gate of the transfer pipeline (ledger.pipeline.Gate; ../shared/DESIGN.md: "a
consent check is one more gate"): a transfer whose payment names an open banking consent
(Payment.consent_id) passes only as the very payment that consent authorised.

It blocks, with a stable code (errors.py):

- `ob_consent_not_authorised`: no such consent, not a domestic payment consent, or not in force
  (not AUTH: awaiting authorisation, rejected, consumed; or past an expiry), or named by an
  earlier transfer of the same batch (a consent pays once);
- `ob_consent_mismatch`: anything of the transfer that is not what the consent authorised: the
  payment's customer (the PSU who authorised it), the debited account (the one they chose), the
  amount and currency (the Initiation's), the credited account (the tenant's outbound clearing
  account of that currency, in the account's ledger), a plain two-account transfer, and who asks
  (the consent's own TPP, `tpp:<client id>`).

It reads the consents a moment stale, as every gate may: the consent's one change that matters
here, its use, is enforced again in the posting transaction (sink.py). `payments_only`: a batch
without payments is not asked about (a bulk batch pays nothing for it). Fails closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from sqlalchemy.engine import Engine

from strongroom.core import clock
from strongroom.core.errors import ErrorCode
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import Action, GateDecision, NewTransfer, Verdict
from strongroom.openbanking.consents import ConsentKind
from strongroom.openbanking.payments.errors import (
    CONSENT_GATE_ERRORS,
    OB_CONSENT_MISMATCH,
    OB_CONSENT_NOT_AUTHORISED,
)
from strongroom.openbanking.payments.model import clearing_account_id, read_initiation
from strongroom.openbanking.resources import store as consent_store
from strongroom.openbanking.resources.model import Consent
from strongroom.openbanking.resources.service import tpp_actor

GATE_NAME: Final = "openbanking_consent"
CONSENT_GATE_BUDGET_MS: Final = 1_000


class ConsentGate:
    name: str = GATE_NAME
    budget_ms: int = CONSENT_GATE_BUDGET_MS
    fail_open: bool = False  # a consent that cannot be read authorises nothing
    payments_only: bool = True
    errors: Sequence[ErrorCode] = CONSENT_GATE_ERRORS

    def __init__(self, engine: Engine, *, now_us: Callable[[], int] = clock.now_us) -> None:
        self.engine = engine
        self.now_us = now_us

    def decide(
        self, batch: Sequence[NewTransfer], actor: str | None
    ) -> Sequence[GateDecision | None]:
        out: list[GateDecision | None] = [None] * len(batch)
        wanted = {
            i: t.payment.consent_id
            for i, t in enumerate(batch)
            if t.payment is not None and t.payment.consent_id is not None
        }
        if not wanted:
            return out
        with UnitOfWork(self.engine, write=False) as uow:
            found = {c: consent_store.get(uow, c) for c in sorted(set(wanted.values()))}
        now = self.now_us()
        used: set[str] = set()
        for i, consent_id in wanted.items():
            consent = found[consent_id]
            code = self._refusal(batch[i], actor, consent, now, consent_id in used)
            used.add(consent_id)
            if code is not None:
                out[i] = GateDecision(self.name, Verdict.BLOCK, code)
        return out

    @staticmethod
    def _refusal(
        t: NewTransfer, actor: str | None, consent: Consent | None, now_us: int, used: bool
    ) -> str | None:
        if (
            consent is None
            or consent.kind is not ConsentKind.DOMESTIC_PAYMENT
            or not consent.in_force(now_us)
            or used
        ):
            return OB_CONSENT_NOT_AUTHORISED
        assert t.payment is not None
        terms = read_initiation(consent.request["Initiation"])
        asset = terms.money.asset.code
        if (
            t.action is not Action.TRANSFER
            or t.legs is not None
            or t.payment.customer_id != consent.customer_id
            or t.debit_account_id not in consent.account_ids
            or t.amount != terms.money.amount
            or t.credit_account_id != clearing_account_id(t.ledger_id, asset)
            or actor != tpp_actor(consent.client_id)
        ):
            return OB_CONSENT_MISMATCH
        return None
