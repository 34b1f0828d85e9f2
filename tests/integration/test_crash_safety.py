"""The process that writes the database killed at random moments (SIGKILL) loses nothing that was
acknowledged, half-applies nothing, and leaves every transfer with its whole trail.

A worker process (tests/integration/workers/streamer.py) runs the ledger as `serve` does
(runtime.build_ledger: the outbox and the audit log on), streams batches of linked chains into a
real database, publishes an audit checkpoint every few batches, and acknowledges each batch on a
line of a file once post_transfers returns. The test kills the process that writes the database
KILLS_PER_BACKEND times, and restarts the worker on the same database with the batch that was in
flight (an idempotent retry):

- SQLite: the worker itself (SQLite is a library in the worker's process).
- PostgreSQL: the worker's server process (backend) and then the worker. A backend killed with
  SIGKILL makes the postmaster end every session and replay its WAL (crash recovery), so this
  runs on a private embedded server (tests/support/postgres.py), never on a shared one.

Each kill is preceded by SIGSTOP, so the test knows where the kill lands: inside a write
transaction (SQLite: the worker's statement trace; PostgreSQL: the backend holds a transaction
id, pg_stat_activity.backend_xid) or not. Every other kill is aimed at a write transaction
(stop, look, let go and stop again until it is inside one); the test checks that at least
MID_TRANSACTION_KILLS_MIN kills landed mid-transaction.

After every kill: no linked chain of the batch in flight is half-applied, and the restarted
worker's retry of it reports `exists` for exactly what had been stored. At the end:

- every acknowledged created/exists transfer is stored, and every acknowledged refusal is not;
- nothing is stored that no batch contained; no linked chain of any batch is half-applied;
- every stored transfer has its two entries, its event (outbox) and its audit leaf, and no
  entry, event or leaf names a transfer that is not stored;
- every account's balances are what its stored transfers add up to;
- the ledger's verify and the audit log's verify (`strongroom audit verify`) are ok.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.audit.service import AuditLog
from strongroom.core.errors import NotFound
from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.events.service import EventService
from strongroom.ledger.model import (
    AccountFlag,
    Action,
    Balances,
    Direction,
    NewTransfer,
    TransferRecord,
)
from strongroom.ledger.service import LedgerService
from strongroom.runtime import build_ledger
from strongroom.settings import Settings
from tests.integration.workers.streamer import State, chains, plan_batch, read_state
from tests.support import flags
from tests.support import postgres as pg

REPO_ROOT = Path(__file__).resolve().parents[2]
KILLS_PER_BACKEND = 20
MID_TRANSACTION_KILLS_MIN = KILLS_PER_BACKEND // 4  # half the kills aim at one
AIM_TRIES_MAX = 500
AIM_PAUSE_S_MAX = 0.002
RUN_S_MAX = 0.25
CUSTOMERS_COUNT = 6
FUNDING_AMOUNT = 3_000  # modest next to the worker's amounts (1..400): chains do fail
FIRST_ACK_WAIT_S_MAX = 60.0
RECOVERY_RUN_WAIT_S_MAX = 120.0
DATABASE_BACK_WAIT_S_MAX = 60.0
POLL_S = 0.01
PAGE = 100  # PAGE_SIZE_MAX
LEAVES_PAGE = 1_000
WORKER_APPLICATION_NAME = "strongroom-crash-worker"
OK_RESULTS = frozenset({"created", "exists"})

pytestmark = pytest.mark.slow


class Target(Protocol):
    """How to find and kill the process that writes one backend's database."""

    def worker_args(self, run: Run, number: int) -> list[str]: ...

    def mid_transaction(self, run: Run, number: int) -> bool:
        """With the worker stopped: is a write transaction open and not yet committing?"""
        ...

    def kill(self, run: Run, proc: subprocess.Popen[bytes]) -> None:
        """Kill the database's writer (the worker stays stopped or dies too); return once the
        database takes connections again."""
        ...


