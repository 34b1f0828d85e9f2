"""`strongroom bench ledger`: ledger throughput and latency on durable SQLite and PostgreSQL.

Scenarios: bulk (batches of 8,190), single (one transfer per commit), group_commit (64
concurrent submitters through the group-commit coalescer), hot_account (90% of transfers touch
one account), two_phase (pending, then post); on SQLite also bulk_full: the bulk scenario on the
ledger as `serve` runs it (`runtime.build_ledger`: the outbox and the audit log on). Each is
measured against the storage limit in the same run: inserting the same rows (transfers and
their entries, in the store's own column order) with no ledger logic, in the same commit sizes,
into a fresh database of the same schema.

Every timed part, the ledger's and the reference's, runs with the heap as `serve` has it
(benchmarks.common.server_heap, runtime.settle_heap): what the process held before the clock
started, the benchmark's prepared transfers included, frozen out of the cyclic collector.

`--smoke` runs every scenario at tiny sizes (seconds): the same code and the same rows and
fields as a full run, for tests; its figures mean nothing.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from strongroom.audit import store as audit_store
from strongroom.benchmarks.common import (
    Row,
    fsync_rate,
    median_ms,
    migrated_engine,
    p99,
    postgres_admin_ok,
    postgres_database,
    postgres_settings,
    server_heap,
    sqlite_database,
)
from strongroom.core import ids
from strongroom.core.limits import BATCH_TRANSFERS_MAX
from strongroom.db.uow import UnitOfWork
from strongroom.events import store as events_store
from strongroom.ledger.coalescer import GroupCommitter
from strongroom.ledger.model import Action, Direction, NewTransfer, Status, TransferResult
from strongroom.ledger.service import DEFAULT_TENANT_ID, AccountSpec, LedgerService
from strongroom.ledger.store import ENTRY_COLS, TRANSFER_COLS, id_base, insert_transfers_sqlite
from strongroom.runtime import build_ledger
from strongroom.security.kms import KeyManager
from strongroom.settings import Settings

ACCOUNTS: Final = 10_000
SUBMITTERS: Final = 64
BULK_FULL_TARGET_PER_S: Final = 40_000


@dataclass(frozen=True)
class Plan:
    """How much work each scenario does."""

    accounts: int
    batch_transfers: int  # per batch in bulk, bulk_full, hot_account and two_phase
    bulk_batches: int
    single_transfers: int
    group_commit_transfers: int
    two_phase_batches: int

    def __post_init__(self) -> None:
        assert self.accounts >= 2
        assert 1 <= self.batch_transfers <= BATCH_TRANSFERS_MAX
        assert self.bulk_batches >= 1
        assert self.single_transfers >= 1
        assert self.group_commit_transfers >= SUBMITTERS
        assert self.two_phase_batches >= 1

    @classmethod
    def full(cls) -> Plan:
        return cls(
            accounts=ACCOUNTS,
            batch_transfers=BATCH_TRANSFERS_MAX,
            bulk_batches=24,
            single_transfers=3_000,
            group_commit_transfers=60_000,
            two_phase_batches=8,
        )

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            accounts=ACCOUNTS,
            batch_transfers=BATCH_TRANSFERS_MAX,
            bulk_batches=5,
            single_transfers=600,
            group_commit_transfers=8_000,
            two_phase_batches=2,
        )

    @classmethod
    def smoke(cls) -> Plan:
        return cls(
            accounts=200,
            batch_transfers=300,
            bulk_batches=2,
            single_transfers=20,
            group_commit_transfers=4 * SUBMITTERS,
            two_phase_batches=1,
        )

    @classmethod
    def named(cls, *, quick: bool, smoke: bool) -> Plan:
        assert not (quick and smoke), "--quick and --smoke exclude each other"
        return cls.smoke() if smoke else cls.quick() if quick else cls.full()


Progress = Callable[[str], None]


class Fixture:
    """A migrated database with one ledger and `accounts` accounts. With `settings`, the
    ledger is wired as `serve` runs it (runtime.build_ledger: its outbox and, when
    `settings.audit`, its audit log; the gates the settings install), its keys under `kms`
    (the configured key manager when not given); without, a bare LedgerService."""

    def __init__(
        self,
        url: str,
        accounts: int = ACCOUNTS,
        settings: Settings | None = None,
        kms: KeyManager | None = None,
    ) -> None:
        self.engine = migrated_engine(url)
        self.service = (
            LedgerService(self.engine)
            if settings is None
            else build_ledger(self.engine, settings, kms=kms)[0]
        )
        self.ledger_id = self.service.create_ledger("bench").id
        self.accounts: list[str] = []
        for start in range(0, accounts, BATCH_TRANSFERS_MAX):
            count = min(BATCH_TRANSFERS_MAX, accounts - start)
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


# Who posts every benchmark transfer, as an API key would: the actor is recorded on each row
# (transfers.actor_ref) and in each leaf, so its cost is measured.
BENCH_ACTOR = "api_key:key_bench"


def _check(outcomes: Sequence[Any]) -> None:
    bad = [o for o in outcomes if not o.result.ok]
    assert not bad, f"benchmark transfers were refused: {bad[:3]}"


def run_bulk(
    fx: Fixture, batches: int, size: int, rng: random.Random, hot: float = 0.0
) -> tuple[int, float, list[float]]:
    work = [fx.transfers(size, rng, hot) for _ in range(batches)]
    latencies = []
    with server_heap():
        start = time.perf_counter()
        for batch in work:
            t0 = time.perf_counter()
            _check(fx.service.post_transfers(batch, actor=BENCH_ACTOR))
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    return batches * size, elapsed, latencies


def run_single(fx: Fixture, count: int, rng: random.Random) -> tuple[int, float, list[float]]:
    work = fx.transfers(count, rng)
    latencies = []
    with server_heap():
        start = time.perf_counter()
        for t in work:
            t0 = time.perf_counter()
            _check(fx.service.post_transfers([t], actor=BENCH_ACTOR))
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    return count, elapsed, latencies


def run_group_commit(
    fx: Fixture,
    count: int,
    rng: random.Random,
    *,
    refusals: Collection[TransferResult] = (),
    results: Counter[TransferResult] | None = None,
) -> tuple[int, float, list[float], float]:
    """`refusals`: results a transfer may get besides ok (a risk block); `results`: counts
    every transfer's result."""
    work = fx.transfers(count, rng)
    per_submitter = [work[i::SUBMITTERS] for i in range(SUBMITTERS)]
    latencies: list[float] = []
    committer = GroupCommitter(fx.service)

    async def submitter(mine: list[NewTransfer]) -> None:
        for t in mine:
            t0 = time.perf_counter()
            outcome = await committer.submit_async(t, BENCH_ACTOR)
            latencies.append(time.perf_counter() - t0)
            assert outcome.result.ok or outcome.result in refusals, outcome
            if results is not None:
                results[outcome.result] += 1

    async def main() -> None:
        await asyncio.gather(*(submitter(m) for m in per_submitter))

    with server_heap():
        start = time.perf_counter()
        try:
            asyncio.run(main())
        finally:
            committer.close()
        elapsed = time.perf_counter() - start
    mean_batch = committer.stats.transfers / max(1, committer.stats.batches)
    return count, elapsed, latencies, mean_batch


