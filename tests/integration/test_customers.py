"""Customers and counterparties on both backends: sealed fields, blind-index lookup, reveals as
audit leaves, accounts that name their customer, legal hold, and erasure by crypto-shredding
after which the ledger and the audit log still verify and no table holds the personal data."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.audit.service import AuditLog
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.customers.counterparties import CounterpartyService
from strongroom.customers.errors import CustomerErased, LegalHold
from strongroom.customers.service import CUSTOMER_EVENT_TYPES, CustomerService, record_of
from strongroom.db.uow import UnitOfWork
from strongroom.events.dispatcher import Dispatcher, DispatcherConfig
from strongroom.events.service import EventService
from strongroom.ledger.model import Direction
from strongroom.ledger.service import AccountSpec, LedgerService, NewTransfer
from strongroom.runtime import build_ledger
from strongroom.security.envelope import Envelope
from strongroom.security.errors import DataErased
from strongroom.security.kms import LocalKeyring, master_key_from_secret, new_master_secret
from strongroom.settings import Settings

ADA: dict[str, Any] = {
    "name": "Ada Lovelace",
    "date_of_birth": "1985-12-10",
    "address": {"line1": "12 St James's Square", "city": "London", "country": "gb"},
    "email": "Ada.Lovelace@Example.com",
    "phone": "+44 7700 900123",
    "national_id": "QQ-12 34 56 C",
}
# Each value as it is stored before sealing (normalised), to search every table for.
ADA_VALUES = (
    "Ada Lovelace",
    "1985-12-10",
    "St James's Square",
    "ada.lovelace@example.com",
    "+447700900123",
    "QQ123456C",
)
ACTOR = "api_key:key_test"


@dataclass
class World:
    engine: Engine
    ledger: LedgerService
    audit: AuditLog
    events: EventService
    envelope: Envelope
    customers: CustomerService
    counterparties: CounterpartyService


@pytest.fixture
def world(db_url: str, db_engine: Engine, tmp_path: Path) -> World:
    ledger, audit = build_ledger(db_engine, Settings(database_url=db_url))
    keyring = LocalKeyring.create(
        tmp_path / "keyring.json", master_key_from_secret(new_master_secret())
    )
    envelope = Envelope(keyring)
    events = EventService(db_engine, audit=audit, event_types=CUSTOMER_EVENT_TYPES)
    return World(
        db_engine,
        ledger,
        audit,
        events,
        envelope,
        CustomerService(db_engine, envelope, audit=audit, events=events, ledger=ledger),
        CounterpartyService(db_engine, envelope, audit=audit),
    )


def _column(world: World, query: str) -> list[Any]:
    with world.engine.connect() as conn:
        return [row[0] for row in conn.execute(sa.text(query))]


def _leaves(world: World, tenant: str) -> list[dict[str, Any]]:
    found, _ = world.audit.leaves(tenant, 0, 1_000)
    return found


def test_answers_are_masked_and_a_reveal_is_an_audit_leaf(world: World) -> None:
    ada = world.customers.create("ten_a", "person", ADA, {"crm": "c-1"}, actor=ACTOR)
    masked = world.customers.get("ten_a", ada.id).to_dict()
    assert masked["name"] == "A** L*******"
    assert masked["email"] == "a***@example.com"
    assert masked["phone"] == "+**********23"
    assert masked["national_id"] == "*****456C"
    assert masked["date_of_birth"] == "1985"
    assert masked["address"] == {"country": "GB"}
    assert masked["metadata"] == {"crm": "c-1"}
    assert masked["erased"] is False
    full = world.customers.reveal("ten_a", ada.id, actor=ACTOR, fields=["email", "phone"])
    assert full["email"] == "ada.lovelace@example.com"
    assert full["phone"] == "+447700900123"
    assert full["name"] is None  # not asked for
    everything = world.customers.reveal("ten_a", ada.id, actor=ACTOR)
    assert everything["address"]["line1"] == "12 St James's Square"
    with pytest.raises(NotFound):
        world.customers.reveal("ten_b", ada.id, actor=ACTOR)  # another tenant's
    leaves = _leaves(world, "ten_a")
    assert [x["type"] for x in leaves] == [
        "customer.created",
        "customer.pii_revealed",
        "customer.pii_revealed",
    ]
    assert leaves[1]["content"]["actor"] == ACTOR
    assert leaves[1]["content"]["data"] == {"customer_id": ada.id, "fields": ["email", "phone"]}
    created = leaves[0]["content"]["data"]
    assert sorted(created["sealed"]) == sorted(ADA)  # a digest per field, not the value
    text = json.dumps(leaves)
    for value in ADA_VALUES:
        assert value not in text
    events = world.events.list_events(tenant_id="ten_a").data
    assert [(e.type, e.ledger_id, json.loads(e.data)) for e in events] == [
        ("customer.created", "", {"id": ada.id, "kind": "person", "object": "customer"})
    ]
    assert world.events.list_events(tenant_id="ten_b").data == []


def test_lookup_by_blind_index_normalises_and_stays_in_the_tenant(world: World) -> None:
    ada = world.customers.create("ten_a", "person", ADA, actor=ACTOR)
    other = world.customers.create("ten_a", "person", {"name": "Bob"}, actor=ACTOR)
    theirs = world.customers.create("ten_b", "person", ADA, actor=ACTOR)
    find = world.customers.list_customers
    assert [c.id for c in find("ten_a", email="  ADA.lovelace@EXAMPLE.com ").data] == [ada.id]
    assert [c.id for c in find("ten_a", national_id="qq 123456-c").data] == [ada.id]
    assert [c.id for c in find("ten_b", national_id="QQ123456C").data] == [theirs.id]
    assert find("ten_a", email="nobody@example.com").data == []
    assert [c.id for c in find("ten_a").data] == sorted([ada.id, other.id])
    # One tenant's index of a value is not another's: the key is per tenant.
    indexes = {bytes(v) for v in _column(world, "SELECT email_index FROM customers") if v}
    assert len(indexes) == 2
    with pytest.raises(InvalidRequest) as refused:
        find("ten_a", email="not-an-address")
    assert "not-an-address" not in str(refused.value)  # the value is never echoed


def test_an_update_seals_again_and_moves_the_index(world: World) -> None:
    ada = world.customers.create("ten_a", "person", ADA, actor=ACTOR)
    (before,) = _column(world, "SELECT email_sealed FROM customers")
    updated = world.customers.update(
        "ten_a", ada.id, {"email": "ada@analytical.engine"}, {"crm": "c-2"}, actor=ACTOR
    )
    assert updated.to_dict()["email"] == "a***@analytical.engine"
    assert updated.to_dict()["name"] == "A** L*******"  # kept
    assert world.customers.list_customers("ten_a", email=ADA["email"]).data == []
    found = world.customers.list_customers("ten_a", email="ADA@analytical.engine").data
    assert [c.id for c in found] == [ada.id]
    (after,) = _column(world, "SELECT email_sealed FROM customers")
    assert bytes(before) != bytes(after)
    leaves = [x["content"] for x in _leaves(world, "ten_a")]
    # Each lookup is a leaf: who, which field, how many found; never the value.
    assert [(x["type"], x["data"]) for x in leaves[-2:]] == [
        ("customer.looked_up", {"field": "email", "found": 0}),
        ("customer.looked_up", {"field": "email", "found": 1}),
    ]
    assert all(b"analytical" not in json.dumps(x).encode() for x in leaves[-2:])
    leaf = leaves[-3]
    assert leaf["data"]["fields"] == ["email", "metadata"]
    event = world.events.list_events(tenant_id="ten_a").data[0]
    assert json.loads(event.data) == {
        "id": ada.id,
        "object": "customer",
        "fields": ["email", "metadata"],
    }


def test_accounts_name_a_customer_of_their_tenant(world: World) -> None:
    ada = world.customers.create("ten_a", "person", ADA, actor=ACTOR)
    theirs = world.customers.create("ten_b", "person", {"name": "Eve"}, actor=ACTOR)
    book = world.ledger.create_ledger("books", tenant_id="ten_a")
    spec = AccountSpec(book.id, "USD", Direction.CREDIT, customer_id=ada.id)
    account = world.ledger.create_accounts([spec])[0]
    assert account.customer_id == ada.id
    assert account.to_dict()["customer_id"] == ada.id
    for wrong in (theirs.id, "cus_nobody"):
        with pytest.raises(NotFound):
            world.ledger.create_accounts(
                [AccountSpec(book.id, "USD", Direction.CREDIT, customer_id=wrong)]
            )
    world.ledger.create_accounts([AccountSpec(book.id, "USD", Direction.DEBIT)])
    page = world.customers.accounts("ten_a", ada.id)
    assert [a.id for a in page.data] == [account.id]
    with pytest.raises(NotFound):
        world.customers.accounts("ten_b", ada.id)
    leaf = next(x for x in _leaves(world, "ten_a") if x["type"] == "account.created")
    assert leaf["content"]["data"]["customer_id"] == ada.id


def test_a_legal_hold_refuses_erasure_until_cleared(world: World) -> None:
    ada = world.customers.create("ten_a", "person", ADA, actor=ACTOR)
    assert world.customers.set_legal_hold("ten_a", ada.id, True, actor=ACTOR).legal_hold
    with pytest.raises(LegalHold):
        world.customers.erase("ten_a", ada.id, actor=ACTOR)
    assert world.customers.reveal("ten_a", ada.id, actor=ACTOR)["name"] == "Ada Lovelace"
    world.customers.set_legal_hold("ten_a", ada.id, False, actor=ACTOR)
    erased = world.customers.erase("ten_a", ada.id, actor=ACTOR)
    again = world.customers.erase("ten_a", ada.id, actor=ACTOR)
    assert erased.to_dict() == again.to_dict()
    types = [x["type"] for x in _leaves(world, "ten_a")]
    assert types == [
        "customer.created",
        "customer.legal_hold_set",
        "customer.pii_revealed",
        "customer.legal_hold_cleared",
        "customer.erased",
    ]


def _dump(engine: Engine) -> list[Any]:
    """Every value of every table of the database."""
    inspector = sa.inspect(engine)
    values: list[Any] = []
    with engine.connect() as conn:
        for table in inspector.get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                values.extend(row)
    return values


def _holds(values: list[Any], secret: str) -> bool:
    needles = [secret.encode(), base64.b64encode(secret.encode())]
    needles.append(base64.urlsafe_b64encode(secret.encode()))
    for value in values:
        raw = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
        if any(n in raw for n in needles) or any(n.decode().encode() in raw for n in needles):
            return True
    return False


def test_erasure_keeps_the_ledger_and_the_log_verifiable_and_the_data_unrecoverable(
    world: World,
) -> None:
    ada = world.customers.create("ten_a", "person", ADA, actor=ACTOR)
    pay = world.counterparties.create("ten_a", "Charles Babbage", "GB29 NWBK 6016 1331 9268 19",
                                      "gb", actor=ACTOR)  # fmt: skip
    book = world.ledger.create_ledger("books", tenant_id="ten_a")
    bank, wallet = world.ledger.create_accounts(
        [
            AccountSpec(book.id, "USD", Direction.DEBIT),
            AccountSpec(book.id, "USD", Direction.CREDIT, customer_id=ada.id),
        ]
    )
    deposit = NewTransfer("tr_pay_1", book.id, bank.id, wallet.id, 1_000)
    world.ledger.post_transfers([deposit])
    world.customers.reveal("ten_a", ada.id, actor=ACTOR)
    (sealed,) = _column(world, "SELECT name_sealed FROM customers")
    assert _holds(_dump(world.engine), "ada.lovelace@example.com") is False  # sealed already
    world.customers.erase("ten_a", ada.id, actor=ACTOR)
    world.counterparties.erase("ten_a", pay.id, actor=ACTOR)

    # The customer answers, erased; its personal data is gone for everyone.
    view = world.customers.get("ten_a", ada.id).to_dict()
    assert view["erased"] is True
    assert all(view[name] is None for name in ADA)
    with pytest.raises(DataErased):
        world.customers.reveal("ten_a", ada.id, actor=ACTOR)
    with pytest.raises(CustomerErased):
        world.customers.update("ten_a", ada.id, {"name": "Ada"}, actor=ACTOR)
    with UnitOfWork(world.engine, write=False) as uow, pytest.raises(DataErased):
        world.envelope.subject(uow, "ten_a", ada.id).open(record_of(ada.id), "name", bytes(sealed))
    assert world.customers.list_customers("ten_a", email=ADA["email"]).data == []
    assert world.counterparties.get("ten_a", pay.id).to_dict()["name"] is None

    # The ledger, its balances and the audit log still verify.
    assert world.ledger.get_account(wallet.id).balance_view()["posted"] == 1_000
    assert [a.id for a in world.customers.accounts("ten_a", ada.id).data] == [wallet.id]
    report = world.ledger.verify()
    assert report.ok, report.problems
    audited = world.audit.verify()
    assert audited.ok, audited.problems
    assert audited.leaves >= 8

    # No table holds a value, in clear or base64.
    values = _dump(world.engine)
    for secret in (*ADA_VALUES, "Charles Babbage", "GB29NWBK60161331926819"):
        assert not _holds(values, secret), secret
    types = [x["type"] for x in _leaves(world, "ten_a")]
    assert "customer.erased" in types
    assert "counterparty.erased" in types


def test_counterparties_are_sealed_masked_and_revealed_on_a_leaf(world: World) -> None:
    pay = world.counterparties.create("ten_a", "Charles Babbage", "gb29-nwbk-6016-1331-9268-19",
                                      "GB", actor=ACTOR)  # fmt: skip
    shown = world.counterparties.get("ten_a", pay.id).to_dict()
    assert shown["name"] == "C****** B******"
    assert shown["account_identifier"] == "******************6819"
    assert shown["country"] == "GB"
    full = world.counterparties.reveal("ten_a", pay.id, actor=ACTOR).to_dict(reveal=True)
    assert full["account_identifier"] == "GB29NWBK60161331926819"
    with pytest.raises(NotFound):
        world.counterparties.get("ten_b", pay.id)
    assert [c.id for c in world.counterparties.list_counterparties("ten_a").data] == [pay.id]
    assert world.counterparties.list_counterparties("ten_b").data == []
    types = [x["type"] for x in _leaves(world, "ten_a")]
    assert types == ["counterparty.created", "counterparty.pii_revealed"]


def test_customer_events_reach_the_tenants_subscribed_endpoints(world: World) -> None:
    """A customer's event has no ledger: it is routed by its own tenant."""
    mine = world.events.create_endpoint(
        "ten_a", "https://hooks.example.com/a", ["customer.created", "customer.erased"]
    )
    transfers_only = world.events.create_endpoint(
        "ten_a", "https://hooks.example.com/t", ["transfer.created"]
    )
    theirs = world.events.create_endpoint("ten_b", "https://hooks.example.com/b")
    ada = world.customers.create("ten_a", "person", {"name": "Ada"}, actor=ACTOR)
    world.customers.erase("ten_a", ada.id, actor=ACTOR)
    with Dispatcher(world.engine, DispatcherConfig()) as dispatcher:
        assert dispatcher.route_once() == 2
    for endpoint, count in ((mine, 2), (transfers_only, 0), (theirs, 0)):
        deliveries = world.events.list_deliveries(endpoint_id=endpoint.id)
        assert len(deliveries) == count, endpoint.url
    event = world.events.list_events(tenant_id="ten_a").data[0]
    assert json.loads(event.payload())["data"] == {"id": ada.id, "object": "customer"}
    assert world.events.get_event(event.id, tenant_id="ten_a").type == "customer.erased"
    with pytest.raises(NotFound):
        world.events.get_event(event.id, tenant_id="ten_b")