@dataclass
class Run:
    """What the test knows about one database: its accounts and every acknowledgement."""

    url: str
    engine: Engine
    ledger: LedgerService
    audit: AuditLog
    ledger_id: str
    funding_account: str
    accounts: list[str]
    seed: int
    tmp_path: Path
    acked: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    funding_ids: set[str] = field(default_factory=set)
    mid_transaction_kills: int = 0

    @property
    def in_flight(self) -> int:
        """The batch after the last acknowledged one: sent, perhaps stored, never acknowledged."""
        return max(self.acked, default=-1) + 1

    def context(self) -> str:
        return f"seed={self.seed} url={self.url}"


# -------------------------------------------------------------------------------- backends


class SqliteTarget:
    """SQLite runs inside the worker: the worker is the writer. Its statement trace says
    where it is (streamer.State)."""

    def worker_args(self, run: Run, number: int) -> list[str]:
        return ["--state", str(self._state_path(run, number))]

    def mid_transaction(self, run: Run, number: int) -> bool:
        return read_state(str(self._state_path(run, number))) is State.WRITING

    def kill(self, run: Run, proc: subprocess.Popen[bytes]) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL

    @staticmethod
    def _state_path(run: Run, number: int) -> Path:
        return run.tmp_path / f"state-{number}"


class PostgresTarget:
    """The worker's backend is the writer. Killing it crashes the whole (private) server,
    which recovers from its WAL before it takes connections again."""

    def __init__(self, server: pg.PrivateServer) -> None:
        self.server = server
        self.backend_pid: int | None = None
        self.kills = 0

    def worker_args(self, run: Run, number: int) -> list[str]:
        return []

    def mid_transaction(self, run: Run, number: int) -> bool:
        query = sa.text(
            "SELECT pid, backend_xid IS NOT NULL AND NOT (state = 'active' AND query ILIKE "
            "'COMMIT%') FROM pg_stat_activity WHERE application_name = :name"
        )
        with run.engine.connect() as conn:
            rows = conn.execute(query, {"name": WORKER_APPLICATION_NAME}).all()
        assert len(rows) == 1, f"{run.context()}: the worker's sessions: {rows}\n" + _stderr(
            run, number
        )
        self.backend_pid = int(rows[0][0])
        return bool(rows[0][1])

    def kill(self, run: Run, proc: subprocess.Popen[bytes]) -> None:
        pid = self.backend_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        # The postmaster reaps the backend and only then starts its crash handling; a
        # connection accepted after that is one to the recovered server.
        deadline = time.monotonic() + DATABASE_BACK_WAIT_S_MAX
        while _exists(pid):
            assert time.monotonic() < deadline, "the killed backend was not reaped"
            time.sleep(POLL_S)
        run.engine.dispose()
        while True:
            try:
                with run.engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
                break
            except sa.exc.OperationalError:
                assert time.monotonic() < deadline, "the server did not recover in time"
                time.sleep(POLL_S)
        # The server's own word that the worker's backend died by the kill, and it recovered.
        log = self.server.log()
        # ("server process" before PostgreSQL 18, "client backend" since)
        assert f"(PID {pid}) was terminated by signal 9" in log, log[-2000:]
        assert log.count("all server processes terminated; reinitializing") == self.kills + 1
        self.kills += 1


def _exists(pid: int) -> bool:
    """True until the process is gone and reaped by its parent (a zombie still exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Backend:
    url: str
    target: Target


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The real file on SQLite; a private embedded PostgreSQL server (its processes get
    killed) with fsync on."""
    if request.param == "sqlite":
        yield Backend(f"sqlite:///{tmp_path / 'strongroom.db'}", SqliteTarget())
        return
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(pg.private_server())
        except pg.EmbeddedUnavailable as exc:
            flags.skip_or_fail(f"no private PostgreSQL server: {exc}", flags.REQUIRE_POSTGRES)
        yield Backend(server.url, PostgresTarget(server))


# ----------------------------------------------------------------------------- the worker


