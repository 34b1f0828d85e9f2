"""GDPR rights and compliance controls on both backends: the export holds everything about the
customer and nothing of anyone else's; erasure is refused while AML record keeping applies (open
accounts, then the retention period) and by a manual hold; the retention job erases exactly the
customers past their period; each control fails on what it guards against (planted) and passes
otherwise, the report is stored, an audit leaf and a `compliance.control_failed` event."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.audit.service import AuditLog
from strongroom.compliance.controls import store as controls_store
from strongroom.compliance.controls.checks import Sources, Thresholds
from strongroom.compliance.controls.model import Outcome, Report
from strongroom.compliance.controls.service import ControlsService
from strongroom.compliance.gdpr.model import DAY_US
from strongroom.compliance.gdpr.service import GdprService, count_past_retention
from strongroom.compliance.kyc.limit import KycLimit
from strongroom.compliance.kyc.service import KycService
from strongroom.compliance.wiring import COMPLIANCE_EVENT_TYPES
from strongroom.core import clock
from strongroom.core.errors import NotFound
from strongroom.customers.counterparties import CounterpartyService
from strongroom.customers.errors import LegalHold
from strongroom.customers.service import CUSTOMER_EVENT_TYPES, CustomerService
from strongroom.db import tables
from strongroom.db.uow import UnitOfWork
from strongroom.events.service import EventService
from strongroom.ledger.model import Action, Direction, Leg
from strongroom.ledger.service import AccountSpec, LedgerService, NewTransfer, canonical_metadata
from strongroom.openbanking import records as ob_records
from strongroom.runtime import build_ledger
from strongroom.security.envelope import Envelope
from strongroom.security.kms import LocalKeyring, master_key_from_secret, new_master_secret
from strongroom.settings import Settings
from tests.integration.test_ledger_service import ManualClock

ACTOR = "api_key:key_test"
RETENTION_DAYS = 30
HOUR_US = 3_600_000_000
CARD = "4111 1111 1111 1111"  # Visa's test number: Luhn-valid


@dataclass
class Clock:
    offset_us: int = 0

    def __call__(self) -> int:
        return clock.now_us() + self.offset_us

    def days(self, n: float) -> None:
        self.offset_us = int(n * DAY_US)


@dataclass
class World:
    engine: Engine
    ledger: LedgerService
    audit: AuditLog
    events: EventService
    keyring: LocalKeyring
    customers: CustomerService
    counterparties: CounterpartyService
    gdpr: GdprService
    clock: Clock
    book: str = ""
    bank: str = ""
    snapshots: list[Any] = field(default_factory=list)

    def controls(self, **thresholds: int) -> ControlsService:
        values = {
            "key_rotation_days": 365,
            "case_sla_hours": 72,
            "sanctions_list_max_age_days": 7,
            "aml_retention_days": RETENTION_DAYS,
        } | thresholds
        sources = Sources(
            engine=self.engine,
            kms=self.keyring,
            verify_audit=lambda say: self.audit.verify(progress=say),
            past_retention=lambda: count_past_retention(self.engine, RETENTION_DAYS, self.clock()),
            list_snapshots=self._snapshots,
            record_leaves=self.audit.record_leaves,
            kyc_limits=True,
            openbanking_records=lambda leaves, add, say: ob_records.check(
                self.engine, leaves, add, say, request_mac_key=b"k" * 32
            ).counts(),
        )
        return ControlsService(
            self.engine, sources, Thresholds(**values), audit=self.audit, events=self.events,
            now_us=self.clock,
        )  # fmt: skip

    def _snapshots(self, engine: Engine) -> controls_store.ListSnapshots | str:
        if self.snapshots:
            return self.snapshots[0]  # type: ignore[no-any-return]
        return controls_store.list_snapshots(engine)


@pytest.fixture
def world(db_url: str, db_engine: Engine, tmp_path: Path) -> World:
    ledger, audit = build_ledger(db_engine, Settings(database_url=db_url))
    keyring = LocalKeyring.create(
        tmp_path / "keyring.json", master_key_from_secret(new_master_secret())
    )
    envelope = Envelope(keyring)
    events = EventService(
        db_engine, audit=audit, event_types=(*CUSTOMER_EVENT_TYPES, *COMPLIANCE_EVENT_TYPES)
    )
    customers = CustomerService(db_engine, envelope, audit=audit, events=events, ledger=ledger)
    counterparties = CounterpartyService(db_engine, envelope, audit=audit)
    now = Clock()
    gdpr = GdprService(
        db_engine, customers, counterparties, ledger, retention_days=RETENTION_DAYS,
        audit=audit, events=events, now_us=now,
    )  # fmt: skip
    customers.retention_hold = gdpr.hold_reason
    w = World(db_engine, ledger, audit, events, keyring, customers, counterparties, gdpr, now)
    book = ledger.create_ledger("books", tenant_id="ten_a")
    w.book = book.id
    w.bank = ledger.create_accounts([AccountSpec(book.id, "USD", Direction.DEBIT)])[0].id
    return w


def _account(w: World, customer_id: str | None) -> str:
    spec = AccountSpec(w.book, "USD", Direction.CREDIT, customer_id=customer_id)
    return w.ledger.create_accounts([spec])[0].id


def _leaf_types(w: World, tenant: str) -> list[str]:
    found, _ = w.audit.leaves(tenant, 0, 1_000)
    return [x["type"] for x in found]


def _events(w: World, tenant: str, kind: str) -> list[dict[str, Any]]:
    with w.engine.connect() as conn:
        rows = conn.execute(
            sa.select(tables.events.c.data).where(
                tables.events.c.tenant_id == tenant, tables.events.c.type == kind
            )
        )
        return [json.loads(r[0]) for r in rows]


def _set_activity(w: World, account_id: str, days_ago: float) -> None:
    at = clock.now_us() - int(days_ago * DAY_US)
    with w.engine.begin() as conn:
        conn.execute(
            sa.update(tables.accounts)
            .where(tables.accounts.c.id == account_id)
            .values(updated_at=at)
        )


# -- export ----------------------------------------------------------------------------------


def test_the_export_holds_everything_about_the_customer_and_nothing_else(world: World) -> None:
    w = world
    ada = w.customers.create("ten_a", "person", {"name": "Ada Lovelace", "email": "ada@x.org"},
                             actor=ACTOR)  # fmt: skip
    bob = w.customers.create("ten_a", "person", {"name": "Bob"}, actor=ACTOR)
    eve = w.customers.create("ten_b", "person", {"name": "Eve"}, actor=ACTOR)
    payee = w.counterparties.create("ten_a", "Charles Babbage", "GB29NWBK60161331926819", "gb",
                                    actor=ACTOR)  # fmt: skip
    wallet = _account(w, ada.id)
    bobs = _account(w, bob.id)
    mine = NewTransfer("tr_gdpr_ada", w.book, w.bank, wallet, 1_500,
                       metadata=canonical_metadata({"payee": payee.id}))  # fmt: skip
    theirs = NewTransfer("tr_gdpr_bob", w.book, w.bank, bobs, 700)
    w.ledger.post_transfers([mine, theirs])
    now = clock.now_us()
    with w.engine.begin() as conn:
        conn.execute(sa.insert(tables.risk_decisions), [
            {"transfer_id": t, "tenant_id": "ten_a", "verdict": "allow", "score": 0.1,
             "reasons": "[]", "features": "{}", "created_at": now}
            for t in ("tr_gdpr_ada", "tr_gdpr_bob")
        ])  # fmt: skip
        conn.execute(sa.insert(tables.cases), [
            {"id": f"case_gdpr{i}", "tenant_id": "ten_a", "kind": kind, "status": "open",
             "transfer_id": transfer, "detail": detail, "created_at": now}
            for i, (kind, transfer, detail) in enumerate([
                ("risk_review", "tr_gdpr_ada", None),
                ("sanctions_match", None, json.dumps({"subject": f"customer:{ada.id}"})),
                ("sanctions_match", None, json.dumps({"subject": f"customer:{bob.id}"})),
            ])
        ])  # fmt: skip

    doc = w.gdpr.export("ten_a", ada.id, actor=ACTOR)

    assert doc["object"] == "gdpr_export"
    assert doc["customer"]["id"] == ada.id
    assert doc["personal_data"]["name"] == "Ada Lovelace"
    assert doc["personal_data"]["email"] == "ada@x.org"
    assert [a["id"] for a in doc["accounts"]] == [wallet]
    assert (doc["truncated"], doc["next_starting_after"]) == (False, None)
    (account,) = doc["accounts"]
    assert account["balances"]["posted"] == 1_500
    assert [t["id"] for t in account["transfers"]] == ["tr_gdpr_ada"]
    assert account["transfers_has_more"] is False
    assert [c["id"] for c in doc["counterparties"]] == [payee.id]
    assert doc["counterparties"][0]["name"] == "C****** B******"  # masked
    assert [d["transfer_id"] for d in doc["risk_decisions"]] == ["tr_gdpr_ada"]
    # The fraud review of their payment, never the sanctions alert about them (tipping-off).
    assert [c["id"] for c in doc["cases"]] == ["case_gdpr0"]
    assert "sanctions" not in json.dumps(doc)
    assert "tr_gdpr_bob" not in json.dumps(doc)
    assert bob.id not in json.dumps(doc)
    assert _leaf_types(w, "ten_a")[-2:] == ["customer.pii_revealed", "customer.exported"]
    exported = w.audit.leaves("ten_a", 0, 1_000)[0][-1]["content"]["data"]
    assert exported["transfers"] == 1
    assert exported["cases"] == 1
    assert "Ada" not in json.dumps(exported)
    # Another tenant's customer is one that does not exist.
    with pytest.raises(NotFound):
        w.gdpr.export("ten_a", eve.id, actor=ACTOR)
    with pytest.raises(NotFound):
        w.gdpr.export("ten_b", ada.id, actor=ACTOR)
    # Once erased, the export still answers, its personal data null.
    w.ledger.close_account(wallet)
    w.clock.days(RETENTION_DAYS + 1)
    w.customers.erase("ten_a", ada.id, actor=ACTOR)
    after = w.gdpr.export("ten_a", ada.id, actor=ACTOR)
    assert after["personal_data"] is None
    assert after["customer"]["erased"] is True
    assert [a["id"] for a in after["accounts"]] == [wallet]


def test_the_export_caps_its_transfers_in_all_and_goes_on_from_where_it_stopped(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most GDPR_EXPORT_TOTAL_TRANSFERS_MAX transfers in one answer (5 here): the account
    that reaches it keeps its cursor, `truncated` and `next_starting_after` lead the next
    request on to the accounts left; followed to the end, every transfer is exported once."""
    from strongroom.compliance.gdpr import service as gdpr_service

    monkeypatch.setattr(gdpr_service, "GDPR_EXPORT_TOTAL_TRANSFERS_MAX", 5)
    w = world
    ada = w.customers.create("ten_a", "person", {"name": "Ada"}, actor=ACTOR)
    wallets = sorted(_account(w, ada.id) for _ in range(3))
    posted: dict[str, list[str]] = {}
    for n, wallet in zip((3, 4, 2), wallets, strict=True):
        batch = [NewTransfer(f"tr_cap_{wallet[-6:]}_{i}", w.book, w.bank, wallet, 10 + i)
                 for i in range(n)]  # fmt: skip
        w.ledger.post_transfers(batch)
        posted[wallet] = [t.id for t in batch]

    first = w.gdpr.export("ten_a", ada.id, actor=ACTOR)
    assert first["truncated"] is True
    assert first["accounts_has_more"] is True
    assert [a["id"] for a in first["accounts"]] == wallets[:2]
    assert first["next_starting_after"] == wallets[1]
    one, two = first["accounts"]
    assert (len(one["transfers"]), one["transfers_has_more"]) == (3, False)
    # The second account stops at the cap: the rest through its transfer listing.
    assert (len(two["transfers"]), two["transfers_has_more"]) == (2, True)
    rest = w.ledger.list_transfers(account_id=wallets[1], cursor=two["transfers_next_cursor"],
                                   limit=100)  # fmt: skip
    got = [t["id"] for t in two["transfers"]] + [r.id for r in rest.data]
    assert sorted(got) == sorted(posted[wallets[1]])

    second = w.gdpr.export("ten_a", ada.id, actor=ACTOR,
                           starting_after=first["next_starting_after"])  # fmt: skip
    assert (second["truncated"], second["next_starting_after"]) == (False, None)
    assert [a["id"] for a in second["accounts"]] == [wallets[2]]
    assert sorted(t["id"] for t in second["accounts"][0]["transfers"]) == sorted(posted[wallets[2]])


