"""The AML monitor on SQLite and PostgreSQL, without the HTTP app: installed as runtime.py
installs it, a posted transfer raises an alert case in its own transaction; alerts are deduped
per account (or customer), typology and window; deposits split over a customer's accounts
raise one alert about the customer; a restarted monitor rebuilds its state from recent
history; and the scan over history raises what the live sink raised."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.engine import Engine as SAEngine

from strongroom.cases.model import CaseStatus
from strongroom.cases.service import CaseService
from strongroom.compliance.aml import service as aml
from strongroom.compliance.aml.profiles import AmlProfiles
from strongroom.compliance.gdpr import store as gdpr_store
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import Direction, Leg, NewTransfer
from strongroom.ledger.pipeline import Sink
from strongroom.ledger.service import AccountSpec, LedgerService

TENANT = "ten_default"


def _any_customer(uow: UnitOfWork, tenant_id: str, customer_ids: Any) -> set[str]:
    del uow, tenant_id
    return set(customer_ids)


def _world(engine: SAEngine) -> tuple[LedgerService, CaseService, aml.AmlService]:
    sinks: list[Sink] = []
    bind = aml.install(True, engine, sinks)
    assert bind is not None
    assert len(sinks) == 1
    assert aml.install(False, engine, []) is None
    ledger = LedgerService(engine, sinks=sinks, customers=_any_customer)
    cases = CaseService(engine, ledger)
    return ledger, cases, bind(ledger, cases)


def _accounts(ledger: LedgerService) -> tuple[str, str, str, str]:
    """A ledger, its cash desk (exempt by compliance), alice, and bob (in KP, by compliance)."""
    main = ledger.create_ledger("main")
    cash, alice, bob = ledger.create_accounts(
        [
            AccountSpec(main.id, "USD", Direction.DEBIT),
            AccountSpec(main.id, "USD", Direction.CREDIT),
            AccountSpec(main.id, "USD", Direction.CREDIT),
        ]
    )
    profiles = AmlProfiles(ledger.engine, ledger)
    profiles.set(TENANT, cash.id, exempt=True, jurisdiction=None, actor="test")
    profiles.set(TENANT, bob.id, exempt=False, jurisdiction="kp", actor="test")
    return main.id, cash.id, alice.id, bob.id


def _post(ledger: LedgerService, ids: Any, tid: str, debit: str, credit: str, amount: int) -> None:
    [outcome] = ledger.post_transfers([NewTransfer(tid, ids[0], debit, credit, amount)])
    assert outcome.row is not None, outcome


def _aml_cases(cases: CaseService) -> list[Any]:
    return [c for c in cases.list_cases(TENANT, limit=100).data if c.kind.startswith("aml_")]


def test_a_posted_transfer_raises_an_alert_case_once_per_window(db_engine: SAEngine) -> None:
    ledger, cases, _ = _world(db_engine)
    ids = _accounts(ledger)
    _, cash, alice, bob = ids
    _post(ledger, ids, "t_big", cash, alice, 1_200_000)
    [case] = _aml_cases(cases)
    assert (case.kind, case.code, case.status) == (
        "aml_large_transaction", "large_transaction", CaseStatus.OPEN,
    )  # fmt: skip
    assert case.created_by == aml.ACTOR
    assert case.transfer_id is None
    detail = json.loads(case.detail or "{}")
    assert detail["subject"] == f"account:{alice}"  # the cash account is exempt
    assert detail["evidence"]["transfer_ids"] == ["t_big"]
    assert detail["evidence"]["amount"] == 1_200_000
    # Another large one in the same window: the same alert, no second case.
    _post(ledger, ids, "t_big2", cash, alice, 1_500_000)
    assert len(_aml_cases(cases)) == 1
    # Structuring: three deposits just under the threshold; then a fourth (deduped).
    for i in range(4):
        _post(ledger, ids, f"t_s{i}", cash, bob, 950_000)
    kinds = sorted(c.kind for c in _aml_cases(cases))
    assert kinds == ["aml_large_transaction", "aml_structuring"]
    # Money to an account in a high-risk jurisdiction (bob's profile says KP).
    _post(ledger, ids, "t_hr", alice, bob, 200_000)
    subjects = {(c.kind, json.loads(c.detail or "{}")["subject"]) for c in _aml_cases(cases)}
    assert ("aml_high_risk_jurisdiction", f"account:{alice}") in subjects
    raised = {(k.account_id, k.typology) for k in _service_raised(db_engine)}
    assert raised == {
        (alice, "large_transaction"),
        (bob, "structuring"),
        (alice, "high_risk_jurisdiction"),
    }


def _service_raised(engine: SAEngine) -> list[Any]:
    with UnitOfWork(engine, write=False) as uow:
        return aml.store.raised(uow, TENANT)


def test_a_restarted_monitor_rebuilds_its_state_from_recent_history(db_engine: SAEngine) -> None:
    ledger, cases, _ = _world(db_engine)
    ids = _accounts(ledger)
    _, cash, alice, _ = ids
    _post(ledger, ids, "t_r0", cash, alice, 950_000)
    _post(ledger, ids, "t_r1", cash, alice, 950_000)
    assert _aml_cases(cases) == []
    # A new process: a fresh sink on the same database; the third deposit completes the
    # pattern only if the first two were read back.
    ledger2, cases2, service2 = _world(db_engine)
    _post(ledger2, ids, "t_r2", cash, alice, 950_000)
    assert service2.monitor.detectors.fed == 3
    assert [c.kind for c in _aml_cases(cases2)] == ["aml_structuring"]


def test_the_scan_raises_what_the_sink_raised(db_engine: SAEngine) -> None:
    ledger, cases, service = _world(db_engine)
    ids = _accounts(ledger)
    _, cash, alice, bob = ids
    _post(ledger, ids, "t_a", cash, alice, 1_100_000)
    for i in range(3):
        _post(ledger, ids, f"t_d{i}", cash, alice, 900_000)
    _post(ledger, ids, "t_b", alice, bob, 300_000)
    live = {(k.account_id, k.typology, k.window_start) for k in service.raised(TENANT)}
    assert len(live) == 3
    # Over the same history the scan finds every alert raised already: nothing new.
    report = service.scan()
    assert (report.transfers, report.raised) == (5, 0)
    assert report.hits >= 3
    # Forgotten, the scan raises the same alerts again, keyed by the same windows.
    with UnitOfWork(db_engine) as uow:
        uow.cursor().execute("DELETE FROM aml_alerts")
        uow.commit()
    again = service.scan()
    assert again.raised == 3
    assert {(k.account_id, k.typology, k.window_start) for k in service.raised(TENANT)} == live
    assert len(_aml_cases(cases)) == 6  # the scan opened its own cases


def test_the_setting_installs_the_sink_in_the_runtime_ledger(db_engine: SAEngine) -> None:
    from strongroom.runtime import build_ledger
    from strongroom.settings import load_settings

    url = db_engine.url.render_as_string(hide_password=False)
    for on in (False, True):
        settings = load_settings(database_url=url, aml=on, audit=False)
        ledger, _ = build_ledger(db_engine, settings)
        ids = _accounts(ledger)
        _post(ledger, ids, f"t_rt_{on}", ids[1], ids[2], 2_000_000)
    cases = CaseService(db_engine, LedgerService(db_engine))
    [case] = _aml_cases(cases)  # only the ledger built with STRONGROOM_AML on raised one
    assert case.kind == "aml_large_transaction"
    assert json.loads(case.detail or "{}")["evidence"]["transfer_ids"] == ["t_rt_True"]


def _legs(*spec: tuple[str, Direction, int]) -> tuple[Leg, ...]:
    return tuple(Leg(a, d, n) for a, d, n in spec)


def test_transfers_of_several_debits_and_credits_are_fed_as_flows(db_engine: SAEngine) -> None:
    """Structuring and a fan-in through transfers of several debit and several credit legs:
    each split pro rata into flows from each debited account to each credited one."""
    ledger, cases, service = _world(db_engine)
    main, cash, alice, bob = _accounts(ledger)
    fee, mule = ledger.create_accounts(
        [AccountSpec(main, "USD", Direction.DEBIT), AccountSpec(main, "USD", Direction.CREDIT)]
    )
    D, C = Direction.DEBIT, Direction.CREDIT
    # Three 2+2 transfers: nearly all of each credit comes from the cash desk, 950,000 (just
    # under the reporting threshold) to alice and to bob each time.
    for i in range(3):
        legs = _legs((cash, D, 1_900_000), (fee.id, D, 100), (alice, C, 950_050), (bob, C, 950_050))
        [outcome] = ledger.post_transfers([NewTransfer(f"t_m{i}", main, legs=legs)])
        assert outcome.row is not None, outcome
    # Eight senders paying the mule (and a fee account) in one 8+2 transfer: a fan-in.
    senders = ledger.create_accounts([AccountSpec(main, "USD", Direction.DEBIT)] * 8)
    legs = _legs(*[(s.id, D, 30_000) for s in senders], (mule.id, C, 239_000), (fee.id, C, 1_000))
    [outcome] = ledger.post_transfers([NewTransfer("t_fan", main, legs=legs)])
    assert outcome.row is not None, outcome
    by_subject = {
        (c.kind, json.loads(c.detail or "{}")["subject"]): json.loads(c.detail or "{}")
        for c in _aml_cases(cases)
    }
    assert by_subject.keys() >= {
        ("aml_structuring", f"account:{alice}"),
        ("aml_structuring", f"account:{bob}"),
        ("aml_fan_in", f"account:{mule.id}"),
    }
    evidence = by_subject[("aml_structuring", f"account:{alice}")]["evidence"]
    assert evidence["transfer_ids"] == ["t_m0", "t_m1", "t_m2"]
    assert service.monitor.detectors.fed == 3 * 4 + 8 * 2


def test_metadata_never_exempts_an_account_only_compliance_does(db_engine: SAEngine) -> None:
    """An account's metadata (written by any key that moves money) cannot exempt it or give it
    a jurisdiction; its AML profile, set by compliance, does, and the sink reads it with the
    next batch (no restart, whatever it cached)."""
    ledger, cases, _ = _world(db_engine)
    main, cash, alice, _ = _accounts(ledger)
    [payer] = ledger.create_accounts(
        [AccountSpec(main, "USD", Direction.CREDIT, metadata={"aml": "exempt",
                                                               "jurisdiction": "GB"})]
    )  # fmt: skip
    _post(ledger, (main,), "t_in", cash, payer.id, 3_000_000)
    _post(ledger, (main,), "t_out", payer.id, alice, 1_200_000)
    subjects = {json.loads(c.detail or "{}")["subject"] for c in _aml_cases(cases)}
    assert f"account:{payer.id}" in subjects  # monitored, whatever its metadata says
    before = {c.id for c in _aml_cases(cases)}
    profiles = AmlProfiles(db_engine, ledger)
    assert profiles.get(TENANT, payer.id).exempt is False
    profiles.set(TENANT, payer.id, exempt=True, jurisdiction=None, actor="test")
    # Exempt now: a large transfer in a new window raises an alert about alice only.
    with UnitOfWork(db_engine) as uow:
        uow.cursor().execute("DELETE FROM aml_alerts")
        uow.commit()
    _post(ledger, (main,), "t_out2", payer.id, alice, 1_300_000)
    fresh = [json.loads(c.detail or "{}") for c in _aml_cases(cases) if c.id not in before]
    assert [d["subject"] for d in fresh] == [f"account:{alice}"]


def test_a_rolled_back_batch_leaves_no_flow_in_the_monitor(db_engine: SAEngine) -> None:
    """The sink's state takes a batch only once it has committed: a batch that a later sink
    fails (rolled back) is not remembered, and the alert raised later names only committed
    transfers."""
    failing = {"t_s2"}

    def later_sink(uow: UnitOfWork, batch: Any) -> None:
        if any(row[1] in failing for row in batch.transfers):
            raise RuntimeError("a later sink fails")

    sinks: list[Sink] = []
    bind = aml.install(True, db_engine, sinks)
    assert bind is not None
    sinks.append(later_sink)
    ledger = LedgerService(db_engine, sinks=sinks)
    cases = CaseService(db_engine, ledger)
    service = bind(ledger, cases)
    main, cash, alice, _ = _accounts(ledger)
    _post(ledger, (main,), "t_s0", cash, alice, 950_000)
    _post(ledger, (main,), "t_s1", cash, alice, 960_000)
    with pytest.raises(RuntimeError):
        ledger.post_transfers([NewTransfer("t_s2", main, cash, alice, 940_000)])
    assert service.monitor.detectors.fed == 2
    assert _aml_cases(cases) == []
    _post(ledger, (main,), "t_s3", cash, alice, 930_000)
    [case] = _aml_cases(cases)
    assert case.kind == "aml_structuring"
    assert json.loads(case.detail or "{}")["evidence"]["transfer_ids"] == ["t_s0", "t_s1", "t_s3"]
    assert service.monitor.detectors.fed == 3


def _owned(ledger: LedgerService, main: str, *owners: str) -> list[str]:
    """An account of `main` for each owner (a customer id), in order."""
    specs = [AccountSpec(main, "USD", Direction.CREDIT, customer_id=c) for c in owners]
    return [a.id for a in ledger.create_accounts(specs)]


def _details(cases: CaseService) -> list[dict[str, Any]]:
    return [json.loads(c.detail or "{}") for c in _aml_cases(cases)]


def test_deposits_split_over_a_customers_accounts_raise_one_customer_alert(
    db_engine: SAEngine,
) -> None:
    """Three deposits of 9,500.00, one into each of a customer's three accounts: no account
    saw structuring, the customer did. One case about the customer, naming its accounts and
    the transfers; a fourth deposit is the same alert; the scan keys it the same way; and it
    holds the customer's erasure like an alert on one of its accounts."""
    ledger, cases, service = _world(db_engine)
    main, cash, _, _ = _accounts(ledger)
    x1, x2, x3 = _owned(ledger, main, "cus_split", "cus_split", "cus_split")
    for i, account in enumerate((x1, x2, x3)):
        _post(ledger, (main,), f"t_c{i}", cash, account, 950_000)
    [case] = _aml_cases(cases)
    detail = json.loads(case.detail or "{}")
    assert (case.kind, detail["subject"]) == ("aml_structuring", "customer:cus_split")
    assert detail["evidence"]["accounts"] == sorted([x1, x2, x3])
    assert detail["evidence"]["customer"] == "cus_split"
    assert detail["evidence"]["transfer_ids"] == ["t_c0", "t_c1", "t_c2"]
    assert detail["evidence"]["amount"] == 2_850_000
    _post(ledger, (main,), "t_c3", cash, x1, 950_000)
    assert len(_aml_cases(cases)) == 1
    raised = [(k.account_id, k.typology) for k in service.raised(TENANT)]
    assert raised == [("cus_split", "structuring")]
    with UnitOfWork(db_engine, write=False) as uow:
        held = gdpr_store.open_alerts(uow, TENANT, "customer:cus_split", "cus_split")
    assert held == [case.id]
    # Forgotten, the scan over the same history raises it again under the same key.
    with UnitOfWork(db_engine) as uow:
        uow.cursor().execute("DELETE FROM aml_alerts")
        uow.commit()
    assert service.scan().raised == 1
    assert [(k.account_id, k.typology) for k in service.raised(TENANT)] == raised


