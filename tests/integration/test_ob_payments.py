"""Open banking payments on SQLite and PostgreSQL, below HTTP: the consent gate's decisions
(each stable code), the consent consumed exactly once in the posting transaction even when the
gate is not there to see a race (threads posting two payments of one consent), the refusal
path's consumption, the GateRunner asking a payments-only gate nothing about a batch without
payments, and the response signing key, made once and shared by every signer."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.audit.service import AuditLog
from strongroom.core import ids
from strongroom.core.errors import StrongroomError
from strongroom.db.uow import UnitOfWork
from strongroom.events.service import EventService
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.model import (
    AccountFlag,
    Direction,
    GateDecision,
    NewTransfer,
    Payment,
    TransferResult,
)
from strongroom.ledger.pipeline import GateRunner
from strongroom.ledger.service import LedgerService
from strongroom.openbanking import jose
from strongroom.openbanking.consents import ConsentKind, ConsentStatus
from strongroom.openbanking.jws_detached import verify_detached
from strongroom.openbanking.payments import service as service_module
from strongroom.openbanking.payments.errors import OB_CONSENT_MISMATCH, OB_CONSENT_NOT_AUTHORISED
from strongroom.openbanking.payments.gate import ConsentGate
from strongroom.openbanking.payments.model import clearing_account_id
from strongroom.openbanking.payments.service import PaymentRequest, PaymentService
from strongroom.openbanking.payments.signing import ResponseSigner
from strongroom.openbanking.payments.sink import OB_PAYMENT_EVENT_TYPES, PaymentSink
from strongroom.openbanking.resources.errors import ConsentNotInForce
from strongroom.openbanking.resources.model import Consent
from strongroom.openbanking.resources.service import OB_CONSENT_EVENT_TYPES, ConsentService
from tests.integration.test_ledger_service import ManualClock

TENANT = "ten_obp_a"
CLIENT = "tpp_pay_one"
ACTOR = f"tpp:{CLIENT}"
HOUR_US = 3_600_000_000


def _everyone(uow: UnitOfWork, tenant_id: str, customer_ids: Any) -> set[str]:
    del uow, tenant_id
    return set(customer_ids)


def _initiation(amount: str) -> dict[str, Any]:
    return {
        "InstructionIdentification": "i-1",
        "EndToEndIdentification": "e-1",
        "InstructedAmount": {"Amount": amount, "Currency": "GBP"},
        "CreditorAccount": {
            "SchemeName": "UK.OBIE.IBAN",
            "Identification": "GB29NWBK60161331926819",
            "Name": "Bob",
        },
    }


@dataclass
class World:
    engine: Engine
    clock: ManualClock
    ledger: LedgerService
    audit: AuditLog
    consents: ConsentService
    payments: PaymentService
    book: str
    bank: str
    customer: str
    account: str  # the customer's, no overdraft, 100.00 GBP

    def consent(self, amount: str = "10.00", *, authorise: bool = True, **kw: Any) -> Consent:
        request = PaymentRequest(_initiation(amount), {})
        consent, _ = self.consents.create(
            TENANT,
            CLIENT,
            ConsentKind.DOMESTIC_PAYMENT,
            request.consent_request(),
            idempotency_key=ids.new_id("req"),
            **kw,
        )
        if authorise:
            consent = self.consents.authorise(consent.id, self.customer, [self.account])
        return consent

    def transfer(self, consent: Consent, **kw: Any) -> NewTransfer:
        money = consent.payment_details
        assert money is not None
        clearing = self.payments.clearing_account(self.book, money.money)
        fields: dict[str, Any] = {
            "id": ids.new_id("tr"),
            "ledger_id": self.book,
            "debit_account_id": self.account,
            "credit_account_id": clearing,
            "amount": money.money.amount,
            "payment": Payment(self.customer, consent_id=consent.id),
        }
        fields.update(kw)
        return NewTransfer(**fields)


def _world(engine: Engine, *, gates: Sequence[Any] = ()) -> World:
    clock = ManualClock(step_us=1)
    holder: list[LedgerService] = []
    audit = AuditLog(engine, tenant_of=lambda ids_, **kw: holder[0].ledger_tenants(ids_, **kw))
    events = EventService(
        engine, audit=audit, event_types=(*OB_CONSENT_EVENT_TYPES, *OB_PAYMENT_EVENT_TYPES)
    )
    ledger = LedgerService(
        engine,
        clock_=clock,
        customers=_everyone,
        sinks=[PaymentSink(audit=audit, events=events)],
        gates=gates,
    )
    holder.append(ledger)
    consents = ConsentService(
        engine, ledger, request_mac_key=b"k" * 32, audit=audit, events=events, now_us=clock.now_us
    )
    payments = PaymentService(
        engine, ledger, consents, audit=audit, events=events, now_us=clock.now_us
    )
    book = ledger.create_ledger("books", tenant_id=TENANT).id
    customer = ids.new_id("cus")
    bank, account = (
        a.id
        for a in ledger.create_accounts(
            [
                AccountSpec(book, "GBP", Direction.DEBIT),
                AccountSpec(
                    book,
                    "GBP",
                    Direction.CREDIT,
                    AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS,
                    customer_id=customer,
                ),
            ]
        )
    )
    ledger.post_transfers([NewTransfer(ids.new_id("tr"), book, bank, account, 10_000)])
    return World(engine, clock, ledger, audit, consents, payments, book, bank, customer, account)


@pytest.fixture
def world(db_engine: Engine) -> World:
    return _world(db_engine)


def _payments_of(engine: Engine, consent_id: str) -> int:
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT COUNT(*) FROM ob_payments WHERE consent_id = :c"), {"c": consent_id}
        ).scalar_one()
    return int(found)


# -- the consent gate ----------------------------------------------------------------------


def test_the_consent_gate_allows_only_the_payment_its_consent_authorised(world: World) -> None:
    w = world
    gate = ConsentGate(w.engine, now_us=w.clock.now_us)
    consent = w.consent("10.00")
    right = w.transfer(consent)
    assert gate.decide([right], ACTOR) == [None]
    other_account = w.ledger.create_accounts(
        [AccountSpec(w.book, "GBP", Direction.CREDIT, customer_id=w.customer)]
    )[0].id

    def code(t: NewTransfer, actor: str | None = ACTOR) -> str | None:
        (decision,) = gate.decide([t], actor)
        return None if decision is None else decision.code

    assert code(w.transfer(consent, amount=999)) == OB_CONSENT_MISMATCH
    assert code(w.transfer(consent, debit_account_id=other_account)) == OB_CONSENT_MISMATCH
    assert code(w.transfer(consent, credit_account_id=w.bank)) == OB_CONSENT_MISMATCH
    payer = Payment(ids.new_id("cus"), consent_id=consent.id)
    assert code(w.transfer(consent, payment=payer)) == OB_CONSENT_MISMATCH
    assert code(right, "tpp:tpp_someone_else") == OB_CONSENT_MISMATCH
    assert code(right, None) == OB_CONSENT_MISMATCH
    nobody = Payment(w.customer, consent_id="obc_nobody")
    assert code(w.transfer(consent, payment=nobody)) == OB_CONSENT_NOT_AUTHORISED
    waiting = w.consent(authorise=False)
    assert code(w.transfer(waiting)) == OB_CONSENT_NOT_AUTHORISED
    # A consent pays once: a second transfer of one batch naming it is blocked.
    twice = gate.decide([right, w.transfer(consent)], ACTOR)
    assert twice[0] is None
    assert twice[1] is not None
    assert twice[1].code == OB_CONSENT_NOT_AUTHORISED
    # Past an expiry (a payment consent has none in v4.0; the gate checks it all the same).
    expiring = w.consent(expires_at_us=w.clock.t + HOUR_US)
    assert code(w.transfer(expiring)) is None
    w.clock.advance(HOUR_US + 1)
    assert code(w.transfer(expiring)) == OB_CONSENT_NOT_AUTHORISED
    # A transfer without a consent is none of its business.
    plain = NewTransfer(ids.new_id("tr"), w.book, w.bank, w.account, 1)
    assert gate.decide([plain], ACTOR) == [None]


def test_a_payments_only_gate_is_not_asked_about_a_batch_without_payments() -> None:
    asked: list[int] = []

    class Counting:
        name = "counting"
        budget_ms = 1_000
        fail_open = False
        payments_only = True
        errors = ()

        def decide(
            self, batch: Sequence[NewTransfer], actor: str | None
        ) -> Sequence[GateDecision | None]:
            asked.append(len(batch))
            return [None] * len(batch)

    runner = GateRunner([Counting()])
    try:
        plain = [NewTransfer(f"t{i}", "ldg", "a", "b", 1) for i in range(3)]
        assert not runner.run(plain, "x")
        assert asked == []
        paid = [*plain, NewTransfer("t9", "ldg", "a", "b", 1, payment=Payment("cus_1"))]
        runner.run(paid, "x")
        assert asked == [4]
        # Of a batch gathered from several actors, only the parts with a payment.
        runner.run(paid, None, actors=["p", "p", "q", "q"])
        assert asked == [4, 2]
    finally:
        runner.close()


# -- the consent consumed in the posting transaction ---------------------------------------


def test_the_posting_transaction_consumes_a_consent_once_without_the_gate(world: World) -> None:
    """No gate installed here: two threads each post a payment of the same consent (different
    transfer ids); the posting transaction's sink lets one through."""
    w = world
    consent = w.consent("30.00")
    transfers = [w.transfer(consent) for _ in range(4)]
    results: list[object] = []
    barrier = threading.Barrier(len(transfers))

    def post(t: NewTransfer) -> None:
        barrier.wait()
        try:
            (outcome,) = w.ledger.post_transfers([t], actor=ACTOR)
            results.append(outcome.result)
        except StrongroomError as exc:
            results.append(exc)

    threads = [threading.Thread(target=post, args=(t,)) for t in transfers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    created = [r for r in results if r is TransferResult.CREATED]
    refused = [r for r in results if isinstance(r, ConsentNotInForce)]
    assert (len(created), len(refused)) == (1, len(transfers) - 1), results
    assert w.consents.get(consent.id).status is ConsentStatus.COND
    assert _payments_of(w.engine, consent.id) == 1
    assert w.ledger.get_account(w.account).balances.debits_posted == 3_000
    leaves = w.audit.records_for(TENANT, [consent.id])[consent.id]
    assert [leaf["type"] for leaf in leaves].count("openbanking.consent_consumed") == 1


def test_a_refused_payment_consumes_its_consent_and_moves_nothing(world: World) -> None:
    w = world
    consent = w.consent("100.01")  # the account holds 100.00
    request = PaymentRequest(dict(consent.request["Initiation"]), {})
    view = w.payments.submit(consent, CLIENT, "key-1", request)
    assert (view.state.status, view.state.reason_code, view.state.reason) == (
        "RJCT",
        "AM04",
        "insufficient_funds",
    )
    assert w.ledger.get_account(w.account).balances.debits_posted == 0
    assert w.consents.get(consent.id).status is ConsentStatus.COND
    # The same key and request: the same answer; another consent under that key: refused.
    again = w.payments.submit(w.consents.get(consent.id), CLIENT, "key-1", request)
    assert again.id == view.id
    assert again.state == view.state
    other = w.consent("1.00")
    with pytest.raises(StrongroomError) as caught:
        w.payments.submit(other, CLIENT, "key-1", PaymentRequest(other.request["Initiation"], {}))
    assert caught.value.code == "ob_idempotency_key_reused"
    assert w.consents.get(other.id).status is ConsentStatus.AUTH  # nothing written
    # The consumed consent makes no second payment, under any key.
    with pytest.raises(ConsentNotInForce):
        w.payments.submit(w.consents.get(consent.id), CLIENT, "key-2", request)
    assert _payments_of(w.engine, consent.id) == 1


def test_two_refused_submissions_of_one_key_both_answer_the_rejected_payment(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The racing order, made deterministic: the second submission under the key read no
    payment (the first had not committed) and was refused by the ledger too; then the first
    committed its rejected payment. The second's consume finds the consent used: it answers
    the first's payment, not ConsentNotInForce."""
    w = world
    consent = w.consent("100.01")  # the account holds 100.00
    request = PaymentRequest(dict(consent.request["Initiation"]), {})
    first = w.payments.submit(consent, CLIENT, "key-1", request)
    assert (first.state.status, first.state.reason) == ("RJCT", "insufficient_funds")
    # The second saw what was there before the first committed: no payment under the key,
    # until its own consume ran.
    real_get, real_consume = service_module.store.get, service_module.consume
    consumed: list[str] = []

    def stale_get(uow: UnitOfWork, payment_id: str) -> Any:
        return real_get(uow, payment_id) if consumed else None

    def noted_consume(uow: UnitOfWork, consent_id: str, **kw: Any) -> Any:
        consumed.append(consent_id)
        return real_consume(uow, consent_id, **kw)

    monkeypatch.setattr(service_module.store, "get", stale_get)
    monkeypatch.setattr(service_module, "consume", noted_consume)
    second = w.payments.submit(consent, CLIENT, "key-1", request)  # the consent as it was read
    assert consumed == [consent.id]  # it did race: its consume found the consent used
    assert (second.id, second.state) == (first.id, first.state)
    assert _payments_of(w.engine, consent.id) == 1
    leaves = w.audit.records_for(TENANT, [consent.id])[consent.id]
    assert [leaf["type"] for leaf in leaves].count("openbanking.consent_consumed") == 1


def test_the_clearing_account_is_made_once(world: World) -> None:
    w = world
    consent = w.consent()
    details = consent.payment_details
    assert details is not None
    first = w.payments.clearing_account(w.book, details.money)
    w.payments._clearing.clear()  # another process: it finds the account made
    assert w.payments.clearing_account(w.book, details.money) == first
    assert first == clearing_account_id(w.book, "GBP")
    assert w.ledger.get_account(first).metadata == {"role": "openbanking_outbound_clearing"}


# -- the signing key -----------------------------------------------------------------------


def test_the_signing_key_is_made_once_and_shared(db_engine: Engine) -> None:
    one = ResponseSigner(db_engine, issuer="https://bank.example", sealer=None)
    two = ResponseSigner(db_engine, issuer="https://bank.example", sealer=None)
    assert one.jwks() == {"keys": []}
    body = b'{"Data":{}}'
    signature = one.sign(body)
    keys = one.jwks()
    assert len(keys["keys"]) == 1
    assert two.jwks() == keys
    verify_detached(two.sign(body), body, jose.parse_client_jwks(keys))  # the same key
    header = verify_detached(signature, body, jose.parse_client_jwks(keys))
    assert header["http://openbanking.org.uk/tan"] == "bank.example"
    assert len(one.jwks()["keys"]) == 1
    with db_engine.connect() as conn:
        (public,) = conn.execute(sa.text("SELECT public_jwk FROM ob_signing_keys")).scalars()
    assert "d" not in json.loads(public)  # the public half only