# -- the AML hold and the retention job ------------------------------------------------------


def test_erasure_is_refused_while_aml_record_keeping_applies(world: World) -> None:
    w = world
    ada = w.customers.create("ten_a", "person", {"name": "Ada"}, actor=ACTOR)
    wallet = _account(w, ada.id)
    with pytest.raises(LegalHold, match="1 open account"):
        w.customers.erase("ten_a", ada.id, actor=ACTOR)
    w.ledger.close_account(wallet)
    with pytest.raises(LegalHold, match="AML record keeping until"):
        w.customers.erase("ten_a", ada.id, actor=ACTOR)
    w.clock.days(RETENTION_DAYS - 1)
    with pytest.raises(LegalHold):
        w.customers.erase("ten_a", ada.id, actor=ACTOR)
    # The manual hold applies whatever the period says.
    w.clock.days(RETENTION_DAYS + 1)
    w.customers.set_legal_hold("ten_a", ada.id, True, actor=ACTOR)
    with pytest.raises(LegalHold, match="under legal hold"):
        w.customers.erase("ten_a", ada.id, actor=ACTOR)
    w.customers.set_legal_hold("ten_a", ada.id, False, actor=ACTOR)
    assert w.customers.erase("ten_a", ada.id, actor=ACTOR).erased_at is not None
    # A customer who never had an account is under no AML hold.
    bob = w.customers.create("ten_a", "person", {"name": "Bob"}, actor=ACTOR)
    assert w.customers.erase("ten_a", bob.id, actor=ACTOR).erased_at is not None