def test_other_customers_and_a_customers_unrelated_activity_do_not_aggregate(
    db_engine: SAEngine,
) -> None:
    """The same three deposits into accounts of three customers raise nothing; nor does one
    customer's unrelated activity over its two accounts: a salary, two near-threshold deposits
    (a car sold, a loan repaid), a move between its own accounts and some shopping."""
    ledger, cases, _ = _world(db_engine)
    main, cash, alice, _ = _accounts(ledger)
    y1, y2, y3 = _owned(ledger, main, "cus_a", "cus_b", "cus_c")
    for i, account in enumerate((y1, y2, y3)):
        _post(ledger, (main,), f"t_o{i}", cash, account, 950_000)
    [employer] = _owned(ledger, main, "cus_employer")
    d1, d2 = _owned(ledger, main, "cus_d", "cus_d")
    _post(ledger, (main,), "t_salary", cash, employer, 500_000)
    _post(ledger, (main,), "t_pay", employer, d1, 420_000)
    _post(ledger, (main,), "t_sold", cash, d2, 960_000)
    _post(ledger, (main,), "t_repaid", cash, d1, 930_000)
    _post(ledger, (main,), "t_own", d2, d1, 100_000)
    _post(ledger, (main,), "t_shop", d1, alice, 12_000)
    assert _aml_cases(cases) == []


def test_one_accounts_structuring_is_one_alert_though_the_customer_then_joins_in(
    db_engine: SAEngine,
) -> None:
    """Three deposits into one of a customer's two accounts: an alert about that account (as
    for an account nobody owns), keyed by its owner; a deposit into the other account then
    completes the customer's pattern, which is the same activity: no second alert."""
    ledger, cases, service = _world(db_engine)
    main, cash, _, _ = _accounts(ledger)
    z1, z2 = _owned(ledger, main, "cus_one", "cus_one")
    for i in range(3):
        _post(ledger, (main,), f"t_z{i}", cash, z1, 950_000)
    _post(ledger, (main,), "t_z3", cash, z2, 950_000)
    assert [d["subject"] for d in _details(cases)] == [f"account:{z1}"]
    assert [(k.account_id, k.typology) for k in service.raised(TENANT)] == [
        ("cus_one", "structuring")
    ]
