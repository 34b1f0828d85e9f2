"""The payments' use cases: a TPP creates a domestic payment consent (through the consent
service: the same state machine, leaves and events as every consent) and, once the customer
authorised it, submits the payment; a payment is read back with its status of now.

A submission is a ledger transfer through LedgerService.post_transfers, the pipeline every
transfer passes (gates: this package's consent gate, risk scoring and the payee's screening
when they are on; limits: the KYC caps; no-overdraft: the customer account's own flag): from
the account the customer chose to the tenant's outbound clearing account of the currency in
that account's ledger (made on first use: `clearing_account`), for the instructed amount, its id
the DomesticPaymentId (a function of the client's x-idempotency-key: model.payment_id). Its
outcome:

- created (posted, or pending when a gate held it for review): the consent was consumed and the
  payment stored in that very transaction (sink.py);
- refused (a gate's block other than the consent gate's, or a ledger refusal such as
  insufficient_funds): the payment is stored rejected, with the refusal's code, and the consent
  consumed, in one transaction (`_reject`); no money moved;
- the consent gate's block, or the consent found used in the posting transaction: an error, and
  nothing written (another submission used the consent, or the transfer is not its payment).

A submission repeated with its x-idempotency-key (the same ConsentId, Initiation and Risk) is
answered with the payment as it is now; the key with another request is refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.core import clock
from strongroom.core.errors import InvalidRequest, NotFound, echo
from strongroom.db.uow import UnitOfWork
from strongroom.events.hooks import EventEmitter
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.model import (
    Direction,
    NewTransfer,
    Payment,
    TransferResult,
    canonical_metadata,
)
from strongroom.ledger.service import LedgerService
from strongroom.openbanking.consents import ConsentKind, ConsentStatus
from strongroom.openbanking.model import Money
from strongroom.openbanking.payments import model, store
from strongroom.openbanking.payments.errors import (
    OB_CONSENT_MISMATCH,
    OB_CONSENT_NOT_AUTHORISED,
    OB_PAYMENT_CONSENT_MISMATCH,
)
from strongroom.openbanking.payments.sink import consume
from strongroom.openbanking.resources.errors import ConsentNotInForce
from strongroom.openbanking.resources.model import Consent
from strongroom.openbanking.resources.reads import AccountInformation
from strongroom.openbanking.resources.service import ConsentService, tpp_actor

CLEARING_ACCOUNTS_CACHED_MAX: Final = 1_024  # (ledger, asset) pairs whose account exists


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """A payment initiation's request as OB JSON: Data.Initiation, Risk and, of a consent,
    Data.ReadRefundAccount."""

    initiation: Mapping[str, Any]
    risk: Mapping[str, Any]
    read_refund_account: str | None = None

    def consent_request(self) -> dict[str, Any]:
        """What a payment consent keeps (Consent.request)."""
        found: dict[str, Any] = {"Initiation": dict(self.initiation), "Risk": dict(self.risk)}
        if self.read_refund_account is not None:
            found["ReadRefundAccount"] = self.read_refund_account
        return found


@dataclass(frozen=True, slots=True)
class PaymentView:
    """A payment as the API shows it: its row, its consent (the Initiation), its state now."""

    payment: store.PaymentRow
    consent: Consent
    state: model.PaymentState

    @property
    def id(self) -> str:
        return self.payment.id


class PaymentService:
    def __init__(
        self,
        engine: Engine,
        ledger: LedgerService,
        consents: ConsentService,
        *,
        audit: AuditRecorder | None = None,
        events: EventEmitter | None = None,
        now_us: Callable[[], int] = clock.now_us,
    ) -> None:
        self.engine = engine
        self.ledger = ledger
        self.consents = consents
        self.reads = AccountInformation(ledger)
        self._audit = audit
        self._events = events
        self.now_us = now_us
        self._clearing: dict[tuple[str, str], str] = {}

    # -- consents --------------------------------------------------------------------------

    def create_consent(
        self, tenant_id: str, client_id: str, request: PaymentRequest, idempotency_key: str
    ) -> tuple[Consent, bool]:
        """A domestic payment consent awaiting authorisation (ConsentService.create: the same
        key with the same request is that consent again, with another request refused). Its
        Initiation is checked first (model.read_initiation), so a consent the ledger could
        not carry out is never made."""
        model.check_text(request.initiation, "Data.Initiation")
        model.check_text(request.risk, "Risk")
        model.read_initiation(request.initiation)
        return self.consents.create(
            tenant_id,
            client_id,
            ConsentKind.DOMESTIC_PAYMENT,
            request.consent_request(),
            idempotency_key=idempotency_key,
        )

    def funds_available(self, consent: Consent) -> bool:
        """Whether the account the customer chose has the instructed amount available now."""
        assert consent.status is ConsentStatus.AUTH
        details = consent.payment_details
        assert details is not None
        (account_id,) = consent.account_ids
        account = self.reads.account(consent, account_id)
        return self.reads.funds_available(account, details.money)

    # -- payments --------------------------------------------------------------------------

    def get(self, payment_id: str) -> PaymentView:
        """A payment with its state now (NotFound for an id no payment has)."""
        with UnitOfWork(self.engine, write=False) as uow:
            row = store.get(uow, payment_id)
        if row is None:
            raise NotFound(f"no domestic payment {echo(payment_id)}", param="DomesticPaymentId")
        return self._view(row)

    def _view(self, row: store.PaymentRow) -> PaymentView:
        consent = self.consents.get(row.consent_id)
        if row.refusal is not None:
            return PaymentView(
                row, consent, model.state_of(row.created_at_us, row.refusal, None, None)
            )
        transfer = self.ledger.get_transfer(row.id)
        resolution = self.ledger.transfer_resolution(row.id) if transfer.pending else None
        return PaymentView(
            row, consent, model.state_of(row.created_at_us, None, transfer, resolution)
        )

    def submit(
        self,
        consent: Consent,
        client_id: str,
        idempotency_key: str,
        request: PaymentRequest,
        *,
        ip: str | None = None,
    ) -> PaymentView:
        """The payment `consent` authorised, as `client_id` asks it with `request` (its
        Initiation and Risk must be the consent's exactly: ob_payment_consent_mismatch). A
        consent not in force (not AUTH: consumed by another submission, rejected) is
        ConsentNotInForce; the same key before with another request, ob_idempotency_key_reused.
        `ip`: the PSU's address (x-fapi-customer-ip-address), for risk scoring."""
        payment_id = model.payment_id(consent.tenant_id, client_id, idempotency_key)
        replayed = self._replay(payment_id, consent, request)
        if replayed is not None:
            return replayed
        if not consent.in_force(self.now_us()):
            raise ConsentNotInForce(
                f"the consent is {consent.status}: a payment consent pays once, once authorised"
            )
        if (
            request.initiation != consent.request["Initiation"]
            or request.risk != consent.request["Risk"]
        ):
            raise InvalidRequest(
                "the payment's Initiation and Risk must be exactly its consent's",
                param="Data.Initiation",
                code=OB_PAYMENT_CONSENT_MISMATCH,
            )
        terms = model.read_initiation(consent.request["Initiation"])
        assert consent.customer_id is not None
        (account_id,) = consent.account_ids
        account = self.ledger.get_account(account_id)
        clearing = self.clearing_account(account.ledger_id, terms.money)
        transfer = NewTransfer(
            id=payment_id,
            ledger_id=account.ledger_id,
            debit_account_id=account.id,
            credit_account_id=clearing,
            amount=terms.money.amount,
            metadata=canonical_metadata(
                {model.METADATA_CONSENT: consent.id, model.METADATA_CLIENT: client_id}
            ),
            payment=Payment(
                customer_id=consent.customer_id,
                payee=terms.payee,
                channel=model.CHANNEL,
                ip=ip,
                payee_name=terms.payee_name,
                consent_id=consent.id,
            ),
        )
        actor = tpp_actor(client_id)
        try:
            (outcome,) = self.ledger.post_transfers([transfer], actor=actor)
        except ConsentNotInForce:  # used by another submission in the meantime (sink.py)
            return self._replay_or(payment_id, consent, request)
        result = outcome.result
        if result is TransferResult.CREATED or result is TransferResult.EXISTS:
            return self._replay_or(payment_id, consent, request)
        if result.value.startswith("exists_with_different_"):
            raise _key_reused()
        code = outcome.decision.code if outcome.decision is not None else None
        if result is TransferResult.BLOCKED_BY_GATE and code in (
            OB_CONSENT_NOT_AUTHORISED,
            OB_CONSENT_MISMATCH,
        ):
            replayed = self._replay(payment_id, consent, request)
            if replayed is not None:
                return replayed
            if code == OB_CONSENT_MISMATCH:
                raise InvalidRequest(
                    "the payment is not the one its consent authorised",
                    param="Data.ConsentId",
                    code=OB_PAYMENT_CONSENT_MISMATCH,
                )
            raise ConsentNotInForce("the consent is not authorised now, or was used")
        refusal = code if result is TransferResult.BLOCKED_BY_GATE and code else result.value
        return self._reject(consent, payment_id, request, refusal, actor)

    def _replay(
        self, payment_id: str, consent: Consent, request: PaymentRequest
    ) -> PaymentView | None:
        """The payment made before under this key, if the request is the one it was made with
        (its consent's id, Initiation and Risk); ob_idempotency_key_reused if it was another."""
        with UnitOfWork(self.engine, write=False) as uow:
            row = store.get(uow, payment_id)
        if row is None:
            return None
        view = self._view(row)
        made = view.consent.request
        if (
            row.consent_id != consent.id
            or request.initiation != made["Initiation"]
            or request.risk != made["Risk"]
        ):
            raise _key_reused()
        return view

    def _replay_or(self, payment_id: str, consent: Consent, request: PaymentRequest) -> PaymentView:
        found = self._replay(payment_id, consent, request)
        if found is None:
            raise ConsentNotInForce("the consent was used by another payment")
        return found

    def _reject(
        self,
        consent: Consent,
        payment_id: str,
        request: PaymentRequest,
        refusal: str,
        actor: str,
    ) -> PaymentView:
        """A payment refused before posting: stored rejected, its consent consumed. A second
        submission under the same key, refused too, may find no payment yet and the consent
        consumed by the first (which committed in between): it answers the first's rejected
        payment, as a replay would, not ConsentNotInForce."""
        try:
            with UnitOfWork(self.engine) as uow:
                if store.get(uow, payment_id) is None:
                    consume(
                        uow,
                        consent.id,
                        payment_id=payment_id,
                        at_us=self.now_us(),
                        actor=actor,
                        audit=self._audit,
                        events=self._events,
                        refusal=refusal,
                    )
                    uow.commit()
        except ConsentNotInForce:
            pass  # rolled back; the payment under this key, if any, is the answer
        return self._replay_or(payment_id, consent, request)

    # -- the outbound clearing account -----------------------------------------------------

    def clearing_account(self, ledger_id: str, money: Money) -> str:
        """The tenant's outbound clearing account of `money`'s asset in `ledger_id`: made on
        first use (a credit-normal account, no customer, its id derived from the two: two
        processes making it at once make one), where paid-out money waits for the rails."""
        asset = money.asset.code
        found = self._clearing.get((ledger_id, asset))
        if found is not None:
            return found
        account_id = model.clearing_account_id(ledger_id, asset)
        spec = AccountSpec(
            ledger_id,
            asset,
            Direction.CREDIT,
            name=model.clearing_account_name(asset),
            metadata={"role": model.CLEARING_ROLE},
            id=account_id,
        )
        try:
            self.ledger.get_account(account_id)
        except NotFound:
            # Another process's creation of the same id may win: then it exists, as wanted.
            with contextlib.suppress(sa_exc.IntegrityError):
                self.ledger.create_accounts([spec], actor="system:openbanking")
            self.ledger.get_account(account_id)
        if len(self._clearing) >= CLEARING_ACCOUNTS_CACHED_MAX:
            self._clearing.clear()
        self._clearing[(ledger_id, asset)] = account_id
        return account_id


def _key_reused() -> InvalidRequest:
    return InvalidRequest(
        "this x-idempotency-key was used with another request",
        param="x-idempotency-key",
        code="ob_idempotency_key_reused",
    )