def test_the_retention_job_erases_exactly_the_customers_past_their_period(world: World) -> None:
    w = world
    people = {
        name: w.customers.create("ten_a", "person", {"name": name}, actor=ACTOR).id
        for name in ("due", "recent", "open", "held", "no_account", "one_open")
    }
    for name in ("due", "recent", "open", "held"):
        account = _account(w, people[name])
        if name != "open":
            w.ledger.close_account(account)
        _set_activity(w, account, {"recent": RETENTION_DAYS - 2}.get(name, RETENTION_DAYS + 5))
    # One of two accounts still open: the relationship goes on.
    closed, still = _account(w, people["one_open"]), _account(w, people["one_open"])
    w.ledger.close_account(closed)
    _set_activity(w, closed, RETENTION_DAYS + 5)
    _set_activity(w, still, RETENTION_DAYS + 5)
    w.customers.set_legal_hold("ten_a", people["held"], True, actor=ACTOR)

    assert count_past_retention(w.engine, RETENTION_DAYS, clock.now_us())[0] == 1
    done = w.gdpr.erase_due()

    assert (done.erased, done.skipped) == (1, 0)
    erased = {n for n, cid in people.items() if w.customers.get("ten_a", cid).erased_at}
    assert erased == {"due"}
    assert count_past_retention(w.engine, RETENTION_DAYS, clock.now_us())[0] == 0
    (event,) = _events(w, "ten_a", "customer.retention_erased")
    assert event["id"] == people["due"]
    types = _leaf_types(w, "ten_a")
    assert types[-2:] == ["customer.erased", "customer.retention_erased"]
    assert w.gdpr.erase_due().erased == 0  # nothing more is due
    # A job told to stop erases nothing.
    w.clock.days(RETENTION_DAYS)
    assert w.gdpr.erase_due(keep=lambda: False).erased == 0


# -- controls --------------------------------------------------------------------------------


def _outcomes(report: Report) -> dict[str, Outcome]:
    return {c.name: c.outcome for c in report.controls}


def _control(report: Report, name: str) -> Any:
    return next(c for c in report.controls if c.name == name)


def test_every_control_passes_on_a_clean_deployment(world: World) -> None:
    w = world
    ada = w.customers.create("ten_a", "person", {"name": "Ada"}, actor=ACTOR)
    w.ledger.post_transfers([NewTransfer("tr_clean", w.book, w.bank, _account(w, ada.id), 5)])
    # No list loaded yet: screening has nothing to screen against, and the control says so.
    unloaded = w.controls().run(actor=ACTOR)
    lists = _control(unloaded, "sanctions_lists_fresh")
    assert (lists.outcome, lists.summary) == (Outcome.FAIL, "no sanctions list has been loaded")
    w.snapshots.append(
        controls_store.ListSnapshots("sanctions_list_versions", {"un": clock.now_us() - DAY_US})
    )
    report = w.controls().run(actor=ACTOR)
    outcomes = _outcomes(report)
    assert set(outcomes.values()) == {Outcome.PASS}, outcomes
    assert report.outcome is Outcome.PASS
    assert _control(report, "card_numbers_in_clear").facts["rows"] > 0
    # Stored, and the run is a leaf of the deployment's log; no failure, no event.
    stored = w.controls().latest()
    assert stored is not None
    assert stored.to_dict() == report.to_dict()
    assert "compliance.checked" in _leaf_types(w, "ten_default")
    assert _events(w, "ten_a", "compliance.control_failed") == []
    assert controls_store.list_snapshots(w.engine) == controls_store.ListSnapshots(
        "sanctions_list_versions", {}
    )