def _set_up(url: str, tmp_path: Path) -> Run:
    engine = create_engine(url, pool_size=2)
    migrate.upgrade(engine)
    ledger, audit = build_ledger(engine, Settings(database_url=url))
    created = ledger.create_ledger("crash safety")
    funding = ledger.create_account(created.id, "EUR", Direction.DEBIT, name="funding")
    customers = [
        ledger.create_account(
            created.id,
            "EUR",
            Direction.CREDIT,
            flags=AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS,
            name=f"customer {i}",
        )
        for i in range(CUSTOMERS_COUNT)
    ]
    funding_batch = [
        NewTransfer(f"fund-{i}", created.id, funding.id, c.id, FUNDING_AMOUNT)
        for i, c in enumerate(customers)
    ]
    outcomes = ledger.post_transfers(funding_batch)
    assert [o.result.value for o in outcomes] == ["created"] * CUSTOMERS_COUNT
    return Run(
        url=url,
        engine=engine,
        ledger=ledger,
        audit=audit,
        ledger_id=created.id,
        funding_account=funding.id,
        accounts=[c.id for c in customers],
        seed=random.randrange(1_000_000),
        tmp_path=tmp_path,
        funding_ids={t.id for t in funding_batch},
    )


def _worker_url(run: Run) -> str:
    """On PostgreSQL the worker's session is named, to find its backend."""
    if run.engine.dialect.name != "postgresql":
        return run.url
    url = sa.make_url(run.url).update_query_dict({"application_name": WORKER_APPLICATION_NAME})
    return url.render_as_string(hide_password=False)


def _start(
    run: Run, target: Target, number: int, batches_max: int | None = None
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-W",
        "error",
        "-m",
        "tests.integration.workers.streamer",
        "--url",
        _worker_url(run),
        "--ledger",
        run.ledger_id,
        "--accounts",
        ",".join(run.accounts),
        "--seed",
        str(run.seed),
        "--start-batch",
        str(run.in_flight),
        "--acks",
        str(_acks_path(run, number)),
        *target.worker_args(run, number),
    ]
    if batches_max is not None:
        command += ["--batches-max", str(batches_max)]
    with _stderr_path(run, number).open("wb") as stderr:
        return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=stderr)


def _acks_path(run: Run, number: int) -> Path:
    return run.tmp_path / f"acks-{number}.jsonl"


def _stderr_path(run: Run, number: int) -> Path:
    return run.tmp_path / f"worker-{number}.stderr"


def _stderr(run: Run, number: int) -> str:
    return _stderr_path(run, number).read_text(errors="replace")


def _read_acks(path: Path) -> dict[int, list[tuple[str, str]]]:
    """Complete lines only: a line without its newline was cut by the kill."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    acks: dict[int, list[tuple[str, str]]] = {}
    for line in text.split("\n")[:-1]:
        record = json.loads(line)
        acks[record["batch"]] = [(tid, result) for tid, result in record["outcomes"]]
    return acks


def _wait_first_ack(run: Run, proc: subprocess.Popen[bytes], number: int) -> None:
    deadline = time.monotonic() + FIRST_ACK_WAIT_S_MAX
    path = _acks_path(run, number)
    while not _read_acks(path):
        assert proc.poll() is None, _stderr(run, number)
        assert time.monotonic() < deadline, "the worker acknowledged nothing in time"
        time.sleep(POLL_S)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGSTOP, and wait until every thread of the worker has stopped."""
    os.kill(proc.pid, signal.SIGSTOP)
    _, status = os.waitpid(proc.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), status


def _stop_where(
    run: Run, target: Target, proc: subprocess.Popen[bytes], number: int, *, aim: bool
) -> bool:
    """Stop the worker; when aiming, let it go on until it is stopped inside a write
    transaction (or AIM_TRIES_MAX tries). Whether it is inside one."""
    rng = random.Random(run.seed + number)
    for attempt in range(AIM_TRIES_MAX):
        _stop(proc)
        inside = target.mid_transaction(run, number)
        if inside or not aim or attempt == AIM_TRIES_MAX - 1:
            return inside
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(rng.uniform(0, AIM_PAUSE_S_MAX))
    raise AssertionError("unreachable")


# ------------------------------------------------------------------------------ the checks


def _stored_ids(run: Run, ids: list[str]) -> set[str]:
    stored = set()
    for tid in ids:
        try:
            run.ledger.get_transfer(tid)
        except NotFound:
            continue
        stored.add(tid)
    return stored


