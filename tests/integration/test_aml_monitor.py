"""The AML monitor on SQLite and PostgreSQL, without the HTTP app: installed as runtime.py
installs it, a posted transfer raises an alert case in its own transaction; alerts are deduped
per account, typology and window; a restarted monitor rebuilds its state from recent history;
and the scan over history raises what the live sink raised."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Engine as SAEngine

from strongroom.cases.model import CaseStatus
from strongroom.cases.service import CaseService
from strongroom.compliance.aml import service as aml
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import Direction, NewTransfer
from strongroom.ledger.pipeline import Sink
from strongroom.ledger.service import AccountSpec, LedgerService

TENANT = "ten_default"


def _world(engine: SAEngine) -> tuple[LedgerService, CaseService, aml.AmlService]:
    sinks: list[Sink] = []
    bind = aml.install(True, engine, sinks)
    assert bind is not None
    assert len(sinks) == 1
    assert aml.install(False, engine, []) is None
    ledger = LedgerService(engine, sinks=sinks)
    cases = CaseService(engine, ledger)
    return ledger, cases, bind(ledger, cases)


def _accounts(ledger: LedgerService) -> tuple[str, str, str, str]:
    main = ledger.create_ledger("main")
    cash, alice, bob = ledger.create_accounts(
        [
            AccountSpec(main.id, "USD", Direction.DEBIT, metadata={"aml": "exempt"}),
            AccountSpec(main.id, "USD", Direction.CREDIT),
            AccountSpec(main.id, "USD", Direction.CREDIT, metadata={"jurisdiction": "kp"}),
        ]
    )
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
    # Money to an account in a high-risk jurisdiction (bob's metadata says KP).
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
