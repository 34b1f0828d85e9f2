"""`strongroom bench ledger`: ledger throughput and latency on durable SQLite and PostgreSQL.

Scenarios: bulk (batches of 8,190), single (one transfer per commit), group_commit (64
concurrent submitters through the group-commit coalescer), hot_account (90% of transfers touch
one account), two_phase (pending, then post). Each is measured against the storage limit in
the same run: inserting the same rows (transfers and their entries) with no ledger logic, in
the same commit sizes, into a fresh database of the same schema.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.benchmarks.common import (
    Row,
    fsync_rate,
    median_ms,
    migrated_engine,
    p99,
    postgres_admin_ok,
    postgres_database,
    postgres_settings,
    sqlite_database,
)
from strongroom.core import ids
from strongroom.core.limits import BATCH_TRANSFERS_MAX
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.coalescer import GroupCommitter
from strongroom.ledger.model import Action, Direction, NewTransfer
from strongroom.ledger.service import AccountSpec, LedgerService
from strongroom.ledger.store import ENTRY_COLS, TRANSFER_COLS

ACCOUNTS = 10_000
SUBMITTERS = 64


@dataclass(frozen=True)
class Plan:
    """How much work each scenario does."""

    bulk_batches: int
    single_transfers: int
    group_commit_transfers: int
    two_phase_batches: int

    @classmethod
    def full(cls) -> Plan:
        return cls(
            bulk_batches=24,
            single_transfers=3_000,
            group_commit_transfers=60_000,
            two_phase_batches=8,
        )

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            bulk_batches=5, single_transfers=600, group_commit_transfers=8_000, two_phase_batches=2
        )


Progress = Callable[[str], None]


class Fixture:
    """A migrated database with one ledger and ACCOUNTS accounts."""

    def __init__(self, url: str) -> None:
        self.engine = migrated_engine(url)
        self.service = LedgerService(self.engine)
        self.ledger_id = self.service.create_ledger("bench").id
        self.accounts: list[str] = []
        for start in range(0, ACCOUNTS, BATCH_TRANSFERS_MAX):
            count = min(BATCH_TRANSFERS_MAX, ACCOUNTS - start)
            specs = [AccountSpec(self.ledger_id, "USD", Direction.CREDIT) for _ in range(count)]
            self.accounts.extend(a.id for a in self.service.create_accounts(specs))

    def transfers(self, count: int, rng: random.Random, hot: float = 0.0) -> list[NewTransfer]:
        accounts = self.accounts
        hot_id = accounts[0]
        out = []
        new = ids.new_ids("tr", count)
        for i in range(count):
            debit, credit = rng.sample(accounts, 2)
            if hot and rng.random() < hot:
                if rng.random() < 0.5:
                    debit = hot_id if credit != hot_id else debit
                else:
                    credit = hot_id if debit != hot_id else credit
            out.append(NewTransfer(new[i], self.ledger_id, debit, credit, rng.randint(1, 10_000)))
        return out

    def close(self) -> None:
        self.engine.dispose()


def _check(outcomes: Sequence[Any]) -> None:
    bad = [o for o in outcomes if not o.result.ok]
    assert not bad, f"benchmark transfers were refused: {bad[:3]}"


def run_bulk(
    fx: Fixture, batches: int, rng: random.Random, hot: float = 0.0
) -> tuple[int, float, list[float]]:
    work = [fx.transfers(BATCH_TRANSFERS_MAX, rng, hot) for _ in range(batches)]
    latencies = []
    start = time.perf_counter()
    for batch in work:
        t0 = time.perf_counter()
        _check(fx.service.post_transfers(batch))
        latencies.append(time.perf_counter() - t0)
    return batches * BATCH_TRANSFERS_MAX, time.perf_counter() - start, latencies


def run_single(fx: Fixture, count: int, rng: random.Random) -> tuple[int, float, list[float]]:
    work = fx.transfers(count, rng)
    latencies = []
    start = time.perf_counter()
    for t in work:
        t0 = time.perf_counter()
        _check(fx.service.post_transfers([t]))
        latencies.append(time.perf_counter() - t0)
    return count, time.perf_counter() - start, latencies


def run_group_commit(
    fx: Fixture, count: int, rng: random.Random
) -> tuple[int, float, list[float], float]:
    work = fx.transfers(count, rng)
    per_submitter = [work[i::SUBMITTERS] for i in range(SUBMITTERS)]
    latencies: list[float] = []
    committer = GroupCommitter(fx.service)

    async def submitter(mine: list[NewTransfer]) -> None:
        for t in mine:
            t0 = time.perf_counter()
            outcome = await committer.submit_async(t)
            latencies.append(time.perf_counter() - t0)
            assert outcome.result.ok, outcome

    async def main() -> None:
        await asyncio.gather(*(submitter(m) for m in per_submitter))

    start = time.perf_counter()
    try:
        asyncio.run(main())
    finally:
        committer.close()
    elapsed = time.perf_counter() - start
    mean_batch = committer.stats.transfers / max(1, committer.stats.batches)
    return count, elapsed, latencies, mean_batch


def run_two_phase(fx: Fixture, batches: int, rng: random.Random) -> tuple[int, float, list[float]]:
    """Each round reserves a batch (pending) and then posts it; a transfer counts once,
    when its post commits."""
    rounds = []
    for _ in range(batches):
        pending = fx.transfers(BATCH_TRANSFERS_MAX, rng)
        for t in pending:
            t.pending = True
        posts = [
            NewTransfer(pid, fx.ledger_id, action=Action.POST, target_id=t.id)
            for pid, t in zip(ids.new_ids("tr", len(pending)), pending, strict=True)
        ]
        rounds.append((pending, posts))
    latencies = []
    start = time.perf_counter()
    for pending, posts in rounds:
        t0 = time.perf_counter()
        _check(fx.service.post_transfers(pending))
        _check(fx.service.post_transfers(posts))
        latencies.append(time.perf_counter() - t0)
    return batches * BATCH_TRANSFERS_MAX, time.perf_counter() - start, latencies


# -- the storage limit ---------------------------------------------------------------------


def raw_rows(
    count: int, ledger_id: str, accounts: list[str], rng: random.Random, seq0: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows of the same shape the ledger writes: one transfer row and two entry rows each."""
    transfers = []
    entries = []
    now = time.time_ns() // 1000
    tids = ids.new_ids("tr", count)
    for i in range(count):
        debit, credit = rng.sample(accounts, 2)
        seq = seq0 + i
        amount = rng.randint(1, 10_000)
        transfers.append(
            (
                seq,
                tids[i],
                ledger_id,
                0,
                0,
                debit,
                credit,
                amount,
                None,
                None,
                False,
                0,
                None,
                None,
                now,
            )
        )
        entries.append((2 * seq, debit, seq, None, tids[i], 0, amount, 0, amount, 0, 0, 0, now))
        entries.append(
            (2 * seq + 1, credit, seq, None, tids[i], 1, amount, 0, 0, amount, 0, 0, now)
        )
    return transfers, entries


