"""A run of the controls: each control in turn (one that raises is an `error` outcome naming
the exception's type, never its message), the report stored (table `compliance_reports`), an
audit leaf `compliance.checked` in the deployment's log, and for each failing control an event
`compliance.control_failed` to each tenant its findings concern (the deployment's own findings
go to the deployment's tenant), in the report's transaction. The route serves the latest stored
report; nothing scans per request."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.compliance.controls import store
from strongroom.compliance.controls.checks import CONTROLS, Control, Progress, Sources, Thresholds
from strongroom.compliance.controls.model import (
    DEPLOYMENT_TENANT,
    ControlResult,
    Outcome,
    Report,
)
from strongroom.core import clock, ids
from strongroom.core.errors import NotFound
from strongroom.db.uow import UnitOfWork
from strongroom.events.hooks import EventEmitter, EventType

log = logging.getLogger("strongroom.compliance.controls")

CONTROL_FAILED: Final = "compliance.control_failed"
CONTROL_EVENT_TYPES: Final = (
    EventType(
        CONTROL_FAILED,
        "A compliance control failed in a run of `strongroom compliance check` (or its "
        "scheduled job): the report id, the control's name and how many findings concern "
        "this tenant; the evidence is in GET /v1/compliance/report.",
    ),
)


class ControlsService:
    def __init__(
        self,
        engine: Engine,
        sources: Sources,
        thresholds: Thresholds,
        *,
        audit: AuditRecorder | None = None,
        events: EventEmitter | None = None,
        controls: Sequence[Control] = CONTROLS,
        now_us: Callable[[], int] = clock.now_us,
    ) -> None:
        self.engine = engine
        self.sources = sources
        self.thresholds = thresholds
        self.controls = tuple(controls)
        self._audit = audit
        self._events = events
        self._now_us = now_us

    def run(self, *, actor: str, progress: Progress | None = None) -> Report:
        say = progress or (lambda _m: None)
        started = self._now_us()
        results: list[ControlResult] = []
        for control in self.controls:
            say(f"control {control.__name__}")
            try:
                result = control(self.sources, self.thresholds, started, say)
            except Exception as exc:  # a control that cannot run is a finding itself
                log.exception("control %s could not run", control.__name__)
                result = ControlResult(
                    control.__name__,
                    control.__name__.replace("_", " "),
                    Outcome.ERROR,
                    f"the control could not run: {type(exc).__name__}",
                )
            say(f"control {result.name}: {result.outcome.value}")
            results.append(result)
        report = Report(
            ids.new_id("crep"), clock.format_us(started), clock.format_us(self._now_us()), results
        )
        self._store(report, started, actor)
        return report

    def _store(self, report: Report, started: int, actor: str) -> None:
        row = store.StoredReport(report.id, started, report.outcome.value, report.to_json(), actor)
        with UnitOfWork(self.engine) as uow:
            store.insert_report(uow, row)
            if self._audit is not None:
                data = {
                    "report_id": report.id,
                    "outcome": report.outcome.value,
                    "controls": {c.name: c.outcome.value for c in report.controls},
                }
                self._audit.record_all(
                    uow, DEPLOYMENT_TENANT, actor, [("compliance.checked", report.id, data)]
                )
            if self._events is not None:
                for tenant, items in _failure_events(report).items():
                    self._events.emit(uow, tenant, items)
            uow.commit()

    def latest(self) -> Report | None:
        with UnitOfWork(self.engine, write=False) as uow:
            row = store.latest_report(uow)
        return None if row is None else Report.from_dict(json.loads(row.body))

    def latest_at(self) -> int | None:
        with UnitOfWork(self.engine, write=False) as uow:
            row = store.latest_report(uow)
        return None if row is None else row.created_at

    def latest_for(self, tenant_id: str) -> dict[str, Any]:
        """The latest stored report as the tenant sees it (Report.for_tenant)."""
        report = self.latest()
        if report is None:
            raise NotFound(
                "no compliance report yet: run `strongroom compliance check`", param="report"
            )
        return report.for_tenant(tenant_id).to_dict()


def _failure_events(report: Report) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for c in report.failed:
        counts: dict[str, int] = {}
        for owner, n in c.found_by_tenant.items():  # every finding, kept or not
            tenant = owner or DEPLOYMENT_TENANT
            counts[tenant] = counts.get(tenant, 0) + n
        if not counts:  # an error, or findings beyond those kept: the deployment's
            counts[DEPLOYMENT_TENANT] = c.found
        for tenant, n in sorted(counts.items()):
            body = {
                "object": "compliance_control",
                "report_id": report.id,
                "control": c.name,
                "outcome": c.outcome.value,
                "findings": n,
            }
            out.setdefault(tenant, []).append((CONTROL_FAILED, body))
    return out
