"""A client killed at a random moment (SIGKILL) loses nothing it was told and half-applies nothing.

A worker process (tests/integration/workers/streamer.py) streams batches of linked chains into a
real database and acknowledges each batch on a line of a file once post_transfers returns. The
test kills it at a random moment, KILLS_PER_BACKEND times, restarting it on the same database
with the batch that was in flight (an idempotent retry), and after every kill checks that:

- every acknowledged created/exists transfer is stored, and every acknowledged refusal is not;
- no linked chain is half-applied, in any batch sent so far, the one in flight included;
- nothing is stored that no batch contained;
- every account's balances are what its stored transfers add up to;
- the retried in-flight batch reports `exists` for exactly what the killed worker had stored;
- ledger.verify() is ok (balance sums, entry chains, versions, pending totals).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.ledger.model import AccountFlag, Action, Balances, Direction, NewTransfer
from strongroom.ledger.service import LedgerService
from tests.integration.workers.streamer import chains, plan_batch

REPO_ROOT = Path(__file__).resolve().parents[2]
KILLS_PER_BACKEND = 3
RUN_S_MIN = 0.3
RUN_S_MAX = 1.5
CUSTOMERS_COUNT = 6
FUNDING_AMOUNT = 3_000  # modest next to the worker's amounts (1..400): chains do fail
FIRST_ACK_WAIT_S_MAX = 60.0
RECOVERY_RUN_WAIT_S_MAX = 120.0
BACKEND_GONE_WAIT_S_MAX = 30.0
POLL_S = 0.01
WORKER_APPLICATION_NAME = "strongroom-crash-worker"
OK_RESULTS = frozenset({"created", "exists"})

pytestmark = pytest.mark.slow


@dataclass
class Run:
    """What the test knows about one database: its accounts and every acknowledgement."""

    url: str
    engine: Engine
    service: LedgerService
    ledger_id: str
    funding_account: str
    accounts: list[str]
    seed: int
    tmp_path: Path
    acked: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    funding_ids: set[str] = field(default_factory=set)

    @property
    def in_flight(self) -> int:
        """The batch after the last acknowledged one: sent, perhaps stored, never acknowledged."""
        return max(self.acked, default=-1) + 1

    def context(self) -> str:
        return f"seed={self.seed} url={self.url}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def crash_db_url(request: pytest.FixtureRequest) -> str:
    """The real file on SQLite (WAL, synchronous=FULL), a fresh database on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


def _set_up(url: str, tmp_path: Path) -> Run:
    engine = create_engine(url, pool_size=2)
    migrate.upgrade(engine)
    service = LedgerService(engine)
    ledger = service.create_ledger("crash safety")
    funding = service.create_account(ledger.id, "EUR", Direction.DEBIT, name="funding")
    customers = [
        service.create_account(
            ledger.id,
            "EUR",
            Direction.CREDIT,
            flags=AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS,
            name=f"customer {i}",
        )
        for i in range(CUSTOMERS_COUNT)
    ]
    funding_batch = [
        NewTransfer(f"fund-{i}", ledger.id, funding.id, c.id, FUNDING_AMOUNT)
        for i, c in enumerate(customers)
    ]
    outcomes = service.post_transfers(funding_batch)
    assert [o.result.value for o in outcomes] == ["created"] * CUSTOMERS_COUNT
    return Run(
        url=url,
        engine=engine,
        service=service,
        ledger_id=ledger.id,
        funding_account=funding.id,
        accounts=[c.id for c in customers],
        seed=random.randrange(1_000_000),
        tmp_path=tmp_path,
        funding_ids={t.id for t in funding_batch},
    )


def _worker_url(run: Run) -> str:
    """On PostgreSQL the worker's sessions are named, to wait for them to end after a kill."""
    if run.engine.dialect.name != "postgresql":
        return run.url
    url = sa.make_url(run.url).update_query_dict({"application_name": WORKER_APPLICATION_NAME})
    return url.render_as_string(hide_password=False)


def _start(run: Run, number: int, batches_max: int | None = None) -> subprocess.Popen[bytes]:
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
    ]
    if batches_max is not None:
        command += ["--batches-max", str(batches_max)]
    with _stderr_path(run, number).open("wb") as stderr:
        return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=stderr)


def _acks_path(run: Run, number: int) -> Path:
    return run.tmp_path / f"acks-{number}.jsonl"


def _stderr_path(run: Run, number: int) -> Path:
    return run.tmp_path / f"worker-{number}.stderr"


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
        assert proc.poll() is None, _stderr_path(run, number).read_text(errors="replace")
        assert time.monotonic() < deadline, "the worker acknowledged nothing in time"
        time.sleep(POLL_S)


