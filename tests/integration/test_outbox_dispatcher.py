"""The transactional outbox and webhook delivery, on SQLite and PostgreSQL (the db_engine
fixture runs every test on both).

Receivers are small threading HTTP servers on 127.0.0.1 with a random port, so every
dispatcher here runs with allow_private_targets=True except the one that checks the refusal.
Loops are bounded by a number of rounds or a deadline; no assertion depends on timing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.core import clock
from strongroom.core.clock import MonotonicClock
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.core.limits import WEBHOOK_LEASE_MARGIN_MS_MIN
from strongroom.db.uow import UnitOfWork
from strongroom.events import signing, store
from strongroom.events.dispatcher import Dispatcher, DispatcherConfig
from strongroom.events.model import AttemptStatus, EndpointStatus, Event, attempt_id
from strongroom.events.outbox import Outbox, render_transfer
from strongroom.events.service import EventService
from strongroom.ledger.model import (
    AccountFlag,
    Action,
    Direction,
    Leg,
    NewTransfer,
    Status,
    TransferResult,
    canonical_metadata,
    record_to_row,
)
from strongroom.ledger.service import LedgerService, transfer_to_dict

REPO_ROOT = Path(__file__).resolve().parents[2]
TENANT = "ten_default"  # migration 0002's tenant; ledgers made without one belong to it
ROUNDS_MAX = 400
ROUND_PAUSE_S = 0.01
WAIT_S_MAX = 60.0
HOLD_S_MAX = 30.0
# How long a racing delete is given to finish before the transaction it races goes on.
RACE_WAIT_S = 0.5
# Fast retries for tests; the defaults are seconds to hours (core/limits.py).
FAST = DispatcherConfig(
    allow_private_targets=True,
    timeout_ms=5_000,
    lease_ms=10_000,
    backoff_ms_base=1,
    backoff_ms_max=4,
    poll_ms=10,
    # One endpoint may use every sender: these tests are not about fair shares.
    endpoint_concurrency=8,
    tenant_concurrency=8,
)


# -- a receiver ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A killed client's socket is gone when the held answer is written: expected."""


class Receiver:
    """Records every request; answers `status_for(n)` to the n-th (0-based). While `hold` is
    set, answers wait for release() (bounded by HOLD_S_MAX). Counts the requests it has not
    answered yet (`in_flight`, and the most at once: `in_flight_max`) and those answered."""

    def __init__(self, status_for: Callable[[int], int] = lambda n: 200) -> None:
        self.requests: list[Received] = []
        self.in_flight = 0
        self.in_flight_max = 0
        self.answered = 0
        self.changed = threading.Condition()
        self.status_for = status_for
        self.hold = False
        self._released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) != length:  # the sender died mid-request: no request at all
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.changed:
                    n = len(receiver.requests)
                    receiver.requests.append(Received(headers, body))
                    receiver.in_flight += 1
                    receiver.in_flight_max = max(receiver.in_flight_max, receiver.in_flight)
                    receiver.changed.notify_all()
                    hold = receiver.hold
                if hold:
                    receiver._released.wait(HOLD_S_MAX)
                self.send_response(receiver.status_for(n))
                self.send_header("content-length", "0")
                self.end_headers()
                with receiver.changed:
                    receiver.in_flight -= 1
                    receiver.answered += 1
                    receiver.changed.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/strongroom"

    def count(self) -> int:
        with self.changed:
            return len(self.requests)

    def wait_for(self, count: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.requests) >= count, WAIT_S_MAX)

    def release(self) -> None:
        self.hold = False
        self._released.set()

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(WAIT_S_MAX)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


# -- a ledger with the outbox --------------------------------------------------------------


class OffsetClock(MonotonicClock):
    def __init__(self) -> None:
        super().__init__()
        self.offset_us = 0

    def now_us(self) -> int:
        return super().now_us() + self.offset_us


@dataclass
class World:
    engine: Engine
    ledger: LedgerService
    events: EventService
    ledger_id: str
    bank: str
    alice: str
    bob: str
    clock: OffsetClock
    n: int = 0

    def transfer(self, debit: str, credit: str, amount: int, **kw: Any) -> NewTransfer:
        self.n += 1
        return NewTransfer(f"t{self.n}", self.ledger_id, debit, credit, amount, **kw)

    def post(self, batch: list[NewTransfer]) -> list[TransferResult]:
        return [o.result for o in self.ledger.post_transfers(batch)]

    def event_rows(self) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text("SELECT seq, id, ledger_id, type, data, created_at FROM events")
                ).all()
            )

    def events_in_order(self) -> list[Event]:
        """As readers see them: the data rendered from each event's transfer."""
        with UnitOfWork(self.engine, write=False) as uow:
            found, _ = store.list_events(
                uow,
                tenant_id=None,
                ledger_id=None,
                event_type=None,
                before_seq=None,
                limit=10**6,
                scan_rows_max=10**6,
            )
        return sorted(found, key=lambda e: e.seq)

    def scalar(self, query: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(query), params).scalar_one()

    def rows_of(self, endpoint_id: str) -> dict[str, int]:
        """How many rows of each webhook table name the endpoint."""
        return {
            table: self.scalar(f"SELECT COUNT(*) FROM {table} WHERE {column} = :id", id=endpoint_id)
            for table, column in (
                ("webhook_endpoints", "id"),
                ("webhook_delivery_state", "endpoint_id"),
                ("webhook_deliveries", "endpoint_id"),
            )
        }

    def delivery_statuses(self) -> dict[tuple[str, str], str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT event_id, endpoint_id, status FROM webhook_delivery_state")
            ).all()
        return {(r[0], r[1]): r[2] for r in rows}


@pytest.fixture
def world(db_engine: Engine) -> World:
    ledger_clock = OffsetClock()
    ledger = LedgerService(db_engine, clock_=ledger_clock, sinks=[Outbox()])
    ledger_id = ledger.create_ledger("webhooks").id
    bank = ledger.create_account(ledger_id, "USD", Direction.DEBIT, name="bank").id
    alice = ledger.create_account(
        ledger_id,
        "USD",
        Direction.CREDIT,
        name="alice",
        flags=AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS,
    ).id
    bob = ledger.create_account(ledger_id, "USD", Direction.CREDIT, name="bob").id
    events = EventService(db_engine, allow_private_targets=True)
    return World(db_engine, ledger, events, ledger_id, bank, alice, bob, ledger_clock)


