"""Delivers committed events to webhook endpoints, at least once.

Each round, a dispatcher:

1. routes: takes the oldest unrouted events, creates a pending delivery for each enabled
   endpoint of the event's tenant that subscribes to its type (and existed when the event
   was created), and deletes them from the routing queue, in one transaction;
2. claims due deliveries with a lease (UPDATE ... SET lease_until, lease_owner, attempts + 1
   WHERE the lease has run out), so two dispatchers, in one process or several, on SQLite or
   PostgreSQL, never send the same attempt at once. It claims fair shares (scheduling.py):
   at most endpoint_concurrency requests in flight to one endpoint and tenant_concurrency to
   one tenant, free senders handed out round robin across tenants, so that one tenant's slow
   receiver cannot hold every sender;
3. sends each one (Standard Webhooks headers; `webhook-id` is the event id on every attempt),
   to the address checked by ssrf.py, without following redirects, within a total deadline
   (timeout_ms, counted from the claim: connecting, sending and the answer's head together;
   deadline.py). The lease (lease_ms) is longer than the deadline, so no other dispatcher
   takes a delivery over while a request for it can still be open;
4. records the attempt and settles the delivery: succeeded on a 2xx answer; otherwise due
   again after a bounded exponential backoff with jitter, or failed after attempts_max. Only
   the lease's holder settles a failure; a success settles the delivery even if its lease
   was lost, and a settled delivery is never claimed again. An endpoint's consecutive
   failures are counted; at endpoint_failures_max (or on 410 Gone) the endpoint is disabled
   and its deliveries wait until it is enabled again. An endpoint deleted while a request to
   it was in flight is gone: that attempt is not recorded.

A dispatcher that dies mid-request (or whose answer could not be recorded) leaves its lease
behind: the delivery is sent again once the lease runs out, with the same webhook-id. Exactly
once is impossible over HTTP; receivers deduplicate on webhook-id.

`Dispatcher.run(stop)` is the loop (`strongroom serve` runs it in a thread; `python -m
strongroom.events.dispatcher` runs it alone); `run_once()` is one synchronous round, for tests.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import secrets
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import FrameType, TracebackType

import httpx
from sqlalchemy.engine import Engine as SAEngine

from strongroom import __version__
from strongroom.core import clock
from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import (
    WEBHOOK_ATTEMPTS_MAX,
    WEBHOOK_BACKOFF_MS_BASE,
    WEBHOOK_BACKOFF_MS_MAX,
    WEBHOOK_CONCURRENCY_MAX,
    WEBHOOK_ENDPOINT_FAILURES_MAX,
    WEBHOOK_ERROR_CHARS_MAX,
    WEBHOOK_LEASE_MARGIN_MS_MIN,
    WEBHOOK_LEASE_MS,
    WEBHOOK_POLL_MS_DEFAULT,
    WEBHOOK_ROUTE_BATCH_MAX,
    WEBHOOK_TIMEOUT_MS,
)
from strongroom.db.uow import UnitOfWork
from strongroom.events import scheduling, signing, ssrf, store
from strongroom.events.deadline import DeadlineTransport
from strongroom.events.model import (
    Attempt,
    AttemptStatus,
    DeliveryStatus,
    Endpoint,
    Event,
    RecordResult,
    backoff_ms,
    response_disables,
    response_succeeded,
)
from strongroom.events.service import clear_secret
from strongroom.security.sealing import SecretSealer

log = logging.getLogger(__name__)

USER_AGENT = f"Strongroom-Webhooks/{__version__}"
CONCURRENCY_DEFAULT = 8
# Of those senders, at most this many hold requests to one endpoint, and to one tenant's
# endpoints: the other tenants always have CONCURRENCY_DEFAULT - TENANT_CONCURRENCY_DEFAULT.
ENDPOINT_CONCURRENCY_DEFAULT = 2
TENANT_CONCURRENCY_DEFAULT = 4
assert ENDPOINT_CONCURRENCY_DEFAULT <= TENANT_CONCURRENCY_DEFAULT < CONCURRENCY_DEFAULT
# run_once() routes at most this many batches per round, so one round is bounded.
ROUTE_ROUNDS_MAX = 64
STOP_WAIT_S_MAX = 60.0


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    allow_private_targets: bool = False  # development and tests only: see ssrf.py
    timeout_ms: int = WEBHOOK_TIMEOUT_MS  # the whole attempt, from its claim: see deadline.py
    lease_ms: int = WEBHOOK_LEASE_MS
    attempts_max: int = WEBHOOK_ATTEMPTS_MAX
    backoff_ms_base: int = WEBHOOK_BACKOFF_MS_BASE
    backoff_ms_max: int = WEBHOOK_BACKOFF_MS_MAX
    endpoint_failures_max: int = WEBHOOK_ENDPOINT_FAILURES_MAX
    concurrency: int = CONCURRENCY_DEFAULT
    endpoint_concurrency: int = ENDPOINT_CONCURRENCY_DEFAULT
    tenant_concurrency: int = TENANT_CONCURRENCY_DEFAULT
    route_batch: int = WEBHOOK_ROUTE_BATCH_MAX
    poll_ms: int = WEBHOOK_POLL_MS_DEFAULT

    def __post_init__(self) -> None:
        bounds = {
            "timeout_ms": (1, WEBHOOK_LEASE_MS),
            "attempts_max": (1, WEBHOOK_ATTEMPTS_MAX),
            "backoff_ms_base": (1, WEBHOOK_BACKOFF_MS_MAX),
            "backoff_ms_max": (self.backoff_ms_base, WEBHOOK_BACKOFF_MS_MAX),
            "endpoint_failures_max": (1, WEBHOOK_ENDPOINT_FAILURES_MAX),
            "concurrency": (1, WEBHOOK_CONCURRENCY_MAX),
            "tenant_concurrency": (1, self.concurrency),
            "endpoint_concurrency": (1, self.tenant_concurrency),
            "route_batch": (1, WEBHOOK_ROUTE_BATCH_MAX),
            "poll_ms": (1, 60_000),
            # The lease must outlive the attempt it covers, or a slow answer would let a
            # second dispatcher send the same delivery while the first still waits; the
            # margin is for recording the answer before the lease runs out.
            "lease_ms": (self.timeout_ms + WEBHOOK_LEASE_MARGIN_MS_MIN, 24 * 3600 * 1000),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidRequest(
                    f"{name} must be an integer from {low} to {high}",
                    param=name,
                    code="invalid_dispatcher_config",
                )


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery: this dispatcher holds its lease for attempt number `attempt`,
    whose request must be over by `deadline_s` (time.monotonic()); the lease outlasts it."""

    event: Event
    endpoint: Endpoint
    attempt: int
    deadline_s: float


