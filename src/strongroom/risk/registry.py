"""The model registry: each tenant's trained models, versioned, with their hold-out metrics, and
which one is live (decides) and which one runs in shadow (scored and logged beside the live
one, acting on nothing). docs/risk-models-registry.md.

A model's life: `register` stores an artefact (its bytes, one JSON document, never a pickle;
its version, metrics and reference histograms read by the artefact's own `describe`) as
`registered`; `shadow` puts it in shadow (the previous shadow back to `registered`); `promote`
makes it live (the previous live model `retired`); `retire` takes it out of service. A retired
model may be shadowed or promoted again (a rollback). Each change runs under the tenant's
registry lock, bumps the tenant's revision, and writes an audit leaf and an event (ids and
versions only) in its transaction; at most one live and one shadow model per tenant is also
held by partial unique indexes.

The gate reads the models through `ActiveModels`: loaded once per version, and the tenant's
revision (one primary-key read) checked at most once a `refresh_s`, so a running server serves a
promotion made by any process within about a second, with no restart.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Generic, Protocol, TypeVar

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.core import clock
from strongroom.core.errors import Conflict, ErrorCode, InvalidRequest, NotFound, StrongroomError
from strongroom.core.limits import PAGE_SIZE_DEFAULT
from strongroom.core.pagination import check_limit
from strongroom.db.uow import UnitOfWork
from strongroom.events.hooks import EventEmitter, EventType
from strongroom.risk import registry_store as store
from strongroom.risk.drift import DriftAlert, DriftMonitor, Reference, histograms

log = logging.getLogger("strongroom.risk.registry")

ARTEFACT_BYTES_MAX: Final = 64 * 1024 * 1024  # a LightGBM model of a few thousand trees fits
METRICS_JSON_BYTES_MAX: Final = 64 * 1024
VERSION_PATTERN: Final = re.compile(r"mdl_[A-Za-z0-9_.-]{1,60}")
REFRESH_S_DEFAULT: Final = 1.0

REGISTERED: Final = "risk.model_registered"
SHADOWED: Final = "risk.model_shadowed"
PROMOTED: Final = "risk.model_promoted"
RETIRED: Final = "risk.model_retired"
DRIFT_DETECTED: Final = "risk.drift_detected"

RISK_MODEL_EVENT_TYPES: Final = (
    EventType(REGISTERED, "A fraud model was registered: its version, and the actor."),
    EventType(
        SHADOWED,
        "A fraud model runs in shadow (scored beside the live one, acting on nothing): its "
        "version, and the shadow model it replaced.",
    ),
    EventType(PROMOTED, "A fraud model went live: its version, and the live model it replaced."),
    EventType(RETIRED, "A fraud model was taken out of service: its version."),
    EventType(
        DRIFT_DETECTED,
        "A feature's or the score's population stability index against the training data "
        "crossed the threshold: the model's version, the feature's name, the PSI and the "
        "threshold.",
    ),
)

REGISTRY_ERRORS: Final = (
    ErrorCode("invalid_model_artefact", 400, "The model artefact is malformed: nothing was stored"),
    ErrorCode(
        "model_version_exists",
        409,
        "A different artefact is registered under this model version",
    ),
    ErrorCode("invalid_model_transition", 409, "The model's status does not allow this change"),
)


class InvalidModelArtefact(InvalidRequest):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, param="artefact", code="invalid_model_artefact")


class ArtefactTampered(RuntimeError):
    """A stored artefact that is not the model registered under its version (a hand edit
    of the database): its sha256 differs from the one recorded at registration, or it is
    another version's model. It is never served nor used to explain a decision."""

    def __init__(self, version: str) -> None:
        super().__init__(f"the stored artefact of model {version} is not the one registered")
        self.version = version


def check_version(version: str, loaded: str) -> None:
    """ArtefactTampered unless the artefact stored as `version` is that model."""
    if loaded != version:
        raise ArtefactTampered(version)


