"""The server's Prometheus metrics: HTTP requests, ledger commits, webhook attempts, the
outbox backlog, the background jobs, retention, the processes and the build.

With one process, each app has its own registry (so tests can build many apps). With several
(`strongroom serve --workers N`), `serve` gives the workers a private directory in
PROMETHEUS_MULTIPROC_DIR before they start: every worker writes its samples there, and a scrape,
whichever worker answers it, reads all of them, so the counts are the deployment's. The
supervisor marks each dead worker there (`multiprocess.mark_process_dead`).

No label names a tenant, an API key or any id: routes are templates, results are codes (one
exception: the risk model's drift gauge names the tenant whose model it is)."""

from __future__ import annotations

import collections
import functools
import os
import platform
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from strongroom import __version__
from strongroom.events.model import Attempt
from strongroom.events.service import EventService
from strongroom.jobs import JobState
from strongroom.ledger.model import TransferOutcome

MULTIPROC_DIR_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

# The build-info gauge is "livemax": each live worker keeps a file named after its pid, which
# mark_process_dead removes; the scrape finds the live workers' pids from these names.
_LIVE_FILE: Final = re.compile(r"^gauge_livemax_(\d+)\.db$")


def multiprocess_dir() -> str | None:
    """The directory shared by the workers, when this process runs as one of several."""
    path = os.environ.get(MULTIPROC_DIR_ENV)
    if not path:
        return None
    # prometheus_client chose how to store values when it was imported: a directory set
    # later would be read but never written.
    assert values.ValueClass is not values.MutexValue, f"{MULTIPROC_DIR_ENV} set after import"
    return path


def mark_process_dead(pid: int, path: str) -> None:
    """Forget a dead worker's live gauges (its counters stay: they were served)."""
    multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


