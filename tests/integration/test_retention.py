"""Retention (EventService.prune, TenancyService.purge_idempotency) and the background jobs'
leases (jobs.py, db/leases.py), on SQLite and PostgreSQL (db_engine runs each test on both).

Retention is given its cutoff ("older than now" is a cutoff between two phases of a test), and
the leases a clock of the test's own: nothing here waits for time to pass.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from unittest import mock

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.audit.service import AuditLog
from strongroom.core import clock
from strongroom.core.errors import NotFound
from strongroom.core.limits import IDEMPOTENCY_RETENTION_S
from strongroom.db import leases
from strongroom.db.uow import UnitOfWork
from strongroom.events.dispatcher import Dispatcher, DispatcherConfig
from strongroom.events.model import DeliveryStatus
from strongroom.events.service import EventService
from strongroom.jobs import JobRunner, JobSpec, Keep
from strongroom.ledger.model import Action, Direction, NewTransfer, TransferResult
from strongroom.ledger.service import LedgerService
from strongroom.runtime import build_ledger
from strongroom.settings import load_settings
from strongroom.tenancy import store as tenancy_store
from strongroom.tenancy.service import TenancyService

OK_URL = "http://127.0.0.1/ok"  # answered 200 by the mock transport
FAILING_URL = "http://127.0.0.1/fail"  # answered 500: its deliveries stay pending
LEDGER_TABLES = ("transfers", "entries", "accounts", "ledgers", "entry_index")
AUDIT_TABLES = ("audit_logs", "audit_bundles", "audit_refs", "audit_tiles", "audit_checkpoints")


def _answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200 if request.url.path == "/ok" else 500)


@dataclass
class World:
    engine: Engine
    ledger: LedgerService
    audit: AuditLog
    events: EventService
    tenancy: TenancyService
    tenant: str
    ledger_id: str
    bank: str
    alice: str
    dispatcher: Dispatcher

    def post(self, prefix: str, count: int, *, pending: bool = False) -> list[str]:
        ids = [f"{prefix}-{i}" for i in range(count)]
        self._commit(
            [
                NewTransfer(tid, self.ledger_id, self.bank, self.alice, 1, pending=pending)
                for tid in ids
            ]
        )
        return ids

    def void(self, pending_ids: list[str]) -> list[str]:
        ids = [f"void-{tid}" for tid in pending_ids]
        self._commit(
            [
                NewTransfer(tid, self.ledger_id, action=Action.VOID, target_id=target)
                for tid, target in zip(ids, pending_ids, strict=True)
            ]
        )
        return ids

    def _commit(self, batch: list[NewTransfer]) -> None:
        results = self.ledger.post_transfers(batch)
        assert all(r.result is TransferResult.CREATED for r in results), results

    def deliver(self) -> None:
        """Route every event and make one attempt at each due delivery."""
        for _ in range(100):
            if not self.dispatcher.run_once():
                return
        raise AssertionError("deliveries do not end")

    def event_ids_of(self, transfer_ids: list[str]) -> list[str]:
        with UnitOfWork(self.engine, write=False) as uow:
            cur = uow.cursor()
            cur.execute("SELECT id, transfer_id FROM events")
            by_transfer = {t: e for e, t in cur.fetchall()}
        return [by_transfer[t] for t in transfer_ids]


@pytest.fixture
def world(db_engine: Engine, db_url: str) -> Iterator[World]:
    settings = load_settings(database_url=db_url)
    ledger, audit = build_ledger(db_engine, settings)
    tenancy = TenancyService(db_engine, audit=audit)
    tenant = tenancy.ensure_tenant("acme").id
    ledger_id = ledger.create_ledger("books", tenant_id=tenant).id
    bank = ledger.create_account(ledger_id, "USD", Direction.DEBIT).id
    alice = ledger.create_account(ledger_id, "USD", Direction.CREDIT).id
    config = DispatcherConfig(allow_private_targets=True, backoff_ms_base=3_600_000)
    dispatcher = Dispatcher(db_engine, config, transport=httpx.MockTransport(_answer))
    events = EventService(db_engine, allow_private_targets=True, audit=audit)
    try:
        yield World(
            db_engine, ledger, audit, events, tenancy, tenant, ledger_id, bank, alice, dispatcher
        )
    finally:
        dispatcher.close()


def _counts(engine: Engine, tables: tuple[str, ...]) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in tables}


def _boundary() -> int:
    """A time after everything done so far and before anything done next."""
    time.sleep(0.002)
    at = clock.now_us()
    time.sleep(0.002)
    return at


def test_pruning_deletes_old_events_and_attempts_and_keeps_ledger_audit_and_pending(
    world: World,
) -> None:
    w = world
    w.events.create_endpoint(w.tenant, OK_URL)
    # Only voids go to the failing endpoint too: their deliveries there stay pending.
    w.events.create_endpoint(w.tenant, FAILING_URL, ["transfer.voided"])
    old_posted = w.post("old", 6) + w.post("old-pending", 2, pending=True)
    old_voided = w.void(old_posted[-2:])
    w.deliver()
    w.audit.publish()
    cutoff = _boundary()
    new_posted = w.post("new", 3)
    w.deliver()
    w.audit.publish()
    ledger_before = _counts(w.engine, LEDGER_TABLES)
    audit_before = _counts(w.engine, AUDIT_TABLES)
    leaves_before = w.audit.verify().leaves
    gone = w.event_ids_of(old_posted)  # read before: the rows are gone after

    pruned = w.events.prune(before_us=cutoff, events_batch=3, attempts_batch=2)

    assert pruned.events == len(old_posted)
    assert pruned.deliveries == len(old_posted)  # one settled delivery each, to OK_URL
    # Every attempt before the cutoff: the pruned events', and the voids' (to both endpoints).
    assert pruned.attempts == len(old_posted) + 2 * len(old_voided)
    for event_id in gone:
        with pytest.raises(NotFound):
            w.events.get_event(event_id, tenant_id=w.tenant)
        assert w.events.list_attempts(event_id=event_id) == []
        assert w.events.list_deliveries(event_id=event_id) == []
    # A pending delivery keeps its event and its state; only its old attempts went.
    for event_id in w.event_ids_of(old_voided):
        w.events.get_event(event_id, tenant_id=w.tenant)
        states = sorted(d.status for d in w.events.list_deliveries(event_id=event_id))
        assert states == sorted([DeliveryStatus.SUCCEEDED, DeliveryStatus.PENDING])
        assert w.events.list_attempts(event_id=event_id) == []
    for event_id in w.event_ids_of(new_posted):
        w.events.get_event(event_id, tenant_id=w.tenant)
        assert len(w.events.list_attempts(event_id=event_id)) == 1
    # The ledger and the audit log are untouched, and both still verify.
    assert _counts(w.engine, LEDGER_TABLES) == ledger_before
    assert _counts(w.engine, AUDIT_TABLES) == audit_before
    assert w.ledger.verify().problems == []
    report = w.audit.verify()
    assert (report.problems, report.leaves) == ([], leaves_before)
    for tid in old_posted:
        w.ledger.get_transfer(tid)
    # A second pass finds nothing more to do.
    assert w.events.prune(before_us=cutoff).events == 0
    # The dispatcher goes on with the pending deliveries: a new attempt number, recorded.
    with UnitOfWork(w.engine) as uow:
        uow.cursor().execute("UPDATE webhook_delivery_state SET next_attempt_at = 0")
        uow.commit()
    w.dispatcher.run_once()
    for event_id in w.event_ids_of(old_voided):
        assert [a.attempt for a in w.events.list_attempts(event_id=event_id)] == [2]


def test_unrouted_events_and_the_newest_event_are_kept(world: World) -> None:
    w = world
    routed = w.post("routed", 3)
    w.deliver()  # no endpoint: routed to none
    unrouted = w.post("unrouted", 2)  # not routed yet
    pruned = w.events.prune(before_us=clock.now_us() + 3600 * 1_000_000)
    assert pruned.events == len(routed)
    for event_id in w.event_ids_of(unrouted):
        w.events.get_event(event_id)
    w.deliver()
    pruned = w.events.prune(before_us=clock.now_us() + 3600 * 1_000_000)
    # All but the newest: new events are numbered after it, never again from 1.
    assert pruned.events == len(unrouted) - 1
    (newest,) = w.events.list_events(limit=10).data
    assert newest.id == w.event_ids_of(unrouted[-1:])[0]
    w.post("after", 1)
    page = w.events.list_events(limit=10).data
    assert [e.seq for e in page] == [newest.seq + 1, newest.seq]


def test_the_event_listing_pages_on_after_pruning(world: World) -> None:
    w = world
    old = w.post("old", 8)
    cutoff = _boundary()
    new = w.post("new", 8)
    w.deliver()
    old_ids = w.event_ids_of(old)
    w.events.scan_rows_max = 3  # short ranges: pages end early with has_more, across the gap
    first = w.events.list_events(tenant_id=w.tenant, limit=10)
    seen = [e.id for e in first.data]
    assert first.has_more
    assert first.next_cursor is not None
    # Prune while a client pages: the old events go, and the pages it is reading go on.
    assert w.events.prune(before_us=cutoff).events == len(old)
    cursor: str | None = first.next_cursor
    pages = 0
    while cursor is not None:
        page = w.events.list_events(tenant_id=w.tenant, cursor=cursor, limit=10)
        seen.extend(e.id for e in page.data)
        cursor = page.next_cursor if page.has_more else None
        pages += 1
        assert pages < 50, "the listing does not end"
    assert seen == list(reversed(w.event_ids_of(new)))
    # A pruned event is not found, as an event id nobody has; `cursor`s go on past it.
    for event_id in old_ids:
        with pytest.raises(NotFound):
            w.events.list_events(tenant_id=w.tenant, starting_after=event_id)
        with pytest.raises(NotFound):
            w.events.get_event(event_id)
    # starting_after an event that is still there works as before (a range of 3 seqs).
    after = w.events.list_events(tenant_id=w.tenant, starting_after=seen[0], limit=100)
    assert [e.id for e in after.data] == seen[1:4]


def test_idempotency_records_past_their_retention_are_purged(world: World) -> None:
    w = world
    now = clock.now_us()
    old_at = now - IDEMPOTENCY_RETENTION_S * 1_000_000 - 1
    with UnitOfWork(w.engine) as uow:
        for i in range(5):
            tenancy_store.insert_idempotency_record(
                uow, w.tenant, f"old-{i}", "0" * 64, "o", old_at, old_at + 1
            )
        tenancy_store.insert_idempotency_record(uow, w.tenant, "fresh", "0" * 64, "o", now, now + 1)
        uow.commit()
    ledger_before = _counts(w.engine, LEDGER_TABLES)
    assert w.tenancy.purge_idempotency(now_us=now) == 5
    with UnitOfWork(w.engine, write=False) as uow:
        assert (
            tenancy_store.get_idempotency_record(uow, w.tenant, "old-0", for_update=False) is None
        )
        assert (
            tenancy_store.get_idempotency_record(uow, w.tenant, "fresh", for_update=False)
            is not None
        )
    assert _counts(w.engine, LEDGER_TABLES) == ledger_before
    # A job whose lease is lost stops before its next batch.
    with UnitOfWork(w.engine) as uow:
        tenancy_store.insert_idempotency_record(
            uow, w.tenant, "old-again", "0" * 64, "o", old_at, old_at + 1
        )
        uow.commit()
    assert w.tenancy.purge_idempotency(now_us=now, keep=lambda: False) == 0


# -- leases --------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.us = clock.now_us()

    def __call__(self) -> int:
        return self.us

    def advance(self, seconds: float) -> None:
        self.us += int(seconds * 1_000_000)


LEASE_S = 10.0


def _runner(engine: Engine, owner: str, now: FakeClock, runs: list[str] | None = None) -> JobRunner:
    def run(keep: Keep) -> None:
        if runs is not None:
            runs.append(owner)

    return JobRunner(
        engine, [JobSpec("retention", 60.0, run)], lease_s=LEASE_S, owner=owner, now_us=now
    )


def _lease(engine: Engine) -> leases.LeaseRow:
    with UnitOfWork(engine, write=False) as uow:
        row = leases.get(uow, "retention")
    assert row is not None
    return row


def test_a_killed_holders_lease_is_taken_over_once_it_runs_out(db_engine: Engine) -> None:
    now = FakeClock()
    started = now()
    # A holder that was killed: its row stays, renewed never again.
    with UnitOfWork(db_engine) as uow:
        assert leases.take(
            uow,
            "retention",
            "dead-host:4242:0",
            now_us=now(),
            lease_until=now() + int(LEASE_S * 1_000_000),
            status=leases.RunStatus(last_success_at=started - 1),
        )
        uow.commit()
    standby = _runner(db_engine, "standby", now)
    assert not standby.hold("retention")
    now.advance(LEASE_S - 0.001)
    assert not standby.hold("retention")
    now.advance(0.002)  # the lease has run out
    assert standby.hold("retention")
    row = _lease(db_engine)
    assert (row.owner, row.lease_until) == ("standby", now() + int(LEASE_S * 1_000_000))
    assert row.last_success_at == started - 1  # the dead holder's last run is kept
    # The dead holder cannot take it back, even with its own name, until it runs out.
    with UnitOfWork(db_engine) as uow:
        assert not leases.take(
            uow,
            "retention",
            "dead-host:4242:0",
            now_us=now(),
            lease_until=now() + 1_000_000,
            status=leases.RunStatus(),
        )
        uow.commit()


def test_one_holder_at_a_time_renewed_while_held_released_on_stop(db_engine: Engine) -> None:
    now = FakeClock()
    a = _runner(db_engine, "a", now)
    b = _runner(db_engine, "b", now)
    assert a.hold("retention")
    assert not b.hold("retention")
    # The holder renews every third of a lease, so it never runs out while it is alive.
    for _ in range(10):
        now.advance(LEASE_S / 3 + 0.001)
        assert a.hold("retention")
        assert not b.hold("retention")
    assert _lease(db_engine).owner == "a"
    # A clean stop gives it up: the other takes it at once.
    a.release()
    assert b.hold("retention")
    assert not a.hold("retention")


def test_a_renewal_still_in_its_thread_when_the_runner_stops_writes_no_lease_back(
    db_engine: Engine,
) -> None:
    # Stopping cancels the job's task, but a `hold` already handed to a worker thread goes on:
    # it waits for the release and then must not take the lease back.
    now = FakeClock()
    a = _runner(db_engine, "a", now)
    assert a.hold("retention")
    entered, go = threading.Event(), threading.Event()
    real_get = leases.get

    def slow_get(uow: UnitOfWork, name: str) -> leases.LeaseRow | None:
        entered.set()
        go.wait(5)
        return real_get(uow, name)

    now.advance(LEASE_S / 3 + 0.001)  # the renewal reads the row first
    results: list[bool] = []
    with mock.patch.object(leases, "get", slow_get):
        renewal = threading.Thread(target=lambda: results.append(a.hold("retention")))
        renewal.start()
        assert entered.wait(5)
        a._stopping.set()
        releaser = threading.Thread(target=a.release)
        releaser.start()
        releaser.join(0.5)  # unserialised, the release would be done by now
        go.set()
        renewal.join(5)
        releaser.join(5)
    assert not renewal.is_alive()
    assert not releaser.is_alive()
    assert results == [True]  # it began before the stop: it renewed, then the release won
    assert _lease(db_engine).lease_until == 0  # given up, and not written back
    assert not a.hold("retention")  # a stopping runner takes nothing
    b = _runner(db_engine, "b", now)
    assert b.hold("retention")


def test_a_holder_writes_its_last_run_and_every_process_reports_it(db_engine: Engine) -> None:
    now = FakeClock()
    a = _runner(db_engine, "a", now)
    b = _runner(db_engine, "b", now)
    assert a.hold("retention")
    assert not b.hold("retention")
    a.states["retention"].failed(now(), ValueError("secret detail"))
    assert a.hold("retention")  # a changed outcome is written at once
    report = b.report()["retention"]
    assert report["running"] is True
    assert report["running_here"] is False
    assert report["last_error"] == "ValueError"  # the type only, never the message
    assert report["last_error_at"] == clock.format_us(now())
    assert report["last_success_at"] is None
    now.advance(1)
    a.states["retention"].succeeded(now())
    assert a.hold("retention")
    report = b.report()["retention"]
    assert report["last_success_at"] == clock.format_us(now())
    assert report["last_error"] == "ValueError"  # the last error, now older than a success


def test_a_run_that_ended_as_the_process_stopped_is_written_with_the_release(
    db_engine: Engine,
) -> None:
    # A run's success is written by the loop's next `hold`; a stop that comes first cancels
    # that, so the release writes it (CI once saw /readyz report a success the row lacked).
    now = FakeClock()
    a = _runner(db_engine, "a", now)
    assert a.hold("retention")
    now.advance(1)
    a.states["retention"].succeeded(now())
    a._stopping.set()
    assert not a.hold("retention")  # stopping: nothing written by the loop
    assert _lease(db_engine).last_success_at is None
    a.release()
    row = _lease(db_engine)
    assert (row.lease_until, row.last_success_at) == (0, now())
    b = _runner(db_engine, "b", now)
    assert b.report()["retention"]["last_success_at"] == clock.format_us(now())


def test_only_the_holder_runs_the_job(db_engine: Engine) -> None:
    """Two runners' loops on one database: the job runs in the holder only. The lease is long
    against the test, so no takeover can happen in it."""
    runs: list[str] = []
    now = FakeClock()

    async def main() -> None:
        a = _runner(db_engine, "a", now, runs)
        a.start()
        while not runs:
            await asyncio.sleep(0.01)
        b = _runner(db_engine, "b", now, runs)
        b.start()
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert b.alive("retention")
        assert not b.states["retention"].running
        await a.stop()
        await b.stop()

    asyncio.run(main())
    assert runs == ["a"]


def test_a_failed_run_is_reported_and_the_job_runs_again(db_engine: Engine) -> None:
    calls: list[int] = []

    def run(keep: Keep) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("a detail that stays in the log")

    seen: list[tuple[bool, str | None]] = []
    runner = JobRunner(
        db_engine,
        [JobSpec("retention", 0.01, run)],
        lease_s=LEASE_S,
        owner="a",
        observe=lambda s: seen.append((s.running, s.last_error)),
    )

    async def main() -> None:
        runner.start()
        state = runner.states["retention"]
        for _ in range(2_000):  # a bound on waiting, not on speed
            if state.healthy:
                break
            await asyncio.sleep(0.01)
        await runner.stop()

    asyncio.run(main())
    state = runner.states["retention"]
    assert state.healthy
    assert state.last_error == "ValueError"
    assert (True, "ValueError") in seen
    assert seen[-1] == (False, "ValueError")  # stopped
    report = runner.report()["retention"]
    assert report["last_error"] == "ValueError"
    assert report["last_success_at"] is not None
    assert (report["running"], report["running_here"]) == (False, False)  # its lease given up