class ModelVersionExists(Conflict):
    code = "model_version_exists"


class InvalidModelTransition(Conflict):
    code = "invalid_model_transition"


class ModelStatus(StrEnum):
    REGISTERED = "registered"
    SHADOW = "shadow"
    LIVE = "live"
    RETIRED = "retired"


# The statuses each change accepts (a change to the status a model already has does nothing).
_SHADOW_FROM: Final = frozenset({ModelStatus.REGISTERED, ModelStatus.RETIRED})
_PROMOTE_FROM: Final = frozenset({ModelStatus.REGISTERED, ModelStatus.SHADOW, ModelStatus.RETIRED})
_RETIRE_FROM: Final = frozenset({ModelStatus.REGISTERED, ModelStatus.SHADOW, ModelStatus.LIVE})


class ArtefactInfo(Protocol):
    """What the registry reads of an artefact (risk.artefact's `describe`)."""

    @property
    def version(self) -> str: ...

    @property
    def metrics(self) -> Mapping[str, Any]:
        """Hold-out metrics: average_precision, roc_auc, ..."""
        ...

    @property
    def reference(self) -> Reference:
        """Histograms of each feature and of the score (drift.SCORE) on the training data:
        name -> (edges, proportions)."""
        ...


# Reads an artefact's bytes without loading the model; raises (ValueError, ...) when malformed.
Describe = Callable[[bytes], ArtefactInfo]


def artefact_describe(raw: bytes) -> ArtefactInfo:
    """risk.artefact's own `describe`, imported when first needed (the composition root and
    the CLI wire this one; tests give their own)."""
    artefact = importlib.import_module("strongroom.risk.artefact")
    info: ArtefactInfo = artefact.describe(raw)
    return info


@dataclass(frozen=True, slots=True)
class Described:
    """An ArtefactInfo as a value (tests, and describers that have no type of their own)."""

    version: str
    metrics: Mapping[str, Any]
    reference: Reference


@dataclass(frozen=True, slots=True)
class RiskModel:
    """A registered model, without its bytes."""

    tenant_id: str
    version: str
    status: ModelStatus
    sha256: str
    metrics: Mapping[str, Any]
    created_at: int  # µs
    created_by: str
    promoted_at: int | None  # when it last went live

    @classmethod
    def of(cls, row: store.ModelRow) -> RiskModel:
        return cls(
            row.tenant_id, row.version, ModelStatus(row.status), row.sha256,
            json.loads(row.metrics), row.created_at, row.created_by, row.promoted_at,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "risk_model",
            "version": self.version,
            "status": self.status.value,
            "sha256": self.sha256,
            "metrics": dict(self.metrics),
            "created_at": clock.format_us(self.created_at),
            "created_by": self.created_by,
            "promoted_at": clock.format_us(self.promoted_at) if self.promoted_at else None,
        }


@dataclass(frozen=True, slots=True)
class ModelPage:
    data: list[RiskModel]
    has_more: bool


@dataclass(frozen=True, slots=True)
class Serving:
    """A tenant's live and shadow models as of `revision` (one read transaction)."""

    revision: int
    live: RiskModel | None
    shadow: RiskModel | None