def _plant(w: World, *, card: bool = True) -> None:
    """One of each thing a control guards against (the card number: when `card`)."""
    now = clock.now_us()
    ada = w.customers.create("ten_a", "person", {"name": "Ada"}, actor=ACTOR)
    wallet = _account(w, ada.id)
    note = f"card {CARD}" if card else "card 411111******1111"
    meta = canonical_metadata({"note": note})
    w.ledger.post_transfers([NewTransfer("tr_card", w.book, w.bank, wallet, 5, metadata=meta)])
    with w.engine.begin() as conn:
        conn.execute(sa.insert(tables.users), [
            {"id": f"usr_{n}", "tenant_id": "ten_b", "kind": kind, "email": f"{n}@x.org",
             "role": role, "webauthn_handle": n.encode(), "created_at": now,
             "totp_confirmed_at": totp}
            for n, kind, role, totp in (
                ("nofactor", "staff", "admin", None),
                ("withtotp", "staff", "officer", now),
                ("customer", "customer", "customer", None),
            )
        ])  # fmt: skip
        conn.execute(sa.insert(tables.cases), [
            {"id": f"case_{n}", "tenant_id": "ten_b", "kind": "risk_review", "status": status,
             "created_at": now - hours * 3600 * 1_000_000}
            for n, status, hours in (("old", "open", 100), ("new", "open", 1),
                                     ("olddone", "approved", 500))
        ])  # fmt: skip
        # A KYC tier written by hand: no leaf records it.
        conn.execute(sa.insert(tables.kyc_customers), [
            {"customer_id": ada.id, "tenant_id": "ten_a", "status": "verified",
             "tier": "premium", "updated_by": "psql", "updated_at": now},
        ])  # fmt: skip
        # An open banking payment consent authorised by hand: no leaf records it.
        conn.execute(sa.insert(tables.ob_consents), [
            {"id": "obc_forged", "tenant_id": "ten_a", "client_id": "tpp_x",
             "kind": "domestic_payment", "status": "AUTH", "created_at": now,
             "status_updated_at": now, "request": "{}", "customer_id": ada.id,
             "account_ids": json.dumps([wallet])},
        ])  # fmt: skip
    # The cases as the case queue would have written them: each with its leaf.
    for n, status in (("old", "open"), ("new", "open"), ("olddone", "approved")):
        _record(w, "ten_b", "case.created", f"case_{n}", {"case_id": f"case_{n}"})
        if status != "open":
            _record(w, "ten_b", f"case.{status}", f"case_{n}", {"case_id": f"case_{n}"})
    # A KYC usage counter lowered by hand: Ada paid 3 out of her wallet, her bucket says 1 (and
    # her first bucket, two hours before: the hour the limits were turned on, not compared).
    _kyc_usage(w, "tr_ada_pays", wallet, ada.id, stored=1)
    # A customer past retention, under no hold.
    late = w.customers.create("ten_a", "person", {"name": "Late"}, actor=ACTOR)
    account = _account(w, late.id)
    w.ledger.close_account(account)
    _set_activity(w, account, RETENTION_DAYS + 3)


def _kyc_usage(w: World, transfer_id: str, wallet: str, customer_id: str, *, stored: int) -> None:
    """`customer_id` pays 3 out of `wallet` (posted by a ledger without the KYC limits), and
    its usage buckets are written by hand: `stored` for that payment's hour, 7 two hours
    before, the hour the limits were first on (kyc_limits_since, as the limits record it)."""
    w.ledger.post_transfers([NewTransfer(transfer_id, w.book, wallet, w.bank, 3)])
    hour = w.ledger.get_transfer(transfer_id).created_at // HOUR_US
    with w.engine.begin() as conn:
        conn.execute(sa.insert(tables.kyc_usage), [
            {"customer_id": customer_id, "tenant_id": "ten_a", "asset": "USD", "hour": h,
             "amount": n}
            for h, n in ((hour - 2, 7), (hour, stored))
        ])  # fmt: skip
        conn.execute(sa.insert(tables.kyc_limits_since).values(id=1, since=(hour - 2) * HOUR_US))


def test_each_control_fails_on_what_it_guards_against(world: World) -> None:
    w = world
    _plant(w)
    old = controls_store.ListSnapshots("sanction_lists", {"un": clock.now_us() - 30 * DAY_US})
    w.snapshots.append(old)
    # A period of 0 days: the key-encryption key made at the start is overdue.
    report = w.controls(key_rotation_days=0).run(actor=ACTOR)

    outcomes = _outcomes(report)
    assert outcomes.pop("audit_log_verifies") is Outcome.PASS  # tampered below
    assert set(outcomes.values()) == {Outcome.FAIL}, outcomes
    cards = _control(report, "card_numbers_in_clear")
    (finding,) = [f for f in cards.findings if f.detail["table"] == "transfers"]
    assert finding.detail["column"] == "metadata"
    assert finding.detail["number"] == "411111******1111"
    assert finding.tenant_id == "ten_a"
    assert "4111111111111111" not in report.to_json()
    assert CARD not in report.to_json()
    assert [f.detail["key"] for f in _control(report, "keys_rotated").findings] == ["kek v1"]
    users = _control(report, "staff_second_factor").findings
    assert [(f.detail["user_id"], f.tenant_id) for f in users] == [("usr_nofactor", "ten_b")]
    cases = _control(report, "case_service_level").findings
    assert [f.detail["case_id"] for f in cases] == ["case_old"]
    assert [f.detail["list"] for f in _control(report, "sanctions_lists_fresh").findings] == ["un"]
    assert _control(report, "customers_within_retention").found >= 1
    (kyc,) = _control(report, "compliance_records_audited").findings
    assert (kyc.tenant_id, kyc.detail["table"]) == ("ten_a", "kyc_customers")
    (usage,) = _control(report, "kyc_usage_counted").findings
    assert (usage.tenant_id, usage.detail["stored"], usage.detail["counted"]) == ("ten_a", 1, 3)
    (consent,) = _control(report, "openbanking_consents_audited").findings
    assert (consent.tenant_id, consent.detail["consent_id"]) == ("ten_a", "obc_forged")
    # The audit log: planted after, so the other controls' evidence stays the same.
    with w.engine.begin() as conn:
        conn.execute(
            sa.update(tables.transfers).where(tables.transfers.c.id == "tr_card").values(amount=6)
        )
    tampered = w.controls().run(actor=ACTOR)
    audit = _control(tampered, "audit_log_verifies")
    assert audit.outcome is Outcome.FAIL
    assert audit.found >= 1

    # Events: each failing control to each tenant its findings concern; the deployment's own.
    failed_a = {e["control"] for e in _events(w, "ten_a", "compliance.control_failed")}
    failed_b = {e["control"] for e in _events(w, "ten_b", "compliance.control_failed")}
    failed_d = {e["control"] for e in _events(w, "ten_default", "compliance.control_failed")}
    assert {
        "card_numbers_in_clear", "customers_within_retention", "compliance_records_audited",
        "kyc_usage_counted", "openbanking_consents_audited",
    } <= failed_a  # fmt: skip
    assert {"staff_second_factor", "case_service_level"} <= failed_b
    assert "card_numbers_in_clear" not in failed_b
    assert {"keys_rotated", "sanctions_lists_fresh", "audit_log_verifies"} <= failed_d

    # A tenant's view: its own findings and the deployment's, never another tenant's.
    seen_b = report.for_tenant("ten_b")
    assert _control(seen_b, "card_numbers_in_clear").findings == []
    assert _control(seen_b, "staff_second_factor").outcome is Outcome.FAIL
    assert _control(report.for_tenant("ten_a"), "staff_second_factor").outcome is Outcome.PASS