def compact(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


def drive(dispatcher: Dispatcher, done: Callable[[], bool]) -> None:
    """run_once() until done(), at most ROUNDS_MAX rounds."""
    for _ in range(ROUNDS_MAX):
        if done():
            return
        if dispatcher.run_once() == 0:
            time.sleep(ROUND_PAUSE_S)
    assert done(), "not done within the bound on rounds"


# -- the outbox ----------------------------------------------------------------------------


def test_events_commit_with_the_transfers_they_describe(world: World) -> None:
    w = world
    first = [
        w.transfer(w.bank, w.alice, 1_000),
        w.transfer(w.bank, w.bob, 500, pending=True, timeout_s=3_600),
        w.transfer(w.alice, w.bob, 10**9),  # refused: alice may not be overdrawn
        NewTransfer(
            'odd"id\\1',  # a quote and a backslash: the renderer's general path
            w.ledger_id,
            legs=(
                Leg(w.bank, Direction.DEBIT, 30),
                Leg(w.alice, Direction.CREDIT, 20),
                Leg(w.bob, Direction.CREDIT, 10),
            ),
            metadata='{"order":"A-1","vip":true}',
        ),
        w.transfer(w.bank, w.bob, 7, pending=True),
    ]
    results = w.post(first)
    assert results == [
        TransferResult.CREATED,
        TransferResult.CREATED,
        TransferResult.INSUFFICIENT_FUNDS,
        TransferResult.CREATED,
        TransferResult.CREATED,
    ]
    events = w.events_in_order()
    created = [t for t, r in zip(first, results, strict=True) if r is TransferResult.CREATED]
    assert [json.loads(e.data)["id"] for e in events] == [t.id for t in created]
    assert {e.type for e in events} == {"transfer.created"}
    assert {e.ledger_id for e in events} == {w.ledger_id}
    assert [e.seq for e in events] == sorted({e.seq for e in events})
    assert all(e.id.startswith("evt_") for e in events)
    for event, t in zip(events, created, strict=True):
        # Exactly transfer_to_dict's JSON, whichever path rendered it.
        assert event.data == compact(transfer_to_dict(w.ledger.get_transfer(t.id)))

    # Posting an existing id again changes nothing and writes no event.
    assert w.post([first[0]]) == [TransferResult.EXISTS]
    # A batch of refusals only writes nothing at all.
    assert w.post([w.transfer(w.alice, w.bob, 10**9)]) == [TransferResult.INSUFFICIENT_FUNDS]
    assert len(w.event_rows()) == len(created)

    pending, small = created[1], created[3]
    resolve = [
        NewTransfer("post-1", w.ledger_id, action=Action.POST, target_id=pending.id, amount=200),
        NewTransfer("void-1", w.ledger_id, action=Action.VOID, target_id=small.id),
        NewTransfer("rev-1", w.ledger_id, action=Action.REVERSE, target_id=created[0].id),
    ]
    assert w.post(resolve) == [TransferResult.CREATED] * 3
    later = w.events_in_order()[len(created) :]
    assert [e.type for e in later] == ["transfer.posted", "transfer.voided", "transfer.reversed"]
    for event, t in zip(later, resolve, strict=True):
        assert event.data == compact(transfer_to_dict(w.ledger.get_transfer(t.id)))
    assert json.loads(later[0].data)["target_id"] == pending.id


def test_expiry_writes_an_event_per_expired_transfer(world: World) -> None:
    w = world
    reservations = [w.transfer(w.bank, w.bob, 5, pending=True, timeout_s=1) for _ in range(3)]
    assert w.post(reservations) == [TransferResult.CREATED] * 3
    before = len(w.event_rows())
    assert w.ledger.expire_due() == 0
    assert len(w.event_rows()) == before
    w.clock.offset_us = 2_000_000
    assert w.ledger.expire_due() == 3
    expired = w.events_in_order()[before:]
    assert [e.type for e in expired] == ["transfer.expired"] * 3
    assert [json.loads(e.data)["id"] for e in expired] == [t.id for t in reservations]
    for event, t in zip(expired, reservations, strict=True):
        stored = w.ledger.get_transfer(t.id)
        assert stored.status.label == "expired"
        assert event.data == compact(transfer_to_dict(stored))


def test_no_event_survives_a_rolled_back_transaction(world: World, db_engine: Engine) -> None:
    w = world
    outbox = Outbox()

    class Failing(Exception):
        pass

    def failing_sink(uow: Any, batch: Any) -> None:
        outbox(uow, batch)  # the rows are written ...
        raise Failing  # ... and the transaction never commits

    failing = LedgerService(db_engine, sinks=[failing_sink])
    t = w.transfer(w.bank, w.alice, 100)
    with pytest.raises(Failing):
        failing.post_transfers([t])
    assert w.event_rows() == []
    assert w.scalar("SELECT COUNT(*) FROM events_unrouted") == 0
    assert w.scalar("SELECT COUNT(*) FROM transfers WHERE id = :id", id=t.id) == 0
    # The same batch through the working ledger commits both.
    assert w.post([t]) == [TransferResult.CREATED]
    assert len(w.event_rows()) == 1
    assert w.scalar("SELECT COUNT(*) FROM events_unrouted") == 1


def test_the_renderer_matches_transfer_to_dict_on_odd_shapes(world: World) -> None:
    w = world
    w.post([w.transfer(w.bank, w.alice, 50, metadata=canonical_metadata({"note": "é\n"}))])
    w.post([w.transfer(w.bank, w.alice, 2**62, pending=True, timeout_s=60)])
    for tid in ("t1", "t2"):
        record = w.ledger.get_transfer(tid)
        assert render_transfer(record_to_row(record)) == compact(transfer_to_dict(record))


# -- endpoints -----------------------------------------------------------------------------


def test_endpoints_are_validated(world: World) -> None:
    strict = EventService(world.engine)
    for url in ("http://127.0.0.1:9/x", "http://localhost/x", "http://[::1]/", "ftp://x.io/"):
        with pytest.raises(InvalidRequest) as info:
            strict.create_endpoint(TENANT, url)
        assert info.value.code == "invalid_url"
    with pytest.raises(InvalidRequest) as info:
        strict.create_endpoint(TENANT, "https://hooks.example.com/", ["transfer.exploded"])
    assert info.value.code == "invalid_enabled_events"
    endpoint = strict.create_endpoint(
        TENANT, "https://hooks.example.com/", ["transfer.posted", "transfer.created"]
    )
    assert endpoint.id.startswith("we_")
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.enabled_events == ("transfer.created", "transfer.posted")
    shown = endpoint.to_dict()
    assert "secret" not in shown
    assert endpoint.secret not in json.dumps(shown)
    assert strict.get_endpoint(endpoint.id) == endpoint
    assert strict.list_endpoints(tenant_id=TENANT).data == [endpoint]


# -- delivery ------------------------------------------------------------------------------


def test_the_dispatcher_delivers_signed_events_to_subscribed_endpoints(
    world: World, receiver: Receiver
) -> None:
    w = world
    endpoint = w.events.create_endpoint(TENANT, receiver.url)
    posted_only = w.events.create_endpoint(
        TENANT, receiver.url + "?only=posted", ["transfer.posted"]
    )
    w.events.create_endpoint("ten_someone_else", receiver.url + "?other=tenant")
    batch = [w.transfer(w.bank, w.alice, 10 + i) for i in range(5)]
    assert w.post(batch) == [TransferResult.CREATED] * 5
    events = w.events_in_order()

    dispatcher = Dispatcher(w.engine, FAST)
    dispatcher.start()  # the real loop, in a thread
    try:
        assert receiver.wait_for(len(events)), "the dispatcher delivered too little in time"
    finally:
        dispatcher.close()

    assert receiver.count() == len(events)  # nothing for the other endpoints
    now_s = int(time.time())
    by_id = {e.id: e for e in events}
    for request in receiver.requests:
        assert signing.verify(endpoint.secret, request.headers, request.body, now_s=now_s) is (
            signing.Verification.OK
        )
        event = by_id[request.webhook_id]
        assert request.body == event.payload()
        assert request.headers["content-type"] == "application/json"
        assert request.headers["host"] == receiver.url.split("/")[2]
        body = json.loads(request.body)
        assert body["type"] == "transfer.created"
        assert body["data"] == json.loads(event.data)
    assert {r.webhook_id for r in receiver.requests} == set(by_id)

    statuses = w.delivery_statuses()
    assert statuses == {(e.id, endpoint.id): "succeeded" for e in events}
    attempts = w.events.list_attempts(endpoint_id=endpoint.id)
    assert sorted(a.event_id for a in attempts) == sorted(by_id)
    assert {(a.attempt, a.status, a.response_status) for a in attempts} == {
        (1, AttemptStatus.SUCCEEDED, 200)
    }
    assert w.events.list_attempts(endpoint_id=posted_only.id) == []
    assert w.scalar("SELECT COUNT(*) FROM events_unrouted") == 0


def test_failed_attempts_are_retried_with_the_same_webhook_id(world: World) -> None:
    w = world
    statuses = [500, 502, 200]
    receiver = Receiver(lambda n: statuses[n] if n < len(statuses) else 200)
    try:
        endpoint = w.events.create_endpoint(TENANT, receiver.url)
        w.post([w.transfer(w.bank, w.alice, 42)])
        (event,) = w.events_in_order()
        dispatcher = Dispatcher(w.engine, FAST)
        with dispatcher:
            drive(dispatcher, lambda: receiver.count() >= 3)
            drive(
                dispatcher,
                lambda: w.delivery_statuses().get((event.id, endpoint.id)) == "succeeded",
            )
    finally:
        receiver.close()
    assert [r.webhook_id for r in receiver.requests] == [event.id] * 3
    assert {r.body for r in receiver.requests} == {event.payload()}
    for request in receiver.requests:
        assert signing.verify(
            endpoint.secret, request.headers, request.body, now_s=int(time.time())
        ) is (signing.Verification.OK)
    attempts = sorted(w.events.list_attempts(event_id=event.id), key=lambda a: a.attempt)
    assert [(a.attempt, a.status, a.response_status) for a in attempts] == [
        (1, AttemptStatus.FAILED, 500),
        (2, AttemptStatus.FAILED, 502),
        (3, AttemptStatus.SUCCEEDED, 200),
    ]
    assert attempts[0].error == "HTTP 500"
    assert attempts[0].next_attempt_at is not None
    assert attempts[2].next_attempt_at is None
    assert w.events.get_endpoint(endpoint.id).failure_count == 0


def test_a_delivery_fails_after_attempts_max(world: World) -> None:
    w = world
    receiver = Receiver(lambda n: 500)
    try:
        endpoint = w.events.create_endpoint(TENANT, receiver.url)
        w.post([w.transfer(w.bank, w.alice, 1)])
        (event,) = w.events_in_order()
        config = replace(FAST, attempts_max=3)
        with Dispatcher(w.engine, config) as dispatcher:
            drive(
                dispatcher, lambda: w.delivery_statuses().get((event.id, endpoint.id)) == "failed"
            )
            assert dispatcher.run_once() == 0
    finally:
        receiver.close()
    assert receiver.count() == 3
    attempts = w.events.list_attempts(event_id=event.id)
    assert sorted(a.attempt for a in attempts) == [1, 2, 3]
    assert w.events.get_endpoint(endpoint.id).status is EndpointStatus.ENABLED


def test_an_endpoint_is_disabled_after_consecutive_failures(world: World) -> None:
    w = world
    healthy = threading.Event()
    receiver = Receiver(lambda n: 200 if healthy.is_set() else 503)
    try:
        endpoint = w.events.create_endpoint(TENANT, receiver.url)
        w.post([w.transfer(w.bank, w.alice, 1)])
        (first,) = w.events_in_order()
        config = replace(FAST, endpoint_failures_max=3)
        with Dispatcher(w.engine, config) as dispatcher:
            drive(
                dispatcher,
                lambda: w.events.get_endpoint(endpoint.id).status is EndpointStatus.DISABLED,
            )
            assert w.events.get_endpoint(endpoint.id).failure_count == 3
            assert receiver.count() == 3
            # Disabled: its delivery waits, and events created meanwhile are not queued for it.
            w.post([w.transfer(w.bank, w.alice, 2)])
            assert dispatcher.run_once() == 0
            assert w.delivery_statuses() == {(first.id, endpoint.id): "pending"}
            # Enabled again (its failures forgotten), the waiting delivery goes out.
            healthy.set()
            enabled = w.events.set_endpoint_enabled(endpoint.id, True)
            assert (enabled.status, enabled.failure_count) == (EndpointStatus.ENABLED, 0)
            drive(
                dispatcher,
                lambda: w.delivery_statuses().get((first.id, endpoint.id)) == "succeeded",
            )
    finally:
        receiver.close()
    assert [r.webhook_id for r in receiver.requests] == [first.id] * 4
    assert w.scalar("SELECT COUNT(*) FROM events_unrouted") == 0


def test_410_gone_disables_the_endpoint_at_once(world: World) -> None:
    w = world
    receiver = Receiver(lambda n: 410)
    try:
        endpoint = w.events.create_endpoint(TENANT, receiver.url)
        w.post([w.transfer(w.bank, w.alice, 1)])
        with Dispatcher(w.engine, FAST) as dispatcher:
            drive(dispatcher, lambda: receiver.count() >= 1)
    finally:
        receiver.close()
    assert w.events.get_endpoint(endpoint.id).status is EndpointStatus.DISABLED


def test_private_targets_are_refused_without_the_flag(world: World, receiver: Receiver) -> None:
    w = world
    endpoint = w.events.create_endpoint(TENANT, receiver.url)
    w.post([w.transfer(w.bank, w.alice, 1)])
    (event,) = w.events_in_order()
    config = replace(FAST, allow_private_targets=False)
    with Dispatcher(w.engine, config) as dispatcher:
        assert dispatcher.run_once() == 1
    (attempt,) = w.events.list_attempts(event_id=event.id)
    assert (attempt.endpoint_id, attempt.status) == (endpoint.id, AttemptStatus.FAILED)
    assert attempt.response_status is None
    assert attempt.error == "target refused: private_address"
    assert receiver.count() == 0


def test_a_lease_keeps_a_delivery_from_a_second_dispatcher_until_it_runs_out(
    world: World,
) -> None:
    w = world
    receiver = Receiver(lambda n: 503 if n < 5 else 200)  # the first one's answers fail
    endpoint = w.events.create_endpoint(TENANT, receiver.url)
    w.post([w.transfer(w.bank, w.alice, 1 + i) for i in range(5)])
    first = Dispatcher(w.engine, FAST)
    later_us = FAST.lease_ms * 1000 + 1
    second = Dispatcher(w.engine, FAST, now_us=lambda: clock.now_us() + later_us)
    third = Dispatcher(w.engine, FAST)
    try:
        with first, second, third:
            assert first.route_once() == 5
            jobs = first.claim(8)
            assert sorted(j.attempt for j in jobs) == [1] * 5
            assert third.claim(8) == []  # leased: not due for anyone else
            # Once the lease has run out (the first one died, say), another takes them over,
            # as the next attempt of the same delivery.
            taken = second.claim(8)
            assert sorted((j.event.id, j.attempt) for j in taken) == sorted(
                (j.event.id, 2) for j in jobs
            )
            # The first one's late failures are recorded, but the delivery is the second's to
            # settle.
            for job in jobs:
                first.deliver(job)
            assert set(w.delivery_statuses().values()) == {"pending"}
            for job in taken:
                second.deliver(job)
    finally:
        receiver.close()
    assert set(w.delivery_statuses().values()) == {"succeeded"}
    assert len(w.events.list_attempts(endpoint_id=endpoint.id)) == 10
    assert receiver.count() == 10
    assert len({r.webhook_id for r in receiver.requests}) == 5


def test_a_success_settles_the_delivery_even_after_its_lease_was_lost(world: World) -> None:
    """Once a success is on record the event is never sent again: not by the dispatcher that
    took the lease over and failed, nor by any later one."""
    w = world
    receiver = Receiver(lambda n: 503 if n == 0 else 200)
    endpoint = w.events.create_endpoint(TENANT, receiver.url)
    w.post([w.transfer(w.bank, w.alice, 1)])
    first = Dispatcher(w.engine, FAST)
    later_us = FAST.lease_ms * 1000 + 1
    second = Dispatcher(w.engine, FAST, now_us=lambda: clock.now_us() + later_us)
    much_later = Dispatcher(w.engine, FAST, now_us=lambda: clock.now_us() + 10**12)
    try:
        with first, second, much_later:
            assert first.route_once() == 1
            (job,) = first.claim(8)
            (taken,) = second.claim(8)
            assert second.deliver(taken) is not None  # 503: due again, the second's to settle
            assert first.deliver(job) is not None  # 200, late: it settles all the same
            (event,) = w.events_in_order()
            assert w.delivery_statuses() == {(event.id, endpoint.id): "succeeded"}
            assert much_later.claim(8) == []
            assert much_later.run_once() == 0
    finally:
        receiver.close()
    assert [r.webhook_id for r in receiver.requests] == [event.id] * 2
    attempts = sorted(w.events.list_attempts(endpoint_id=endpoint.id), key=lambda a: a.attempt)
    assert [(a.attempt, a.response_status) for a in attempts] == [(1, 200), (2, 503)]


def test_concurrent_claims_are_disjoint_and_bounded(world: World) -> None:
    """Dispatchers claiming at once (threads here; processes are the same to the database)
    each get at most their limit, and no delivery twice."""
    w = world
    w.events.create_endpoint(TENANT, "http://127.0.0.1:9/never-sent")
    count, claimers, limit = 120, 4, 7
    w.post([w.transfer(w.bank, w.alice, 1 + i) for i in range(count)])
    dispatchers = [Dispatcher(w.engine, FAST) for _ in range(claimers)]
    assert dispatchers[0].route_once() == count
    claims: list[list[tuple[str, int]]] = [[] for _ in range(claimers)]
    sizes: list[int] = []
    start = threading.Barrier(claimers)

    def claim_all(k: int) -> None:
        start.wait(WAIT_S_MAX)
        for _ in range(count):  # a bound: each round claims one or more, or ends the loop
            jobs = dispatchers[k].claim(limit)
            sizes.append(len(jobs))
            if not jobs:
                return
            claims[k].extend((j.event.id, j.attempt) for j in jobs)

    threads = [threading.Thread(target=claim_all, args=(k,)) for k in range(claimers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S_MAX)
    for d in dispatchers:
        d.close()
    everything = [c for per in claims for c in per]
    assert max(sizes) <= limit
    assert len(everything) == len(set(everything)) == count
    assert {attempt for _, attempt in everything} == {1}
    assert {event_id for event_id, _ in everything} == {e.id for e in w.events_in_order()}


# -- deadlines and fair shares ---------------------------------------------------------------

TRICKLE_PAUSE_S = 0.05  # between two bytes of a trickled answer
TRICKLE_HEAD_BYTES = 400  # so a trickled answer takes TRICKLE_HEAD_BYTES * TRICKLE_PAUSE_S


class TrickleReceiver:
    """Answers its first `trickled` requests one byte at a time (a 200 whose head would take
    20 s in all), the others at once. When a request arrives, it checks whether a connection
    that carried the same webhook-id is still open (its client has not hung up): that would be
    the event sent again while an attempt for it is open. On loopback a client's close is
    known to the peer before the client can do anything else, so the check needs no timing."""

    def __init__(self, trickled: int) -> None:
        self.trickled = trickled
        self.lock = threading.Lock()
        self.webhook_ids: list[str] = []
        self.overlaps: list[str] = []
        self.trickle_outcomes: list[str] = []  # per trickled answer: "hung up" or "complete"
        self._open: list[tuple[str, socket.socket]] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.getsockname()[:2]
        return f"http://{host}:{port}/hooks/strongroom"

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    @staticmethod
    def _hung_up(conn: socket.socket) -> bool:
        try:
            return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[1:]
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)
            }
            while len(body) < int(headers.get("content-length", "0")):
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
            webhook_id = headers["webhook-id"]
            with self.lock:
                n = len(self.webhook_ids)
                self.webhook_ids.append(webhook_id)
                self.overlaps.extend(
                    webhook_id
                    for other_id, other in self._open
                    if other_id == webhook_id and not self._hung_up(other)
                )
                self._open.append((webhook_id, conn))
            try:
                if n < self.trickled:
                    self.trickle_outcomes.append(self._trickle(conn))
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    select.select([conn], [], [], WAIT_S_MAX)  # until the client hangs up
            finally:
                with self.lock:
                    self._open.remove((webhook_id, conn))

    def _trickle(self, conn: socket.socket) -> str:
        answer = (
            b"HTTP/1.1 200 OK\r\nx-trickle: "
            + b"a" * TRICKLE_HEAD_BYTES
            + b"\r\ncontent-length: 0\r\n\r\n"
        )
        for i in range(len(answer)):
            try:
                conn.sendall(answer[i : i + 1])
            except OSError:
                return "hung up"
            # Waits for the next byte's turn, or wakes at once when the client hangs up.
            readable, _, _ = select.select([conn], [], [], TRICKLE_PAUSE_S)
            if readable and self._hung_up(conn):
                return "hung up"
        return "complete"

    def close(self) -> None:
        self._closing.set()
        self._server.close()
        self._thread.join(WAIT_S_MAX)
        with self.lock:
            for _, conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(WAIT_S_MAX)