def _check_in_flight(run: Run) -> set[str]:
    """After a kill: the batch in flight is stored chain by chain or not at all. Its stored ids."""
    batch = plan_batch(run.seed, run.in_flight, run.ledger_id, run.accounts)
    stored = _stored_ids(run, [t.id for t in batch])
    for chain in chains(batch):
        present = [tid in stored for tid in chain]
        assert all(present) or not any(present), (
            f"{run.context()}: batch {run.in_flight} chain {chain} half-applied: {present}"
        )
    return stored


def _check_retry(run: Run, retried: int, expected_exists: set[str]) -> None:
    """The first batch a restarted worker sends is the one in flight at the kill: `exists`
    for exactly what had been stored of it, never `created` for those."""
    outcomes = run.acked[retried]
    exists = {tid for tid, result in outcomes if result == "exists"}
    assert exists == expected_exists, (run.context(), retried)


def _all_transfers(run: Run) -> dict[str, TransferRecord]:
    records: dict[str, TransferRecord] = {}
    cursor = None
    while True:
        page = run.ledger.list_transfers(ledger_id=run.ledger_id, starting_after=cursor, limit=PAGE)
        records.update((r.id, r) for r in page.data)
        if not page.has_more:
            return records
        cursor = page.data[-1].id


def _entry_counts(run: Run) -> Counter[str]:
    counts: Counter[str] = Counter()
    for account_id in [run.funding_account, *run.accounts]:
        version = None
        while True:
            page = run.ledger.list_entries(account_id, starting_after=version, limit=PAGE)
            counts.update(e.transfer_id for e in page.data)
            if not page.has_more:
                break
            version = page.data[-1].version
    return counts


def _event_transfer_ids(run: Run) -> Counter[str]:
    events = EventService(run.engine)
    counts: Counter[str] = Counter()
    cursor = None
    while True:
        page = events.list_events(ledger_id=run.ledger_id, starting_after=cursor, limit=PAGE)
        counts.update(json.loads(e.data)["id"] for e in page.data if e.type.startswith("transfer"))
        if not page.has_more:
            return counts
        cursor = page.data[-1].id


def _leaf_transfer_ids(run: Run) -> Counter[str]:
    counts: Counter[str] = Counter()
    (log_id,) = set(run.ledger.ledger_tenants([run.ledger_id]).values())
    start = 0
    while True:
        leaves, size = run.audit.leaves(log_id, start, LEAVES_PAGE)
        for leaf in leaves:
            content = leaf["content"]
            assert content is not None, leaf
            if "transfer" in content:
                counts[content["transfer"]["id"]] += 1
        start += len(leaves)
        if start >= size:
            return counts


def _balances_from_transfers(run: Run, stored: dict[str, TransferRecord]) -> dict[str, Balances]:
    """Each account's four counters as the stored transfers say they must be."""
    balances = {a: Balances() for a in [run.funding_account, *run.accounts]}
    for r in stored.values():
        assert r.legs is None, r.id  # the worker sends no multi-leg transfers
        assert r.debit_account_id is not None, r
        assert r.credit_account_id is not None, r
        debit, credit = balances[r.debit_account_id], balances[r.credit_account_id]
        if r.action is Action.TRANSFER and r.pending:
            debit.debits_pending += r.amount
            credit.credits_pending += r.amount
        elif r.action is Action.TRANSFER:
            debit.debits_posted += r.amount
            credit.credits_posted += r.amount
        else:
            assert r.action in (Action.POST, Action.VOID), r
            assert r.target_id is not None, r
            target = stored[r.target_id]
            debit.debits_pending -= target.amount
            credit.credits_pending -= target.amount
            if r.action is Action.POST:
                debit.debits_posted += r.amount
                credit.credits_posted += r.amount
    return balances