def test_controls_pass_again_once_each_finding_is_fixed(world: World) -> None:
    w = world
    # A card number once posted stays in the audit log and the events for good (the control
    # says where): this world masked it before posting.
    _plant(w, card=False)
    w.snapshots.append(controls_store.ListSnapshots("sanction_lists", {"un": clock.now_us()}))
    w.keyring.rotate()
    with w.engine.begin() as conn:
        conn.execute(
            sa.update(tables.users)
            .where(tables.users.c.id == "usr_nofactor")
            .values(totp_confirmed_at=clock.now_us())
        )
        conn.execute(
            sa.update(tables.cases).where(tables.cases.c.id == "case_old").values(status="declined")
        )
        conn.execute(sa.delete(tables.kyc_customers))
        conn.execute(sa.delete(tables.ob_consents))
        conn.execute(
            sa.update(tables.kyc_usage).where(tables.kyc_usage.c.amount == 1).values(amount=3)
        )
    # The case decided as the queue decides (its leaf), the KYC row's leaf-less row gone, the
    # usage counter restored, the consent no leaf created gone.
    _record(w, "ten_b", "case.declined", "case_old", {"case_id": "case_old"})
    w.gdpr.erase_due()
    report = w.controls().run(actor=ACTOR)
    assert set(_outcomes(report).values()) == {Outcome.PASS}, _outcomes(report)
    assert report.outcome is Outcome.PASS


def test_the_sanctions_control_reads_the_loaded_list_versions(world: World) -> None:
    w = world
    old_us = clock.now_us() - 10 * DAY_US
    rows = [("un", 1, old_us - DAY_US), ("un", 2, old_us), ("ofac_sdn", 1, clock.now_us())]
    with w.engine.begin() as conn:
        for source, version, loaded_at in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO sanctions_list_versions (source, version, sha256, entry_count, "
                    "added, changed, removed, loaded_at, loaded_by) VALUES (:s, :v, 'x', 1, 1, "
                    "0, 0, :at, 'test')"
                ),
                {"s": source, "v": version, "at": loaded_at},
            )
    found = controls_store.list_snapshots(w.engine)
    assert isinstance(found, controls_store.ListSnapshots)
    assert found.latest == {"un": old_us, "ofac_sdn": rows[2][2]}  # each list's newest load
    result = _control(w.controls().run(actor=ACTOR), "sanctions_lists_fresh")
    assert result.outcome is Outcome.FAIL
    assert [f.detail["list"] for f in result.findings] == ["un"]


def test_a_control_that_raises_is_an_error_not_a_pass(world: World) -> None:
    w = world
    broken: Callable[[Engine], Any] = lambda engine: 1 / 0  # noqa: E731
    w.snapshots.clear()
    service = w.controls()
    service.sources = Sources(
        w.engine, w.keyring, service.sources.verify_audit, service.sources.past_retention, broken
    )
    report = service.run(actor=ACTOR)
    result = _control(report, "sanctions_lists_fresh")
    assert result.outcome is Outcome.ERROR
    assert "ZeroDivisionError" in result.summary
    assert report.outcome is Outcome.FAIL


def _record(w: World, tenant: str, kind: str, ref: str, data: dict[str, Any]) -> None:
    with UnitOfWork(w.engine) as uow:
        w.audit.record_all(uow, tenant, ACTOR, [(kind, ref, data)])
        uow.commit()