def _describe_checked(describe: Describe, raw: bytes) -> tuple[ArtefactInfo, str]:
    """The artefact's info, checked, and its metrics as canonical JSON; InvalidModelArtefact
    (nothing stored) when anything is wrong. The detail names what, never the bytes."""
    if not raw:
        raise InvalidModelArtefact("the model artefact is empty")
    if len(raw) > ARTEFACT_BYTES_MAX:
        raise InvalidModelArtefact(f"a model artefact is at most {ARTEFACT_BYTES_MAX} bytes")
    try:
        info = describe(raw)
    except StrongroomError as exc:
        raise InvalidModelArtefact(f"not a model artefact: {exc.detail}") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise InvalidModelArtefact(f"not a model artefact ({type(exc).__name__})") from None
    version = info.version
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise InvalidModelArtefact("the artefact's version is not a model version (mdl_...)")
    if not isinstance(info.metrics, Mapping):
        raise InvalidModelArtefact("the artefact's metrics are not an object")
    try:
        metrics = json.dumps(dict(info.metrics), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidModelArtefact("the artefact's metrics are not finite JSON values") from None
    if len(metrics) > METRICS_JSON_BYTES_MAX:
        raise InvalidModelArtefact(f"the metrics are over {METRICS_JSON_BYTES_MAX} bytes")
    try:
        histograms(info.reference)
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidModelArtefact(f"the artefact's reference histograms: {exc}") from None
    return info, metrics


class RiskModelRegistry:
    def __init__(
        self,
        engine: Engine,
        describe: Describe,
        *,
        audit: AuditRecorder | None = None,
        events: EventEmitter | None = None,
        clock_: clock.MonotonicClock | None = None,
    ) -> None:
        """`describe` reads an artefact (risk.artefact's); `audit` and `events` record each
        change in its transaction."""
        self.engine = engine
        self.describe = describe
        self._audit = audit
        self._events = events
        self.clock = clock_ or clock.MonotonicClock()

    # -- reads -----------------------------------------------------------------------------

    def get(self, tenant_id: str, version: str) -> RiskModel:
        """Another tenant's model is not found, as one nobody has."""
        with UnitOfWork(self.engine, write=False) as uow:
            return RiskModel.of(self._row(uow, tenant_id, version))

    def list_models(
        self, tenant_id: str, *, starting_after: str | None = None, limit: int = PAGE_SIZE_DEFAULT
    ) -> ModelPage:
        """By version (oldest first: versions are time-ordered ids)."""
        check_limit(limit)
        with UnitOfWork(self.engine, write=False) as uow:
            rows = store.page(uow, tenant_id, starting_after, limit + 1)
        return ModelPage([RiskModel.of(r) for r in rows[:limit]], len(rows) > limit)

    def revision(self, tenant_id: str) -> int:
        """The tenant's change counter (0 before any): one primary-key read."""
        with UnitOfWork(self.engine, write=False) as uow:
            return store.revision(uow, tenant_id)

    def serving(self, tenant_id: str) -> Serving:
        with UnitOfWork(self.engine, write=False) as uow:
            rev = store.revision(uow, tenant_id)
            live = store.with_status(uow, tenant_id, ModelStatus.LIVE)
            shadow = store.with_status(uow, tenant_id, ModelStatus.SHADOW)
        return Serving(
            rev,
            RiskModel.of(live) if live is not None else None,
            RiskModel.of(shadow) if shadow is not None else None,
        )

    def artefact(self, tenant_id: str, version: str) -> bytes:
        """The artefact registered as `version`: its bytes' sha256 is the one its row
        recorded when it was registered, else ArtefactTampered."""
        with UnitOfWork(self.engine, write=False) as uow:
            found = store.artefact(uow, tenant_id, version)
        if found is None:
            raise NotFound(f"no model {version}", param="version")
        raw, registered = found
        if hashlib.sha256(raw).hexdigest() != registered:
            raise ArtefactTampered(version)
        return raw

    @staticmethod
    def _row(uow: UnitOfWork, tenant_id: str, version: str) -> store.ModelRow:
        row = store.get(uow, tenant_id, version)
        if row is None:
            raise NotFound(f"no model {version}", param="version")
        return row

    # -- changes ---------------------------------------------------------------------------

    def _record(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        actor: str,
        kind: str,
        version: str,
        data: dict[str, Any],
    ) -> None:
        store.bump_revision(uow, tenant_id)
        if self._audit is not None:
            item = (kind, version, {"version": version, **data})
            self._audit.record_all(uow, tenant_id, actor, [item])
        if self._events is not None:
            body = {"object": "risk_model", "version": version, **data}
            self._events.emit(uow, tenant_id, [(kind, body)])

    def register(self, tenant_id: str, raw: bytes, *, actor: str) -> tuple[RiskModel, bool]:
        """Store an artefact as `registered`; (the model, whether it is new). The same bytes
        again under the same version: the model as it is, nothing written. Different bytes
        under a registered version: 409 `model_version_exists`. A malformed artefact: 400
        `invalid_model_artefact`, nothing written."""
        info, metrics = _describe_checked(self.describe, raw)
        digest = hashlib.sha256(raw).hexdigest()
        now = self.clock.now_us()
        with UnitOfWork(self.engine) as uow:
            store.lock_tenant(uow, tenant_id)
            found = store.get(uow, tenant_id, info.version)
            if found is not None:
                if found.sha256 != digest:
                    raise ModelVersionExists(
                        f"model {info.version} is registered with a different artefact",
                        param="version",
                    )
                return RiskModel.of(found), False
            row = store.ModelRow(
                tenant_id, info.version, ModelStatus.REGISTERED.value, digest, metrics, now,
                actor, None, now,
            )  # fmt: skip
            store.insert(uow, row, raw)
            self._record(uow, tenant_id, actor, REGISTERED, info.version, {"sha256": digest})
            uow.commit()
        return RiskModel.of(row), True

    def _change(
        self,
        tenant_id: str,
        version: str,
        actor: str,
        to: ModelStatus,
        allowed: frozenset[ModelStatus],
    ) -> RiskModel:
        """Moves `version` to `to`; the model holding `to` before (live or shadow) moves to
        `retired` (live) or `registered` (shadow). One transaction, under the tenant's lock."""
        kind = {
            ModelStatus.SHADOW: SHADOWED,
            ModelStatus.LIVE: PROMOTED,
            ModelStatus.RETIRED: RETIRED,
        }[to]
        now = self.clock.now_us()
        with UnitOfWork(self.engine) as uow:
            store.lock_tenant(uow, tenant_id)
            row = self._row(uow, tenant_id, version)
            before = ModelStatus(row.status)
            if before is to:
                return RiskModel.of(row)
            if before not in allowed:
                raise InvalidModelTransition(
                    f"model {version} is {before.value}: it cannot become {to.value}",
                    param="version",
                )
            data: dict[str, Any] = {"from": before.value, "to": to.value}
            if to in (ModelStatus.LIVE, ModelStatus.SHADOW):
                holder = store.with_status(uow, tenant_id, to)
                if holder is not None:
                    demoted = (
                        ModelStatus.RETIRED if to is ModelStatus.LIVE else ModelStatus.REGISTERED
                    )
                    store.set_status(uow, tenant_id, holder.version, demoted, now)
                    data["replaced"] = {"version": holder.version, "status": demoted.value}
            store.set_status(uow, tenant_id, version, to, now, promoted=to is ModelStatus.LIVE)
            self._record(uow, tenant_id, actor, kind, version, data)
            changed = RiskModel.of(self._row(uow, tenant_id, version))
            uow.commit()
        return changed

    def shadow(self, tenant_id: str, version: str, *, actor: str) -> RiskModel:
        return self._change(tenant_id, version, actor, ModelStatus.SHADOW, _SHADOW_FROM)

    def promote(self, tenant_id: str, version: str, *, actor: str) -> RiskModel:
        return self._change(tenant_id, version, actor, ModelStatus.LIVE, _PROMOTE_FROM)

    def retire(self, tenant_id: str, version: str, *, actor: str) -> RiskModel:
        """A retired live model leaves the tenant with none: the gate decides by its rules."""
        return self._change(tenant_id, version, actor, ModelStatus.RETIRED, _RETIRE_FROM)


# -- what the gate holds: the loaded live and shadow models, refreshed on a revision change --

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Loaded(Generic[T]):
    version: str
    model: T  # what `load` made of the artefact (a risk.model.Scorer)
    info: ArtefactInfo


@dataclass(frozen=True, slots=True)
class Active(Generic[T]):
    revision: int
    live: Loaded[T] | None
    shadow: Loaded[T] | None
    drift: DriftMonitor | None  # the live model's, when a drift factory is given


@dataclass(slots=True)
class _Entry(Generic[T]):
    active: Active[T]
    checked: float  # monotonic seconds


# Makes the drift monitor of a tenant's live model: (tenant_id, version, info) -> monitor.
DriftFactory = Callable[[str, str, ArtefactInfo], DriftMonitor]


class ActiveModels(Generic[T]):
    """Each tenant's live and shadow models, loaded (`load`: artefact bytes -> a scorer) once
    per version. `get` is cheap: within `refresh_s` of the last check it reads nothing; after
    it, one primary-key read of the tenant's revision, and the models are reloaded only when
    it moved. While one thread reloads, the others go on with the models they had. With
    `background` (the server's choice), a tenant's reload after the first runs on a thread of
    its own, so no payment waits for a model to load: the calls go on with the models they
    had until the new ones are in place. A model that fails to load keeps the previous ones in
    service (logged, tried again at the next check); with none before, the failure is raised
    to the caller (the gate's fail-safe)."""

    def __init__(
        self,
        registry: RiskModelRegistry,
        load: Callable[[bytes], T],
        *,
        refresh_s: float = REFRESH_S_DEFAULT,
        drift: DriftFactory | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        background: bool = False,
    ) -> None:
        assert refresh_s >= 0
        self.background = background
        self._reloading: set[threading.Thread] = set()
        self.registry = registry
        self._load = load
        self.refresh_s = refresh_s
        self._drift = drift
        self._monotonic = monotonic
        self._entries: dict[str, _Entry[T]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, tenant_id: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(tenant_id)
            if lock is None:
                lock = self._locks[tenant_id] = threading.Lock()
            return lock

    def get(self, tenant_id: str) -> Active[T]:
        entry = self._entries.get(tenant_id)
        if entry is not None and self._monotonic() - entry.checked < self.refresh_s:
            return entry.active
        lock = self._lock(tenant_id)
        # With models in hand, a thread that finds another reloading goes on with them.
        if not lock.acquire(blocking=entry is None):
            assert entry is not None
            return entry.active
        handed = False
        try:
            entry = self._entries.get(tenant_id)
            now = self._monotonic()
            if entry is not None and now - entry.checked < self.refresh_s:
                return entry.active
            if entry is not None and self.registry.revision(tenant_id) == entry.active.revision:
                entry.checked = now
                return entry.active
            if entry is not None and self.background:
                entry.checked = now  # the next calls go on with these until the reload is done
                thread = threading.Thread(
                    target=self._reload_held,
                    args=(tenant_id, entry, lock),
                    name=f"risk-models-{tenant_id}",
                    daemon=True,
                )
                with self._guard:
                    self._reloading.add(thread)
                thread.start()
                handed = True  # the reloading thread releases the lock
                return entry.active
            return self._reload_now(tenant_id, entry, now)
        finally:
            if not handed:
                lock.release()

    def _reload_now(self, tenant_id: str, entry: _Entry[T] | None, now: float) -> Active[T]:
        try:
            active = self._reload(tenant_id, entry.active if entry is not None else None)
        except Exception:
            if entry is None:
                raise
            log.exception("risk models: reloading tenant %s failed; kept the last", tenant_id)
            entry.checked = now
            return entry.active
        self._entries[tenant_id] = _Entry(active, now)
        return active

    def _reload_held(self, tenant_id: str, entry: _Entry[T], lock: threading.Lock) -> None:
        """A background reload: `lock` (the tenant's) is held for it by the caller."""
        try:
            self._reload_now(tenant_id, entry, self._monotonic())
        finally:
            lock.release()
            with self._guard:
                self._reloading.discard(threading.current_thread())

    def wait(self, timeout_s: float = 10.0) -> None:
        """Until the background reloads under way are done (tests, shutdown)."""
        with self._guard:
            threads = list(self._reloading)
        for thread in threads:
            thread.join(timeout_s)

    def _loaded(
        self, tenant_id: str, model: RiskModel | None, have: list[Loaded[T]]
    ) -> Loaded[T] | None:
        if model is None:
            return None
        for loaded in have:
            if loaded.version == model.version:
                return loaded
        raw = self.registry.artefact(tenant_id, model.version)
        info = self.registry.describe(raw)
        check_version(model.version, info.version)
        return Loaded(model.version, self._load(raw), info)

    def _reload(self, tenant_id: str, before: Active[T] | None) -> Active[T]:
        serving = self.registry.serving(tenant_id)
        have = [x for x in (before.live, before.shadow) if x is not None] if before else []
        live = self._loaded(tenant_id, serving.live, have)
        shadow = self._loaded(tenant_id, serving.shadow, have)
        drift = None
        if live is not None and self._drift is not None:
            same = (
                before is not None
                and before.live is not None
                and before.live.version == live.version
            )
            drift = before.drift if same and before is not None else None
            if drift is None:
                drift = self._drift(tenant_id, live.version, live.info)
        return Active(serving.revision, live, shadow, drift)


def drift_alerts(
    engine: Engine, events: EventEmitter, tenant_id: str, version: str
) -> Callable[[DriftAlert], None]:
    """A DriftMonitor's `on_alert`: the event `risk.drift_detected` of the tenant, in its own
    transaction. A failure is logged, never raised: an alert must not fail a payment."""

    def emit(alert: DriftAlert) -> None:
        data = {
            "object": "risk_drift",
            "model_version": version,
            "feature": alert.feature,
            "psi": round(alert.psi, 6),
            "threshold": alert.threshold,
            "rows": alert.rows,
        }
        try:
            with UnitOfWork(engine) as uow:
                events.emit(uow, tenant_id, [(DRIFT_DETECTED, data)])
                uow.commit()
        except Exception:
            log.exception("risk drift: the alert event for %s could not be written", tenant_id)
        else:
            log.warning(
                "risk drift: %s of model %s has PSI %.3f past %.3f",
                alert.feature, version, alert.psi, alert.threshold,
            )  # fmt: skip

    return emit


def drift_factory(
    engine: Engine,
    events: EventEmitter,
    *,
    threshold: float,
    min_rows: int,
    on_psi: Callable[[str, str, float], object] | None = None,
) -> DriftFactory:
    """ActiveModels' `drift`: each live model's monitor, against its own training data, with
    the settings' threshold and minimum rows (STRONGROOM_RISK_DRIFT_PSI, _MIN_ROWS); its PSIs
    to `on_psi(tenant_id, feature, psi)` (Metrics.observe_psi) and its alerts to the tenant's
    events (`drift_alerts`)."""

    def make(tenant_id: str, version: str, info: ArtefactInfo) -> DriftMonitor:
        report = None
        if on_psi is not None:
            psi_of = on_psi

            def report(feature: str, psi: float) -> None:
                psi_of(tenant_id, feature, psi)

        return DriftMonitor(
            info.reference,
            threshold=threshold,
            min_rows=min_rows,
            on_psi=report,
            on_alert=drift_alerts(engine, events, tenant_id, version),
        )

    return make


__all__ = [
    "Active",
    "ActiveModels",
    "ArtefactInfo",
    "Describe",
    "Described",
    "InvalidModelArtefact",
    "InvalidModelTransition",
    "Loaded",
    "ModelStatus",
    "ModelVersionExists",
    "RiskModel",
    "RiskModelRegistry",
    "Serving",
    "artefact_describe",
    "drift_alerts",
    "drift_factory",
]