def run_two_phase(
    fx: Fixture, batches: int, size: int, rng: random.Random
) -> tuple[int, float, list[float]]:
    """Each round reserves a batch (pending) and then posts it; a transfer counts once,
    when its post commits."""
    rounds = []
    for _ in range(batches):
        pending = fx.transfers(size, rng)
        for t in pending:
            t.pending = True
        posts = [
            NewTransfer(pid, fx.ledger_id, action=Action.POST, target_id=t.id)
            for pid, t in zip(ids.new_ids("tr", len(pending)), pending, strict=True)
        ]
        rounds.append((pending, posts))
    latencies = []
    with server_heap():
        start = time.perf_counter()
        for pending, posts in rounds:
            t0 = time.perf_counter()
            _check(fx.service.post_transfers(pending, actor=BENCH_ACTOR))
            _check(fx.service.post_transfers(posts, actor=BENCH_ACTOR))
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    return batches * size, elapsed, latencies


# -- the storage limit ---------------------------------------------------------------------


def columns(cols: str) -> tuple[str, ...]:
    """The names in one of the store's column lists (TRANSFER_COLS, ENTRY_COLS)."""
    return tuple(name.strip() for name in cols.split(","))


TRANSFER_COLUMNS: Final = columns(TRANSFER_COLS)
ENTRY_COLUMNS: Final = columns(ENTRY_COLS)


def in_store_order(names: tuple[str, ...], values: dict[str, Any]) -> tuple[Any, ...]:
    """A row in the store's column order. A column the store writes and the reference does
    not fill (or the reverse) fails here, naming it, rather than shifting the values."""
    if values.keys() != set(names):
        missing = sorted(set(names) - values.keys())
        extra = sorted(values.keys() - set(names))
        raise AssertionError(
            f"the reference's rows no longer match the store's columns: "
            f"missing {missing}, unknown {extra}"
        )
    return tuple(values[name] for name in names)


