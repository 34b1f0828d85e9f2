"""Background jobs, and what every background loop reports of its last run.

`serve` runs three periodic jobs (runtime.py): pending-transfer expiry, audit checkpoint
publishing and retention (pruning old events, webhook attempts and idempotency records). Where
several processes share one database (`serve --workers N`, several servers), each job runs in
one process at a time, the one holding its lease (db/leases.py, table `job_leases`):

- the holder renews its lease every third of `lease_s`, between runs and between a long run's
  batches (`keep()`), so a holder that is killed or stalls stops renewing and its lease runs out
  at most `lease_s` later;
- every other process looks every third of a lease (one read) and takes the lease over once it
  has run out: a killed holder's job resumes elsewhere within about 4/3 of a lease;
- a clean stop gives the lease up at once.

The lease saves work; it is not what keeps the data right. Every job is safe to run twice at
once (expiry takes the ledger's locks, a checkpoint of a size already published is kept once,
pruning deletes only what is past its time), which may happen for a moment when a holder that
stalled past its lease wakes up.

Each process keeps the state of its loops (`JobState`): when each last succeeded and last
failed (the error's type, never its message), and whether it runs here now; the webhook
dispatcher, which runs in every process under per-delivery leases, reports through `track`.
`/metrics` shows these (gauges that take the latest time across workers); `/readyz` shows the
deployment's view (`report`): a lease holder writes its last run into its lease row when the
outcome changes and at every renewal, so whichever process answers reports the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from strongroom.core import clock
from strongroom.core.limits import JOB_LEASE_S_MAX, JOB_LEASE_S_MIN
from strongroom.db import leases
from strongroom.db.uow import UnitOfWork

log = logging.getLogger("strongroom.jobs")

# A long job calls it between its batches: False when it must stop (its lease was lost, or
# the server is stopping); it renews the lease when a third of it has passed.
Keep = Callable[[], bool]


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    interval_s: float  # from the end of one run to the start of the next
    run: Callable[[Keep], object]  # runs in a worker thread
    first_run_delayed: bool = False  # first run one interval after start, not at once

    def __post_init__(self) -> None:
        assert self.interval_s > 0, self.name


@dataclass(slots=True)
class JobState:
    """One loop's runs in this process. Times are epoch microseconds."""

    name: str
    running: bool = False  # the loop is alive here and, for a leased job, holds the lease
    last_success_us: int | None = None
    last_error_us: int | None = None
    last_error: str | None = None  # the exception's type name: a message may carry data

    def succeeded(self, at_us: int) -> None:
        self.last_success_us = at_us

    def failed(self, at_us: int, error: BaseException) -> None:
        self.last_error_us = at_us
        self.last_error = type(error).__name__

    @property
    def healthy(self) -> bool:
        """Its last run succeeded."""
        return self.last_success_us is not None and (
            self.last_error_us is None or self.last_success_us > self.last_error_us
        )


Observer = Callable[[JobState], None]