class Metrics:
    """Prometheus metrics of one app (its own registry, so tests can build many apps)."""

    def __init__(self) -> None:
        self.multiprocess_dir = multiprocess_dir()
        self.registry = CollectorRegistry()
        # Collectors that read their values at each scrape (the database, /proc): in the app's
        # registry, or with several workers in each scrape's.
        self._scrape_collectors: list[Collector] = []
        self.requests = Counter(
            "strongroom_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "strongroom_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.transfers = Counter(
            "strongroom_ledger_transfers_total",
            "Ledger transfers by result code",
            ["result"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "strongroom_ledger_commit_batch_size",
            "Transfers per committed batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8190),
            registry=self.registry,
        )
        self.commit_latency = Histogram(
            "strongroom_ledger_commit_seconds",
            "Time to apply and commit one batch",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=self.registry,
        )

        self.webhook_attempts = Counter(
            "strongroom_webhook_attempts_total",
            "Webhook delivery attempts by outcome",
            ["status"],
            registry=self.registry,
        )
        # Background loops (jobs.py). With several workers the times are the latest of any
        # worker's (a dead worker's included: its runs happened), and `running` is 1 where a
        # live worker runs the job.
        self.job_last_success = Gauge(
            "strongroom_job_last_success_timestamp_seconds",
            "When the background job last succeeded (Unix time)",
            ["job"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.job_last_error = Gauge(
            "strongroom_job_last_error_timestamp_seconds",
            "When the background job last failed (Unix time)",
            ["job"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.job_running = Gauge(
            "strongroom_job_running",
            "1 while a process runs the background job (holds its lease), else 0",
            ["job"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.risk_unscored = Counter(
            "strongroom_risk_unscored_total",
            "Payments the risk gate could not score, by what they got (STRONGROOM_RISK_FAIL)",
            ["outcome"],
            registry=self.registry,
        )
        self.screening_unscreened = Counter(
            "strongroom_screening_unscreened_total",
            "Payments whose payee the sanctions gate could not screen, by what they got "
            "(STRONGROOM_SCREENING_FAIL)",
            ["outcome"],
            registry=self.registry,
        )
        self.retention_deleted = Counter(
            "strongroom_retention_deleted_total",
            "Rows deleted by the retention job, by kind",
            ["kind"],
            registry=self.registry,
        )
        # Drift of each tenant's live fraud model (risk/drift.py): a tenant's id labels it, an
        # exception to the rule above, as a model and its training data are a tenant's own; the
        # series are few (tenants with a live model x its features). With several workers,
        # each computes it over its own traffic: the highest live worker's is shown.
        self.risk_psi = Gauge(
            "strongroom_risk_psi",
            "Population stability index of a feature (or `score`) against the training data",
            ["tenant", "feature"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        # Multiprocess mode has no Info metric: a gauge of 1 with the build in its labels.
        self.build_info = Gauge(
            "strongroom_build_info",
            "The running build: 1, labelled with its versions",
            ["version", "python"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.build_info.labels(__version__, platform.python_version()).set(1)
        if self.multiprocess_dir is None:
            self._add_scrape_collector(ProcessCollector(registry=None))
        else:
            self._add_scrape_collector(_WorkerProcesses(self.multiprocess_dir))

    def watch_backlog(self, events: EventService) -> None:
        """Outbox backlog gauges, read from the database at each scrape (so the same whichever
        worker answers)."""
        self._add_scrape_collector(_Backlog(events.backlog))

    def _add_scrape_collector(self, collector: Collector) -> None:
        if self.multiprocess_dir is None:
            self.registry.register(collector)
        else:
            self._scrape_collectors.append(collector)

    def observe_attempts(self, attempts: Sequence[Attempt]) -> None:
        for attempt in attempts:
            self.webhook_attempts.labels(attempt.status.value).inc()

    def observe_job(self, state: JobState) -> None:
        self.job_running.labels(state.name).set(1 if state.running else 0)
        if state.last_success_us is not None:
            self.job_last_success.labels(state.name).set(state.last_success_us / 1_000_000)
        if state.last_error_us is not None:
            self.job_last_error.labels(state.name).set(state.last_error_us / 1_000_000)

    def observe_psi(self, tenant_id: str, feature: str, psi: float) -> None:
        """A DriftMonitor's `on_psi`, bound to its tenant."""
        self.risk_psi.labels(tenant_id, feature).set(psi)

    def observe_risk_unscored(self, outcome: str, count: int) -> None:
        self.risk_unscored.labels(outcome).inc(count)

    def observe_screening_unscreened(self, outcome: str, count: int) -> None:
        self.screening_unscreened.labels(outcome).inc(count)

    def observe_deleted(self, kind: str, count: int) -> None:
        self.retention_deleted.labels(kind).inc(count)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_batch(self, size: int, seconds: float, outcomes: list[TransferOutcome]) -> None:
        self.batch_size.observe(size)
        self.commit_latency.observe(seconds)
        # Counted by result member, named once each: `.value` per transfer cost ~1 us.
        for result, count in collections.Counter(o.result for o in outcomes).items():
            self.transfers.labels(result.value).inc(count)

    def exposition(self) -> tuple[bytes, str]:
        """The scrape's body and media type: this app's metrics, or every worker's."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        # The app's registry is only this process's: each scrape reads every worker's files.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, self.multiprocess_dir)  # type: ignore[no-untyped-call]
        for collector in self._scrape_collectors:
            registry.register(collector)
        return generate_latest(registry), CONTENT_TYPE_LATEST


class _Backlog(Collector):
    def __init__(self, backlog: Callable[[], tuple[int, int]]) -> None:
        self.backlog = backlog

    def collect(self) -> Iterable[Metric]:
        unrouted, pending = self.backlog()
        return [
            GaugeMetricFamily(
                "strongroom_outbox_unrouted_events",
                "Committed events not yet routed to webhook endpoints",
                value=unrouted,
            ),
            GaugeMetricFamily(
                "strongroom_webhook_deliveries_pending",
                "Webhook deliveries not yet succeeded or given up",
                value=pending,
            ),
        ]


class _WorkerProcesses(Collector):
    """The standard process metrics (CPU, memory, open files, start time) of every live
    worker, one series per worker labelled `pid`, read from /proc whichever worker answers."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def live_pids(self) -> list[int]:
        pids = []
        for entry in os.scandir(self.path):
            match = _LIVE_FILE.match(entry.name)
            if match:
                pids.append(int(match.group(1)))
        return sorted(pids)

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        for pid in self.live_pids():
            for family in ProcessCollector(
                pid=functools.partial(int, pid), registry=None
            ).collect():
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    labels = {**sample.labels, "pid": str(pid)}
                    merged.samples.append(sample._replace(labels=labels))
        return list(families.values())
