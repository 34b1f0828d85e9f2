"""Sanctions screening's storage and service (compliance/sanctions/service.py) on both
backends: versioned list snapshots with their diffs, the same content again a no-op, the
screener rebuilt when another process loads a version, screening points storing hits and
opening alerts, dismissals remembered until the name or the entry changes, and re-screening
only the subjects whose blocking keys meet a changed entry's."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from strongroom.cases.model import Alert, Case, CaseStatus, detail_json
from strongroom.compliance.sanctions import store
from strongroom.compliance.sanctions.errors import InvalidName, ListsNotLoaded, ScreenerNotReady
from strongroom.compliance.sanctions.match import build as build_screener
from strongroom.compliance.sanctions.model import Entry, EntryKind, ListSource, Query, Screener
from strongroom.compliance.sanctions.screener import ScreenerCache
from strongroom.compliance.sanctions.service import (
    CLEAR,
    CONFIRMED,
    PROBABLE,
    SanctionsService,
    Screened,
)
from strongroom.core import ids
from strongroom.core.errors import NotFound
from strongroom.db.uow import UnitOfWork

A, B = "ten_alpha", "ten_beta"
ACTOR = "user:usr_officer"
SDN = ListSource.OFAC_SDN


def entry(entry_id: str, *names: str, kind: EntryKind = EntryKind.PERSON) -> Entry:
    return Entry(SDN, entry_id, kind, tuple(names), programs=("SDGT",))


V1 = [
    entry("100", "Osama BIN LADEN", "Usama bin Ladin"),
    entry("200", "Viktor BOUT", "Victor Butt"),
    entry("300", "ACME TRADING LLC", kind=EntryKind.ORGANIZATION),
]


def hasher(tenant_id: str, purpose: str, value: bytes) -> bytes:
    return hmac.new(f"{purpose}\x1f{tenant_id}".encode(), value, hashlib.sha256).digest()


class Recorder:
    """Fakes of the case queue, the audit log and the events (what they were handed)."""

    def __init__(self) -> None:
        self.alerts: list[tuple[str, Alert]] = []
        self.leaves: list[tuple[str, str, dict[str, Any]]] = []
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.frozen: list[tuple[str, str, str]] = []

    def open_alerts(
        self, uow: UnitOfWork, tenant_id: str, alerts: list[Alert], *, actor: str
    ) -> list[Case]:
        del uow
        out = []
        for alert in alerts:
            self.alerts.append((tenant_id, alert))
            out.append(
                Case(ids.new_id("case"), tenant_id, alert.kind, CaseStatus.OPEN, None, None,
                     alert.code, None, 0, actor, None, None, None, None)
            )  # fmt: skip
        return out

    def record_all(self, uow: UnitOfWork, log_id: str, actor: str, items: Any) -> None:
        del uow, actor
        self.leaves.extend((log_id, kind, data) for kind, _, data in items)

    def emit(self, uow: UnitOfWork, tenant_id: str, items: Any) -> None:
        del uow
        self.events.extend((tenant_id, kind, dict(data)) for kind, data in items)


@pytest.fixture
def world(db_engine: Engine) -> tuple[SanctionsService, Recorder, dict[tuple[str, str], str]]:
    rec = Recorder()
    names: dict[tuple[str, str], str] = {}
    service = SanctionsService(
        db_engine,
        threshold=0.7,
        hasher=hasher,
        open_alerts=rec.open_alerts,
        names=lambda t, s: Screened(names[(t, s)]) if (t, s) in names else None,
        freeze_customer=lambda u, t, c, a: rec.frozen.append((t, c, a)),
        audit=rec,
        events=rec,
        refresh_s=0.0,
    )
    return service, rec, names


def screen(service: SanctionsService, tenant: str, subject: str, name: str) -> Any:
    with UnitOfWork(service.engine) as uow:
        found = service.screen_subject(uow, tenant, subject, name, EntryKind.PERSON, actor=ACTOR)
        uow.commit()
    return found


def test_versions_diffs_and_the_same_content_again(world: Any) -> None:
    service, _, _ = world
    with pytest.raises(ListsNotLoaded):
        service.screen(Query("Viktor Bout"))
    first = service.load(SDN, V1, actor=ACTOR)
    assert (first.version, first.unchanged, first.added, first.entry_count) == (1, False, 3, 3)
    again = service.load(SDN, list(reversed(V1)), actor=ACTOR)
    assert again.unchanged
    assert again.version == 1
    v2 = [replace(V1[0], remarks="updated"), V1[1], entry("400", "Ali HASSAN")]
    second = service.load(SDN, v2, actor="user:usr_loader")
    assert (second.version, second.added, second.changed, second.removed) == (2, 1, 1, 1)
    assert service.diff(SDN, 2).added == ("400",)
    assert service.diff(SDN, 2).changed == ("100",)
    assert service.diff(SDN, 2).removed == ("300",)
    rows = service.versions(SDN)
    assert [(r.version, r.entry_count, r.loaded_by) for r in rows] == [
        (1, 3, ACTOR), (2, 3, "user:usr_loader"),
    ]  # fmt: skip
    current = {e.entry_id: e for e in service.current_entries()}
    assert sorted(current) == ["100", "200", "400"]
    assert current["100"].remarks == "updated"
    best = service.screen(Query("Victor Butt"), limit=1)[0]
    assert best.entry.entry_id == "200"


def test_a_screener_sees_a_version_another_process_loaded(world: Any) -> None:
    service, _, _ = world
    service.load(SDN, V1[:1], actor=ACTOR)
    assert [m.entry.entry_id for m in service.screen(Query("Viktor Bout"), min_score=0.7)] == []
    other = SanctionsService(service.engine)  # another process, its own cache
    other.load(SDN, V1, actor=ACTOR)
    assert service.screen(Query("Viktor Bout"), min_score=0.7)[0].entry.entry_id == "200"


def test_hits_alert_once_and_dismissals_hold_until_the_name_or_entry_changes(world: Any) -> None:
    service, rec, _ = world
    service.load(SDN, V1, actor=ACTOR)
    found = screen(service, A, "customer:cus_1", "Viktor Bout")
    assert found.status == PROBABLE
    assert [(r.entry_id, r.case_id is not None) for r in found.hits] == [("200", True)]
    alert = rec.alerts[0][1]
    assert alert.kind == "sanctions_match"
    assert alert.subject == "customer:cus_1"
    assert alert.evidence["entries"][0]["entry_id"] == "200"
    assert "Viktor" not in json.dumps(alert.evidence)
    # Screened again (a re-screen, an unrelated update): the same alert, no new one.
    screen(service, A, "customer:cus_1", "Viktor Bout")
    assert len(rec.alerts) == 1
    # Another tenant's subject: its own alert; B cannot dismiss A's match.
    screen(service, B, "customer:cus_9", "Viktor Bout")
    assert len(rec.alerts) == 2
    with pytest.raises(NotFound):
        service.dismiss(B, "customer:cus_1", "ofac_sdn", "200", reviewer=ACTOR)
    dismissal = service.dismiss(A, "customer:cus_1", "ofac_sdn", "200", reviewer=ACTOR)
    assert dismissal.reviewer == ACTOR
    assert service.status(A, "customer:cus_1").status == CLEAR
    assert rec.leaves[-1][1] == "sanctions.match_dismissed"
    assert rec.events[-1][2]["entry_id"] == "200"
    # A new alert only when the name changes ...
    rec.alerts.clear()
    screen(service, A, "customer:cus_1", "Viktor Bout")
    assert rec.alerts == []
    assert service.status(A, "customer:cus_1").status == CLEAR
    screen(service, A, "customer:cus_1", "Victor Butt")
    assert len(rec.alerts) == 1
    # ... or the entry does.
    rec.alerts.clear()
    service.dismiss(A, "customer:cus_1", "ofac_sdn", "200", reviewer=ACTOR)
    screen(service, A, "customer:cus_1", "Victor Butt")
    assert rec.alerts == []
    service.load(SDN, [V1[0], replace(V1[1], programs=("UKRAINE-EO13660",)), V1[2]], actor=ACTOR)
    screen(service, A, "customer:cus_1", "Victor Butt")
    assert len(rec.alerts) == 1


def test_a_new_version_rescreens_only_subjects_sharing_a_blocking_key(world: Any) -> None:
    service, rec, names = world
    service.load(SDN, V1, actor=ACTOR)
    for subject, name in [
        ("customer:cus_1", "Jane Smith"),
        ("customer:cus_2", "Ali Hassan"),
        ("counterparty:cpty_3", "Peter Jones"),
    ]:
        names[(A, subject)] = name
        screen(service, A, subject, name)
    assert rec.alerts == []
    result = service.load(SDN, [*V1, entry("400", "Ali HASSAN")], actor=ACTOR)
    assert (result.added, result.rescreened, result.subjects) == (1, 1, 3)
    assert [a.subject for _, a in rec.alerts] == ["customer:cus_2"]
    assert service.status(A, "customer:cus_2").status == PROBABLE
    assert service.status(A, "customer:cus_1").status == CLEAR


def test_a_load_completes_the_rescreening_an_earlier_load_still_owes(world: Any) -> None:
    """A load stopped after storing its version (here: `rescreen=False`, as a kill after the
    commit) leaves the version's re-screening owed; loading the same content again (the
    unchanged path) completes it, records it, and a later load has nothing left owed."""
    service, rec, names = world
    without_bout = [V1[0], V1[2]]
    service.load(SDN, without_bout, actor=ACTOR)
    assert [r.rescreened_at is not None for r in service.versions(SDN)] == [True]
    names[(A, "customer:cus_1")] = "Viktor Bout"
    assert screen(service, A, "customer:cus_1", "Viktor Bout").status == CLEAR
    stopped = service.load(SDN, V1, actor=ACTOR, rescreen=False)
    assert (stopped.version, stopped.rescreened) == (2, 0)
    assert [(r.version, r.rescreened_at is None) for r in service.owed()] == [(2, True)]
    assert service.status(A, "customer:cus_1").status == CLEAR
    again = service.load(SDN, V1, actor=ACTOR)
    assert (again.unchanged, again.version, again.rescreened) == (True, 2, 1)
    assert service.status(A, "customer:cus_1").status == PROBABLE
    assert [a.subject for _, a in rec.alerts] == ["customer:cus_1"]
    assert service.owed() == []
    assert all(r.rescreened_at is not None for r in service.versions(SDN))
    # Nothing owed any more: the same content again re-screens nothing.
    assert service.load(SDN, V1, actor=ACTOR).rescreened == 0
    assert len(rec.alerts) == 1


def test_a_removal_owed_is_rescreened_by_the_next_new_version(world: Any) -> None:
    """What an owed version removed is re-screened too, by the next load of a new version."""
    service, _, names = world
    service.load(SDN, V1, actor=ACTOR)
    names[(A, "customer:cus_1")] = "Viktor Bout"
    assert screen(service, A, "customer:cus_1", "Viktor Bout").status == PROBABLE
    service.load(SDN, [V1[0], V1[2]], actor=ACTOR, rescreen=False)  # Bout removed
    assert [r.version for r in service.owed()] == [2]
    third = service.load(SDN, [V1[0]], actor=ACTOR)
    assert third.version == 3
    assert third.rescreened >= 1
    assert service.owed() == []


def _failing_freeze(uow: UnitOfWork, tenant_id: str, customer_id: str, actor: str) -> None:
    del uow, tenant_id, customer_id, actor
    raise RuntimeError("freeze failed")


def test_a_confirmed_match_freezes_the_customer(world: Any) -> None:
    service, rec, _ = world
    service.load(SDN, V1, actor=ACTOR)
    screen(service, A, "customer:cus_1", "Viktor Bout")
    # The freeze runs in the confirmation's transaction: when it fails, nothing stands.
    service.freeze_customer = _failing_freeze
    with pytest.raises(RuntimeError, match="freeze failed"):
        service.confirm(A, "customer:cus_1", "ofac_sdn", "200", actor=ACTOR)
    assert service.status(A, "customer:cus_1").status == PROBABLE
    service.freeze_customer = lambda u, t, c, a: rec.frozen.append((t, c, a))
    service.confirm(A, "customer:cus_1", "ofac_sdn", "200", actor=ACTOR)
    assert service.status(A, "customer:cus_1").status == CONFIRMED
    assert rec.frozen == [(A, "cus_1", ACTOR)]
    assert rec.leaves[-1][1] == "sanctions.match_confirmed"
    screen(service, A, "customer:cus_1", "Viktor Bout")  # confirmation stands
    assert service.status(A, "customer:cus_1").status == CONFIRMED


def test_a_load_that_loses_the_race_for_its_version_is_a_no_op(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two loads of the same version at once: the second read the versions before the first
    committed, and its insert meets the first's primary key. Simulated by a stale first read
    (deterministic on both backends): the second answers `unchanged`, no IntegrityError."""
    service, _, _ = world
    first = service.load(SDN, V1, actor=ACTOR)
    real = store.list_versions
    reads: list[int] = []

    def stale(uow: UnitOfWork, source: str | None = None) -> list[store.VersionRow]:
        reads.append(1)
        return [] if len(reads) == 1 else real(uow, source)  # as read before the first commit

    monkeypatch.setattr(store, "list_versions", stale)
    second = service.load(SDN, list(reversed(V1)), actor=ACTOR)
    assert (second.version, second.unchanged) == (first.version, True)
    assert len(reads) == 2  # retried once
    monkeypatch.setattr(store, "list_versions", real)
    assert [v.version for v in service.versions(SDN)] == [1]
    # A different content that lost the race is stored after the winner's.
    reads.clear()
    monkeypatch.setattr(store, "list_versions", stale)
    third = service.load(SDN, V1[:2], actor=ACTOR)
    assert (third.version, third.unchanged, third.removed) == (2, False, 1)