def test_an_attempt_ends_at_its_deadline_however_slowly_the_receiver_answers(
    world: World,
) -> None:
    """A receiver that answers a byte every 50 ms never trips a per-read timeout; the attempt's
    total deadline ends it. Two dispatchers run with a lease just longer than the deadline:
    the event is never sent while an attempt for it is open, and not again once one
    succeeded."""
    w = world
    receiver = TrickleReceiver(trickled=1)
    config = replace(FAST, timeout_ms=300, lease_ms=300 + WEBHOOK_LEASE_MARGIN_MS_MIN)
    try:
        endpoint = w.events.create_endpoint(TENANT, receiver.url)
        w.post([w.transfer(w.bank, w.alice, 1)])
        (event,) = w.events_in_order()
        dispatchers = [Dispatcher(w.engine, config) for _ in range(2)]
        for d in dispatchers:
            d.start()
        try:
            deadline = time.monotonic() + WAIT_S_MAX
            while time.monotonic() < deadline:
                if w.delivery_statuses().get((event.id, endpoint.id)) == "succeeded":
                    break
                time.sleep(ROUND_PAUSE_S)
            # Long enough for a lease to run out and a second dispatcher to send again.
            time.sleep(config.lease_ms * 2 / 1000)
        finally:
            for d in dispatchers:
                d.close()
    finally:
        receiver.close()
    assert w.delivery_statuses() == {(event.id, endpoint.id): "succeeded"}
    assert receiver.trickle_outcomes == ["hung up"]  # the dispatcher ended it, not the receiver
    assert receiver.overlaps == []
    assert receiver.webhook_ids == [event.id] * 2  # the trickled attempt, then one success
    attempts = sorted(w.events.list_attempts(event_id=event.id), key=lambda a: a.attempt)
    assert [(a.attempt, a.status) for a in attempts] == [
        (1, AttemptStatus.FAILED),
        (2, AttemptStatus.SUCCEEDED),
    ]
    assert attempts[0].response_status is None
    assert attempts[0].error is not None
    assert attempts[0].error.startswith("timeout: ReadTimeout")


