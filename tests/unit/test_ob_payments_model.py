"""The payments' pure model: a payment's id from the client's key, what an Initiation asks in the
ledger's terms (and its refusals), and a payment's OB status read from its ledger transfer."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from strongroom.core.errors import InvalidRequest
from strongroom.ledger.model import Action, Status, TransferRecord
from strongroom.openbanking.payments import model
from strongroom.openbanking.payments.model import PaymentStatus

INITIATION: dict[str, Any] = {
    "InstructionIdentification": "i",
    "EndToEndIdentification": "e",
    "InstructedAmount": {"Amount": "1.5", "Currency": "GBP"},
    "CreditorAccount": {
        "SchemeName": "UK.OBIE.SortCodeAccountNumber",
        "Identification": "08080021325698",
        "Name": "Bob",
    },
}


def test_a_payments_id_is_its_clients_key_and_nothing_else() -> None:
    one = model.payment_id("ten_a", "tpp_1", "key-1")
    assert one == model.payment_id("ten_a", "tpp_1", "key-1")
    others = {
        model.payment_id("ten_b", "tpp_1", "key-1"),
        model.payment_id("ten_a", "tpp_2", "key-1"),
        model.payment_id("ten_a", "tpp_1", "key-2"),
        model.payment_id("ten_a", "tpp_1\nkey-1", ""),
    }
    assert one not in others
    assert len(others) == 4
    assert one.startswith("obp_")
    assert len(one) <= model.OB_PAYMENT_ID_LENGTH_MAX


def test_an_initiation_in_the_ledgers_terms() -> None:
    terms = model.read_initiation(INITIATION)
    assert (terms.money.asset.code, terms.money.amount) == ("GBP", 150)
    assert terms.payee == "UK.OBIE.SortCodeAccountNumber:08080021325698"
    assert terms.payee_name == "Bob"
    assert terms.debtor is None
    for instrument, ok in (("UK.OBIE.FPS", True), ("UK.OBIE.SWIFT", False), ("fps", False)):
        given = {**INITIATION, "LocalInstrument": instrument}
        if ok:
            assert model.read_initiation(given).local_instrument == instrument
        else:
            with pytest.raises(InvalidRequest) as caught:
                model.read_initiation(given)
            assert caught.value.code == "unsupported_ob_local_instrument"
            assert caught.value.param == "Data.Initiation.LocalInstrument"
    with pytest.raises(InvalidRequest) as caught:
        model.check_text({"a": ["ok", "\ud800"]}, "Risk")
    assert caught.value.param == "Risk.a[1]"


def _transfer(status: Status, **kw: Any) -> TransferRecord:
    found = TransferRecord(
        id="obp_x",
        ledger_id="ldg",
        action=Action.TRANSFER,
        status=status,
        debit_account_id="a",
        credit_account_id="b",
        amount=1,
        legs=None,
        target_id=None,
        pending=False,
        timeout_s=0,
        expires_at=None,
        metadata=None,
        created_at=100,
    )
    return dataclasses.replace(found, **kw)


def test_a_payments_status_is_its_transfers() -> None:
    posted = model.state_of(100, None, _transfer(Status.POSTED), None)
    assert (posted.status, posted.updated_at_us, posted.reason) == (
        PaymentStatus.ACCEPTED_SETTLEMENT_IN_PROCESS,
        100,
        None,
    )
    held = _transfer(Status.PENDING, pending=True)
    assert model.state_of(100, None, held, None).status is PaymentStatus.PENDING
    resolution = _transfer(Status.POSTED, id="tr_post", created_at=500, action=Action.POST)
    approved = model.state_of(100, None, _transfer(Status.POSTED, pending=True), resolution)
    assert (approved.status, approved.updated_at_us) == ("ACSP", 500)
    declined = model.state_of(100, None, _transfer(Status.VOIDED, pending=True), resolution)
    assert (declined.status, declined.reason_code, declined.reason) == (
        "RJCT",
        "MS03",
        "declined_on_review",
    )
    expired = model.state_of(100, None, _transfer(Status.EXPIRED, expires_at=900), None)
    assert (expired.status, expired.updated_at_us) == ("RJCT", 900)
    refused = model.state_of(100, "insufficient_funds", None, None)
    assert (refused.status, refused.reason_code) == ("RJCT", "AM04")
    assert model.state_of(100, "risk_blocked", None, None).reason_code == "FRAD"
    assert model.state_of(100, "something_new", None, None).reason_code == "MS03"
