"""Open banking consents on SQLite and PostgreSQL: every transition of the state machine
through ConsentService, each with its audit leaf, its event and (when access ends) the token
revocation port, in one transaction; the refusals that write nothing; the expiry sweep; the
idempotency key; and the account information reads over the ledger (accounts a consent may
show, transactions paged, filtered by direction and time, balances for funds confirmation)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.audit.service import AuditLog
from strongroom.core import ids
from strongroom.core.clock import format_us
from strongroom.core.errors import InvalidRequest, NotFound, StrongroomError
from strongroom.core.money import Asset
from strongroom.db import tables
from strongroom.db.uow import UnitOfWork
from strongroom.events.service import EventService
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.model import Direction, NewTransfer
from strongroom.ledger.service import LedgerService
from strongroom.openbanking.consents import ConsentKind, ConsentStatus
from strongroom.openbanking.model import CreditDebit, Money, Permission
from strongroom.openbanking.model_errors import ConsentStateError
from strongroom.openbanking.resources import store
from strongroom.openbanking.resources.model import (
    OB_TRANSACTIONS_PAGE_SIZE,
    OB_TRANSACTIONS_SCAN_MAX,
    Consent,
    request_mac,
)
from strongroom.openbanking.resources.reads import AccountInformation, Cursor
from strongroom.openbanking.resources.service import (
    EXPIRY_ACTOR,
    OB_CONSENT_EVENT_TYPES,
    ConsentService,
)
from tests.integration.test_ledger_service import ManualClock

TENANT, OTHER = "ten_ob_a", "ten_ob_b"
CLIENT = "tpp_client_one"
HOUR_US = 3_600_000_000
READ = (Permission.READ_ACCOUNTS_DETAIL, Permission.READ_BALANCES)
AA, FUNDS = ConsentKind.ACCOUNT_ACCESS, ConsentKind.FUNDS_CONFIRMATION
MAC_KEY = b"consent request mac key, tests only"


def _everyone(uow: UnitOfWork, tenant_id: str, customer_ids: Any) -> set[str]:
    del uow, tenant_id
    return set(customer_ids)


@dataclass
class World:
    engine: Engine
    clock: ManualClock
    ledger: LedgerService
    audit: AuditLog
    consents: ConsentService
    book: str
    other_book: str
    bank: str
    revoked: list[str] = field(default_factory=list)

    def account(self, customer: str | None, *, book: str | None = None, asset: str = "GBP") -> str:
        spec = AccountSpec(book or self.book, asset, Direction.CREDIT, customer_id=customer)
        return self.ledger.create_accounts([spec])[0].id

    def create(self, kind: ConsentKind = AA, **kw: Any) -> Consent:
        request: dict[str, Any] = kw.pop("request", None) or (
            {"Permissions": [p.value for p in READ]}
            if kind is AA
            else {"DebtorAccount": {"SchemeName": "UK.OBIE.IBAN", "Identification": "x"}}
        )
        if kind is AA:
            kw.setdefault("permissions", READ)
        consent, created = self.consents.create(
            kw.pop("tenant", TENANT), kw.pop("client", CLIENT), kind, request, **kw
        )
        assert created
        return consent

    def records(self, consent_id: str, tenant: str = TENANT) -> list[dict[str, Any]]:
        return self.audit.records_for(tenant, [consent_id]).get(consent_id, [])

    def events(self, consent_id: str) -> list[tuple[str, dict[str, Any]]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(tables.events.c.type, tables.events.c.data)
                .where(tables.events.c.tenant_id == TENANT)
                .order_by(tables.events.c.id)
            )
            found = [(r[0], json.loads(r[1])) for r in rows]
        return [(t, d) for t, d in found if d.get("id") == consent_id]

    def pay(self, account: str, amount: int, *, out: bool = False) -> None:
        debit, credit = (account, self.bank) if out else (self.bank, account)
        transfer = NewTransfer(ids.new_id("tr"), self.book, debit, credit, amount)
        (outcome,) = self.ledger.post_transfers([transfer])
        assert outcome.result.name == "CREATED", outcome.result


@pytest.fixture
def world(db_engine: Engine) -> World:
    clock = ManualClock()
    ledger = LedgerService(db_engine, clock_=clock, customers=_everyone)
    audit = AuditLog(db_engine, tenant_of=ledger.ledger_tenants)
    events = EventService(db_engine, audit=audit, event_types=OB_CONSENT_EVENT_TYPES)
    w = World(
        db_engine,
        clock,
        ledger,
        audit,
        ConsentService(
            db_engine,
            ledger,
            request_mac_key=MAC_KEY,
            audit=audit,
            events=events,
            now_us=clock.now_us,
        ),
        ledger.create_ledger("books", tenant_id=TENANT).id,
        ledger.create_ledger("theirs", tenant_id=OTHER).id,
        "",
    )
    w.bank = ledger.create_accounts([AccountSpec(w.book, "GBP", Direction.DEBIT)])[0].id

    def revoke_tokens(uow: UnitOfWork, consent_id: str) -> None:
        assert uow.conn is not None  # inside the transaction that ends the consent
        w.revoked.append(consent_id)

    w.consents.revoke_tokens = revoke_tokens
    return w


def _leaf(record: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    return record["type"], record["actor"], record["data"]


def test_create_authorise_revoke_each_with_its_leaf_event_and_token_revocation(
    world: World,
) -> None:
    w = world
    consent = w.create(expires_at_us=w.clock.t + 24 * HOUR_US)
    assert consent.status is ConsentStatus.AWAU
    assert consent.id.startswith("obc_")
    ref = w.consents.lookup(consent.id)
    assert (ref.tenant_id, ref.client_id, ref.kind, ref.status) == (TENANT, CLIENT, AA, "AWAU")
    assert ref.customer_id is None
    assert ref.expires_at_us == consent.expires_at_us

    ada = ids.new_id("cus")
    wallet, savings = w.account(ada), w.account(ada)
    w.clock.advance(1_000_000)
    authorised = w.consents.authorise(consent.id, ada, [savings, wallet])
    assert authorised.status is ConsentStatus.AUTH
    assert authorised.account_ids == (savings, wallet)
    assert authorised.customer_id == ada
    assert authorised.state.status_updated_at_us == consent.state.created_at_us + 1_000_000
    assert w.consents.get(consent.id) == authorised  # as stored
    assert w.consents.lookup(consent.id).customer_id == ada

    w.clock.advance(1_000_000)
    revoked = w.consents.revoke(consent.id, actor=f"tpp:{CLIENT}")
    assert revoked.status is ConsentStatus.CANC
    assert w.revoked == [consent.id]

    base = {"object": "openbanking_consent", "id": consent.id, "kind": "account_access"}
    base["client_id"] = CLIENT
    expected = [
        (
            "openbanking.consent_created",
            f"tpp:{CLIENT}",
            {
                **base,
                "status": "AWAU",
                # What the row keeps that no later leaf restates (openbanking/records.py).
                "permissions": sorted(p.value for p in READ),
                "expires_at": format_us(consent.expires_at_us or 0),
                "request_mac": request_mac(MAC_KEY, store.request_json(consent.request)),
            },
        ),
        (
            "openbanking.consent_authorised",
            f"customer:{ada}",
            {
                **base,
                "status": "AUTH",
                "from": "AWAU",
                "customer_id": ada,
                "account_ids": [savings, wallet],
            },
        ),
        (
            "openbanking.consent_revoked",
            f"tpp:{CLIENT}",
            {**base, "status": "CANC", "from": "AUTH", "customer_id": ada},
        ),
    ]
    assert [_leaf(r) for r in w.records(consent.id)] == expected
    assert w.events(consent.id) == [(kind, data) for kind, _, data in expected]
    # Final: every further event is refused and writes nothing.
    with pytest.raises(ConsentStateError):
        w.consents.revoke(consent.id, actor="x")
    with pytest.raises(ConsentStateError):
        w.consents.authorise(consent.id, ada, [wallet])
    with pytest.raises(ConsentStateError):
        w.consents.reject(consent.id, ada)
    assert len(w.records(consent.id)) == 3
    assert w.consents.get(consent.id) == revoked


def test_reject_and_revoke_while_awaiting_and_their_leaves(world: World) -> None:
    w = world
    ada = ids.new_id("cus")
    rejected = w.consents.reject(w.create().id, ada)
    assert (rejected.status, rejected.customer_id, rejected.account_ids) == ("RJCT", ada, ())
    assert [_leaf(r)[:2] for r in w.records(rejected.id)] == [
        ("openbanking.consent_created", f"tpp:{CLIENT}"),
        ("openbanking.consent_rejected", f"customer:{ada}"),
    ]
    cancelled = w.consents.revoke(w.create(FUNDS).id, actor=f"tpp:{CLIENT}")
    assert (cancelled.status, cancelled.customer_id) == ("CANC", None)
    (_, (kind, actor, data)) = [_leaf(r) for r in w.records(cancelled.id)]
    assert (kind, actor) == ("openbanking.consent_revoked", f"tpp:{CLIENT}")
    assert data == {"object": "openbanking_consent", "id": cancelled.id, "client_id": CLIENT,
                    "kind": "funds_confirmation", "status": "CANC", "from": "AWAU"}  # fmt: skip
    # A code issued before the end must not become a token: the port hears of both ends.
    assert w.revoked == [rejected.id, cancelled.id]
    with pytest.raises(NotFound):
        w.consents.revoke("obc_nobody", actor="x")


def test_authorise_refuses_accounts_the_consent_cannot_have_and_writes_nothing(
    world: World,
) -> None:
    w = world
    ada, bob = ids.new_id("cus"), ids.new_id("cus")
    w.ledger.create_asset("GEMS", 0)
    mine = w.account(ada)
    refused = {
        "another customer's": [w.account(bob)],
        "another tenant's": [w.account(ada, book=w.other_book)],
        "a custom asset": [w.account(ada, asset="GEMS")],
        "unknown": ["acc_nonexistent"],
        "repeated": [mine, mine],
        "none": [],
    }
    consent = w.create()
    for why, accounts in refused.items():
        with pytest.raises(InvalidRequest) as caught:
            w.consents.authorise(consent.id, ada, accounts)
        assert caught.value.code == "consent_accounts_invalid", why
    funds = w.create(FUNDS)
    with pytest.raises(InvalidRequest):
        w.consents.authorise(funds.id, ada, [mine, w.account(ada)])
    for unchanged in (consent, funds):
        assert w.consents.get(unchanged.id) == unchanged
        assert len(w.records(unchanged.id)) == 1  # created only
    assert w.consents.authorise(funds.id, ada, [mine]).account_ids == (mine,)


def test_the_expiry_sweep_ends_open_consents_past_their_time_only(world: World) -> None:
    w = world
    ada = ids.new_id("cus")
    wallet = w.account(ada)
    soon = w.clock.t + HOUR_US
    awaiting = w.create(expires_at_us=soon)
    authorised = w.consents.authorise(w.create(FUNDS, expires_at_us=soon).id, ada, [wallet])
    later = w.create(expires_at_us=soon + 10 * HOUR_US)
    open_ended = w.consents.authorise(w.create().id, ada, [wallet])
    ended = w.consents.revoke(w.create(expires_at_us=soon).id, actor="x")
    w.revoked.clear()
    assert w.consents.expire_due() == 0  # nothing due yet
    w.clock.advance(HOUR_US)
    # The sweep has not run: an authorised consent past its time is no longer in force.
    assert not w.consents.get(authorised.id).in_force(w.clock.t)
    with pytest.raises(ConsentStateError):  # nor may one past its time be authorised
        w.consents.authorise(awaiting.id, ada, [wallet])
    assert w.consents.expire_due(limit=1) == 1  # a bounded batch
    assert w.consents.expire_due() == 1
    assert w.consents.expire_due() == 0
    statuses = {c.id: w.consents.get(c.id).status for c in (awaiting, authorised, later,
                                                           open_ended, ended)}  # fmt: skip
    assert statuses == {awaiting.id: "EXPD", authorised.id: "EXPD", later.id: "AWAU",
                        open_ended.id: "AUTH", ended.id: "CANC"}  # fmt: skip
    assert sorted(w.revoked) == sorted([awaiting.id, authorised.id])
    kind, actor, data = _leaf(w.records(authorised.id)[-1])
    assert (kind, actor) == ("openbanking.consent_expired", EXPIRY_ACTOR)
    assert (data["from"], data["status"], data["customer_id"]) == ("AUTH", "EXPD", ada)
    assert [t for t, _ in w.events(awaiting.id)][-1] == "openbanking.consent_expired"


def test_creation_checks_and_the_idempotency_key(world: World) -> None:
    w = world
    with pytest.raises(InvalidRequest) as caught:
        w.create(expires_at_us=w.clock.t)
    assert (caught.value.code, caught.value.param) == (
        "invalid_ob_datetime",
        "Data.ExpirationDateTime",
    )
    with pytest.raises(InvalidRequest) as caught:
        w.create(request={"Permissions": ["ReadBalances"], "Filler": "x" * 5_000})
    assert caught.value.code == "consent_request_too_large"
    first = w.create(idempotency_key="key-1")
    again, created = w.consents.create(
        TENANT, CLIENT, AA, {"Permissions": [p.value for p in READ]}, permissions=READ,
        idempotency_key="key-1",
    )  # fmt: skip
    assert (again, created) == (first, False)
    with pytest.raises(InvalidRequest) as caught:
        w.consents.create(
            TENANT, CLIENT, AA, {"Permissions": ["ReadBalances"]},
            permissions=[Permission.READ_BALANCES], idempotency_key="key-1",
        )  # fmt: skip
    assert caught.value.code == "ob_idempotency_key_reused"
    # The key is the client's, in its tenant: another client's same key is another consent.
    other = w.create(client="tpp_client_two", idempotency_key="key-1")
    assert other.id != first.id
    assert len(w.records(first.id)) == 1


def test_every_kind_and_status_round_trips_through_the_store(world: World) -> None:
    """The row is the consent: each status a kind reaches reads back as it was written."""
    w = world
    ada = ids.new_id("cus")
    wallet = w.account(ada)
    seen: set[tuple[str, str]] = set()
    for kind in (AA, FUNDS):
        for end in ("AUTH", "RJCT", "CANC", "EXPD"):
            consent = w.create(kind, expires_at_us=w.clock.t + HOUR_US)
            if end == "AUTH":
                consent = w.consents.authorise(consent.id, ada, [wallet])
            elif end == "RJCT":
                consent = w.consents.reject(consent.id, ada)
            elif end == "CANC":
                consent = w.consents.revoke(consent.id, actor="x")
            else:
                w.clock.advance(HOUR_US)
                assert w.consents.expire_due() >= 1
                consent = w.consents.get(consent.id)
            with UnitOfWork(w.engine, write=False) as uow:
                assert store.get(uow, consent.id) == consent
            seen.add((kind.value, consent.status.value))
    assert len(seen) == 8


# -- account information reads -------------------------------------------------------------


def test_transactions_are_booked_entries_paged_and_bounded(world: World) -> None:
    w = world
    ada = ids.new_id("cus")
    wallet, savings = w.account(ada), w.account(ada)
    reads = AccountInformation(w.ledger)
    count = OB_TRANSACTIONS_PAGE_SIZE + 7
    for i in range(count):
        w.clock.advance(1_000_000)
        if i % 2 == 0:
            w.pay(wallet, 100 + i)
        else:
            w.pay(wallet, 1, out=True)
    w.pay(savings, 5)
    # A reservation is not a transaction.
    hold = NewTransfer(ids.new_id("tr"), w.book, wallet, w.bank, 7, pending=True)
    w.ledger.post_transfers([hold])
    consent = w.consents.authorise(w.create().id, ada, [wallet, savings])
    accounts = reads.accounts(consent)
    assert [a.id for a in accounts] == [wallet, savings]
    both = frozenset(CreditDebit)

    pages, cursor = [], None
    while True:
        page = reads.transactions(accounts, both, from_us=None, to_us=None, cursor=cursor)
        pages.append(page.items)
        if page.next is None:
            break
        cursor = Cursor.decode(page.next.encode())
    seen = [(a.id, e.version) for items in pages for a, e in items]
    assert len(seen) == len(set(seen)) == count + 1  # every booked entry once, none pending
    assert all(len(items) <= OB_TRANSACTIONS_PAGE_SIZE for items in pages)
    assert [a for a, _ in seen] == [wallet] * count + [savings]
    versions = [v for a, v in seen if a == wallet]
    assert versions == sorted(versions, reverse=True)  # newest first

    credits = reads.transactions(
        accounts[:1], frozenset({CreditDebit.CREDIT}), from_us=None, to_us=None, cursor=None
    )
    assert {e.direction for _, e in credits.items} == {Direction.CREDIT}
    assert len(credits.items) == (count + 1) // 2
    # A period: the entries booked within it, at both ends.
    entries = [e for items in pages for a, e in items if a.id == wallet]
    first, last = entries[-5].created_at, entries[-10].created_at
    period = reads.transactions(accounts[:1], both, from_us=first, to_us=last, cursor=None)
    assert [e.version for _, e in period.items] == [e.version for e in entries[-10:-4]]
    assert period.next is None
    with pytest.raises(NotFound):
        reads.transactions(accounts[:1], both, from_us=None, to_us=None,
                           cursor=Cursor(savings, 0))  # fmt: skip


def test_a_page_examines_a_bounded_number_of_entries(world: World) -> None:
    """Debits only, over an account of credits: each page reads at most the scan bound and
    says where to go on, until the account is read."""
    w = world
    ada = ids.new_id("cus")
    wallet = w.account(ada)
    transfers = [
        NewTransfer(ids.new_id("tr"), w.book, w.bank, wallet, 1)
        for _ in range(OB_TRANSACTIONS_SCAN_MAX + 3)
    ]
    w.ledger.post_transfers(transfers)
    consent = w.consents.authorise(w.create().id, ada, [wallet])
    reads = AccountInformation(w.ledger)
    accounts = reads.accounts(consent)
    debits = frozenset({CreditDebit.DEBIT})
    first = reads.transactions(accounts, debits, from_us=None, to_us=None, cursor=None)
    assert first.items == []
    assert first.next == Cursor(wallet, 4)
    last = reads.transactions(accounts, debits, from_us=None, to_us=None, cursor=first.next)
    assert last.items == []
    assert last.next is None


def test_funds_available_answers_against_the_available_balance(world: World) -> None:
    w = world
    ada = ids.new_id("cus")
    wallet = w.account(ada)
    w.pay(wallet, 1_000)
    hold = NewTransfer(ids.new_id("tr"), w.book, wallet, w.bank, 300, pending=True)
    w.ledger.post_transfers([hold])
    consent = w.consents.authorise(w.create(FUNDS).id, ada, [wallet])
    reads = AccountInformation(w.ledger)
    account = reads.account(consent, wallet)
    gbp = Asset("GBP", 2)
    assert reads.funds_available(account, Money(gbp, 700))
    assert not reads.funds_available(account, Money(gbp, 701))  # 300 is reserved
    with pytest.raises(StrongroomError) as caught:
        reads.funds_available(account, Money(Asset("EUR", 2), 1))
    assert caught.value.code == "consent_currency_mismatch"
    with pytest.raises(NotFound):
        reads.account(consent, w.account(ada))  # the customer's, but not under this consent