def test_a_slow_tenant_holds_a_bounded_share_and_the_others_are_delivered_meanwhile(
    world: World,
) -> None:
    """One tenant's receiver holds every request; that tenant has a backlog older than every
    other tenant's events. Its requests hold at most tenant_concurrency of the senders, and
    every other tenant's events are delivered while they are still open (the order of
    deliveries, not their timing: the held requests are answered only after that)."""
    w = world
    slow, fast = Receiver(), Receiver()
    slow.hold = True
    # Deadlines longer than the hold, so that no held request ends before it is released.
    config = replace(
        FAST,
        timeout_ms=int(HOLD_S_MAX * 1000) + 1_000,
        lease_ms=int(HOLD_S_MAX * 1000) + 2_000,
        concurrency=4,
        tenant_concurrency=2,
        endpoint_concurrency=2,
    )
    other_tenants, each = 3, 2
    try:
        slow_endpoint = w.events.create_endpoint(TENANT, slow.url)
        w.post([w.transfer(w.bank, w.alice, 1 + i) for i in range(12)])
        for k in range(other_tenants):
            tenant = f"ten_other_{k}"
            ledger_id = w.ledger.create_ledger(f"other {k}", tenant_id=tenant).id
            debit = w.ledger.create_account(ledger_id, "USD", Direction.DEBIT).id
            credit = w.ledger.create_account(ledger_id, "USD", Direction.CREDIT).id
            w.events.create_endpoint(tenant, f"{fast.url}?tenant={k}")
            outcomes = w.ledger.post_transfers(
                [NewTransfer(f"o{k}.{i}", ledger_id, debit, credit, 1 + i) for i in range(each)]
            )
            assert [o.result for o in outcomes] == [TransferResult.CREATED] * each
        with Dispatcher(w.engine, config) as dispatcher:
            dispatcher.start()
            assert fast.wait_for(other_tenants * each), "the other tenants were not delivered"
            with slow.changed:
                answered_slow, sent_slow = slow.answered, len(slow.requests)
            slow.release()
            drive_until = time.monotonic() + WAIT_S_MAX
            while time.monotonic() < drive_until and slow.answered < 12:
                time.sleep(ROUND_PAUSE_S)
    finally:
        slow.close()
        fast.close()
    assert answered_slow == 0  # every other tenant's event went out while those were open
    assert 1 <= sent_slow <= config.tenant_concurrency
    assert slow.in_flight_max <= config.endpoint_concurrency
    assert fast.count() == other_tenants * each
    assert slow.count() == 12
    assert {s for (_, e), s in w.delivery_statuses().items() if e == slow_endpoint.id} == {
        "succeeded"
    }


