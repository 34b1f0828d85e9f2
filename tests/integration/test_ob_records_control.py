"""The control `openbanking_consents_audited` on SQLite and PostgreSQL: consents and payments
made through the services (every status) pass; each hand edit of `ob_consents` or `ob_payments`
behind their leaves is named (a consumed payment consent set back to AUTH with its payment's row
deleted, so the TPP could pay again; a status changed; the selected accounts changed; a consent
row inserted or deleted; a payment row inserted; an expiry removed, a permission added, an
authorised payment consent's amount raised or its creditor changed in its stored request); a
created leaf written before it pinned those (no `request_mac`) is compared as before; the
created leaf and event carry no creditor or account number; not applicable without an audit
log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.audit.records import RecordLeaves
from strongroom.audit.service import AuditLog
from strongroom.compliance.controls.checks import (
    Sources,
    Thresholds,
    openbanking_consents_audited,
)
from strongroom.compliance.controls.model import ControlResult, Outcome
from strongroom.compliance.controls.service import ControlsService
from strongroom.compliance.wiring import controls_service
from strongroom.core import ids
from strongroom.core.clock import format_us
from strongroom.db import tables
from strongroom.events.service import EventService
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.model import AccountFlag, Direction, NewTransfer
from strongroom.ledger.service import LedgerService
from strongroom.openbanking import records as ob_records
from strongroom.openbanking.consents import ConsentKind, ConsentStatus
from strongroom.openbanking.model import Permission
from strongroom.openbanking.payments.service import PaymentRequest, PaymentService
from strongroom.openbanking.payments.sink import OB_PAYMENT_EVENT_TYPES, PaymentSink
from strongroom.openbanking.resources import store
from strongroom.openbanking.resources.model import CONSENT_CREATED, Consent, request_mac_key
from strongroom.openbanking.resources.service import OB_CONSENT_EVENT_TYPES, ConsentService
from strongroom.security.kms import LocalKeyring, master_key_from_secret, new_master_secret
from strongroom.settings import Settings
from tests.integration.test_ledger_service import ManualClock

TENANT = "ten_obr_a"
CLIENT = "tpp_records"
HOUR_US = 3_600_000_000
CREDITOR = "Bob Creditor"
IBAN = "GB29NWBK60161331926819"
OTHER_IBAN = "GB33BUKB20201555555555"
PINNED = ("permissions", "expires_at", "request_mac")  # what a created leaf pins of its row


def _everyone(uow: Any, tenant_id: str, customer_ids: Any) -> set[str]:
    del uow, tenant_id
    return set(customer_ids)


def _initiation(amount: str) -> dict[str, Any]:
    return {
        "InstructionIdentification": "i-1",
        "EndToEndIdentification": "e-1",
        "InstructedAmount": {"Amount": amount, "Currency": "GBP"},
        "CreditorAccount": {"SchemeName": "UK.OBIE.IBAN", "Identification": IBAN,
                            "Name": CREDITOR},
    }  # fmt: skip


@dataclass
class World:
    engine: Engine
    clock: ManualClock
    ledger: LedgerService
    audit: AuditLog
    consents: ConsentService
    payments: PaymentService
    customer: str
    account: str  # the customer's, no overdraft, 100.00 GBP
    other_account: str  # the customer's too
    keyring: LocalKeyring

    def access(self, *, expires_in_us: int | None = None) -> Consent:
        expires = None if expires_in_us is None else self.clock.t + expires_in_us
        consent, _ = self.consents.create(
            TENANT, CLIENT, ConsentKind.ACCOUNT_ACCESS,
            {"Permissions": ["ReadAccountsBasic", "ReadBalances"]},
            permissions=(Permission.READ_ACCOUNTS_BASIC, Permission.READ_BALANCES),
            expires_at_us=expires,
        )  # fmt: skip
        return consent

    def payment_consent(self, amount: str = "10.00") -> Consent:
        request = PaymentRequest(_initiation(amount), {})
        consent, _ = self.payments.create_consent(TENANT, CLIENT, request, ids.new_id("req"))
        return consent

    def authorise(self, consent: Consent, *accounts: str) -> Consent:
        return self.consents.authorise(consent.id, self.customer, list(accounts or [self.account]))

    def pay(self, consent: Consent) -> str:
        request = PaymentRequest(dict(consent.request["Initiation"]), {})
        view = self.payments.submit(
            self.consents.get(consent.id), CLIENT, ids.new_id("key"), request
        )
        return view.id

    def run(self, *, audit: bool = True, leaves: RecordLeaves | None = None) -> ControlResult:
        key = _request_mac_key(self.keyring)
        sources = Sources(
            engine=self.engine,
            kms=self.keyring,
            verify_audit=lambda say: self.audit.verify(progress=say),
            past_retention=lambda: (0, [], {}),
            record_leaves=(leaves or self.audit.record_leaves) if audit else None,
            openbanking_records=lambda leaves, add, say: ob_records.check(
                self.engine, leaves, add, say, request_mac_key=key
            ).counts(),
        )
        service = ControlsService(
            self.engine, sources, Thresholds(365, 72, 7, 30),
            controls=[openbanking_consents_audited],
        )  # fmt: skip
        (result,) = service.run(actor="api_key:key_test").controls
        return result


def _request_mac_key(keyring: LocalKeyring) -> bytes:
    """The key runtime.py gives the consent service and compliance/wiring.py the control."""
    return request_mac_key(keyring.mac)


@pytest.fixture
def world(db_engine: Engine, tmp_path: Path) -> World:
    keyring = LocalKeyring.create(tmp_path / "k.json", master_key_from_secret(new_master_secret()))
    clock = ManualClock(step_us=1)
    holder: list[LedgerService] = []
    audit = AuditLog(db_engine, tenant_of=lambda ids_, **kw: holder[0].ledger_tenants(ids_, **kw))
    events = EventService(
        db_engine, audit=audit, event_types=(*OB_CONSENT_EVENT_TYPES, *OB_PAYMENT_EVENT_TYPES)
    )
    ledger = LedgerService(
        db_engine, clock_=clock, customers=_everyone,
        sinks=[PaymentSink(audit=audit, events=events)],
    )  # fmt: skip
    holder.append(ledger)
    consents = ConsentService(
        db_engine, ledger, request_mac_key=_request_mac_key(keyring), audit=audit, events=events,
        now_us=clock.now_us,
    )  # fmt: skip
    payments = PaymentService(
        db_engine, ledger, consents, audit=audit, events=events, now_us=clock.now_us
    )
    book = ledger.create_ledger("books", tenant_id=TENANT).id
    customer = ids.new_id("cus")
    flag = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
    bank, account, other = (
        a.id
        for a in ledger.create_accounts([
            AccountSpec(book, "GBP", Direction.DEBIT),
            AccountSpec(book, "GBP", Direction.CREDIT, flag, customer_id=customer),
            AccountSpec(book, "GBP", Direction.CREDIT, flag, customer_id=customer),
        ])
    )  # fmt: skip
    ledger.post_transfers([NewTransfer(ids.new_id("tr"), book, bank, account, 10_000)])
    return World(
        db_engine, clock, ledger, audit, consents, payments, customer, account, other, keyring
    )


def _every_state(w: World) -> dict[str, Consent]:
    """A consent in each status of each kind, made through the services; two payments (one
    posted, one refused before posting)."""
    made: dict[str, Consent] = {"access_awau": w.access()}
    made["access_auth"] = w.authorise(w.access(), w.account, w.other_account)
    made["access_rjct"] = w.consents.reject(w.access().id, w.customer)
    made["access_canc_awau"] = w.consents.revoke(w.access().id, actor="tpp:x")
    made["access_canc_auth"] = w.consents.revoke(
        w.authorise(w.access()).id, actor=f"customer:{w.customer}"
    )
    expiring = w.authorise(w.access(expires_in_us=HOUR_US))
    w.clock.advance(2 * HOUR_US)
    assert w.consents.expire_due() == 1
    made["access_expd"] = w.consents.get(expiring.id)
    funds, _ = w.consents.create(
        TENANT, CLIENT, ConsentKind.FUNDS_CONFIRMATION, {"DebtorAccount": {"Name": "x"}}
    )
    made["funds_auth"] = w.authorise(funds)
    made["payment_awau"] = w.payment_consent()
    made["payment_auth"] = w.authorise(w.payment_consent())
    made["payment_rjct"] = w.consents.reject(w.payment_consent().id, w.customer)
    paid = w.authorise(w.payment_consent("10.00"))
    w.pay(paid)
    made["payment_cond"] = w.consents.get(paid.id)
    refused = w.authorise(w.payment_consent("500.00"))  # the account holds 100.00 less 10.00
    w.pay(refused)
    made["payment_cond_refused"] = w.consents.get(refused.id)
    statuses = {name: c.status for name, c in made.items()}
    assert set(statuses.values()) == set(ConsentStatus), statuses
    return made


def _found(result: ControlResult) -> list[tuple[str | None, str, str]]:
    return sorted(
        (f.tenant_id, f.detail["table"], f.detail.get("payment_id") or f.detail["consent_id"])
        for f in result.findings
    )


def _problem(result: ControlResult, table: str, ref: str) -> str:
    (found,) = [
        f.detail["problem"]
        for f in result.findings
        if f.detail["table"] == table
        and ref in (f.detail.get("consent_id"), f.detail.get("payment_id"))
    ]
    return str(found)


def _payment_of(w: World, consent_id: str) -> dict[str, Any]:
    with w.engine.connect() as conn:
        row = conn.execute(
            sa.select(tables.ob_payments).where(tables.ob_payments.c.consent_id == consent_id)
        ).one()
    return dict(row._mapping)


def _set(w: World, consent_id: str, **values: Any) -> None:
    with w.engine.begin() as conn:
        conn.execute(
            sa.update(tables.ob_consents)
            .where(tables.ob_consents.c.id == consent_id)
            .values(**values)
        )


def test_consents_and_payments_in_every_state_pass(world: World) -> None:
    w = world
    _every_state(w)
    result = w.run()
    assert result.outcome is Outcome.PASS, result.findings
    assert result.facts == {"leaves": 26, "consents": 12, "payments": 2}
    assert result.summary == "12 consents and 2 payments against 26 leaves: they match"


def test_a_consumed_consent_set_back_to_auth_without_its_payment_is_named(world: World) -> None:
    """The attack: a payment consent consumed (COND, its payment made) edited back to AUTH and
    its `ob_payments` row deleted, so that the TPP could pay again."""
    w = world
    made = _every_state(w)
    consent = made["payment_cond"]
    payment = _payment_of(w, consent.id)
    _set(w, consent.id, status="AUTH")
    with w.engine.begin() as conn:
        conn.execute(sa.delete(tables.ob_payments).where(tables.ob_payments.c.id == payment["id"]))
    result = w.run()
    assert result.outcome is Outcome.FAIL
    assert _found(result) == [
        (TENANT, "ob_consents", consent.id),
        (TENANT, "ob_payments", payment["id"]),
    ]
    assert "could pay again" in _problem(result, "ob_consents", consent.id)
    assert "row is gone" in _problem(result, "ob_payments", payment["id"])
    assert result.summary.startswith("2 row(s) differ from their audit leaves")
    assert f"the first: ob_consents {consent.id} of {TENANT}" in result.summary
    # It could: the TPP pays a second time. The leaves then agree with the rows again, but the
    # second payment's leaf moved the consent from AUTH where its leaves had left it COND.
    second = w.pay(consent)
    assert second != payment["id"]
    assert w.consents.get(consent.id).status is ConsentStatus.COND
    again = w.run()
    assert again.outcome is Outcome.FAIL
    assert _found(again) == [(TENANT, "ob_consents", consent.id)]
    assert "edited in between" in _problem(again, "ob_consents", consent.id)


def test_a_consent_status_changed_by_hand_is_named(world: World) -> None:
    w = world
    made = _every_state(w)
    _set(w, made["access_rjct"].id, status="AUTH")
    _set(w, made["access_canc_auth"].id, status="AUTH")
    result = w.run()
    assert result.outcome is Outcome.FAIL
    assert _found(result) == sorted(
        [(TENANT, "ob_consents", made["access_rjct"].id),
         (TENANT, "ob_consents", made["access_canc_auth"].id)]
    )  # fmt: skip
    assert _problem(result, "ob_consents", made["access_rjct"].id) == (
        "status AUTH, but its leaves leave it RJCT"
    )


def test_selected_accounts_changed_by_hand_are_named(world: World) -> None:
    w = world
    made = _every_state(w)
    consent = made["access_auth"]
    _set(w, consent.id, account_ids=json.dumps([w.account]))  # one taken away
    widened = made["funds_auth"]
    _set(w, widened.id, account_ids=json.dumps([w.account, w.other_account]))
    result = w.run()
    assert _found(result) == sorted(
        [(TENANT, "ob_consents", consent.id), (TENANT, "ob_consents", widened.id)]
    )
    assert w.other_account in _problem(result, "ob_consents", widened.id)
    assert "selected accounts" in _problem(result, "ob_consents", widened.id)


def test_a_customer_changed_by_hand_is_named(world: World) -> None:
    w = world
    made = _every_state(w)
    _set(w, made["access_auth"].id, customer_id="cus_someone_else")
    result = w.run()
    assert _found(result) == [(TENANT, "ob_consents", made["access_auth"].id)]
    assert "customer_id cus_someone_else" in _problem(result, "ob_consents", made["access_auth"].id)


def test_a_consent_row_inserted_by_hand_is_named(world: World) -> None:
    w = world
    made = _every_state(w)
    with w.engine.connect() as conn:
        row = dict(
            conn.execute(
                sa.select(tables.ob_consents).where(
                    tables.ob_consents.c.id == made["payment_auth"].id
                )
            )
            .one()
            ._mapping
        )
    forged = {**row, "id": "obc_forged", "idempotency_key": None}
    with w.engine.begin() as conn:
        conn.execute(sa.insert(tables.ob_consents).values(**forged))
    result = w.run()
    assert _found(result) == [(TENANT, "ob_consents", "obc_forged")]
    assert _problem(result, "ob_consents", "obc_forged") == (
        "domestic_payment consent, status AUTH: no leaf records it"
    )


def test_a_consent_row_deleted_by_hand_is_named(world: World) -> None:
    w = world
    made = _every_state(w)
    gone = made["access_rjct"].id
    with w.engine.begin() as conn:
        conn.execute(sa.delete(tables.ob_consents).where(tables.ob_consents.c.id == gone))
    result = w.run()
    assert _found(result) == [(TENANT, "ob_consents", gone)]
    assert _problem(result, "ob_consents", gone) == (
        "its leaves record the consent (RJCT), but its row is gone"
    )


def test_a_payment_row_inserted_by_hand_is_named(world: World) -> None:
    w = world
    made = _every_state(w)
    consent = made["payment_auth"]
    with w.engine.begin() as conn:
        conn.execute(
            sa.insert(tables.ob_payments).values(
                id="obp_forged", tenant_id=TENANT, client_id=CLIENT, consent_id=consent.id,
                created_at=w.clock.t, refusal=None,
            )
        )  # fmt: skip
    result = w.run()
    assert _found(result) == [(TENANT, "ob_payments", "obp_forged")]
    assert "no openbanking.consent_consumed leaf" in _problem(result, "ob_payments", "obp_forged")


def test_a_refusal_lifted_by_hand_is_named(world: World) -> None:
    w = world
    made = _every_state(w)
    refused = _payment_of(w, made["payment_cond_refused"].id)
    with w.engine.begin() as conn:
        conn.execute(
            sa.update(tables.ob_payments)
            .where(tables.ob_payments.c.id == refused["id"])
            .values(refusal=None)
        )
    result = w.run()
    assert _found(result) == [(TENANT, "ob_payments", refused["id"])]
    assert "insufficient_funds" in _problem(result, "ob_payments", refused["id"])


def test_findings_carry_no_personal_data_and_each_tenant_sees_its_own(world: World) -> None:
    w = world
    made = _every_state(w)
    for consent in made.values():
        _set(w, consent.id, tenant_id="ten_obr_b")  # every row moved to another tenant
    result = w.run()
    # Each consent twice: a row no leaf of its new tenant records, a row gone from its own.
    assert result.found == 2 * len(made)
    text = json.dumps(result.to_dict())
    assert CREDITOR not in text
    assert IBAN not in text
    mine = result.for_tenant("ten_obr_b")
    assert {f.tenant_id for f in mine.findings} == {"ten_obr_b"}


def test_not_applicable_without_an_audit_log(world: World) -> None:
    w = world
    result = w.run(audit=False)
    assert result.outcome is Outcome.NOT_APPLICABLE
    assert "no audit log" in result.summary


def test_the_compliance_wiring_gives_the_control_its_replay(
    db_url: str, db_engine: Engine, tmp_path: Path
) -> None:
    """`strongroom compliance check` and the scheduled job (both built by controls_service)
    run the control, not its not-applicable branch."""
    settings = Settings(database_url=db_url)
    keyring = LocalKeyring.create(tmp_path / "k.json", master_key_from_secret(new_master_secret()))
    audit = AuditLog(db_engine)
    service = controls_service(settings, db_engine, keyring, audit, None)
    assert service.sources.openbanking_records is not None
    service.controls = (openbanking_consents_audited,)
    (result,) = service.run(actor="api_key:key_test").controls
    assert (result.outcome, result.facts) == (
        Outcome.PASS,
        {"leaves": 0, "consents": 0, "payments": 0},
    )


# -- what the created leaf pins: permissions, expiry, the stored request ---------------------


def _request_of(w: World, consent_id: str) -> dict[str, Any]:
    with w.engine.connect() as conn:
        text = conn.execute(
            sa.select(tables.ob_consents.c.request).where(tables.ob_consents.c.id == consent_id)
        ).scalar_one()
    found: dict[str, Any] = json.loads(text)
    return found


def _set_request(w: World, consent_id: str, request: dict[str, Any]) -> None:
    """A hand edit of the stored request, written as the service writes it (canonical)."""
    _set(w, consent_id, request=store.request_json(request))


def test_an_expiry_removed_by_hand_is_named(world: World) -> None:
    w = world
    _every_state(w)
    consent = w.authorise(w.access(expires_in_us=HOUR_US))
    assert w.run().outcome is Outcome.PASS
    _set(w, consent.id, expires_at=None)  # open for ever: the expiry job never ends it
    result = w.run()
    assert result.outcome is Outcome.FAIL
    assert _found(result) == [(TENANT, "ob_consents", consent.id)]
    assert _problem(result, "ob_consents", consent.id) == (
        f"expires_at none, but its {CONSENT_CREATED} leaf records "
        f"{format_us(consent.expires_at_us or 0)}"
    )
    _set(w, consent.id, expires_at=(consent.expires_at_us or 0) + HOUR_US)  # or extended
    assert _found(w.run()) == [(TENANT, "ob_consents", consent.id)]


def test_a_permission_added_by_hand_is_named(world: World) -> None:
    w = world
    made = _every_state(w)
    consent = made["access_auth"]
    _set(w, consent.id, permissions="ReadAccountsBasic ReadBalances ReadTransactionsDetail")
    payment = made["payment_auth"]  # a payment consent has none
    _set(w, payment.id, permissions="ReadBalances")
    result = w.run()
    assert _found(result) == sorted(
        [(TENANT, "ob_consents", consent.id), (TENANT, "ob_consents", payment.id)]
    )
    assert _problem(result, "ob_consents", consent.id) == (
        "permissions ['ReadAccountsBasic', 'ReadBalances', 'ReadTransactionsDetail'], but its "
        f"{CONSENT_CREATED} leaf records ['ReadAccountsBasic', 'ReadBalances']"
    )
    assert "permissions ['ReadBalances']" in _problem(result, "ob_consents", payment.id)


def test_an_authorised_payments_amount_raised_by_hand_is_named_and_its_payment_too(
    world: World,
) -> None:
    """The attack: the customer authorised 10.00; the stored request is raised to 90.00 and the
    TPP pays 90.00 from it (the payment matches the consent as stored, so it is made)."""
    w = world
    made = _every_state(w)
    consent = made["payment_auth"]
    request = _request_of(w, consent.id)
    request["Initiation"]["InstructedAmount"]["Amount"] = "90.00"
    _set_request(w, consent.id, request)
    result = w.run()
    assert result.outcome is Outcome.FAIL
    assert _found(result) == [(TENANT, "ob_consents", consent.id)]
    problem = _problem(result, "ob_consents", consent.id)
    assert "stored request" in problem
    assert "request_mac" in problem
    assert "90.00" not in json.dumps(result.to_dict())
    before = w.ledger.get_account(w.account).balances.debits_posted
    w.pay(w.consents.get(consent.id))  # every other check is satisfied: the payment is made
    assert w.ledger.get_account(w.account).balances.debits_posted == before + 9_000
    after = w.run()
    assert _found(after) == [(TENANT, "ob_consents", consent.id)]
    assert "stored request" in _problem(after, "ob_consents", consent.id)


def test_a_creditor_changed_by_hand_is_named_without_the_account(world: World) -> None:
    w = world
    made = _every_state(w)
    consent = made["payment_auth"]
    request = _request_of(w, consent.id)
    request["Initiation"]["CreditorAccount"]["Identification"] = OTHER_IBAN
    _set_request(w, consent.id, request)
    awaiting = made["payment_awau"]  # the name only, on a consent not yet authorised
    request = _request_of(w, awaiting.id)
    request["Initiation"]["CreditorAccount"]["Name"] = "Mallory"
    _set_request(w, awaiting.id, request)
    result = w.run()
    assert _found(result) == sorted(
        [(TENANT, "ob_consents", consent.id), (TENANT, "ob_consents", awaiting.id)]
    )
    assert "stored request" in _problem(result, "ob_consents", awaiting.id)
    text = json.dumps(result.to_dict())
    for personal in (CREDITOR, "Mallory", IBAN, OTHER_IBAN):
        assert personal not in text


def test_a_request_rewritten_in_another_form_is_named(world: World) -> None:
    """The MAC is of the column's text, as the service writes it: the same request written
    otherwise (spaces, key order) is an edit too, not a canonical equivalent let through."""
    w = world
    made = _every_state(w)
    consent = made["payment_auth"]
    _set(w, consent.id, request=json.dumps(_request_of(w, consent.id), indent=1))
    assert _found(w.run()) == [(TENANT, "ob_consents", consent.id)]


def _without_pinned(w: World) -> RecordLeaves:
    """The leaves as a deployment before the created leaf pinned anything wrote them."""

    def leaves(types: frozenset[str]) -> Iterator[tuple[str, int, dict[str, Any]]]:
        for log_id, index, content in w.audit.record_leaves(types):
            if content["type"] == CONSENT_CREATED:
                data = {k: v for k, v in content["data"].items() if k not in PINNED}
                content = {**content, "data": data}
            yield log_id, index, content

    return leaves


def test_a_created_leaf_without_the_pinned_fields_is_compared_as_before(world: World) -> None:
    w = world
    made = _every_state(w)
    old = _without_pinned(w)
    assert w.run(leaves=old).outcome is Outcome.PASS
    # Those columns are not compared for such a consent (its leaf records none of them) ...
    _set(w, made["access_expd"].id, expires_at=None)
    _set(w, made["access_auth"].id, permissions="ReadBalances")
    request = _request_of(w, made["payment_auth"].id)
    request["Initiation"]["InstructedAmount"]["Amount"] = "90.00"
    _set_request(w, made["payment_auth"].id, request)
    assert w.run(leaves=old).outcome is Outcome.PASS
    # ... while the rest is, as before; and with the leaves as written, all three are named.
    _set(w, made["access_rjct"].id, status="AUTH")
    assert _found(w.run(leaves=old)) == [(TENANT, "ob_consents", made["access_rjct"].id)]
    assert len(w.run().findings) == 4


def test_the_created_leaf_and_event_carry_no_creditor_nor_account_number(world: World) -> None:
    w = world
    consent = w.payment_consent("12.34")
    (record,) = [
        r for r in w.audit.records_for(TENANT, [consent.id])[consent.id]
        if r["type"] == CONSENT_CREATED
    ]  # fmt: skip
    with w.engine.connect() as conn:
        (event,) = [
            json.loads(data)
            for kind, data in conn.execute(
                sa.select(tables.events.c.type, tables.events.c.data).where(
                    tables.events.c.tenant_id == TENANT
                )
            )
            if kind == CONSENT_CREATED and json.loads(data)["id"] == consent.id
        ]
    assert record["data"] == event
    assert set(event) == {
        "object", "id", "kind", "client_id", "status", "expires_at", "request_mac"
    }  # fmt: skip
    assert event["expires_at"] is None
    assert len(event["request_mac"]) == 64
    assert int(event["request_mac"], 16) >= 0
    text = json.dumps([record, event])
    for clear in (CREDITOR, IBAN, "12.34", "i-1", "e-1"):
        assert clear not in text
    # An account access consent's: its permissions sorted, its expiry as leaves write times.
    access = w.access(expires_in_us=HOUR_US)
    (created,) = [
        r["data"] for r in w.audit.records_for(TENANT, [access.id])[access.id]
        if r["type"] == CONSENT_CREATED
    ]  # fmt: skip
    assert created["permissions"] == ["ReadAccountsBasic", "ReadBalances"]
    assert created["expires_at"] == format_us(access.expires_at_us or 0)