def test_two_threads_loading_the_same_version(world: Any) -> None:
    """However the two interleave, one stores version 1 and the other finds it stored."""
    service, _, _ = world
    other = SanctionsService(service.engine)  # another process's service
    start = threading.Barrier(2)
    results: list[Any] = []

    def load(s: SanctionsService) -> None:
        start.wait()
        try:
            results.append(s.load(SDN, V1, actor=ACTOR))
        except Exception as exc:  # what the test is about: reported, not lost in the thread
            results.append(exc)

    threads = [threading.Thread(target=load, args=(s,)) for s in (service, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted((r.version, r.unchanged) for r in results) == [(1, False), (1, True)], results
    assert [v.version for v in service.versions(SDN)] == [1]


def test_deciding_an_alert_whose_match_is_gone_works_from_its_evidence(world: Any) -> None:
    """An alert orphaned before open alerts' matches were kept (here: the fake case queue
    stores no case, so a rename drops the match): deciding it is no `not_found`. Declining
    confirms the subject from the case's evidence; approving dismisses nothing."""
    service, rec, _ = world
    service.load(SDN, V1, actor=ACTOR)
    found = screen(service, A, "customer:cus_1", "Viktor Bout")
    (case_id,) = [r.case_id for r in found.hits]
    tenant, alert = rec.alerts[0]
    detail = detail_json({"subject": alert.subject, "evidence": dict(alert.evidence)})
    screen(service, A, "customer:cus_1", "Jane Roe")  # the match is gone
    case = Case(case_id, tenant, alert.kind, CaseStatus.OPEN, None, None, alert.code, detail,
                0, ACTOR, None, None, None, None)  # fmt: skip
    # A detail edited by hand into something that is not a JSON object: the decision that acts
    # on it fails (its transaction rolls back), never confirms or dismisses nothing silently.
    for edited in ("not json", "[1, 2]"):
        with (
            pytest.raises(ValueError, match="not a JSON object"),
            UnitOfWork(service.engine) as uow,
        ):
            service.decided(
                uow, dataclasses.replace(case, detail=edited), CaseStatus.DECLINED, ACTOR
            )
    assert rec.frozen == []
    with UnitOfWork(service.engine) as uow:
        service.decided(uow, case, CaseStatus.APPROVED, ACTOR)
        uow.commit()
    assert service.status(A, "customer:cus_1").status == CLEAR
    assert rec.frozen == []
    with UnitOfWork(service.engine) as uow:
        service.decided(uow, case, CaseStatus.DECLINED, ACTOR)  # the freeze inside it
        uow.commit()
    assert service.status(A, "customer:cus_1").status == CONFIRMED
    assert rec.frozen == [(A, "cus_1", ACTOR)]


class GatedFactory:
    """The matcher's factory, waiting while `open` is clear (a build as slow as the test
    says), counting its builds."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()
        self.calls = 0

    def __call__(self, entries: Sequence[Entry]) -> Screener:
        self.calls += 1
        assert self.open.wait(timeout=60), "the test never let the build finish"
        return build_screener(entries)


def test_the_payee_gate_never_waits_for_a_build(world: Any) -> None:
    """`payee_match` (the gate's) answers from the newest screener built: none yet, it starts
    one and says ScreenerNotReady; a new version loaded elsewhere, the previous one's answer
    while the new one builds in the background, then the new one's. `screen` (a screening
    point's, ad-hoc) waits for the current version's."""
    service, _, _ = world
    SanctionsService(service.engine).load(SDN, V1, actor=ACTOR)  # another process's load
    factory = GatedFactory()
    cache = ScreenerCache(service.engine, factory=factory, refresh_s=0.0)
    gate_side = SanctionsService(service.engine, screeners=cache)
    factory.open.clear()
    with pytest.raises(ScreenerNotReady):
        gate_side.payee_match("Viktor Bout")
    factory.open.set()
    cache.join()
    found = gate_side.payee_match("Viktor Bout")
    assert found is not None
    assert (found.list, found.entry_id, found.entry_name, found.list_version) == (
        "ofac_sdn", "200", "Viktor BOUT", 1,
    )  # fmt: skip
    assert gate_side.payee_match("Jane Roe") is None
    with pytest.raises(InvalidName):
        gate_side.payee_match("!!!")

    SanctionsService(service.engine).load(SDN, [*V1, entry("400", "Ali HASSAN")], actor=ACTOR)
    factory.open.clear()
    assert gate_side.payee_match("Ali Hassan") is None  # version 1's, while 2 builds
    assert gate_side.payee_match("Viktor Bout") is not None
    assert cache.builds == 1
    factory.open.set()
    cache.join()
    assert cache.builds == 2
    new = gate_side.payee_match("Ali Hassan")
    assert new is not None
    assert (new.entry_id, new.list_version) == ("400", 2)
    # A load in this process builds the new screener itself, before its re-screening.
    gate_side.load(SDN, V1, actor=ACTOR)
    assert cache.builds == 3
    assert gate_side.payee_match("Ali Hassan") is None
    assert [m.entry.entry_id for m in gate_side.screen(Query("Viktor Bout"), min_score=0.7)] == [
        "200"
    ]


def test_a_name_with_nothing_to_screen_is_refused_and_nothing_stored(world: Any) -> None:
    service, rec, _ = world
    service.load(SDN, V1, actor=ACTOR)
    for name in ("   ", "!!!", "- - -"):
        with pytest.raises(InvalidName):
            screen(service, A, "customer:cus_1", name)
        with pytest.raises(InvalidName):
            service.screen(Query(name))
    assert service.status(A, "customer:cus_1") is None
    assert rec.alerts == []


def test_a_confirmed_subject_is_not_alerted_again_for_its_entry(world: Any) -> None:
    """A new version changing the entry a subject was confirmed for opens no second alert
    (the officer has decided on that entry; the subject stays confirmed); a new entry it
    matches still alerts."""
    service, rec, names = world
    service.load(SDN, V1, actor=ACTOR)
    names[(A, "customer:cus_1")] = "Viktor Bout"
    screen(service, A, "customer:cus_1", "Viktor Bout")
    service.confirm(A, "customer:cus_1", "ofac_sdn", "200", actor=ACTOR, reason="the person")
    assert len(rec.alerts) == 1
    changed = [V1[0], replace(V1[1], programs=("UKRAINE-EO13660",)), V1[2]]
    result = service.load(SDN, changed, actor=ACTOR)
    assert result.rescreened == 1
    assert len(rec.alerts) == 1
    assert service.status(A, "customer:cus_1").status == CONFIRMED
    service.load(SDN, [*changed, entry("500", "Viktor BOUTT")], actor=ACTOR)
    assert [a.evidence["entries"][0]["entry_id"] for _, a in rec.alerts] == ["200", "500"]


def test_a_date_of_birth_is_evidence_and_part_of_the_digest(world: Any) -> None:
    """The subject's date of birth moves the score as the ad-hoc screening's does, and a
    dismissal holds for the name and date it was made for: another date alerts again."""
    service, rec, _ = world
    dated = [replace(V1[1], dates_of_birth=("1967-01-13",))]
    service.load(SDN, dated, actor=ACTOR)

    def screened(name: str, dob: str | None) -> str:
        with UnitOfWork(service.engine) as uow:
            found = service.screen_subject(
                uow, A, "customer:cus_1", name, None, actor=ACTOR, date_of_birth=dob
            )
            uow.commit()
        return str(found.status)

    assert screened("Viktar Bot", None) == CLEAR
    assert screened("Viktar Bot", "1967-01-13") == PROBABLE
    assert screened("Wiktor Bout", "1990-05-05") == CLEAR
    assert screened("Wiktor Bout", None) == PROBABLE
    service.dismiss(A, "customer:cus_1", "ofac_sdn", "200", reviewer=ACTOR)
    alerts = len(rec.alerts)
    assert screened("Wiktor Bout", None) == CLEAR  # dismissed for this name, no date
    assert screened("Wiktor Bout", "1967-01-13") == PROBABLE  # the listed date: again
    assert len(rec.alerts) == alerts + 1
    with service.engine.connect() as conn:
        for table in ("sanctions_subjects", "sanctions_results", "sanctions_dismissals"):
            rows = conn.exec_driver_sql(f"SELECT * FROM {table}").fetchall()
            assert "1967" not in str(rows), table