# -- deleting an endpoint --------------------------------------------------------------------

NONE_LEFT = {"webhook_endpoints": 0, "webhook_delivery_state": 0, "webhook_deliveries": 0}


def test_deleting_an_endpoint_removes_its_deliveries_and_attempts(world: World) -> None:
    w = world
    receiver = Receiver(lambda n: 500)  # every attempt fails: deliveries stay pending
    try:
        gone = w.events.create_endpoint(TENANT, receiver.url + "?gone")
        kept = w.events.create_endpoint(TENANT, receiver.url + "?kept")
        w.post([w.transfer(w.bank, w.alice, 1 + i) for i in range(3)])
        with Dispatcher(
            w.engine, replace(FAST, backoff_ms_base=60_000, backoff_ms_max=60_000)
        ) as dispatcher:
            assert dispatcher.run_once() == 6
    finally:
        receiver.close()
    before = w.rows_of(gone.id)
    assert before == {"webhook_endpoints": 1, "webhook_delivery_state": 3, "webhook_deliveries": 3}
    assert set(w.delivery_statuses().values()) == {"pending"}

    assert w.events.delete_endpoint(gone.id, tenant_id=TENANT).id == gone.id
    assert w.rows_of(gone.id) == NONE_LEFT
    assert w.rows_of(kept.id) == before  # the other endpoint keeps all it had
    for call in (
        lambda: w.events.get_endpoint(gone.id),
        lambda: w.events.list_endpoint_attempts(gone.id),
        lambda: w.events.delete_endpoint(gone.id),
        lambda: w.events.set_endpoint_enabled(gone.id, True),
        # Another tenant's endpoint is not found, and is not deleted.
        lambda: w.events.delete_endpoint(kept.id, tenant_id="ten_someone_else"),
    ):
        with pytest.raises(NotFound):
            call()
    assert w.events.list_endpoints(tenant_id=TENANT).data == [w.events.get_endpoint(kept.id)]
    assert w.rows_of(kept.id) == before


