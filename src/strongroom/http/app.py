"""The ASGI app factory: `create_app(settings)`; `strongroom serve` runs it under uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from strongroom import __version__
from strongroom.audit import api as audit_api
from strongroom.audit.service import AuditLog
from strongroom.core.errors import StrongroomError
from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.events import api as events_api
from strongroom.events.dispatcher import Dispatcher, DispatcherConfig
from strongroom.events.model import Attempt
from strongroom.events.service import EventService
from strongroom.http import errors
from strongroom.http.middleware import (
    Authenticate,
    BodyLimit,
    Idempotency,
    RateLimit,
    RequestContext,
)
from strongroom.ledger import api as ledger_api
from strongroom.ledger.coalescer import GroupCommitter
from strongroom.ledger.model import TransferOutcome
from strongroom.ledger.service import LedgerService
from strongroom.runtime import build_ledger
from strongroom.settings import Settings
from strongroom.tenancy.service import TenancyService

log = logging.getLogger("strongroom.http")


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


class JsonFormatter(logging.Formatter):
    """One JSON object per line; only the fields a record carries on purpose."""

    FIELDS = ("request_id", "tenant", "api_key", "method", "route", "status", "duration_ms")

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                out[name] = getattr(record, name)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("strongroom")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # On SQLite as many pooled connections as the threadpool has threads (40), so that busy
    # requests do not open and close connections; PostgreSQL's are a server resource.
    sqlite = settings.database_url.startswith("sqlite")
    engine = create_engine(
        settings.database_url,
        sqlite_cache_mib=settings.sqlite_cache_mib,
        pool_size=40 if sqlite else 16,
        sqlite_writer_lock_timeout_ms=settings.sqlite_writer_lock_timeout_ms,
    )
    # Refuse to start on an out-of-date schema, naming the command that fixes it.
    migrate.require_current(engine)
    metrics = Metrics()
    ledger, audit = build_ledger(engine, settings, on_batch=metrics.observe_batch)
    events = EventService(
        engine, allow_private_targets=settings.webhook_allow_private_targets, audit=audit
    )
    metrics.watch_backlog(events)
    pepper = settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else None
    tenancy = TenancyService(engine, pepper=pepper, audit=audit)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        committer = GroupCommitter(
            ledger,
            wait_us=settings.group_commit_wait_us,
            queue_max=settings.group_commit_queue_max,
        )
        app.state.committer = committer
        sweeper = asyncio.create_task(_expire_forever(ledger, settings.expiry_interval_s))
        app.state.sweeper = sweeper
        publisher = asyncio.create_task(
            _publish_forever(audit, settings.audit_checkpoint_interval_s)
        )
        app.state.publisher = publisher
        dispatcher = None
        if settings.dispatcher:
            dispatcher = Dispatcher(
                engine,
                DispatcherConfig(allow_private_targets=settings.webhook_allow_private_targets),
                on_attempts=metrics.observe_attempts,
            )
            dispatcher.start()
        app.state.dispatcher = dispatcher
        try:
            yield
        finally:
            if dispatcher is not None:
                dispatcher.stop()
                dispatcher.close()
            for task in (sweeper, publisher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            committer.close()
            engine.dispose()

    app = FastAPI(
        title="Strongroom",
        version=__version__,
        summary="A self-hostable fintech core: double-entry ledger API.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.ledger = ledger
    app.state.audit = audit
    app.state.tenancy = tenancy
    app.state.events = events
    app.state.metrics = metrics
    app.state.ledger_tenants = {}
    app.add_exception_handler(StrongroomError, errors.strongroom_error_handler)
    app.add_exception_handler(RequestValidationError, errors.validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, errors.http_error_handler)
    app.add_exception_handler(UnicodeEncodeError, errors.unencodable_text_handler)
    app.add_exception_handler(Exception, errors.internal_error_handler)
    app.include_router(ledger_api.router)
    app.include_router(events_api.router)
    app.include_router(audit_api.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            current = await run_in_threadpool(migrate.current_revision, engine)
            checks["database"] = "ok"
            checks["migrations"] = "ok" if current == migrate.head_revision() else "out of date"
        except Exception as exc:  # the database is unreachable: say so, do not raise
            checks["database"] = f"unreachable: {type(exc).__name__}"
        committer = getattr(request.app.state, "committer", None)
        sweeper = getattr(request.app.state, "sweeper", None)
        checks["committer"] = "ok" if committer is not None else "not running"
        checks["expiry"] = "ok" if sweeper is not None and not sweeper.done() else "not running"
        publisher = getattr(request.app.state, "publisher", None)
        checks["audit_checkpoints"] = (
            "ok" if publisher is not None and not publisher.done() else "not running"
        )
        if settings.dispatcher:
            dispatcher = getattr(request.app.state, "dispatcher", None)
            checks["dispatcher"] = (
                "ok" if dispatcher is not None and dispatcher.running else ("not running")
            )
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # Outermost last: RequestContext sees every answer, including the middlewares' own.
    app.add_middleware(Idempotency, tenancy=tenancy)
    app.add_middleware(
        RateLimit, rate_per_s=settings.rate_limit_per_s, burst=settings.rate_limit_burst
    )
    app.add_middleware(Authenticate, tenancy=tenancy)
    app.add_middleware(BodyLimit)
    app.add_middleware(RequestContext, observe=metrics.observe_request)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, made true to the wire: error bodies are application/problem+json,
    and every /v1 operation needs a bearer API key."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
    )
    document.setdefault("components", {})["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "sk_... (an API key)"}
    }
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            if path.startswith("/v1/"):
                operation["security"] = [{"apiKey": []}]
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[errors.PROBLEM_JSON] = content.pop("application/json")
    app.openapi_schema = document
    return document


async def _expire_forever(ledger: LedgerService, interval_s: float) -> None:
    while True:
        try:
            while await run_in_threadpool(ledger.expire_due):
                pass  # drain a backlog larger than one batch before sleeping
        except Exception:
            log.exception("expiring pending transfers failed; retrying")
        await asyncio.sleep(interval_s)


async def _publish_forever(audit: AuditLog, interval_s: float) -> None:
    """A signed checkpoint of every log that grew, each interval. With several workers each
    publishes; a checkpoint of a size already published is the same tree and is kept once."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await run_in_threadpool(audit.publish)
        except Exception:
            log.exception("publishing audit checkpoints failed; retrying")


def create_app_from_env() -> FastAPI:
    """For `uvicorn --factory` (each worker process builds its own app)."""
    settings = Settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    # A server process keeps ~100k long-lived objects (modules, routes, caches): freeze them
    # out of the collector and collect young objects less often. Full collections otherwise
    # paused a worker for 60-80 ms about once a second under load (measured with py-spy).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    return app