def insert_raw(
    uow: UnitOfWork, transfers: list[tuple[Any, ...]], entries: list[tuple[Any, ...]]
) -> None:
    cur = uow.cursor()
    if uow.sqlite:
        cur.executemany(
            f"INSERT INTO transfers ({TRANSFER_COLS}) VALUES ({','.join('?' * 15)})", transfers
        )
        cur.executemany(
            f"INSERT INTO entries ({ENTRY_COLS}) VALUES ({','.join('?' * 13)})", entries
        )
    else:
        with cur.copy(f"COPY transfers ({TRANSFER_COLS}) FROM STDIN") as copy:
            for row in transfers:
                copy.write_row(row)
        with cur.copy(f"COPY entries ({ENTRY_COLS}) FROM STDIN") as copy:
            for row in entries:
                copy.write_row(row)


def reference_rate(
    url: str, total: int, commit_size: int, rng: random.Random, rows_per_transfer: int = 1
) -> float:
    """Transfers per second when only inserting their rows, `commit_size` transfers per commit."""
    engine = migrated_engine(url)
    accounts = [f"acc_{i:026d}" for i in range(ACCOUNTS)]
    commits = max(1, total // commit_size)
    work = [
        raw_rows(
            commit_size * rows_per_transfer,
            "ldg_bench",
            accounts,
            rng,
            1 + k * commit_size * rows_per_transfer,
        )
        for k in range(commits)
    ]
    start = time.perf_counter()
    for transfers, entries in work:
        with UnitOfWork(engine) as uow:
            insert_raw(uow, transfers, entries)
            uow.commit()
    elapsed = time.perf_counter() - start
    engine.dispose()
    return commits * commit_size / elapsed


# -- driver --------------------------------------------------------------------------------


def run_backend(
    backend: str, make_db: Callable[[str], Any], plan: Plan, progress: Progress, seed: int
) -> list[Row]:
    rng = random.Random(seed)
    rows: list[Row] = []

    def measure(
        scenario: str,
        run: Callable[[Fixture], tuple[int, float, list[float], float]],
        commit_size: Callable[[float], int],
        rows_per_transfer: int = 1,
        note: str = "",
    ) -> None:
        progress(f"{backend}: {scenario} ...")
        with make_db(scenario) as url:
            fx = Fixture(url)
            try:
                count, elapsed, latencies, mean_batch = run(fx)
                verified = fx.service.verify()
                assert verified.ok, verified.problems[:5]
            finally:
                fx.close()
        rate = count / elapsed
        size = commit_size(mean_batch)
        with make_db(f"{scenario}_ref") as url:
            reference = reference_rate(
                url, min(count, max(size, count)), size, rng, rows_per_transfer
            )
        row = Row(scenario, backend, rate, p99(latencies), reference, rate / reference, count, note)
        progress(
            f"{backend}: {scenario:<13} {rate:>10,.0f} transfers/s  p99 {row.p99_ms:8.2f} ms  "
            f"(median {median_ms(latencies):.2f} ms)  storage limit {reference:>10,.0f}/s  "
            f"ratio {row.ratio:.2f}"
        )
        rows.append(row)

    def bulk(fx: Fixture) -> tuple[int, float, list[float], float]:
        return (*run_bulk(fx, plan.bulk_batches, rng), float(BATCH_TRANSFERS_MAX))

    def single(fx: Fixture) -> tuple[int, float, list[float], float]:
        return (*run_single(fx, plan.single_transfers, rng), 1.0)

    def group(fx: Fixture) -> tuple[int, float, list[float], float]:
        return run_group_commit(fx, plan.group_commit_transfers, rng)

    def hot(fx: Fixture) -> tuple[int, float, list[float], float]:
        return (*run_bulk(fx, plan.bulk_batches, rng, hot=0.9), float(BATCH_TRANSFERS_MAX))

    def two_phase(fx: Fixture) -> tuple[int, float, list[float], float]:
        return (*run_two_phase(fx, plan.two_phase_batches, rng), float(BATCH_TRANSFERS_MAX))

    measure("bulk", bulk, lambda _: BATCH_TRANSFERS_MAX, note="batches of 8,190; p99 is per batch")
    measure("single", single, lambda _: 1, note="one transfer per commit")
    measure(
        "group_commit",
        group,
        lambda mean: max(1, round(mean)),
        note=f"{SUBMITTERS} concurrent submitters; reference commits the mean coalesced batch",
    )
    measure(
        "hot_account", hot, lambda _: BATCH_TRANSFERS_MAX, note="90% of transfers touch one account"
    )
    measure(
        "two_phase",
        two_phase,
        lambda _: BATCH_TRANSFERS_MAX,
        rows_per_transfer=2,
        note="pending then post, counted once; reference inserts both rows",
    )
    return rows


def run(
    *, quick: bool, postgres_url: str | None, progress: Progress, seed: int = 1
) -> dict[str, Any]:
    plan = Plan.quick() if quick else Plan.full()
    results: list[Row] = []
    info: dict[str, Any] = {"quick": quick, "accounts": ACCOUNTS}
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-", dir=".") as tmp:
        directory = Path(tmp)
        info["fsync_per_s"] = round(fsync_rate(directory), 1)
        progress(
            f"disk: {info['fsync_per_s']:,.0f} fsyncs/s "
            f"(4 KiB write + fsync, in {directory.resolve().parent})"
        )
        progress("sqlite: WAL, synchronous=FULL")
        results += run_backend(
            "sqlite", lambda name: sqlite_database(directory, name), plan, progress, seed
        )
    if postgres_url:
        reason = postgres_admin_ok(postgres_url)
        if reason is not None:
            progress(f"postgresql: skipped, no server at {postgres_url} ({reason})")
            info["postgresql"] = f"skipped: {reason}"
        else:
            with postgres_database(postgres_url, "probe") as url:
                engine = migrated_engine(url, pool_size=1)
                info["postgresql"] = postgres_settings(engine)
                engine.dispose()
            progress(f"postgresql: {info['postgresql']}")
            results += run_backend(
                "postgresql",
                lambda name: postgres_database(postgres_url, name),
                plan,
                progress,
                seed,
            )
    return {"info": info, "results": [r.to_dict() for r in results]}


def table(report: dict[str, Any]) -> str:
    lines = [
        "| scenario | backend | transfers/s | p99 ms | storage limit /s | ratio |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['scenario']} | {r['backend']} | {r['transfers_per_s']:,.0f} "
            f"| {r['p99_ms']:.2f} | {r['reference_per_s']:,.0f} | {r['ratio']:.2f} |"
        )
    return "\n".join(lines)