def test_an_endpoint_deleted_between_claim_and_record_is_not_resurrected(
    world: World, receiver: Receiver
) -> None:
    w = world
    gone = w.events.create_endpoint(TENANT, receiver.url + "?gone")
    kept = w.events.create_endpoint(TENANT, receiver.url + "?kept")
    w.post([w.transfer(w.bank, w.alice, 1 + i) for i in range(2)])
    with Dispatcher(w.engine, FAST) as dispatcher:
        assert dispatcher.route_once() == 2
        jobs = dispatcher.claim(8)
        assert sorted(j.endpoint.id for j in jobs) == sorted([gone.id, kept.id] * 2)
        sent = [dispatcher.send_safely(job) for job in jobs]
        assert receiver.count() == 4  # the requests went out ...
        w.events.delete_endpoint(gone.id)  # ... and the endpoint is deleted before the answers
        recorded = dispatcher.record(sent)
        # Only the kept endpoint's attempts are recorded; nothing of the deleted one is back.
        assert (
            sorted((a.endpoint_id, a.status) for a in recorded)
            == [(kept.id, AttemptStatus.SUCCEEDED)] * 2
        )
        assert w.rows_of(gone.id) == NONE_LEFT
        assert set(w.delivery_statuses().values()) == {"succeeded"}
        assert len(w.events.list_attempts(endpoint_id=kept.id)) == 2
        # A late single delivery to the deleted endpoint records nothing and does not raise.
        late = next(j for j in jobs if j.endpoint.id == gone.id)
        assert dispatcher.deliver(late) is None
        assert w.rows_of(gone.id) == NONE_LEFT
        # The dispatcher goes on: nothing is due for the deleted endpoint, new events route.
        assert dispatcher.run_once() == 0
        w.post([w.transfer(w.bank, w.alice, 9)])
        assert dispatcher.run_once() == 1
    assert w.rows_of(gone.id) == NONE_LEFT
    assert receiver.count() == 6