@dataclass(frozen=True, slots=True)
class SendResult:
    response_status: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and response_succeeded(self.response_status)


class Dispatcher:
    def __init__(
        self,
        engine: SAEngine,
        config: DispatcherConfig | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        resolver: ssrf.Resolver = ssrf.system_resolver,
        now_us: Callable[[], int] = clock.now_us,
        rng: random.Random | None = None,
        on_attempts: Callable[[Sequence[Attempt]], None] | None = None,
        on_round: Callable[[BaseException | None], None] | None = None,
        sealer: SecretSealer | None = None,
    ) -> None:
        """`on_attempts` is told of every recorded batch of attempts (metrics); `on_round`, by
        run(), of each round's end: its error, or None (jobs.LoopReporter)."""
        self.engine = engine
        self._sealer = sealer  # opens the endpoints' sealed signing secrets
        self._on_attempts = on_attempts
        self._on_round = on_round
        self.config = config or DispatcherConfig()
        self.owner = f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(6)}"
        self._resolver = resolver
        self._now_us = now_us
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        # Requests go to a checked address with the host name in Host and SNI; a pooled
        # connection is keyed by address, so it could serve another host name: none is kept
        # (which deadline.py relies on too).
        limits = httpx.Limits(max_connections=self.config.concurrency, max_keepalive_connections=0)
        self._deadlines: DeadlineTransport | None = None
        if transport is None:
            self._deadlines = transport = DeadlineTransport(limits=limits)
        self._client = httpx.Client(
            # Each operation's own timeout; deadline.py cuts them to the attempt's deadline.
            timeout=httpx.Timeout(self.config.timeout_ms / 1000),
            follow_redirects=False,
            # Proxies from the environment would bypass the address check.
            trust_env=False,
            limits=limits,
            headers={"user-agent": USER_AGENT},
            transport=transport,
        )
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def close(self) -> None:
        self.stop()
        self._client.close()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- routing ---------------------------------------------------------------------------

    def route_once(self) -> int:
        """Fan the oldest unrouted events out to their endpoints; returns how many events."""
        # A read first: on SQLite a write transaction takes the database's only write lock,
        # which the ledger needs; an idle dispatcher should not take it twice a poll.
        with UnitOfWork(self.engine, write=False) as uow:
            if not store.has_unrouted(uow):
                return 0
        with UnitOfWork(self.engine) as uow:
            events = store.unrouted_events(uow, self.config.route_batch)
            if not events:
                return 0
            tenants = sorted({tenant for *_, tenant in events if tenant is not None})
            by_tenant: dict[str, list[Endpoint]] = {}
            for endpoint in store.enabled_endpoints(uow, tenants):
                by_tenant.setdefault(endpoint.tenant_id, []).append(endpoint)
            now = self._now_us()
            rows = [
                (event_id, endpoint.id, seq, now)
                for seq, event_id, event_type, created_at, tenant in events
                if tenant is not None
                for endpoint in by_tenant.get(tenant, ())
                if endpoint.subscribes(event_type) and endpoint.created_at <= created_at
            ]
            store.insert_deliveries(uow, rows)
            store.delete_unrouted(uow, [e[0] for e in events])
            uow.commit()
        return len(events)

    # -- claiming, sending, recording ------------------------------------------------------

    def claim(self, limit: int, in_flight: Sequence[Job] = ()) -> list[Job]:
        """Lease up to `limit` due deliveries to this dispatcher, in fair shares
        (scheduling.py) given the jobs it has `in_flight`; in round-robin order."""
        assert 1 <= limit <= WEBHOOK_CONCURRENCY_MAX
        cfg = self.config
        # A read first: on SQLite a write transaction takes the database's only write lock.
        with UnitOfWork(self.engine, write=False) as uow:
            due = store.due_endpoints(
                uow, now_us=self._now_us(), count_max=cfg.endpoint_concurrency
            )
        shares = scheduling.allocate(
            due,
            slots=limit,
            endpoint_busy=Counter(job.endpoint.id for job in in_flight),
            tenant_busy=Counter(job.endpoint.tenant_id for job in in_flight),
            endpoint_concurrency=cfg.endpoint_concurrency,
            tenant_concurrency=cfg.tenant_concurrency,
        )
        if not shares:
            return []
        with UnitOfWork(self.engine) as uow:
            # The deadline and the lease start together (on SQLite once the write lock is
            # held): the lease runs out lease_ms - timeout_ms after a request must be over.
            deadline_s = time.monotonic() + cfg.timeout_ms / 1000
            now = self._now_us()
            by_endpoint = [
                store.claim_due(
                    uow,
                    endpoint_id=endpoint_id,
                    now_us=now,
                    lease_until=now + cfg.lease_ms * 1000,
                    owner=self.owner,
                    limit=share,
                )
                for endpoint_id, share in shares.items()
            ]
            claimed = [c for part in by_endpoint for c in part]
            if not claimed:
                return []
            events = store.events_by_id(uow, sorted({c[0] for c in claimed}))
            endpoints = {
                endpoint_id: clear_secret(self._sealer, uow, endpoint)
                for endpoint_id, endpoint in store.endpoints_by_id(
                    uow, sorted({c[1] for c in claimed})
                ).items()
            }
            uow.commit()
        # Round robin: each endpoint's oldest first, then each one's second, and so on.
        for part in by_endpoint:
            part.sort(key=lambda c: (events[c[0]].seq, c[2]))
        jobs = []
        for k in range(max(len(part) for part in by_endpoint)):
            for part in by_endpoint:
                if k < len(part):
                    event_id, endpoint_id, attempt = part[k]
                    jobs.append(Job(events[event_id], endpoints[endpoint_id], attempt, deadline_s))
        return jobs

    def send(self, job: Job) -> SendResult:
        """One POST, over by the job's deadline. Never raises for what the network or the
        receiver does."""
        started = time.perf_counter()
        target = ssrf.resolve_target(
            job.endpoint.url,
            allow_private_targets=self.config.allow_private_targets,
            resolver=self._resolver,
        )
        if isinstance(target, ssrf.Refusal):
            return SendResult(None, f"target refused: {target.value}", 0)
        body = job.event.payload()
        headers = signing.headers(job.endpoint.secret, job.event.id, int(time.time()), body)
        headers["content-type"] = "application/json"
        headers["host"] = target.host_header
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
        status: int | None = None
        error: str | None = None
        if time.monotonic() >= job.deadline_s:  # resolving the address took it all
            return SendResult(None, "timeout: the deadline passed before sending", 0)
        try:
            request = self._client.build_request(
                "POST", target.url, content=body, headers=headers, extensions=extensions
            )
            # Streamed and closed unread: the answer's status is all that counts, and a
            # receiver cannot make the dispatcher download a large body.
            with self._deadline(job.deadline_s):
                response = self._client.send(request, stream=True)
                try:
                    status = response.status_code
                finally:
                    response.close()
        except httpx.TimeoutException as exc:
            error = f"timeout: {type(exc).__name__} (deadline {self.config.timeout_ms} ms)"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = f"{type(exc).__name__}: {exc}"
        if status is not None and not response_succeeded(status):
            error = f"HTTP {status}"
        duration_ms = round((time.perf_counter() - started) * 1000)
        return SendResult(status, error and error[:WEBHOOK_ERROR_CHARS_MAX], duration_ms)

    def _deadline(self, deadline_s: float) -> contextlib.AbstractContextManager[None]:
        if self._deadlines is None:  # a transport given by a test: its own business
            return contextlib.nullcontext()
        return self._deadlines.backend.deadline(deadline_s)

    def attempt_for(self, job: Job, result: SendResult) -> tuple[Attempt, DeliveryStatus]:
        """What to record: the attempt, and the delivery's state after it (succeeded; due
        again after a backoff; or failed, at attempts_max)."""
        cfg = self.config
        now = self._now_us()
        next_attempt_at: int | None = None
        if result.succeeded:
            delivery_status = DeliveryStatus.SUCCEEDED
        elif job.attempt >= cfg.attempts_max:
            delivery_status = DeliveryStatus.FAILED
        else:
            delivery_status = DeliveryStatus.PENDING
            with self._rng_lock:
                delay_ms = backoff_ms(
                    job.attempt, cfg.backoff_ms_base, cfg.backoff_ms_max, self._rng
                )
            next_attempt_at = now + delay_ms * 1000
        attempt = Attempt(
            event_id=job.event.id,
            endpoint_id=job.endpoint.id,
            attempt=job.attempt,
            status=AttemptStatus.SUCCEEDED if result.succeeded else AttemptStatus.FAILED,
            response_status=result.response_status,
            error=result.error,
            duration_ms=result.duration_ms,
            next_attempt_at=next_attempt_at,
            created_at=now,
        )
        return attempt, delivery_status

    def record(self, sent: Sequence[tuple[Job, SendResult]]) -> list[Attempt]:
        """Record attempts and settle their deliveries, all in one transaction (one fsync for
        a round of answers, not one per answer). Returns the attempts recorded: not those to
        endpoints deleted meanwhile."""
        if not sent:
            return []
        attempts = []
        with UnitOfWork(self.engine) as uow:
            store.lock_endpoints(uow, sorted({job.endpoint.id for job, _ in sent}))
            for job, result in sent:
                attempt, delivery_status = self.attempt_for(job, result)
                outcome = store.record_attempt(
                    uow,
                    attempt,
                    owner=self.owner,
                    delivery_status=delivery_status,
                    disable_endpoint=(
                        result.response_status is not None
                        and response_disables(result.response_status)
                    ),
                    failures_max=self.config.endpoint_failures_max,
                )
                if outcome is RecordResult.DELIVERY_GONE:
                    log.info(
                        "webhook %s to %s: endpoint deleted during attempt %d, not recorded",
                        job.event.id,
                        job.endpoint.id,
                        job.attempt,
                    )
                    continue
                if outcome is RecordResult.LEASE_LOST:
                    # The lease ran out during the request and another dispatcher took the
                    # delivery over: it settles it; this attempt is on record all the same.
                    log.warning(
                        "webhook %s to %s: lease lost during attempt %d",
                        job.event.id,
                        job.endpoint.id,
                        job.attempt,
                    )
                attempts.append(attempt)
            uow.commit()
        return attempts

    def send_safely(self, job: Job) -> tuple[Job, SendResult]:
        """send(), with anything unexpected turned into a failed attempt, so that every
        claimed attempt is recorded and counts towards attempts_max."""
        try:
            return job, self.send(job)
        except Exception as exc:
            log.exception("webhook %s to %s: sending failed", job.event.id, job.endpoint.id)
            return job, SendResult(None, f"internal error: {type(exc).__name__}", 0)

    def deliver(self, job: Job) -> Attempt | None:
        """Send one claimed delivery and record the attempt (None: its endpoint was deleted
        meanwhile, and nothing was recorded)."""
        recorded = self.record([self.send_safely(job)])
        return recorded[0] if recorded else None

    # -- loops -----------------------------------------------------------------------------

    def run_once(self) -> int:
        """One round: route what is waiting, then claim up to `concurrency` due deliveries,
        send them at once (each has its deadline from the claim) and record them. Returns how
        many were attempted."""
        for _ in range(ROUTE_ROUNDS_MAX):
            if self.route_once() < self.config.route_batch:
                break
        jobs = self.claim(self.config.concurrency)
        if len(jobs) <= 1:
            sent = [self.send_safely(job) for job in jobs]
        else:
            with ThreadPoolExecutor(len(jobs), thread_name_prefix="webhook") as pool:
                sent = list(pool.map(self.send_safely, jobs))
        self.record(sent)
        return len(jobs)

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set: route, claim as many deliveries as there are free senders,
        send them concurrently, record the answers that came in. Errors are logged and the
        loop goes on after a pause (an attempt whose recording failed is sent again when its
        lease runs out). On stop, the requests in flight are finished and recorded."""
        cfg = self.config
        poll_s = cfg.poll_ms / 1000
        in_flight: dict[Future[tuple[Job, SendResult]], Job] = {}
        with ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="webhook") as pool:
            while not stop.is_set():
                routed = 0
                jobs: list[Job] = []
                free = cfg.concurrency - len(in_flight)
                assert free >= 0
                try:
                    routed = self.route_once()
                    if free:
                        jobs = self.claim(free, list(in_flight.values()))
                except AssertionError:  # a bug: stop
                    raise
                except Exception as exc:  # the database may be away: log, pause, retry
                    log.exception("webhook dispatcher: routing or claiming failed")
                    self._round_ended(exc)
                    stop.wait(poll_s)
                    continue
                self._round_ended(None)
                in_flight.update((pool.submit(self.send_safely, job), job) for job in jobs)
                more = routed == cfg.route_batch or (free > 0 and len(jobs) == free)
                if in_flight:
                    done, _ = wait(
                        in_flight, timeout=0 if more else poll_s, return_when=FIRST_COMPLETED
                    )
                    for future in done:
                        del in_flight[future]
                    self._record_logged([future.result() for future in done])
                elif not more:
                    stop.wait(poll_s)
            done, _ = wait(in_flight)
            self._record_logged([future.result() for future in done])

    def _record_logged(self, sent: Sequence[tuple[Job, SendResult]]) -> None:
        try:
            attempts = self.record(sent)
            if self._on_attempts is not None:
                self._on_attempts(attempts)
        except AssertionError:
            raise
        except Exception as exc:  # their leases run out and the deliveries are sent again
            log.exception("webhook dispatcher: recording %d attempts failed", len(sent))
            self._round_ended(exc)

    def _round_ended(self, error: BaseException | None) -> None:
        if self._on_round is not None:
            self._on_round(error)

    def start(self) -> None:
        """Run in a daemon thread until stop()."""
        assert self._thread is None, "started already"
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, args=(self._stop,), name="webhook-dispatcher", daemon=True
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(STOP_WAIT_S_MAX)
            self._thread = None


# -- `python -m strongroom.events.dispatcher` ----------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Run a dispatcher until SIGTERM or SIGINT."""
    from strongroom.db import migrate
    from strongroom.db.engine import create_engine
    from strongroom.logs import configure_logging
    from strongroom.security.envelope import Envelope
    from strongroom.security.keys import open_key_manager
    from strongroom.security.sealing import SealedSecrets
    from strongroom.settings import load_settings, log_level_or_default

    defaults = DispatcherConfig()
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--allow-private-targets", action="store_true")
    for name in (
        "timeout_ms",
        "lease_ms",
        "attempts_max",
        "backoff_ms_base",
        "backoff_ms_max",
        "endpoint_failures_max",
        "concurrency",
        "endpoint_concurrency",
        "tenant_concurrency",
        "poll_ms",
    ):
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name)
        )
    args = parser.parse_args(argv)
    config = DispatcherConfig(
        allow_private_targets=args.allow_private_targets,
        timeout_ms=args.timeout_ms,
        lease_ms=args.lease_ms,
        attempts_max=args.attempts_max,
        backoff_ms_base=args.backoff_ms_base,
        backoff_ms_max=args.backoff_ms_max,
        endpoint_failures_max=args.endpoint_failures_max,
        concurrency=args.concurrency,
        endpoint_concurrency=args.endpoint_concurrency,
        tenant_concurrency=args.tenant_concurrency,
        poll_ms=args.poll_ms,
    )
    configure_logging(log_level_or_default())
    settings = load_settings()
    url = args.database_url or settings.database_url
    engine = create_engine(url, pool_size=config.concurrency + 2)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        migrate.require_current(engine)
        # The endpoints' signing secrets are sealed under the deployment's keys.
        kms = open_key_manager(settings.model_copy(update={"database_url": url}), engine)
        with Dispatcher(engine, config, sealer=SealedSecrets(Envelope(kms))) as dispatcher:
            log.info("webhook dispatcher %s started", dispatcher.owner)
            dispatcher.run(stop)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