def test_the_records_control_replays_kyc_and_sanctions_rows_against_their_leaves(
    world: World,
) -> None:
    w = world
    now = clock.now_us()
    # Written as the services write them: each row with its leaf.
    _record(w, "ten_a", "customer.kyc_updated", "cus_1",
            {"customer_id": "cus_1", "status": "pending", "tier": "basic"})  # fmt: skip
    _record(w, "ten_a", "customer.kyc_updated", "cus_1",
            {"customer_id": "cus_1", "status": "verified", "tier": "standard"})  # fmt: skip
    _record(w, "ten_a", "sanctions.match_confirmed", "customer:cus_2",
            {"subject": "customer:cus_2", "list": "un", "entry_id": "QDi.1"})  # fmt: skip
    dismissed = {"id": "sdis_1", "subject": "customer:cus_3", "list": "un", "entry_id": "QDi.2"}
    _record(w, "ten_b", "sanctions.match_dismissed", "customer:cus_3", dismissed)
    subject = {"name_digest": "00" * 32, "best_score": 0.9, "screened_at": now}
    dismissal = {"name_digest": "00" * 32, "fingerprint": "11" * 32, "reviewer": ACTOR,
                 "reason": None, "created_at": now}  # fmt: skip
    with w.engine.begin() as conn:
        conn.execute(sa.insert(tables.kyc_customers), [
            {"customer_id": "cus_1", "tenant_id": "ten_a", "status": "verified",
             "tier": "standard", "updated_by": ACTOR, "updated_at": now},
        ])  # fmt: skip
        conn.execute(sa.insert(tables.sanctions_subjects), [
            {"tenant_id": "ten_a", "subject": "customer:cus_2", "status": "confirmed", **subject},
            {"tenant_id": "ten_a", "subject": "customer:cus_4", "status": "clear", **subject},
        ])  # fmt: skip
        conn.execute(sa.insert(tables.sanctions_dismissals), [
            {"tenant_id": "ten_b", "subject": "customer:cus_3", "source": "un",
             "entry_id": "QDi.2", "id": "sdis_1", **dismissal},
        ])  # fmt: skip
    report = w.controls().run(actor=ACTOR)
    result = _control(report, "compliance_records_audited")
    assert result.outcome is Outcome.PASS, result.findings
    _record(w, "ten_a", "case.created", "case_held", {"case_id": "case_held"})
    # What every leaf of a case records of it (cases.sink.case_leaf).
    about = {"case_id": "case_fraud", "kind": "risk_review", "transfer_id": "tr_1", "gate": "risk",
             "code": "risk_review"}  # fmt: skip
    _record(w, "ten_a", "case.created", "case_fraud", about)
    _record(w, "ten_a", "case.declined", "case_fraud", {**about, "label": "fraud"})
    _record(w, "ten_a", "sanctions.match_confirmed", "customer:cus_5",
            {"subject": "customer:cus_5", "list": "un", "entry_id": "QDi.3"})  # fmt: skip
    with w.engine.begin() as conn:
        conn.execute(sa.insert(tables.cases), [
            {"id": "case_held", "tenant_id": "ten_a", "kind": "sanctions_review",
             "status": "open", "label": None, "created_at": now, "transfer_id": None,
             "gate": None, "code": None},
            {"id": "case_fraud", "tenant_id": "ten_a", "kind": "risk_review",
             "status": "declined", "label": "fraud", "created_at": now, "transfer_id": "tr_1",
             "gate": "risk", "code": "risk_review"},
        ])  # fmt: skip
        conn.execute(sa.insert(tables.sanctions_subjects), [
            {"tenant_id": "ten_a", "subject": "customer:cus_5", "status": "confirmed", **subject},
        ])  # fmt: skip
        # The held payment's risk event, labelled fraud by the case's decision.
        conn.execute(sa.insert(tables.risk_events), [
            {"tenant_id": "ten_a", "seq": 1, "transfer_id": "tr_1", "at_us": now, "amount": 100,
             "scale": 2, "customer_id": "cus_1", "fraud": True, "labelled_at": now,
             "label_seq": 2},
        ])  # fmt: skip
    report = w.controls().run(actor=ACTOR)
    result = _control(report, "compliance_records_audited")
    assert result.outcome is Outcome.PASS, result.findings
    assert result.facts == {
        "leaves": 8, "kyc_rows": 1, "sanctions_subjects": 3, "sanctions_dismissals": 1,
        "aml_profiles": 0, "cases": 2, "risk_labels": 1,
    }  # fmt: skip

    # By hand: a tier raised, a confirmation lifted, a dismissal and a KYC row added.
    with w.engine.begin() as conn:
        conn.execute(sa.update(tables.kyc_customers).values(tier="premium"))
        conn.execute(
            sa.update(tables.sanctions_subjects)
            .where(tables.sanctions_subjects.c.subject == "customer:cus_2")
            .values(status="clear")
        )
        conn.execute(
            sa.update(tables.sanctions_subjects)
            .where(tables.sanctions_subjects.c.subject == "customer:cus_4")
            .values(status="confirmed")
        )
        conn.execute(sa.insert(tables.sanctions_dismissals), [
            {"tenant_id": "ten_a", "subject": "customer:cus_4", "source": "ofac_sdn",
             "entry_id": "123", "id": "sdis_2", **dismissal},
        ])  # fmt: skip
        conn.execute(sa.insert(tables.kyc_customers), [
            {"customer_id": "cus_9", "tenant_id": "ten_b", "status": "verified",
             "tier": "premium", "updated_by": "psql", "updated_at": now},
        ])  # fmt: skip
        # A held payment released by an edit of its case; a confirmed subject's row deleted
        # (its freeze could be lifted); an exemption inserted.
        conn.execute(
            sa.update(tables.cases)
            .where(tables.cases.c.id == "case_held")
            .values(status="approved")
        )
        # A fraud label turned genuine (the next model would learn the fraud as genuine), and
        # the case pointed at another transfer.
        conn.execute(
            sa.update(tables.cases)
            .where(tables.cases.c.id == "case_fraud")
            .values(label="genuine", transfer_id="tr_2")
        )
        conn.execute(
            sa.delete(tables.sanctions_subjects).where(
                tables.sanctions_subjects.c.subject == "customer:cus_5"
            )
        )
        conn.execute(sa.insert(tables.aml_accounts), [
            {"account_id": "acc_x", "tenant_id": "ten_b", "exempt": True, "jurisdiction": None,
             "updated_by": "psql", "updated_at": now},
        ])  # fmt: skip
    report = w.controls().run(actor=ACTOR)
    result = _control(report, "compliance_records_audited")
    assert result.outcome is Outcome.FAIL
    ids = ("customer_id", "subject", "case_id", "account_id")
    found = sorted(
        (f.tenant_id, f.detail["table"], next(f.detail[k] for k in ids if k in f.detail))
        for f in result.findings
    )
    assert found == [
        ("ten_a", "cases", "case_fraud"),
        ("ten_a", "cases", "case_fraud"),
        ("ten_a", "cases", "case_held"),
        ("ten_a", "kyc_customers", "cus_1"),
        ("ten_a", "sanctions_dismissals", "customer:cus_4"),
        ("ten_a", "sanctions_subjects", "customer:cus_2"),
        ("ten_a", "sanctions_subjects", "customer:cus_4"),
        ("ten_a", "sanctions_subjects", "customer:cus_5"),
        ("ten_b", "aml_accounts", "acc_x"),
        ("ten_b", "kyc_customers", "cus_9"),
    ]
    assert sorted(
        f.detail["problem"] for f in result.findings if f.detail.get("case_id") == "case_fraud"
    ) == [
        "kind risk_review, transfer_id tr_2, gate risk, code risk_review, but its leaves record "
        "kind risk_review, transfer_id tr_1, gate risk, code risk_review",
        "label genuine, but its leaves give it fraud",
    ]
    (raised,) = [f for f in result.findings if f.detail.get("customer_id") == "cus_1"]
    assert "premium" in raised.detail["problem"]
    assert "standard" in raised.detail["problem"]
    # Each tenant sees its own findings only.
    seen_b = _control(report.for_tenant("ten_b"), "compliance_records_audited")
    assert {f.tenant_id for f in seen_b.findings} == {"ten_b"}