def _check_all(run: Run) -> None:
    """Every invariant that must hold once no worker runs."""
    context = run.context()
    transfers = _all_transfers(run)
    stored = set(transfers)
    for outcomes in run.acked.values():
        for tid, result in outcomes:
            if result in OK_RESULTS:
                assert tid in stored, f"{context}: acknowledged {result} {tid} is missing"
            else:
                assert tid not in stored, f"{context}: acknowledged {result} {tid} is stored"
    planned: set[str] = set(run.funding_ids)
    for batch_no in range(run.in_flight + 1):
        batch = plan_batch(run.seed, batch_no, run.ledger_id, run.accounts)
        planned.update(t.id for t in batch)
        for chain in chains(batch):
            present = [tid in stored for tid in chain]
            assert all(present) or not any(present), (
                f"{context}: batch {batch_no} chain {chain} half-applied: {present}"
            )
    assert stored <= planned, f"{context}: stored but never sent: {sorted(stored - planned)[:5]}"
    # Each stored transfer has its whole trail, written in its transaction; nothing else does.
    trails = {
        "entries": (_entry_counts(run), 2),
        "events": (_event_transfer_ids(run), 1),
        "audit leaves": (_leaf_transfer_ids(run), 1),
    }
    for what, (counts, expected) in trails.items():
        wrong = {tid: counts[tid] for tid in stored if counts[tid] != expected}
        assert not wrong, f"{context}: transfers without their {what}: {list(wrong.items())[:5]}"
        extra = set(counts) - stored
        assert not extra, f"{context}: {what} of transfers not stored: {sorted(extra)[:5]}"
    # Stored transfers and account balances moved together: neither without the other.
    for account_id, expected_balances in _balances_from_transfers(run, transfers).items():
        assert run.ledger.get_account(account_id).balances == expected_balances, (
            context,
            account_id,
        )
    report = run.ledger.verify()
    assert report.ok, (context, report.problems)
    assert report.accounts == 1 + CUSTOMERS_COUNT
    audit_report = run.audit.verify()
    assert audit_report.ok, (context, audit_report.problems)
    assert audit_report.logs == 1, context


# -------------------------------------------------------------------------------- the test


def test_killed_writer_loses_no_acknowledged_transfer_and_no_trail(
    backend: Backend, tmp_path: Path
) -> None:
    run = _set_up(backend.url, tmp_path)
    target = backend.target
    rng = random.Random(run.seed)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        expected_exists: set[str] = set()
        for number in range(KILLS_PER_BACKEND):
            retried = run.in_flight
            proc = _start(run, target, number)
            procs.append(proc)
            _wait_first_ack(run, proc, number)
            time.sleep(rng.uniform(0, RUN_S_MAX))
            assert proc.poll() is None, _stderr(run, number)
            if _stop_where(run, target, proc, number, aim=number % 2 == 0):
                run.mid_transaction_kills += 1
            target.kill(run, proc)
            acks = _read_acks(_acks_path(run, number))
            assert min(acks) == retried, run.context()
            run.acked.update(acks)
            if number > 0:
                _check_retry(run, retried, expected_exists)
            expected_exists = _check_in_flight(run)

        # Recovery: a last worker retries the batch in flight at the last kill and stops.
        retried = run.in_flight
        proc = _start(run, target, KILLS_PER_BACKEND, batches_max=1)
        procs.append(proc)
        assert proc.wait(timeout=RECOVERY_RUN_WAIT_S_MAX) == 0, _stderr(run, KILLS_PER_BACKEND)
        acks = _read_acks(_acks_path(run, KILLS_PER_BACKEND))
        assert list(acks) == [retried], run.context()
        run.acked.update(acks)
        _check_retry(run, retried, expected_exists)
        _check_all(run)
        assert run.mid_transaction_kills >= MID_TRANSACTION_KILLS_MIN, (
            f"{run.context()}: only {run.mid_transaction_kills} of {KILLS_PER_BACKEND} kills "
            "landed inside a write transaction"
        )
        # The mix exercised both sides: chains stored and chains refused.
        results = {result for outcomes in run.acked.values() for _, result in outcomes}
        assert "created" in results, run.context()
        assert "linked_event_failed" in results, run.context()
        print(  # shown with -s: what the kills hit
            f"{run.engine.dialect.name}: {KILLS_PER_BACKEND} kills, "
            f"{run.mid_transaction_kills} inside a write transaction, "
            f"{len(run.acked)} batches acknowledged"
        )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        run.engine.dispose()