def _wait_worker_sessions_gone(run: Run) -> None:
    """A killed client's PostgreSQL session ends (committing or rolling back what it had sent)
    a moment after the kill; check the database only once it has."""
    if run.engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + BACKEND_GONE_WAIT_S_MAX
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = :name"
    )
    while True:
        with run.engine.connect() as conn:
            if conn.execute(query, {"name": WORKER_APPLICATION_NAME}).scalar_one() == 0:
                return
        assert time.monotonic() < deadline, "the killed worker's session did not end"
        time.sleep(POLL_S)


@dataclass(frozen=True)
class StoredTransfer:
    """A row of the transfers table, as much of it as the balance check needs."""

    id: str
    action: Action
    debit_account_id: str
    credit_account_id: str
    amount: int
    target_id: str | None
    pending: bool


def _stored_transfers(run: Run) -> dict[str, StoredTransfer]:
    query = sa.text(
        "SELECT id, action, debit_account_id, credit_account_id, amount, legs, target_id, "
        "pending FROM transfers"
    )
    with run.engine.connect() as conn:
        rows = conn.execute(query).all()
    stored = {}
    for tid, action, debit, credit, amount, legs, target_id, pending in rows:
        assert legs is None, tid  # the worker sends no multi-leg transfers
        stored[tid] = StoredTransfer(
            tid, Action(action), debit, credit, int(amount), target_id, bool(pending)
        )
    return stored


def _balances_from_transfers(run: Run, stored: dict[str, StoredTransfer]) -> dict[str, Balances]:
    """Each account's four counters as the stored transfers say they must be."""
    balances = {a: Balances() for a in [run.funding_account, *run.accounts]}
    for r in stored.values():
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


def _check(run: Run) -> set[str]:
    """Every invariant that must hold whenever no worker runs; returns the stored ids."""
    context = run.context()
    transfers = _stored_transfers(run)
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
    # Stored transfers and account balances moved together: neither without the other.
    for account_id, expected in _balances_from_transfers(run, transfers).items():
        assert run.service.get_account(account_id).balances == expected, (context, account_id)
    report = run.service.verify()
    assert report.ok, (context, report.problems)
    assert report.accounts == 1 + CUSTOMERS_COUNT
    return stored


def _in_flight_stored(run: Run, stored: set[str]) -> set[str]:
    batch = plan_batch(run.seed, run.in_flight, run.ledger_id, run.accounts)
    return {t.id for t in batch if t.id in stored}


def _check_retry(run: Run, retried: int, expected_exists: set[str]) -> None:
    """The first batch a restarted worker sends is the one in flight at the kill: `exists`
    for exactly what had been stored of it, never `created` for those."""
    outcomes = run.acked[retried]
    exists = {tid for tid, result in outcomes if result == "exists"}
    assert exists == expected_exists, (run.context(), retried)


def test_killed_worker_loses_no_acknowledged_transfer_and_half_applies_no_chain(
    crash_db_url: str, tmp_path: Path
) -> None:
    run = _set_up(crash_db_url, tmp_path)
    rng = random.Random(run.seed)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        expected_exists: set[str] = set()
        for number in range(KILLS_PER_BACKEND):
            retried = run.in_flight
            proc = _start(run, number)
            procs.append(proc)
            _wait_first_ack(run, proc, number)
            time.sleep(rng.uniform(RUN_S_MIN, RUN_S_MAX))
            assert proc.poll() is None, _stderr_path(run, number).read_text(errors="replace")
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait() == -signal.SIGKILL, _stderr_path(run, number).read_text(
                errors="replace"
            )
            _wait_worker_sessions_gone(run)
            acks = _read_acks(_acks_path(run, number))
            assert min(acks) == retried, run.context()
            run.acked.update(acks)
            if number > 0:
                _check_retry(run, retried, expected_exists)
            stored = _check(run)
            expected_exists = _in_flight_stored(run, stored)

        # Recovery: a last worker retries the batch in flight at the last kill and stops.
        retried = run.in_flight
        proc = _start(run, KILLS_PER_BACKEND, batches_max=1)
        procs.append(proc)
        assert proc.wait(timeout=RECOVERY_RUN_WAIT_S_MAX) == 0, _stderr_path(
            run, KILLS_PER_BACKEND
        ).read_text(errors="replace")
        acks = _read_acks(_acks_path(run, KILLS_PER_BACKEND))
        assert list(acks) == [retried], run.context()
        run.acked.update(acks)
        _check_retry(run, retried, expected_exists)
        _check(run)
        # The mix exercised both sides: chains stored and chains refused.
        results = {result for outcomes in run.acked.values() for _, result in outcomes}
        assert "created" in results, run.context()
        assert "linked_event_failed" in results, run.context()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        run.engine.dispose()