def test_the_records_control_replays_risk_labels_against_their_leaves(world: World) -> None:
    """A payment's training label (risk_events.fraud) is what its last label leaf says: the
    label route's `risk.labelled`, or its risk review's decision (declined: fraud; approved:
    genuine). Relabelled, labelled, unlabelled or deleted by hand, each payment is named."""
    w = world
    now = clock.now_us()
    _record(w, "ten_a", "risk.labelled", "tr_a", {"transfer_id": "tr_a", "fraud": False})
    _record(w, "ten_a", "risk.labelled", "tr_a", {"transfer_id": "tr_a", "fraud": True})
    for case_id, transfer_id, decision, label in (
        ("case_b", "tr_b", "case.declined", "fraud"),
        ("case_c", "tr_c", "case.approved", "genuine"),
    ):
        about = {"case_id": case_id, "kind": "risk_review", "transfer_id": transfer_id,
                 "gate": "risk", "code": "risk_review"}  # fmt: skip
        _record(w, "ten_a", "case.created", case_id, about)
        _record(w, "ten_a", decision, case_id, {**about, "label": label})
    # A sanctions review's decision labels nothing (no training label kind).
    about = {"case_id": "case_s", "kind": "sanctions_review", "transfer_id": "tr_d",
             "gate": "sanctions", "code": "sanctions_review"}  # fmt: skip
    _record(w, "ten_a", "case.created", "case_s", about)
    _record(w, "ten_a", "case.declined", "case_s", {**about, "label": "fraud"})

    def event(seq: int, transfer_id: str, fraud: bool | None) -> dict[str, Any]:
        return {"tenant_id": "ten_a", "seq": seq, "transfer_id": transfer_id, "at_us": now,
                "amount": 100, "scale": 2, "customer_id": "cus_1", "payee": None,
                "channel": None, "device": None, "ip": None, "fraud": fraud,
                "labelled_at": None if fraud is None else now,
                "label_seq": None if fraud is None else seq}  # fmt: skip

    cases = [
        {"id": case_id, "tenant_id": "ten_a", "kind": kind, "status": status, "label": label,
         "created_at": now, "transfer_id": transfer_id, "gate": gate, "code": f"{kind}"}
        for case_id, kind, status, label, transfer_id, gate in (
            ("case_b", "risk_review", "declined", "fraud", "tr_b", "risk"),
            ("case_c", "risk_review", "approved", "genuine", "tr_c", "risk"),
            ("case_s", "sanctions_review", "declined", "fraud", "tr_d", "sanctions"),
        )
    ]  # fmt: skip
    with w.engine.begin() as conn:
        conn.execute(sa.insert(tables.cases), cases)
        conn.execute(sa.insert(tables.risk_events), [
            event(1, "tr_a", True), event(2, "tr_b", True), event(3, "tr_c", False),
            event(4, "tr_d", None), event(5, "tr_e", None),
        ])  # fmt: skip
    report = w.controls().run(actor=ACTOR)
    result = _control(report, "compliance_records_audited")
    assert result.outcome is Outcome.PASS, result.findings
    assert (result.facts["risk_labels"], result.facts["cases"]) == (3, 3)

    # By hand: a fraud relabelled genuine, a label with no leaf, a label cleared, a row gone.
    events = tables.risk_events
    with w.engine.begin() as conn:
        conn.execute(sa.update(events).where(events.c.transfer_id == "tr_a").values(fraud=False))
        conn.execute(sa.update(events).where(events.c.transfer_id == "tr_e").values(fraud=True))
        conn.execute(sa.update(events).where(events.c.transfer_id == "tr_b").values(fraud=None))
        conn.execute(sa.delete(events).where(events.c.transfer_id == "tr_c"))
    report = w.controls().run(actor=ACTOR)
    result = _control(report, "compliance_records_audited")
    assert result.outcome is Outcome.FAIL
    found = sorted(
        (f.tenant_id, f.detail["transfer_id"], f.detail["problem"])
        for f in result.findings
        if f.detail["table"] == "risk_events"
    )
    assert found == [
        ("ten_a", "tr_a", "labelled genuine, but its last label leaf says fraud"),
        ("ten_a", "tr_b", "its last label leaf says fraud, but it carries no label"),
        ("ten_a", "tr_c", "its last label leaf says genuine, but its risk event is gone"),
        ("ten_a", "tr_e", "labelled fraud: no leaf records a label"),
    ]
    assert len(result.findings) == 4
    assert _control(report.for_tenant("ten_b"), "compliance_records_audited").findings == []