def test_an_endpoint_deleted_while_the_loop_has_a_request_in_flight(
    world: World, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    w = world
    endpoint = w.events.create_endpoint(TENANT, receiver.url)
    w.post([w.transfer(w.bank, w.alice, 1)])
    receiver.hold = True  # the answer waits until the endpoint is deleted
    dispatcher = Dispatcher(w.engine, FAST)
    with caplog.at_level(logging.INFO, logger="strongroom.events.dispatcher"):
        dispatcher.start()  # the real loop, in a thread
        try:
            assert receiver.wait_for(1)
            w.events.delete_endpoint(endpoint.id)
            receiver.release()
            deadline = time.monotonic() + WAIT_S_MAX
            while not any("not recorded" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline, caplog.text
                assert dispatcher.running, caplog.text
                time.sleep(ROUND_PAUSE_S)
            assert dispatcher.running
        finally:
            dispatcher.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert w.rows_of(endpoint.id) == NONE_LEFT
    assert receiver.count() == 1


def test_an_endpoint_deleted_while_events_are_routed_gets_no_delivery(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routing reads the endpoints, then queues deliveries. A delete in between waits for the
    routing transaction (the endpoints it read are locked against deletion) and then removes
    what it queued; without that lock it would finish first and leave deliveries behind for
    an endpoint that no longer exists."""
    w = world
    endpoint = w.events.create_endpoint(TENANT, "http://127.0.0.1:9/never-sent")
    w.post([w.transfer(w.bank, w.alice, 1 + i) for i in range(3)])
    original = store.enabled_endpoints
    deletes: list[threading.Thread] = []
    failures: list[BaseException] = []

    def delete() -> None:
        try:
            w.events.delete_endpoint(endpoint.id)
        except BaseException as exc:  # reported by the test's thread
            failures.append(exc)

    def read_then_race(uow: Any, tenant_ids: Any) -> Any:
        found = original(uow, tenant_ids)
        deletes.append(threading.Thread(target=delete))
        deletes[-1].start()
        deletes[-1].join(RACE_WAIT_S)
        return found

    monkeypatch.setattr(store, "enabled_endpoints", read_then_race)
    with Dispatcher(w.engine, FAST) as dispatcher:
        assert dispatcher.route_once() == 3
        (thread,) = deletes
        thread.join(WAIT_S_MAX)
        assert not thread.is_alive()
        assert not failures, failures
        monkeypatch.undo()
        assert dispatcher.run_once() == 0
    assert w.rows_of(endpoint.id) == NONE_LEFT
    assert w.delivery_statuses() == {}


# -- listing an endpoint's attempts ---------------------------------------------------------


def test_an_endpoints_attempts_page_in_a_total_order_both_ways(world: World) -> None:
    w = world
    endpoint = w.events.create_endpoint(TENANT, "https://hooks.example.com/a")
    other = w.events.create_endpoint(TENANT, "https://hooks.example.com/b")
    # Ties on time, and on time and number, so that every key of the order counts.
    keys = [
        (100, 1, "evt_1"),
        (100, 1, "evt_2"),
        (100, 2, "evt_1"),
        (300, 1, "evt_3"),
        (200, 3, "evt_3"),
        (200, 3, "evt_2"),
        (50, 1, "evt_4"),
    ]
    with w.engine.begin() as conn:
        for endpoint_id in (endpoint.id, other.id):
            for created_at, attempt, event_id in keys:
                conn.execute(
                    sa.text(
                        "INSERT INTO webhook_deliveries (event_id, endpoint_id, attempt, status, "
                        "response_status, error, duration_ms, next_attempt_at, created_at) "
                        "VALUES (:e, :w, :a, 'succeeded', 200, NULL, 1, NULL, :t)"
                    ),
                    {"e": event_id, "w": endpoint_id, "a": attempt, "t": created_at},
                )
    newest_first = [attempt_id(e, endpoint.id, a) for _, a, e in sorted(keys, reverse=True)]

    def ids(page: Any) -> list[str]:
        return [a.id for a in page.data]

    everything = w.events.list_endpoint_attempts(endpoint.id, limit=100)
    assert ids(everything) == newest_first
    assert not everything.has_more
    assert {a.endpoint_id for a in everything.data} == {endpoint.id}

    forward: list[str] = []
    page = w.events.list_endpoint_attempts(endpoint.id, limit=2)
    while True:
        forward += ids(page)
        if not page.has_more:
            break
        page = w.events.list_endpoint_attempts(endpoint.id, limit=2, starting_after=forward[-1])
    assert forward == newest_first

    backward: list[str] = []
    page = w.events.list_endpoint_attempts(endpoint.id, limit=2, ending_before=newest_first[-1])
    while True:
        assert ids(page) == sorted(ids(page), key=newest_first.index)  # each page in order
        backward = ids(page) + backward
        if not page.has_more:
            break
        page = w.events.list_endpoint_attempts(endpoint.id, limit=2, ending_before=backward[0])
    assert backward == newest_first[:-1]

    last = w.events.list_endpoint_attempts(endpoint.id, limit=1, starting_after=newest_first[-2])
    assert (ids(last), last.has_more) == ([newest_first[-1]], False)
    first = w.events.list_endpoint_attempts(endpoint.id, limit=1, ending_before=newest_first[1])
    assert (ids(first), first.has_more) == ([newest_first[0]], False)
    assert not w.events.list_endpoint_attempts(endpoint.id, starting_after=newest_first[-1]).data

    # Another endpoint's attempt, a well-formed id nobody has, and garbage are no cursor.
    for cursor in (
        attempt_id("evt_1", other.id, 1),
        attempt_id("evt_9", endpoint.id, 1),
        "wa_garbage",
        "evt_1",
        "",
    ):
        for param in ("starting_after", "ending_before"):
            with pytest.raises(InvalidRequest) as info:
                w.events.list_endpoint_attempts(endpoint.id, **{param: cursor})
            assert (info.value.code, info.value.param) == ("invalid_cursor", param), cursor
    with pytest.raises(InvalidRequest) as info:
        w.events.list_endpoint_attempts(
            endpoint.id, starting_after=newest_first[0], ending_before=newest_first[-1]
        )
    assert (info.value.code, info.value.param) == ("invalid_request", "ending_before")
    with pytest.raises(InvalidRequest) as info:
        w.events.list_endpoint_attempts(endpoint.id, limit=101)
    assert info.value.code == "invalid_limit"


# -- a dispatcher killed mid-delivery --------------------------------------------------------


def _start_dispatcher(url: str, stderr_path: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "strongroom.events.dispatcher",
        "--database-url",
        url,
        "--allow-private-targets",
        "--timeout-ms",
        "2000",
        "--lease-ms",
        "2500",
        "--backoff-ms-base",
        "5",
        "--backoff-ms-max",
        "20",
        "--poll-ms",
        "10",
        "--concurrency",
        "4",
    ]
    with stderr_path.open("wb") as stderr:
        return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=stderr)


@pytest.mark.slow
def test_a_killed_dispatcher_loses_no_event_and_resends_with_the_same_id(
    world: World, receiver: Receiver, db_url: str, tmp_path: Path
) -> None:
    w = world
    endpoint = w.events.create_endpoint(TENANT, receiver.url)
    assert w.post([w.transfer(w.bank, w.alice, 1 + i) for i in range(12)]) == (
        [TransferResult.CREATED] * 12
    )
    events = w.events_in_order()
    receiver.hold = True  # every answer waits: the dispatcher is killed mid-request
    first_log = tmp_path / "dispatcher-1.stderr"
    proc = _start_dispatcher(db_url, first_log)
    try:
        assert receiver.wait_for(1), first_log.read_text(errors="replace")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(WAIT_S_MAX)
    with receiver.changed:
        in_flight = {r.webhook_id for r in receiver.requests}
    assert in_flight
    receiver.release()  # the held answers go to a dead process
    assert set(w.delivery_statuses().values()) == {"pending"}  # nothing settled, nothing lost

    second_log = tmp_path / "dispatcher-2.stderr"
    proc = _start_dispatcher(db_url, second_log)
    try:
        deadline = time.monotonic() + WAIT_S_MAX
        while set(w.delivery_statuses().values()) != {"succeeded"}:
            assert proc.poll() is None, second_log.read_text(errors="replace")
            assert time.monotonic() < deadline, second_log.read_text(errors="replace")
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT_S_MAX) == 0, second_log.read_text(errors="replace")

    assert w.delivery_statuses() == {(e.id, endpoint.id): "succeeded" for e in events}
    by_id = {e.id: e for e in events}
    received: dict[str, list[Received]] = {}
    for request in receiver.requests:
        received.setdefault(request.webhook_id, []).append(request)
    assert set(received) == set(by_id)  # no event lost
    for event_id, requests in received.items():
        # Duplicates are the same message: same id, same body, each validly signed.
        assert {r.body for r in requests} == {by_id[event_id].payload()}
        for r in requests:
            assert signing.verify(endpoint.secret, r.headers, r.body, now_s=int(time.time())) is (
                signing.Verification.OK
            )
    for event_id in in_flight:
        assert len(received[event_id]) >= 2  # sent before the kill, and again after it
        attempts = w.events.list_attempts(event_id=event_id)
        # The killed attempt left no row, only a gap in the numbers.
        assert [a.status for a in attempts if a.status is AttemptStatus.SUCCEEDED]
        assert min(a.attempt for a in attempts) >= 2


def test_event_data_is_the_transfer_as_it_was_when_the_event_happened(
    db_engine: sa.engine.Engine,
) -> None:
    """Rendered when read, from the transfer row: a pending transfer's `transfer.created`
    still says `pending` after it was posted, its expiry says `expired`, and an event written
    with its data (before rows named their transfer) is read as written."""
    ledger = LedgerService(db_engine, sinks=[Outbox()])
    ldg = ledger.create_ledger("books").id
    a = ledger.create_account(ldg, "USD", Direction.DEBIT).id
    b = ledger.create_account(ldg, "USD", Direction.CREDIT).id
    held = ledger.transfer(ldg, a, b, 50, pending=True).transfer_id
    ledger.post_transfers([NewTransfer("tr_p", ldg, action=Action.POST, target_id=held)])
    lapsing = ledger.transfer(ldg, a, b, 9, pending=True, timeout_s=1).transfer_id
    time.sleep(1.05)
    assert ledger.expire_due() == 1
    with UnitOfWork(db_engine) as uow:
        uow.cursor().execute(
            "INSERT INTO events (seq, id, ledger_id, type, data, created_at) "
            + ("VALUES (?, ?, ?, ?, ?, ?)" if uow.sqlite else "VALUES (%s, %s, %s, %s, %s, %s)"),
            (10**6, "evt_legacy", ldg, "transfer.created", '{"id":"old"}', 1),
        )
        uow.commit()
    with UnitOfWork(db_engine, write=False) as uow:
        events, _ = store.list_events(
            uow,
            tenant_id=None,
            ledger_id=None,
            event_type=None,
            before_seq=None,
            limit=100,
            scan_rows_max=100,
        )
    seen = [(e.type, json.loads(e.data)["id"], json.loads(e.data).get("status")) for e in events]
    assert seen == [
        ("transfer.created", "old", None),
        ("transfer.expired", lapsing, "expired"),
        ("transfer.created", lapsing, "pending"),
        ("transfer.posted", "tr_p", "posted"),
        ("transfer.created", held, "pending"),
    ]
    assert ledger.get_transfer(held).status is Status.POSTED