def process_owner() -> str:
    """A lease owner's name: host, pid and a random part (a pid is reused after a restart)."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(6)}"


class LoopReporter:
    """What a loop that runs itself (the webhook dispatcher) reports after each round."""

    def __init__(self, state: JobState, observe: Observer | None, now_us: Callable[[], int]):
        self.state = state
        self._observe = observe
        self._now_us = now_us

    def __call__(self, error: BaseException | None) -> None:
        """A round ended: with `error`, or None when it succeeded."""
        self.state.running = True
        if error is None:
            self.state.succeeded(self._now_us())
        else:
            self.state.failed(self._now_us(), error)
        if self._observe is not None:
            self._observe(self.state)

    def stopped(self) -> None:
        self.state.running = False
        if self._observe is not None:
            self._observe(self.state)


class JobRunner:
    """Runs `specs` in asyncio tasks (start/stop in the app's lifespan), each under its
    lease."""

    def __init__(
        self,
        engine: Engine,
        specs: Sequence[JobSpec],
        *,
        lease_s: float,
        observe: Observer | None = None,
        owner: str | None = None,
        now_us: Callable[[], int] = clock.now_us,
    ) -> None:
        assert JOB_LEASE_S_MIN <= lease_s <= JOB_LEASE_S_MAX
        assert len({s.name for s in specs}) == len(specs), "job names are unique"
        self.engine = engine
        self.specs = {s.name: s for s in specs}
        self.lease_s = lease_s
        self.owner = owner or process_owner()
        self.states: dict[str, JobState] = {s.name: JobState(s.name) for s in specs}
        self._observe = observe
        self._now_us = now_us
        self._lease_us = int(lease_s * 1_000_000)
        # Per job: until when this process holds its lease (0: it does not), and the outcome
        # it last wrote into the lease row ((healthy, last error time)).
        self._held_until: dict[str, int] = {s.name: 0 for s in specs}
        self._written: dict[str, tuple[bool, int | None]] = {}
        self._stopping = threading.Event()
        # Taking or renewing a lease and giving the leases up never interleave: a worker
        # thread still in `hold` when the server stops (a cancelled task does not stop its
        # thread) would otherwise write a lease back after `release` gave it up.
        self._lease_lock = threading.Lock()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    # -- the lease -------------------------------------------------------------------------

    def hold(self, name: str) -> bool:
        """Whether this process holds `name`'s lease: renewed once a third of it has passed,
        taken when it is free or has run out; this process's last run written with it when
        its outcome changed. No statement while the lease is fresh and nothing changed, one
        read while another process holds it. False once the runner is stopping."""
        with self._lease_lock:
            if self._stopping.is_set():
                return False
            return self._hold(name)

    def _hold(self, name: str) -> bool:
        state = self.states[name]
        now = self._now_us()
        outcome = (state.healthy, state.last_error_us)
        fresh = self._held_until[name] - now > self._lease_us * 2 // 3
        if fresh and self._written.get(name) == outcome:
            return True
        if not fresh:
            with UnitOfWork(self.engine, write=False) as uow:
                row = leases.get(uow, name)
            if row is not None and row.owner != self.owner and row.lease_until > now:
                self._lost(name)
                return False
        status = leases.RunStatus(state.last_success_us, state.last_error_us, state.last_error)
        with UnitOfWork(self.engine) as uow:
            now = self._now_us()  # on SQLite, once the write lock is held
            held = leases.take(
                uow, name, self.owner, now_us=now, lease_until=now + self._lease_us, status=status
            )
            uow.commit()
        if not held:
            self._lost(name)
            return False
        if not self._held_until[name]:
            log.info("job %s: this process runs it now", name)
        self._held_until[name] = now + self._lease_us
        self._written[name] = outcome
        return True

    def _lost(self, name: str) -> None:
        if self._held_until[name]:
            log.warning("job %s: its lease is held by another process now", name)
        self._held_until[name] = 0

    def keep(self, name: str) -> Keep:
        def keep() -> bool:
            return not self._stopping.is_set() and self.hold(name)

        return keep

    def release(self) -> None:
        """Give up every lease this process holds (a clean stop), with its last runs."""
        with self._lease_lock:
            for name, until in self._held_until.items():
                if until:
                    state = self.states[name]
                    status = leases.RunStatus(
                        state.last_success_us, state.last_error_us, state.last_error
                    )
                    with UnitOfWork(self.engine) as uow:
                        leases.release(uow, name, self.owner, status)
                        uow.commit()
                    self._held_until[name] = 0

    # -- the loops -------------------------------------------------------------------------

    def track(self, name: str) -> LoopReporter:
        """A state for a loop that runs itself in every process (no lease): it reports each
        round to the returned reporter."""
        assert name not in self.specs
        state = self.states.setdefault(name, JobState(name))
        return LoopReporter(state, self._observe, self._now_us)

    def start(self) -> None:
        """Start every job's loop (in the running event loop)."""
        assert not self._tasks, "started already"
        self._stopping.clear()
        for name, spec in self.specs.items():
            self._tasks[name] = asyncio.create_task(self._loop(spec), name=f"job-{name}")

    def alive(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    async def stop(self) -> None:
        """Stop the loops (a run in progress stops at its next batch) and give up the
        leases."""
        self._stopping.set()
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        try:
            await run_in_threadpool(self.release)
        except Exception:  # they run out by themselves
            log.exception("jobs: giving up the leases failed")

    async def _loop(self, spec: JobSpec) -> None:
        state = self.states[spec.name]
        poll_s = self.lease_s / 3
        next_run = time.monotonic() + (spec.interval_s if spec.first_run_delayed else 0.0)
        try:
            while True:
                held = await self._hold_logged(spec.name)
                if held and time.monotonic() >= next_run:
                    await self._run(spec)
                    next_run = time.monotonic() + spec.interval_s
                    held = await self._hold_logged(spec.name)  # a changed outcome, at once
                wait_s = max(next_run - time.monotonic(), 0.0) if held else poll_s
                await asyncio.sleep(min(wait_s, poll_s))
        finally:
            state.running = False
            self._observed(state)

    async def _hold_logged(self, name: str) -> bool:
        state = self.states[name]
        try:
            held = await run_in_threadpool(self.hold, name)
        except Exception as exc:  # the database may be away: the lease lasts while it is
            log.exception("job %s: taking or renewing its lease failed", name)
            state.failed(self._now_us(), exc)
            held = self._held_until[name] > self._now_us()
        if held != state.running:
            state.running = held
            self._observed(state)
        return held

    async def _run(self, spec: JobSpec) -> None:
        state = self.states[spec.name]
        try:
            await run_in_threadpool(spec.run, self.keep(spec.name))
        except AssertionError as exc:  # a bug: reported, then the loop stops
            state.failed(self._now_us(), exc)
            self._observed(state)
            raise
        except Exception as exc:
            log.exception("job %s failed; it runs again in %g s", spec.name, spec.interval_s)
            state.failed(self._now_us(), exc)
        else:
            state.succeeded(self._now_us())
        self._observed(state)

    def _observed(self, state: JobState) -> None:
        if self._observe is not None:
            self._observe(state)

    # -- reports ---------------------------------------------------------------------------

    def report(self) -> dict[str, dict[str, Any]]:
        """Each loop's last run as the deployment knows it, for /readyz: `running` (a process
        holds the job's live lease; for a tracked loop, it runs in this process),
        `running_here`, and the times of the last success and the last error (RFC 3339, or
        null) with the error's type. Leased jobs' come from their lease rows, this process's
        own runs included."""
        rows: dict[str, leases.LeaseRow] = {}
        # Unreachable, the database check says why.
        with contextlib.suppress(Exception), UnitOfWork(self.engine, write=False) as uow:
            rows = leases.all_leases(uow)
        now = self._now_us()
        out: dict[str, dict[str, Any]] = {}
        for name, state in self.states.items():
            success, error_at, error = state.last_success_us, state.last_error_us, state.last_error
            running = state.running
            row = rows.get(name)
            if name in self.specs and row is not None:
                running = running or row.lease_until > now
                if row.last_success_at is not None and (success or 0) < row.last_success_at:
                    success = row.last_success_at
                if row.last_error_at is not None and (error_at or 0) < row.last_error_at:
                    error_at, error = row.last_error_at, row.last_error
            out[name] = {
                "running": running,
                "running_here": state.running,
                "last_success_at": None if success is None else clock.format_us(success),
                "last_error_at": None if error_at is None else clock.format_us(error_at),
                "last_error": error,
            }
        return out