def test_the_card_scan_leaves_the_public_sanctions_lists_alone(world: World) -> None:
    """A list entry's passport number that Luhn passes, and its hex fingerprint, are no
    cardholder's data: a load of the real lists must not fail the control."""
    w = world
    with w.engine.begin() as conn:
        conn.execute(sa.insert(tables.sanctions_entries), [
            {"source": "un", "entry_id": "QDi.1", "first_version": 1, "last_version": None,
             "fingerprint": "ab4111111111111111cd" + "0" * 44,  # 64 hex characters
             "body": json.dumps({"name": "X", "ids": [{"passport": CARD}]})},
        ])  # fmt: skip
    result = _control(w.controls().run(actor=ACTOR), "card_numbers_in_clear")
    assert result.outcome is Outcome.PASS, result.findings


def test_the_kyc_usage_control_recounts_the_counters_from_the_ledger(world: World) -> None:
    """Payments counted by the KYC caps (a ledger with the limit installed) over several hours:
    single and multi-leg, two assets, a pending transfer voided since. Untouched, the counters
    match the ledger; a counter lowered by hand and one deleted are named (the first by
    customer, asset and hour), a raised one is not (a payment from an account no customer owns
    counts against its payment's customer, which the ledger does not keep); the hour the
    counters started is not compared; with the limits off there is nothing to check."""
    w = world
    start = (clock.now_us() // HOUR_US - 10) * HOUR_US + 1_000
    ticking = ManualClock(start)
    ledger = LedgerService(
        w.engine,
        clock_=ticking,
        customers=lambda uow, tenant, ids: set(ids),
        limits=[KycLimit()],
    )
    KycService(w.engine, ledger, customers=lambda uow, tenant, ids: set(ids)).set(
        "ten_a", "cus_u", "verified", "enhanced", actor=ACTOR
    )
    eur_bank = ledger.create_accounts([AccountSpec(w.book, "EUR", Direction.DEBIT)])[0].id
    u1, u2, u3 = (
        a.id
        for a in ledger.create_accounts(
            [AccountSpec(w.book, asset, Direction.CREDIT, customer_id="cus_u")
             for asset in ("USD", "USD", "EUR")]
        )
    )  # fmt: skip

    def post(*batch: NewTransfer) -> None:
        for outcome in ledger.post_transfers(list(batch)):
            assert outcome.row is not None, outcome

    post(
        NewTransfer("tr_fund1", w.book, w.bank, u1, 10_000),
        NewTransfer("tr_fund2", w.book, w.bank, u2, 10_000),
        NewTransfer("tr_fund3", w.book, eur_bank, u3, 10_000),
    )
    post(NewTransfer("tr_h0", w.book, u1, w.bank, 100))  # the first hour counted
    ticking.advance(3 * HOUR_US)
    legs = (Leg(u1, Direction.DEBIT, 150), Leg(u2, Direction.DEBIT, 150),
            Leg(w.bank, Direction.CREDIT, 300))  # fmt: skip
    post(
        NewTransfer("tr_h3", w.book, u1, w.bank, 200),
        NewTransfer("tr_legs", w.book, legs=legs),
        NewTransfer("tr_eur", w.book, u3, eur_bank, 50),
        NewTransfer("tr_held", w.book, u2, w.bank, 40, pending=True),
    )
    post(NewTransfer("tr_void", w.book, action=Action.VOID, target_id="tr_held"))
    ticking.advance(2 * HOUR_US)
    post(NewTransfer("tr_h5", w.book, u2, w.bank, 70))
    h0 = start // HOUR_US

    def usage() -> dict[tuple[str, int], int]:
        with w.engine.connect() as conn:
            rows = conn.execute(sa.select(tables.kyc_usage.c.asset, tables.kyc_usage.c.hour,
                                          tables.kyc_usage.c.amount))  # fmt: skip
            return {(a, int(h) - h0): int(n) for a, h, n in rows}

    assert usage() == {("USD", 0): 100, ("USD", 3): 540, ("EUR", 3): 50, ("USD", 5): 70}
    clean = _control(w.controls().run(actor=ACTOR), "kyc_usage_counted")
    assert (clean.outcome, clean.found) == (Outcome.PASS, 0), clean.summary
    assert clean.facts["buckets"] == 3  # the first hour's is not compared
    assert clean.facts["since"] == clock.format_us((h0 + 1) * HOUR_US)

    def edit(asset: str, hour: int, amount: int | None) -> None:
        row = tables.kyc_usage.c
        where = (row.customer_id == "cus_u") & (row.asset == asset) & (row.hour == h0 + hour)
        with w.engine.begin() as conn:
            if amount is None:
                conn.execute(sa.delete(tables.kyc_usage).where(where))
            else:
                conn.execute(sa.update(tables.kyc_usage).where(where).values(amount=amount))

    edit("USD", 3, 400)  # lowered: 140 more may be paid today
    lowered = _control(w.controls().run(actor=ACTOR), "kyc_usage_counted")
    assert lowered.outcome is Outcome.FAIL
    (finding,) = lowered.findings
    assert finding.tenant_id == "ten_a"
    assert finding.detail == {
        "table": "kyc_usage", "customer_id": "cus_u", "asset": "USD",
        "hour": clock.format_us((h0 + 3) * HOUR_US), "stored": 400, "counted": 540,
    }  # fmt: skip
    assert "customer cus_u, USD" in lowered.summary
    edit("EUR", 3, None)  # deleted
    edit("USD", 5, 1_000)  # raised: not a finding
    edit("USD", 0, 1)  # the first hour: not compared
    both = _control(w.controls().run(actor=ACTOR), "kyc_usage_counted")
    assert [(f.detail["asset"], f.detail["stored"], f.detail["counted"]) for f in both.findings
            ] == [("USD", 400, 540), ("EUR", 0, 50)]  # fmt: skip
    assert "the first: customer cus_u, EUR" in both.summary  # by customer, asset and hour
    off = w.controls()
    off.sources = replace(off.sources, kyc_limits=False)
    assert _control(off.run(actor=ACTOR), "kyc_usage_counted").outcome is Outcome.NOT_APPLICABLE
