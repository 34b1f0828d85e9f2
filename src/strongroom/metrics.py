"""The server's Prometheus metrics: HTTP requests, ledger commits, webhook attempts and the
outbox backlog, in one registry per app (so tests can build many apps)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from strongroom.events.model import Attempt
from strongroom.events.service import EventService
from strongroom.ledger.model import TransferOutcome


class Metrics:
    """Prometheus metrics of one app (its own registry, so tests can build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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

    def watch_backlog(self, events: EventService) -> None:
        """Outbox backlog gauges, read from the database at each scrape."""
        unrouted = Gauge(
            "strongroom_outbox_unrouted_events",
            "Committed events not yet routed to webhook endpoints",
            registry=self.registry,
        )
        pending = Gauge(
            "strongroom_webhook_deliveries_pending",
            "Webhook deliveries not yet succeeded or given up",
            registry=self.registry,
        )
        unrouted.set_function(lambda: float(events.backlog()[0]))
        pending.set_function(lambda: float(events.backlog()[1]))

    def observe_attempts(self, attempts: Sequence[Attempt]) -> None:
        for attempt in attempts:
            self.webhook_attempts.labels(attempt.status.value).inc()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_batch(self, size: int, seconds: float, outcomes: list[TransferOutcome]) -> None:
        self.batch_size.observe(size)
        self.commit_latency.observe(seconds)
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.result.value] = counts.get(outcome.result.value, 0) + 1
        for result, count in counts.items():
            self.transfers.labels(result).inc(count)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