class ReferenceRows:
    """Rows of the shapes the ledger writes for a plain posted transfer: its transfer row and
    its two entry rows (each account's version, previous entry and running totals), with
    transfer seqs and entry ids from a new id block per commit as the store allocates them.
    No ledger logic runs: the rows are made before the clock starts."""

    def __init__(self, ledger_id: str, accounts: list[str], rng: random.Random) -> None:
        self.ledger_id = ledger_id
        self.accounts = accounts
        self.rng = rng
        self.block = 0
        self.version = dict.fromkeys(accounts, 0)
        self.last_entry: dict[str, int | None] = dict.fromkeys(accounts, None)
        self.debits = dict.fromkeys(accounts, 0)
        self.credits = dict.fromkeys(accounts, 0)

    def commit(self, count: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The rows of one commit of `count` transfers."""
        self.block += 1
        base = id_base(self.block)
        now = time.time_ns() // 1000
        tids = ids.new_ids("tr", count)
        transfers = []
        entries = []
        for i in range(count):
            debit, credit = self.rng.sample(self.accounts, 2)
            amount = self.rng.randint(1, 10_000)
            transfers.append(
                in_store_order(
                    TRANSFER_COLUMNS,
                    {
                        "seq": base + i,
                        "id": tids[i],
                        "ledger_id": self.ledger_id,
                        "action": int(Action.TRANSFER),
                        "status": int(Status.POSTED),
                        "debit_account_id": debit,
                        "credit_account_id": credit,
                        "amount": amount,
                        "legs": None,
                        "target_id": None,
                        "pending": False,
                        "timeout_s": 0,
                        "expires_at": None,
                        "metadata": None,
                        "created_at": now,
                        "effective_at": None,
                    },
                )
            )
            self.debits[debit] += amount
            self.credits[credit] += amount
            for direction, account in enumerate((debit, credit)):
                entry_id = base + 2 * i + direction
                self.version[account] += 1
                entries.append(
                    in_store_order(
                        ENTRY_COLUMNS,
                        {
                            "id": entry_id,
                            "account_id": account,
                            "version": self.version[account],
                            "prev_id": self.last_entry[account],
                            "transfer_id": tids[i],
                            "direction": direction,
                            "amount": amount,
                            "pending_delta": 0,
                            "debits_posted": self.debits[account],
                            "credits_posted": self.credits[account],
                            "debits_pending": 0,
                            "credits_pending": 0,
                            "created_at": now,
                        },
                    )
                )
                self.last_entry[account] = entry_id
        return transfers, entries


def insert_raw(
    uow: UnitOfWork, transfers: list[tuple[Any, ...]], entries: list[tuple[Any, ...]]
) -> None:
    cur = uow.cursor()
    if uow.sqlite:
        # The store's own insert path (None and bool columns constant across the batch written
        # as literals): the limit of the inserts the ledger makes, not of a slower way to bind.
        insert_transfers_sqlite(cur, transfers, entries)
    else:
        with cur.copy(f"COPY transfers ({TRANSFER_COLS}) FROM STDIN") as copy:
            for row in transfers:
                copy.write_row(row)
        with cur.copy(f"COPY entries ({ENTRY_COLS}) FROM STDIN") as copy:
            for row in entries:
                copy.write_row(row)


def reference_rate(
    url: str,
    total: int,
    commit_size: int,
    rng: random.Random,
    accounts: int,
    rows_per_transfer: int = 1,
) -> float:
    """Transfers per second when only inserting their rows, `commit_size` transfers per commit."""
    engine = migrated_engine(url)
    rows = ReferenceRows("ldg_bench", [f"acc_{i:026d}" for i in range(accounts)], rng)
    commits = max(1, total // commit_size)
    work = [rows.commit(commit_size * rows_per_transfer) for _ in range(commits)]
    with server_heap():
        start = time.perf_counter()
        for transfers, entries in work:
            with UnitOfWork(engine) as uow:
                insert_raw(uow, transfers, entries)
                uow.commit()
        elapsed = time.perf_counter() - start
    engine.dispose()
    return commits * commit_size / elapsed


# -- driver --------------------------------------------------------------------------------

# Scenario runners: (transfers, seconds, latencies, mean transfers per commit).
Measured = tuple[int, float, list[float], float]


def full_settings(url: str) -> Settings:
    """The settings `serve` runs with on this database, with the audit log on even where the
    environment turns it off: bulk_full measures the ledger with all it commits in production."""
    return Settings(database_url=url, audit=True)


def check_full_trail(fx: Fixture, count: int) -> None:
    """bulk_full really wrote its trail: an event per transfer and a leaf per transfer."""
    with UnitOfWork(fx.engine, write=False) as uow:
        unrouted, _pending = events_store.backlog(uow)
        leaves = audit_store.log_size(uow, DEFAULT_TENANT_ID)
    assert unrouted >= count, f"bulk_full: {unrouted} events for {count} transfers"
    assert leaves >= count, f"bulk_full: {leaves} audit leaves for {count} transfers"


def run_backend(
    backend: str, make_db: Callable[[str], Any], plan: Plan, progress: Progress, seed: int
) -> list[Row]:
    rng = random.Random(seed)
    rows: list[Row] = []
    size = plan.batch_transfers

    def measure(
        scenario: str,
        run: Callable[[Fixture], Measured],
        commit_size: Callable[[float], int],
        rows_per_transfer: int = 1,
        note: str = "",
        settings: Callable[[str], Settings] | None = None,
        target_per_s: int | None = None,
    ) -> None:
        progress(f"{backend}: {scenario} ...")
        with make_db(scenario) as url:
            fx = Fixture(url, plan.accounts, settings(url) if settings else None)
            try:
                count, elapsed, latencies, mean_batch = run(fx)
                verified = fx.service.verify()
                assert verified.ok, verified.problems[:5]
                if settings is not None:
                    check_full_trail(fx, count)
            finally:
                fx.close()
        rate = count / elapsed
        commit = commit_size(mean_batch)
        with make_db(f"{scenario}_ref") as url:
            reference = reference_rate(url, count, commit, rng, plan.accounts, rows_per_transfer)
        row = Row(scenario, backend, rate, p99(latencies), reference, rate / reference, count, note)
        if target_per_s is not None:
            row.target = f">= {target_per_s:,} transfers/s"
            row.meets_target = rate >= target_per_s
        progress(
            f"{backend}: {scenario:<13} {rate:>10,.0f} transfers/s  p99 {row.p99_ms:8.2f} ms  "
            f"(median {median_ms(latencies):.2f} ms)  storage limit {reference:>10,.0f}/s  "
            f"ratio {row.ratio:.2f}"
            + (
                f"  target {row.target}: {'met' if row.meets_target else 'MISSED'}"
                if row.target
                else ""
            )
        )
        rows.append(row)

    def bulk(fx: Fixture) -> Measured:
        return (*run_bulk(fx, plan.bulk_batches, size, rng), float(size))

    def single(fx: Fixture) -> Measured:
        return (*run_single(fx, plan.single_transfers, rng), 1.0)

    def group(fx: Fixture) -> Measured:
        return run_group_commit(fx, plan.group_commit_transfers, rng)

    def hot(fx: Fixture) -> Measured:
        return (*run_bulk(fx, plan.bulk_batches, size, rng, hot=0.9), float(size))

    def two_phase(fx: Fixture) -> Measured:
        return (*run_two_phase(fx, plan.two_phase_batches, size, rng), float(size))

    batches = f"batches of {size:,}"
    measure("bulk", bulk, lambda _: size, note=f"{batches}; p99 is per batch")
    if backend == "sqlite":
        measure(
            "bulk_full",
            bulk,
            lambda _: size,
            note=f"{batches} on the ledger as serve builds it (outbox and audit log on); "
            "p99 is per batch",
            settings=full_settings,
            target_per_s=BULK_FULL_TARGET_PER_S,
        )
    measure("single", single, lambda _: 1, note="one transfer per commit")
    measure(
        "group_commit",
        group,
        lambda mean: max(1, round(mean)),
        note=f"{SUBMITTERS} concurrent submitters; reference commits the mean coalesced batch",
    )
    measure("hot_account", hot, lambda _: size, note="90% of transfers touch one account")
    measure(
        "two_phase",
        two_phase,
        lambda _: size,
        rows_per_transfer=2,
        note="pending then post, counted once; reference inserts both rows",
    )
    return rows


def run(
    *,
    quick: bool,
    postgres_url: str | None,
    progress: Progress,
    seed: int = 1,
    smoke: bool = False,
) -> dict[str, Any]:
    plan = Plan.named(quick=quick, smoke=smoke)
    results: list[Row] = []
    info: dict[str, Any] = {
        "quick": quick,
        "smoke": smoke,
        "accounts": plan.accounts,
        "batch_transfers": plan.batch_transfers,
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-", dir=".") as tmp:
        directory = Path(tmp)
        info["fsync_per_s"] = round(fsync_rate(directory, seconds=0.2 if smoke else 1.0), 1)
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
    info["elapsed_s"] = round(time.perf_counter() - started, 1)
    progress(f"done in {info['elapsed_s']:.0f} s")
    return {"info": info, "results": [r.to_dict() for r in results]}


def table(report: dict[str, Any]) -> str:
    lines = [
        "| scenario | backend | transfers/s | p99 ms | storage limit /s | ratio | target |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in report["results"]:
        target = ""
        if r["target"]:
            target = f"{r['target']}: {'met' if r['meets_target'] else 'MISSED'}"
        lines.append(
            f"| {r['scenario']} | {r['backend']} | {r['transfers_per_s']:,.0f} "
            f"| {r['p99_ms']:.2f} | {r['reference_per_s']:,.0f} | {r['ratio']:.2f} | {target} |"
        )
    return "\n".join(lines)
