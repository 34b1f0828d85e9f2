"""One resource request reads its consent once (`one_read_per_request`), on SQLite and
PostgreSQL: the token check and the operation judge the same read; outside a request, and
after a change through the service, every read is fresh. And a read of one account of a consent
reads that account only, with the same refusals as the list."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from strongroom.core import ids
from strongroom.core.errors import NotFound
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.model import Direction
from strongroom.ledger.service import LedgerService
from strongroom.openbanking import consents as machine
from strongroom.openbanking.consents import ConsentEvent, ConsentKind, ConsentStatus
from strongroom.openbanking.model import Permission
from strongroom.openbanking.resources import store
from strongroom.openbanking.resources.model import Consent
from strongroom.openbanking.resources.reads import AccountInformation
from strongroom.openbanking.resources.service import ConsentService, one_read_per_request
from tests.integration.test_ledger_service import ManualClock

TENANT, OTHER = "ten_ob_reads_a", "ten_ob_reads_b"


def _everyone(uow: UnitOfWork, tenant_id: str, customer_ids: Any) -> set[str]:
    del uow, tenant_id
    return set(customer_ids)


@dataclasses.dataclass
class World:
    engine: Engine
    clock: ManualClock
    ledger: LedgerService
    consents: ConsentService
    book: str
    other_book: str

    def account(self, customer: str, *, book: str | None = None) -> str:
        spec = AccountSpec(book or self.book, "GBP", Direction.CREDIT, customer_id=customer)
        return self.ledger.create_accounts([spec])[0].id

    def create(self) -> Consent:
        permissions = [Permission.READ_ACCOUNTS_BASIC]
        consent, _ = self.consents.create(
            TENANT,
            "tpp_reads",
            ConsentKind.ACCOUNT_ACCESS,
            {"Permissions": [p.value for p in permissions]},
            permissions=permissions,
        )
        return consent


@pytest.fixture
def world(db_engine: Engine) -> World:
    clock = ManualClock()
    ledger = LedgerService(db_engine, clock_=clock, customers=_everyone)
    return World(
        db_engine,
        clock,
        ledger,
        ConsentService(db_engine, ledger, request_mac_key=b"k" * 32, now_us=clock.now_us),
        ledger.create_ledger("books", tenant_id=TENANT).id,
        ledger.create_ledger("theirs", tenant_id=OTHER).id,
    )


def revoke_elsewhere(w: World, consent: Consent) -> None:
    """Another worker's revocation: straight to the table, not through this service."""
    state, _ = machine.apply(consent.state, ConsentEvent.REVOKE, w.clock.now_us())
    with UnitOfWork(w.engine) as uow:
        store.update(uow, dataclasses.replace(consent, state=state))
        uow.commit()


def authorised(w: World) -> tuple[Consent, str]:
    ada = ids.new_id("cus")
    consent = w.create()
    return w.consents.authorise(consent.id, ada, [w.account(ada)]), ada


def test_within_a_request_a_consent_is_read_once(world: World) -> None:
    w = world
    consent, _ = authorised(w)
    with one_read_per_request():
        assert w.consents.lookup(consent.id).status is ConsentStatus.AUTH  # the token check
        revoke_elsewhere(w, consent)
        assert w.consents.get(consent.id).status is ConsentStatus.AUTH  # the same read
    # Outside a request, and in the next one, the read is fresh.
    assert w.consents.get(consent.id).status is ConsentStatus.CANC
    with one_read_per_request():
        assert w.consents.lookup(consent.id).status is ConsentStatus.CANC


def test_a_change_through_the_service_is_seen_within_the_request(world: World) -> None:
    w = world
    consent, _ = authorised(w)
    with one_read_per_request():
        assert w.consents.get(consent.id).status is ConsentStatus.AUTH
        w.consents.revoke(consent.id, actor="tpp:x")
        assert w.consents.get(consent.id).status is ConsentStatus.CANC


def test_an_unknown_consent_is_not_remembered(world: World) -> None:
    w = world
    with one_read_per_request():
        with pytest.raises(NotFound):
            w.consents.get("obc_missing")
        with pytest.raises(NotFound):
            w.consents.get("obc_missing")


def test_one_account_of_a_consent_is_read_with_the_lists_refusals(world: World) -> None:
    w = world
    consent, ada = authorised(w)
    reads = AccountInformation(w.ledger)
    (account_id,) = consent.account_ids
    assert reads.account(consent, account_id).id == account_id
    assert [a.id for a in reads.accounts(consent)] == [account_id]
    # An account of the customer that the consent does not name, or another tenant's.
    for other in (w.account(ada), w.account(ada, book=w.other_book)):
        with pytest.raises(NotFound):
            reads.account(consent, other)
    # A consent naming an account of another tenant's ledger does not show it.
    theirs = w.account(ada, book=w.other_book)
    widened = dataclasses.replace(consent, account_ids=(account_id, theirs))
    assert [a.id for a in reads.accounts(widened)] == [account_id]
    with pytest.raises(NotFound):
        reads.account(widened, theirs)
