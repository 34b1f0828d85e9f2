"""Concurrent clients on one PostgreSQL database: no lost update, no overdraft, no deadlock.

WORKERS_COUNT OS processes (tests/integration/workers/poster.py), each with its own engine and
LedgerService, post a seeded mix of single transfers, batches with linked chains and pending
transfers with their post/void between a few hot accounts that may not be overdrawn. Every
acknowledged outcome is logged; afterwards the database must agree with the logs exactly.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.ledger.model import AccountFlag, Balances, Direction, NewTransfer, Status
from strongroom.ledger.service import LedgerService
from strongroom.runtime import build_ledger
from strongroom.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKERS_COUNT = 4
HOT_ACCOUNTS_COUNT = 4
FUNDING_AMOUNT = 2_000  # modest next to the worker's amounts (1..600): refusals happen
READY_WAIT_S_MAX = 60.0
WORKER_EXIT_WAIT_S_MAX = 120.0
POLL_S = 0.01
VERIFY_RUNS_MAX = 5_000  # verify() calls while the workers post; they stop it sooner

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@dataclass
class Setup:
    url: str
    ledger_id: str
    funding_id: str
    hot_ids: list[str]


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url, pool_size=2)
    migrate.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _set_up(url: str, service: LedgerService) -> Setup:
    ledger = service.create_ledger("concurrency")
    funding = service.create_account(ledger.id, "USD", Direction.DEBIT, name="funding")
    hot = [
        service.create_account(
            ledger.id,
            "USD",
            Direction.CREDIT,
            flags=AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS,
            name=f"hot {i}",
        )
        for i in range(HOT_ACCOUNTS_COUNT)
    ]
    outcomes = service.post_transfers(
        [
            NewTransfer(f"fund-{i}", ledger.id, funding.id, account.id, FUNDING_AMOUNT)
            for i, account in enumerate(hot)
        ]
    )
    assert [o.result.value for o in outcomes] == ["created"] * HOT_ACCOUNTS_COUNT
    return Setup(url, ledger.id, funding.id, [a.id for a in hot])


def _start_workers(setup: Setup, tmp_path: Path, seed: int) -> list[subprocess.Popen[bytes]]:
    go = tmp_path / "go"
    procs = []
    for w in range(WORKERS_COUNT):
        log = tmp_path / f"worker-{w}.jsonl"
        stderr = (tmp_path / f"worker-{w}.stderr").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-W",
                    "error",
                    "-m",
                    "tests.integration.workers.poster",
                    "--url",
                    setup.url,
                    "--ledger",
                    setup.ledger_id,
                    "--accounts",
                    ",".join(setup.hot_ids),
                    "--worker",
                    str(w),
                    "--workers",
                    str(WORKERS_COUNT),
                    "--seed",
                    str(seed * 100 + w),
                    "--log",
                    str(log),
                    "--go",
                    str(go),
                ],
                cwd=REPO_ROOT,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        )
        stderr.close()  # the child has its own copy
    return procs


def _wait_ready_then_go(procs: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    """All workers connected before any posts, so that they really overlap."""
    deadline = time.monotonic() + READY_WAIT_S_MAX
    ready = [tmp_path / f"worker-{w}.jsonl.ready" for w in range(WORKERS_COUNT)]
    while not all(r.exists() for r in ready):
        exited = [p.args for p in procs if p.poll() is not None]
        assert not exited, f"a worker exited before it was ready: {_stderrs(tmp_path)}"
        assert time.monotonic() < deadline, "workers not ready in time"
        time.sleep(POLL_S)
    (tmp_path / "go").touch()


def _stderrs(tmp_path: Path) -> str:
    return "\n".join(
        f"worker {w}: {(tmp_path / f'worker-{w}.stderr').read_text(errors='replace')}"
        for w in range(WORKERS_COUNT)
    )


def _read_logs(tmp_path: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for w in range(WORKERS_COUNT):
        text = (tmp_path / f"worker-{w}.jsonl").read_text(encoding="utf-8")
        assert text.endswith("\n"), f"worker {w} left an unfinished log line"
        records.extend(json.loads(line) for line in text.splitlines())
    return records


def _expected_balances(setup: Setup, created: dict[str, dict[str, Any]]) -> dict[str, Balances]:
    """Replay every acknowledged CREATED transfer on four counters per account."""
    balances = {a: Balances() for a in [setup.funding_id, *setup.hot_ids]}
    for a in setup.hot_ids:
        balances[setup.funding_id].debits_posted += FUNDING_AMOUNT
        balances[a].credits_posted += FUNDING_AMOUNT
    for r in created.values():
        if r["action"] == "transfer":
            debit, credit = balances[r["debit"]], balances[r["credit"]]
            if r["pending"]:
                debit.debits_pending += r["amount"]
                credit.credits_pending += r["amount"]
            else:
                debit.debits_posted += r["amount"]
                credit.credits_posted += r["amount"]
            continue
        target = created[r["target"]]
        assert target["pending"], r
        debit, credit = balances[target["debit"]], balances[target["credit"]]
        debit.debits_pending -= target["amount"]
        credit.credits_pending -= target["amount"]
        if r["action"] == "post":
            posted = r["amount"] or target["amount"]
            assert posted <= target["amount"], r
            debit.debits_posted += posted
            credit.credits_posted += posted
        else:
            assert r["action"] == "void", r
    return balances


def test_concurrent_workers_lose_no_update_and_overdraw_nothing(
    pg_engine: Engine, postgres_url: str, tmp_path: Path
) -> None:
    service, audit = build_ledger(pg_engine, Settings(database_url=postgres_url))
    setup = _set_up(postgres_url, service)
    seed = random.randrange(1_000_000)
    procs = _start_workers(setup, tmp_path, seed)
    try:
        _wait_ready_then_go(procs, tmp_path)
        for p in procs:
            assert p.wait(timeout=WORKER_EXIT_WAIT_S_MAX) == 0, _stderrs(tmp_path)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    context = f"seed={seed}"
    records = _read_logs(tmp_path)
    # Deadlocks and serialization failures are retried inside the service: no client sees one.
    exceptions = [r for r in records if "exception" in r]
    assert not exceptions, (
        f"{context}: {len(exceptions)} exceptions, the first in {exceptions[0]['what']}:\n"
        f"{exceptions[0].get('traceback', exceptions[0]['exception'])[-3000:]}"
    )
    dones = [r for r in records if "done" in r]
    assert len(dones) == WORKERS_COUNT, context
    # A worker stops at its time bound if it must; what it did by then is checked all the same.
    assert all(d["started"] and d["done"] > 0 for d in dones), (context, dones)

    outcomes = [r for r in records if "id" in r]
    ids = [r["id"] for r in outcomes]
    assert len(ids) == len(set(ids)), f"{context}: an id was posted twice"
    # Every id is new, so `exists` would mean a batch applied twice behind the client's back.
    results = {r["result"] for r in outcomes}
    assert "exists" not in results, context
    created = {r["id"]: r for r in outcomes if r["result"] == "created"}
    refused = {r["id"] for r in outcomes if r["result"] != "created"}
    # The mix must have exercised both sides: successes and refusals, chains failing.
    assert created, context
    assert refused, context

    # A reservation is resolved at most once, whoever raced for it.
    resolutions: dict[str, list[str]] = {}
    for r in created.values():
        if r["target"] is not None:
            resolutions.setdefault(r["target"], []).append(r["id"])
    assert all(len(v) == 1 for v in resolutions.values()), (context, resolutions)

    with pg_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, status FROM transfers")).all()
    status_by_id = {row[0]: Status(row[1]) for row in rows}
    funding_ids = {f"fund-{i}" for i in range(HOT_ACCOUNTS_COUNT)}
    assert set(status_by_id) == set(created) | funding_ids, context
    assert not refused & set(status_by_id), context
    for tid, r in created.items():
        if r["pending"]:
            resolved_by = resolutions.get(tid)
            expected = (
                Status.PENDING
                if resolved_by is None
                else Status.POSTED
                if created[resolved_by[0]]["action"] == "post"
                else Status.VOIDED
            )
            assert status_by_id[tid] is expected, (context, tid)

    expected_balances = _expected_balances(setup, created)
    for account_id, expected_balance in expected_balances.items():
        account = service.get_account(account_id)
        assert account.balances == expected_balance, (context, account_id)
        if account_id in setup.hot_ids:
            b = account.balances
            assert b.debits_posted + b.debits_pending <= b.credits_posted, (context, account_id)
            assert account.balance_view()["available"] >= 0, (context, account_id)

    report = service.verify()
    assert report.ok, (context, report.problems)
    assert report.accounts == 1 + HOT_ACCOUNTS_COUNT
    # Four processes appended to one log: gap-free, in commit order, every transfer's leaf
    # there and matching its row, and a checkpoint over all of it verifies.
    audit.publish()
    audit_report = audit.verify()
    assert audit_report.ok, (context, audit_report.problems)
    assert audit_report.transfers == len(status_by_id), context


def test_verify_sees_one_consistent_snapshot_while_workers_post(
    pg_engine: Engine, postgres_url: str, tmp_path: Path
) -> None:
    """verify() says it checks the ledger in one read transaction: run on a live ledger, it
    must never report a problem that a quiet ledger would not have."""
    service = LedgerService(pg_engine)
    setup = _set_up(postgres_url, service)
    seed = random.randrange(1_000_000)
    procs = _start_workers(setup, tmp_path, seed)
    problems: list[list[str]] = []
    runs = 0
    try:
        _wait_ready_then_go(procs, tmp_path)
        while runs < VERIFY_RUNS_MAX and any(p.poll() is None for p in procs):
            report = service.verify()
            runs += 1
            if not report.ok:
                problems.append(report.problems)
        for p in procs:
            assert p.wait(timeout=WORKER_EXIT_WAIT_S_MAX) == 0, _stderrs(tmp_path)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert not [r for r in _read_logs(tmp_path) if "exception" in r], f"seed={seed}"
    assert service.verify().ok, f"seed={seed}"
    assert not problems, (
        f"seed={seed}: {len(problems)} of {runs} verify() runs during the load reported "
        f"problems, the first: {problems[0]}"
    )
