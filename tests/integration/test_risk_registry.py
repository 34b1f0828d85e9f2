"""The model registry (risk/registry.py) on both backends: the statuses' transitions, one live
and one shadow model per tenant (under concurrent promotions, and by the database's own
indexes), idempotent registration, a malformed or conflicting artefact refused with nothing
written, another tenant's models invisible, an audit leaf and an event for every change, and
the gate's cache picking up a promotion made elsewhere without a restart."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.audit.service import AuditLog
from strongroom.core.errors import NotFound
from strongroom.db.uow import UnitOfWork
from strongroom.events.service import EventService
from strongroom.risk.drift import SCORE, DriftMonitor
from strongroom.risk.registry import (
    RISK_MODEL_EVENT_TYPES,
    ActiveModels,
    ArtefactInfo,
    ArtefactTampered,
    InvalidModelArtefact,
    InvalidModelTransition,
    ModelStatus,
    ModelVersionExists,
    RiskModelRegistry,
    drift_alerts,
    drift_factory,
)
from strongroom.runtime import build_ledger
from strongroom.settings import Settings
from tests.support.risk_models import REFERENCE, artefact, describe

ACTOR = "user:usr_analyst"
A, B = "ten_alpha", "ten_beta"


@dataclass
class World:
    engine: Engine
    audit: AuditLog
    events: EventService
    registry: RiskModelRegistry

    def leaves(self, tenant: str) -> list[dict[str, Any]]:
        found, _ = self.audit.leaves(tenant, 0, 1_000)
        return [x["content"] for x in found]

    def event_types(self, tenant: str) -> list[str]:
        return [e.type for e in reversed(self.events.list_events(tenant_id=tenant).data)]

    def statuses(self, tenant: str) -> dict[str, str]:
        page = self.registry.list_models(tenant, limit=100)
        return {m.version: m.status.value for m in page.data}


@pytest.fixture
def world(db_url: str, db_engine: Engine) -> World:
    _, audit = build_ledger(db_engine, Settings(database_url=db_url))
    events = EventService(db_engine, audit=audit, event_types=RISK_MODEL_EVENT_TYPES)
    registry = RiskModelRegistry(db_engine, describe, audit=audit, events=events)
    return World(db_engine, audit, events, registry)


def test_a_model_goes_registered_shadow_live_retired(world: World) -> None:
    r = world.registry
    m1, created = r.register(A, artefact("mdl_1"), actor=ACTOR)
    assert created
    assert (m1.status, m1.created_by, m1.metrics["average_precision"]) == (
        ModelStatus.REGISTERED, ACTOR, 0.7,
    )  # fmt: skip
    r.register(A, artefact("mdl_2"), actor=ACTOR)
    r.register(A, artefact("mdl_3"), actor=ACTOR)
    assert r.shadow(A, "mdl_1", actor=ACTOR).status is ModelStatus.SHADOW
    # A new shadow sends the previous one back to registered.
    r.shadow(A, "mdl_2", actor=ACTOR)
    assert world.statuses(A) == {"mdl_1": "registered", "mdl_2": "shadow", "mdl_3": "registered"}
    promoted = r.promote(A, "mdl_2", actor=ACTOR)
    assert promoted.status is ModelStatus.LIVE
    assert promoted.promoted_at is not None
    assert r.serving(A).shadow is None  # the shadow went live: no shadow left
    # A new live model retires the previous one.
    r.promote(A, "mdl_3", actor=ACTOR)
    assert world.statuses(A) == {"mdl_1": "registered", "mdl_2": "retired", "mdl_3": "live"}
    serving = r.serving(A)
    assert serving.live is not None
    assert serving.live.version == "mdl_3"
    # The same change again does nothing (no leaf, no event, no revision).
    revision, leaves = r.revision(A), len(world.leaves(A))
    assert r.promote(A, "mdl_3", actor=ACTOR).status is ModelStatus.LIVE
    assert (r.revision(A), len(world.leaves(A))) == (revision, leaves)
    # The live model cannot be put in shadow; a retired one can come back (a rollback).
    with pytest.raises(InvalidModelTransition):
        r.shadow(A, "mdl_3", actor=ACTOR)
    r.promote(A, "mdl_2", actor=ACTOR)
    assert world.statuses(A) == {"mdl_1": "registered", "mdl_2": "live", "mdl_3": "retired"}
    r.retire(A, "mdl_2", actor=ACTOR)
    assert r.serving(A).live is None
    with pytest.raises(NotFound):
        r.promote(A, "mdl_404", actor=ACTOR)


def test_every_change_is_an_audit_leaf_and_an_event(world: World) -> None:
    r = world.registry
    digest = r.register(A, artefact("mdl_1"), actor=ACTOR)[0].sha256
    r.register(A, artefact("mdl_2"), actor=ACTOR)
    r.shadow(A, "mdl_1", actor=ACTOR)
    r.promote(A, "mdl_2", actor=ACTOR)
    r.promote(A, "mdl_1", actor=ACTOR)
    r.retire(A, "mdl_1", actor=ACTOR)
    leaves = [x for x in world.leaves(A) if x["type"].startswith("risk.")]
    assert [(x["type"], x["actor"]) for x in leaves] == [
        ("risk.model_registered", ACTOR),
        ("risk.model_registered", ACTOR),
        ("risk.model_shadowed", ACTOR),
        ("risk.model_promoted", ACTOR),
        ("risk.model_promoted", ACTOR),
        ("risk.model_retired", ACTOR),
    ]
    assert leaves[0]["data"] == {"version": "mdl_1", "sha256": digest}
    assert leaves[4]["data"] == {
        "version": "mdl_1",
        "from": "shadow",
        "to": "live",
        "replaced": {"version": "mdl_2", "status": "retired"},
    }
    assert world.event_types(A) == [x["type"] for x in leaves]
    event = json.loads(world.events.list_events(tenant_id=A).data[1].data or "{}")
    assert event["object"] == "risk_model"
    assert event["version"] == "mdl_1"
    assert world.events.list_events(tenant_id=B).data == []
    assert r.revision(A) == 6


def test_registration_is_idempotent_and_a_different_artefact_is_refused(world: World) -> None:
    r = world.registry
    first, created = r.register(A, artefact("mdl_1"), actor=ACTOR)
    again, created_again = r.register(A, artefact("mdl_1"), actor="user:someone_else")
    assert created
    assert not created_again
    assert again == first
    before = (len(world.leaves(A)), world.event_types(A), r.revision(A))
    with pytest.raises(ModelVersionExists):
        r.register(A, artefact("mdl_1", ap=0.99), actor=ACTOR)
    assert (len(world.leaves(A)), world.event_types(A), r.revision(A)) == before
    assert r.get(A, "mdl_1").metrics["average_precision"] == 0.7
    assert r.artefact(A, "mdl_1") == artefact("mdl_1")


BAD_ARTEFACTS: dict[str, bytes] = {
    "empty": b"",
    "not json": b"\x00\x01 not a model",
    "no version": json.dumps({"metrics": {}, "reference": {}}).encode(),
    "bad version": artefact("../../etc/passwd"),
    "NaN metric": artefact("mdl_nan").replace(b"0.7", b"NaN"),
    "bad reference": artefact("mdl_ref", reference={"amount": [[0, 1, 2], [0.9, 0.9]]}),
}


@pytest.mark.parametrize("name", sorted(BAD_ARTEFACTS))
def test_a_malformed_artefact_is_refused_with_nothing_written(world: World, name: str) -> None:
    with pytest.raises(InvalidModelArtefact) as refused:
        world.registry.register(A, BAD_ARTEFACTS[name], actor=ACTOR)
    assert refused.value.code == "invalid_model_artefact"
    assert "passwd" not in str(refused.value)
    with world.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM risk_models")).scalar() == 0
    assert world.leaves(A) == []
    assert world.event_types(A) == []
    assert world.registry.revision(A) == 0


def test_another_tenants_models_are_invisible(world: World) -> None:
    r = world.registry
    r.register(B, artefact("mdl_theirs"), actor=ACTOR)
    r.promote(B, "mdl_theirs", actor=ACTOR)
    assert r.list_models(A).data == []
    for attempt in (
        lambda: r.get(A, "mdl_theirs"),
        lambda: r.artefact(A, "mdl_theirs"),
        lambda: r.promote(A, "mdl_theirs", actor=ACTOR),
        lambda: r.shadow(A, "mdl_theirs", actor=ACTOR),
        lambda: r.retire(A, "mdl_theirs", actor=ACTOR),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert r.serving(A).live is None
    # The same version may be each tenant's own (their registries are separate).
    r.register(A, artefact("mdl_theirs", ap=0.5), actor=ACTOR)
    assert r.get(A, "mdl_theirs").status is ModelStatus.REGISTERED
    assert r.get(B, "mdl_theirs").status is ModelStatus.LIVE


def test_concurrent_promotions_leave_exactly_one_live_model(world: World) -> None:
    r = world.registry
    versions = [f"mdl_{i}" for i in range(6)]
    for version in versions:
        r.register(A, artefact(version), actor=ACTOR)
    barrier = threading.Barrier(len(versions))
    errors: list[BaseException] = []

    def promote(version: str) -> None:
        try:
            barrier.wait()
            r.promote(A, version, actor=ACTOR)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    statuses = world.statuses(A)
    assert sorted(statuses.values()) == ["live"] + ["retired"] * 5
    # The promotions were serialised: each one retired the live model it found.
    promoted = [x for x in world.leaves(A) if x["type"] == "risk.model_promoted"]
    assert len(promoted) == 6
    assert sum("replaced" in x["data"] for x in promoted) == 5
    live = next(v for v, s in statuses.items() if s == "live")
    assert promoted[-1]["data"]["version"] == live


def test_the_database_itself_refuses_a_second_live_or_shadow_model(world: World) -> None:
    r = world.registry
    r.register(A, artefact("mdl_1"), actor=ACTOR)
    r.register(A, artefact("mdl_2"), actor=ACTOR)
    r.promote(A, "mdl_1", actor=ACTOR)
    r.shadow(A, "mdl_2", actor=ACTOR)
    for status, version in (("live", "mdl_2"), ("shadow", "mdl_1")):
        with pytest.raises(sa.exc.IntegrityError), world.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE risk_models SET status = :s WHERE version = :v"),
                {"s": status, "v": version},
            )
    # Another tenant's live model is no conflict.
    r.register(B, artefact("mdl_1"), actor=ACTOR)
    r.promote(B, "mdl_1", actor=ACTOR)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_gate_sees_a_promotion_made_elsewhere_within_the_refresh(world: World) -> None:
    loads: list[str] = []

    def load(raw: bytes) -> str:
        version: str = json.loads(raw)["version"]
        loads.append(version)
        return f"scorer of {version}"

    monitors: list[tuple[str, str]] = []

    def drift(tenant: str, version: str, info: ArtefactInfo) -> DriftMonitor:
        monitors.append((tenant, version))
        return DriftMonitor(info.reference, threshold=0.25, min_rows=10)

    clock = FakeClock()
    active = ActiveModels(world.registry, load, refresh_s=1.0, drift=drift, monotonic=clock)
    assert active.get(A).live is None
    # Another process (another registry on the same database) registers and promotes.
    elsewhere = RiskModelRegistry(world.engine, describe)
    elsewhere.register(A, artefact("mdl_1"), actor=ACTOR)
    elsewhere.promote(A, "mdl_1", actor=ACTOR)
    elsewhere.register(A, artefact("mdl_2"), actor=ACTOR)
    elsewhere.shadow(A, "mdl_2", actor=ACTOR)
    assert active.get(A).live is None  # within the refresh interval: nothing read
    clock.now += 1.0
    now = active.get(A)
    assert now.live is not None
    assert now.shadow is not None
    assert (now.live.version, now.live.model, now.shadow.model) == (
        "mdl_1", "scorer of mdl_1", "scorer of mdl_2",
    )  # fmt: skip
    assert now.live.info.metrics["average_precision"] == 0.7
    assert now.drift is not None
    assert now.drift.features == ("amount", SCORE)
    # Nothing changed: the same objects, nothing loaded again.
    clock.now += 5.0
    assert active.get(A) is now
    # The shadow goes live: it is not loaded again, the live model's monitor is new.
    elsewhere.promote(A, "mdl_2", actor=ACTOR)
    clock.now += 1.0
    after = active.get(A)
    assert after.live is not None
    assert (after.live.version, after.shadow) == ("mdl_2", None)
    assert after.live is now.shadow
    assert loads == ["mdl_1", "mdl_2"]
    assert monitors == [(A, "mdl_1"), (A, "mdl_2")]
    assert active.get(B).live is None


def test_a_background_reload_keeps_serving_the_last_models_until_the_new_ones_load(
    world: World,
) -> None:
    """The server's mode: after the first load, a promotion is loaded on a thread of its own,
    and no call waits for it (the calls meanwhile get the models they had)."""
    release = threading.Event()
    started = threading.Event()

    def load(raw: bytes) -> str:
        version: str = json.loads(raw)["version"]
        if version == "mdl_2":
            started.set()
            assert release.wait(10), "the test never released the load"
        return version

    clock = FakeClock()
    active: ActiveModels[str] = ActiveModels(
        world.registry, load, refresh_s=1.0, monotonic=clock, background=True
    )
    world.registry.register(A, artefact("mdl_1"), actor=ACTOR)
    world.registry.promote(A, "mdl_1", actor=ACTOR)
    first = active.get(A).live  # the first load is the caller's: there is nothing to serve
    assert first is not None
    assert first.version == "mdl_1"
    world.registry.register(A, artefact("mdl_2"), actor=ACTOR)
    world.registry.promote(A, "mdl_2", actor=ACTOR)
    clock.now += 1.0
    during = active.get(A).live  # starts the reload, answers at once with mdl_1
    assert started.wait(10)
    assert during is first
    clock.now += 1.0
    still = active.get(A).live  # a call while the load runs does not wait for it either
    assert still is first
    release.set()
    active.wait()
    served = active.get(A).live
    assert served is not None
    assert served.version == "mdl_2"


def test_a_model_that_fails_to_load_keeps_the_last_ones_serving(world: World) -> None:
    broken: set[str] = set()

    def load(raw: bytes) -> str:
        version: str = json.loads(raw)["version"]
        if version in broken:
            raise ValueError("cannot load")
        return version

    clock = FakeClock()
    active: ActiveModels[str] = ActiveModels(world.registry, load, monotonic=clock)
    world.registry.register(A, artefact("mdl_1"), actor=ACTOR)
    world.registry.promote(A, "mdl_1", actor=ACTOR)
    assert active.get(A).live is not None
    world.registry.register(A, artefact("mdl_2"), actor=ACTOR)
    world.registry.promote(A, "mdl_2", actor=ACTOR)
    broken.add("mdl_2")
    clock.now += 2
    served = active.get(A).live
    assert served is not None
    assert served.version == "mdl_1"
    broken.clear()
    clock.now += 2
    served = active.get(A).live
    assert served is not None
    assert served.version == "mdl_2"
    # With nothing loaded before, the failure is the caller's (the gate's fail-safe policy).
    fresh: ActiveModels[str] = ActiveModels(world.registry, load, monotonic=clock)
    broken.add("mdl_2")
    with pytest.raises(ValueError, match="cannot load"):
        fresh.get(A)


def test_an_artefact_swapped_by_hand_is_never_served(world: World) -> None:
    world.registry.register(A, artefact("mdl_1"), actor=ACTOR)
    world.registry.register(A, artefact("mdl_2"), actor=ACTOR)
    world.registry.promote(A, "mdl_1", actor=ACTOR)
    # A hand edit of the database: mdl_1's row holds mdl_2's artefact.
    swapped = artefact("mdl_2")
    edit = sa.text(
        "UPDATE risk_models SET artefact = :raw WHERE tenant_id = :t AND version = 'mdl_1'"
    )
    with world.engine.begin() as conn:
        conn.execute(edit, {"raw": swapped, "t": A})
    with pytest.raises(ArtefactTampered, match="mdl_1"):
        world.registry.artefact(A, "mdl_1")

    def load(raw: bytes) -> str:
        version: str = json.loads(raw)["version"]
        return version

    # Nothing loaded before: the failure is the gate's (its fail-safe policy), never mdl_2
    # served as mdl_1.
    with pytest.raises(ArtefactTampered):
        ActiveModels(world.registry, load, monotonic=FakeClock()).get(A)
    # The registration's sha256 edited to match too: the artefact is another version's model.
    with world.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE risk_models SET sha256 = :h WHERE tenant_id = :t AND version = 'mdl_1'"
            ),
            {"h": hashlib.sha256(swapped).hexdigest(), "t": A},
        )
    assert world.registry.artefact(A, "mdl_1") == swapped
    with pytest.raises(ArtefactTampered):
        ActiveModels(world.registry, load, monotonic=FakeClock()).get(A)
    # mdl_2's own row is untouched and serves once promoted.
    world.registry.promote(A, "mdl_2", actor=ACTOR)
    served = ActiveModels(world.registry, load, monotonic=FakeClock()).get(A).live
    assert served is not None
    assert served.version == "mdl_2"


def test_a_drift_alert_is_an_event_of_the_tenant(world: World) -> None:
    emit: Callable[..., None] = drift_alerts(world.engine, world.events, A, "mdl_1")
    monitor = DriftMonitor(
        REFERENCE, threshold=0.25, min_rows=10, check_every_rows=10, on_alert=emit
    )
    for _ in range(3):
        monitor.observe([{"amount": 15.0}] * 10, [0.1] * 9 + [0.9])
    events = world.events.list_events(tenant_id=A).data
    assert [e.type for e in events] == ["risk.drift_detected"]
    data = json.loads(events[0].data or "{}")
    assert (data["feature"], data["model_version"], data["threshold"]) == ("amount", "mdl_1", 0.25)
    assert data["psi"] > 0.25
    with UnitOfWork(world.engine, write=False) as uow:
        assert uow is not None  # the alert wrote in its own transaction, now committed


def test_the_drift_factory_reports_each_psi_by_tenant_and_alerts_once(world: World) -> None:
    seen: list[tuple[str, str, float]] = []
    make = drift_factory(
        world.engine, world.events, threshold=0.25, min_rows=10,
        on_psi=lambda tenant, feature, psi: seen.append((tenant, feature, psi)),
    )  # fmt: skip
    world.registry.register(A, artefact("mdl_1"), actor=ACTOR)
    world.registry.promote(A, "mdl_1", actor=ACTOR)
    active = ActiveModels(world.registry, lambda raw: raw, drift=make)
    monitor = active.get(A).drift
    assert monitor is not None
    assert (monitor.threshold, monitor.min_rows) == (0.25, 10)
    monitor.check_every_rows = 10
    for _ in range(5):
        monitor.observe([{"amount": 15.0}] * 10, [0.1] * 9 + [0.9])
    assert {(t, f) for t, f, _ in seen} == {(A, "amount"), (A, SCORE)}
    drifted = [e for e in world.events.list_events(tenant_id=A).data if "drift" in e.type]
    assert len(drifted) == 1
