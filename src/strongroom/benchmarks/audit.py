"""`strongroom bench audit`: the audit log's appends, proofs and verification, and its cost to
the ledger, each against a reference measured in the same run.

Rows (one JSON object per row, as in the ledger benchmark; `ratio` is always "ours relative to
the reference, higher is better"):

- append_memory: `MemoryTree.append`, one leaf at a time (`appends_per_s`; `extend_per_s` for
  bulk `extend` in batches of 8,190), against pymerkle's `InmemoryTree.append_entry` of the
  same leaves (`reference_per_s`).
- append_persisted: `AuditLog.append` on durable SQLite, 8,190 leaves per transaction (as the
  ledger's bulk batches), against plain INSERTs of the same rows (the same compressed bundle)
  into a table of the same shape in the same database (no hashing, no tiles), the two
  interleaved batch by batch.
- inclusion_proof, consistency_proof: `AuditLog.inclusion` / `.consistency` at the full tree
  size, timed call by call in a fresh Python process (one read transaction, one tile query,
  assembly), p50 and p99; against pymerkle's proof generation in memory (`reference_p50_ms`).
  Our in-memory proofs (`memory_p50_ms`) are there for the like-for-like comparison.
- verify: microseconds per `verify_inclusion` (and `verify_consistency`) at the full tree size,
  against pymerkle's verifiers on its own proofs.
- ledger_overhead: the ledger's bulk scenario (batches of 8,190 transfers on SQLite) with the
  audit log as its sink and without, in alternating runs; `ratio` = on / off.
- verify_memory: the peak resident memory (VmHWM, else ru_maxrss) of a fresh process running
  `verify`'s replay of the leaves against every account and entry (audit/replay.py), and of
  the whole `AuditLog.verify`, on a ledger built through the ledger with the log on (SQLite,
  bulk batches), at a quarter of the transfers and at all of them; `ratio` = the whole
  verify's peak at a quarter / at all (1.0: its memory does not grow with the history).
  500,000 transfers in the full run, not 5 million (build ~60 s a 500,000 on the shared
  2-core machine, verify ~40 us a transfer). Measured there, the whole verify at 125,000,
  500,000 and 2,000,000 transfers: peak 160, 160 and 162 MiB (97 MiB after imports), 5 s,
  20 s and 85 s; before its tree and transfer checks streamed (a hash a leaf, every tile, a
  digest a transfer): 205, 456 and 1,193 MiB.

Leaves are real transfer leaves (`audit.leaf.transfer_leaf`, two entries each), ~570 bytes.
Targets (for a 2-core machine) are reported per row, never asserted.

pymerkle (GPL) is a benchmark-only dependency (`pip install -e '.[bench]'`), imported here
lazily and nowhere else.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import platform
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final

from strongroom.audit import replay, store
from strongroom.audit.leaf import transfer_leaf
from strongroom.audit.merkle import (
    MemoryTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from strongroom.audit.service import TILE_HEIGHT, AuditLog
from strongroom.audit.store import pack_bundle
from strongroom.benchmarks.common import (
    fsync_rate,
    median_ms,
    migrated_engine,
    p99,
    server_heap,
    sqlite_database,
)
from strongroom.benchmarks.ledger import ACCOUNTS as LEDGER_ACCOUNTS
from strongroom.benchmarks.ledger import Fixture
from strongroom.core import ids
from strongroom.core.errors import StrongroomError
from strongroom.core.limits import BATCH_TRANSFERS_MAX
from strongroom.db.engine import create_engine
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.engine import EntryRow
from strongroom.ledger.model import Action, NewTransfer, Status, TransferRow
from strongroom.ledger.service import DEFAULT_TENANT_ID, LedgerService
from strongroom.settings import Settings

LOG_ID: Final = "ten_bench"
LEAF_ACCOUNTS: Final = 10_000
LEAF_TYPE: Final = "transfer.created"
# A child process that has not answered in this long is stuck: the run fails rather than hangs.
CHILD_S_MAX: Final = 180.0
# Proofs the child sends back for the parent to verify against its own tree.
CHILD_CHECKS: Final = 8
RAW_TABLE: Final = "bench_raw_leaves"
PYMERKLE_CHECK_EVERY: Final = 4_096  # appends between two looks at pymerkle's time budget
VERIFY_SQLITE_CACHE_MIB: Final = 16  # verify_memory's processes

TARGETS: Final = {
    "append_memory": ">= 300,000/s and >= 8x pymerkle",
    "append_persisted": ">= 150,000/s",
    "inclusion_proof": "p50 <= 0.3 ms, p99 <= 2 ms",
    "consistency_proof": "p50 <= 0.3 ms, p99 <= 2 ms",
    "verify": "",
    "ledger_overhead": ">= 0.8",
    "verify_memory": "verify's peak memory flat in the history's length (ratio >= 0.9)",
}

Progress = Callable[[str], None]


class BenchDependencyMissing(StrongroomError):
    code = "bench_dependency_missing"
    status = 500


def _pymerkle() -> Any:
    """pymerkle, imported here only: it is GPL and a benchmark-only dependency."""
    try:
        return importlib.import_module("pymerkle")
    except ImportError:
        raise BenchDependencyMissing(
            "the audit benchmark measures pymerkle as its reference and it is not installed: "
            "pip install -e '.[bench]' (or `make install`, which installs the bench extra)"
        ) from None


@dataclass(frozen=True)
class Plan:
    """How much work each row does; every loop below is bounded by one of these."""

    leaves: int
    batch_leaves: int
    proofs: int
    ledger_runs: int  # pairs of (audit off, audit on) runs, alternating
    ledger_batches_per_run: int
    ledger_batch_transfers: int
    pymerkle_build_s_max: float
    ledger_accounts: int = LEDGER_ACCOUNTS
    verify_transfers: int = 500_000  # verify_memory's ledger (measured at a quarter, then all)

    @classmethod
    def full(cls) -> Plan:
        return cls(
            leaves=1_000_000,
            batch_leaves=BATCH_TRANSFERS_MAX,
            proofs=2_000,
            ledger_runs=4,
            ledger_batches_per_run=4,
            ledger_batch_transfers=BATCH_TRANSFERS_MAX,
            pymerkle_build_s_max=90.0,
        )

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            leaves=100_000,
            batch_leaves=BATCH_TRANSFERS_MAX,
            proofs=500,
            ledger_runs=2,
            ledger_batches_per_run=2,
            ledger_batch_transfers=BATCH_TRANSFERS_MAX,
            pymerkle_build_s_max=15.0,
            verify_transfers=100_000,
        )

    @classmethod
    def smoke(cls) -> Plan:
        """Seconds: every row, from the same code, at sizes whose figures mean nothing."""
        return cls(
            leaves=3_000,
            batch_leaves=1_000,
            proofs=CHILD_CHECKS,
            ledger_runs=1,
            ledger_batches_per_run=1,
            ledger_batch_transfers=200,
            pymerkle_build_s_max=30.0,
            ledger_accounts=200,
            verify_transfers=2_000,
        )

    def __post_init__(self) -> None:
        assert self.leaves >= 2
        assert 1 <= self.batch_leaves <= BATCH_TRANSFERS_MAX
        assert 1 <= self.ledger_batch_transfers <= BATCH_TRANSFERS_MAX
        assert self.proofs >= CHILD_CHECKS
        assert self.ledger_runs >= 1
        assert self.ledger_batches_per_run >= 1
        assert self.ledger_accounts >= 2
        assert self.verify_transfers >= 4


# -- rows ----------------------------------------------------------------------------------


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 1) if abs(value) >= 100 else round(value, 4)
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def _row(
    scenario: str,
    backend: str,
    *,
    reference: str,
    ratio: float | None,
    meets_target: bool | None,
    note: str = "",
    **figures: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {"scenario": scenario, "backend": backend}
    out.update({k: _round(v) for k, v in figures.items()})
    out["reference"] = reference
    out["ratio"] = None if ratio is None else round(ratio, 3)
    out["target"] = TARGETS[scenario]
    out["meets_target"] = meets_target
    out["note"] = note
    return out


def _p50_ms(samples_s: Sequence[float]) -> float:
    return median_ms(list(samples_s))


# -- leaves --------------------------------------------------------------------------------


def make_leaves(count: int, rng: random.Random) -> tuple[list[str], list[bytes]]:
    """`count` transfer leaves as the ledger writes them (a transfer and its two entries, with
    the accounts' versions and counters after it); and their transfer ids (the leaves' refs)."""
    accounts = ids.new_ids("acc", LEAF_ACCOUNTS)
    ledger_id = ids.new_id("ldg")
    tids = ids.new_ids("tr", count)
    versions = dict.fromkeys(accounts, 0)
    debits = dict.fromkeys(accounts, 0)
    credits = dict.fromkeys(accounts, 0)
    now = time.time_ns() // 1000
    datas: list[bytes] = []
    for seq in range(count):
        tid = tids[seq]
        debit, credit = rng.sample(accounts, 2)
        amount = rng.randint(1, 10_000)
        versions[debit] += 1
        versions[credit] += 1
        debits[debit] += amount
        credits[credit] += amount
        at = now + seq
        row: TransferRow = (
            *(seq + 1, tid, ledger_id, int(Action.TRANSFER), int(Status.POSTED), debit, credit),
            *(amount, None, None, False, 0, None, None, at, None),
        )
        entries: list[EntryRow] = [
            (
                *(2 * seq, debit, versions[debit], None, tid, 0, amount, 0),
                *(debits[debit], credits[debit], 0, 0, at),
            ),
            (
                *(2 * seq + 1, credit, versions[credit], None, tid, 1, amount, 0),
                *(debits[credit], credits[credit], 0, 0, at),
            ),
        ]
        datas.append(transfer_leaf(LEAF_TYPE, row, entries))
    return tids, datas


# -- appends in memory ---------------------------------------------------------------------


@dataclass
class MemoryResult:
    row: dict[str, Any]
    tree: MemoryTree
    reference_tree: Any  # pymerkle.InmemoryTree
    reference_size: int


def bench_append_memory(datas: list[bytes], plan: Plan, progress: Progress) -> MemoryResult:
    pymerkle = _pymerkle()
    count = len(datas)

    # MemoryTree hashes interior nodes when first read, pymerkle as it appends: both timers
    # end with the root, so both did all the hashing.
    tree = MemoryTree()
    append = tree.append
    start = time.perf_counter()
    for data in datas:
        append(data)
    tree.root()
    ours_s = time.perf_counter() - start

    bulk = MemoryTree()
    start = time.perf_counter()
    for first in range(0, count, plan.batch_leaves):
        bulk.extend(datas[first : first + plan.batch_leaves])
    bulk.root()
    extend_s = time.perf_counter() - start
    assert bulk.root() == tree.root()

    progress(
        f"append_memory: ours {count / ours_s:,.0f}/s one by one, {count / extend_s:,.0f}/s "
        f"extend; pymerkle ..."
    )
    reference = pymerkle.InmemoryTree()
    ref_append = reference.append_entry
    done = 0
    start = time.perf_counter()
    deadline = start + plan.pymerkle_build_s_max
    while done < count:
        for data in datas[done : done + PYMERKLE_CHECK_EVERY]:
            ref_append(data)
        done = min(count, done + PYMERKLE_CHECK_EVERY)
        if time.perf_counter() > deadline:
            break
    reference.get_root(done)
    reference_s = time.perf_counter() - start
    # Same RFC 6962 hashing: equal roots show both did the same work.
    assert reference.get_root(done) == tree.root(done), "pymerkle computes a different tree"

    ours_per_s = count / ours_s
    reference_per_s = done / reference_s
    ratio = ours_per_s / reference_per_s
    note = (
        "one leaf per call, same leaves, the root read at the end; extend_per_s: "
        f"MemoryTree.extend per {plan.batch_leaves:,}"
    )
    if done < count:
        note += (
            f"; pymerkle stopped at {done:,} leaves ({plan.pymerkle_build_s_max:g} s budget), "
            "its rate is over those"
        )
    row = _row(
        "append_memory",
        "memory",
        appends_per_s=ours_per_s,
        extend_per_s=count / extend_s,
        reference_per_s=reference_per_s,
        leaves=count,
        reference_leaves=done,
        reference="pymerkle InmemoryTree.append_entry",
        ratio=ratio,
        meets_target=ours_per_s >= 300_000 and ratio >= 8,
        note=note,
    )
    progress(
        f"append_memory: pymerkle {reference_per_s:,.0f}/s over {done:,} leaves; ratio {ratio:.2f}"
    )
    return MemoryResult(row, tree, reference, done)


# -- appends to the database ---------------------------------------------------------------


def _create_raw_table(engine: Any) -> None:
    """A copy of audit_bundles' shape (same columns, key, index; WITHOUT ROWID) to insert
    into."""
    with UnitOfWork(engine) as uow:
        cur = uow.cursor()
        cur.execute(
            "SELECT type, sql FROM sqlite_master "
            "WHERE tbl_name = 'audit_bundles' AND sql IS NOT NULL"
        )
        for _kind, ddl in cur.fetchall():
            renamed = ddl.replace("audit_bundles_time", f"{RAW_TABLE}_time").replace(
                "audit_bundles", RAW_TABLE
            )
            assert RAW_TABLE in renamed, ddl
            cur.execute(renamed)
        uow.commit()


def bench_append_persisted(
    url: str, tids: list[str], datas: list[bytes], plan: Plan, progress: Progress
) -> dict[str, Any]:
    engine = migrated_engine(url, pool_size=1)
    try:
        _create_raw_table(engine)
        audit = AuditLog(engine)
        count = len(datas)
        ours_s: list[float] = []
        raw_s: list[float] = []
        insert = (
            f"INSERT INTO {RAW_TABLE} (log_id, first_idx, count, created_at, data) "
            "VALUES (?,?,?,?,?)"
        )
        report_every = max(1, count // plan.batch_leaves // 5)
        for k, first in enumerate(range(0, count, plan.batch_leaves)):
            last = min(count, first + plan.batch_leaves)
            # Transfer leaves are found by their bundle's time, not by a ref row.
            items = [(LEAF_TYPE, None, datas[i]) for i in range(first, last)]
            t0 = time.perf_counter()
            with UnitOfWork(engine) as uow:
                index = audit.append(uow, LOG_ID, items)
                uow.commit()
            ours_s.append(time.perf_counter() - t0)
            assert index == first
            t0 = time.perf_counter()
            with UnitOfWork(engine) as uow:
                blob = pack_bundle(datas[first:last])
                uow.cursor().execute(insert, (LOG_ID, first, last - first, first, blob))
                uow.commit()
            raw_s.append(time.perf_counter() - t0)
            if (k + 1) % report_every == 0:
                progress(f"append_persisted: {last:,} leaves")
    finally:
        engine.dispose()
    ours_per_s = count / sum(ours_s)
    raw_per_s = count / sum(raw_s)
    row = _row(
        "append_persisted",
        "sqlite",
        appends_per_s=ours_per_s,
        reference_per_s=raw_per_s,
        leaves=count,
        batch_leaves=plan.batch_leaves,
        p50_ms=_p50_ms(ours_s),
        p99_ms=p99(ours_s),
        reference="INSERT of the same leaves as one bundle row per batch (packed and "
        "compressed as ours) into a same-shaped table (no hashes, no tiles)",
        ratio=ours_per_s / raw_per_s,
        meets_target=ours_per_s >= 150_000,
        note=(
            f"AuditLog.append, {plan.batch_leaves:,} leaves per commit, interleaved with the "
            "reference batch by batch; p50/p99 per commit"
        ),
    )
    progress(
        f"append_persisted: {ours_per_s:,.0f} leaves/s (commit p50 {row['p50_ms']:.1f} ms, "
        f"p99 {row['p99_ms']:.1f} ms); plain insert {raw_per_s:,.0f}/s; "
        f"ratio {row['ratio']:.2f}"
    )
    return row


# -- proofs from a cold process ------------------------------------------------------------


def _child_proofs(url: str, kind: str, size: int, count: int, seed: int) -> dict[str, Any]:
    """In the fresh process: `count` proofs at `size` through AuditLog, each call timed."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    engine = create_engine(url, pool_size=1)
    audit = AuditLog(engine)
    setup_s = time.perf_counter() - t0
    samples: list[float] = []
    checks: list[tuple[int, str]] = []
    try:
        for k in range(count):
            if kind == "inclusion":
                arg = rng.randrange(size)
                t0 = time.perf_counter()
                proof = audit.inclusion(LOG_ID, arg, size)
            else:
                arg = rng.randrange(1, size)
                t0 = time.perf_counter()
                proof = audit.consistency(LOG_ID, arg, size)
            samples.append(time.perf_counter() - t0)
            if k < CHILD_CHECKS:
                checks.append((arg, b"".join(proof).hex()))
    finally:
        engine.dispose()
    return {"setup_s": setup_s, "samples_s": samples, "checks": checks}


def _run_child(url: str, kind: str, size: int, count: int, seed: int, cwd: Path) -> dict[str, Any]:
    args = [sys.executable, "-m", "strongroom.benchmarks.audit", "proofs", url, kind]
    args += [str(size), str(count), str(seed)]
    t0 = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        args, cwd=cwd, capture_output=True, text=True, timeout=CHILD_S_MAX, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} proof process failed:\n{done.stderr.strip()[-2000:]}")
    out: dict[str, Any] = json.loads(done.stdout)
    out["process_s"] = time.perf_counter() - t0
    return out


def _split(blob: str) -> list[bytes]:
    raw = bytes.fromhex(blob)
    return [raw[i : i + 32] for i in range(0, len(raw), 32)]


def bench_proofs(
    url: str,
    memory: MemoryResult,
    datas: list[bytes],
    plan: Plan,
    progress: Progress,
    seed: int,
    cwd: Path,
) -> list[dict[str, Any]]:
    tree = memory.tree
    size = tree.size
    root = tree.root(size)
    reference = memory.reference_tree
    ref_size = memory.reference_size
    rng = random.Random(seed)
    rows = []
    for kind in ("inclusion", "consistency"):
        progress(f"{kind}_proof: {plan.proofs:,} proofs at {size:,} leaves in a fresh process ...")
        child = _run_child(url, kind, size, plan.proofs, seed, cwd)
        for arg, blob in child["checks"]:  # the stored tiles give the in-memory tree's proofs
            if kind == "inclusion":
                verify_inclusion(leaf_hash(datas[arg]), arg, size, _split(blob), root)
            else:
                verify_consistency(arg, size, _split(blob), tree.root(arg), root)
        samples: list[float] = child["samples_s"]

        memory_s = []
        for _ in range(plan.proofs):
            if kind == "inclusion":
                index = rng.randrange(size)
                t0 = time.perf_counter()
                tree.inclusion_proof(index, size)
            else:
                first = rng.randrange(1, size)
                t0 = time.perf_counter()
                tree.consistency_proof(first, size)
            memory_s.append(time.perf_counter() - t0)

        ref_s = []
        for _ in range(plan.proofs):
            if kind == "inclusion":
                index = rng.randrange(ref_size) + 1  # pymerkle counts leaves from one
                t0 = time.perf_counter()
                reference.prove_inclusion(index, ref_size)
            else:
                first = rng.randrange(1, ref_size)
                t0 = time.perf_counter()
                reference.prove_consistency(first, ref_size)
            ref_s.append(time.perf_counter() - t0)

        p50_ms, p99_ms = _p50_ms(samples), p99(samples)
        ref_p50_ms = _p50_ms(ref_s)
        note = (
            "ours: AuditLog on SQLite in a fresh process (OS page cache warm), each call a read "
            "transaction + one tile query; reference: pymerkle in memory, same process"
        )
        if ref_size < size:
            note += f", its tree at {ref_size:,} leaves (build budget)"
        row = _row(
            f"{kind}_proof",
            "sqlite",
            p50_ms=p50_ms,
            p99_ms=p99_ms,
            first_ms=samples[0] * 1000,
            max_ms=max(samples) * 1000,
            process_start_s=child["process_s"] - sum(samples),
            memory_p50_ms=_p50_ms(memory_s),
            memory_p99_ms=p99(memory_s),
            reference_p50_ms=ref_p50_ms,
            reference_p99_ms=p99(ref_s),
            proofs=len(samples),
            tree_size=size,
            reference_tree_size=ref_size,
            reference="pymerkle prove_" + kind + " (in memory)",
            ratio=ref_p50_ms / p50_ms,
            meets_target=p50_ms <= 0.3 and p99_ms <= 2.0,
            note=note,
        )
        progress(
            f"{kind}_proof: p50 {p50_ms:.3f} ms, p99 {p99_ms:.3f} ms (first {row['first_ms']:.1f} "
            f"ms); in memory p50 {row['memory_p50_ms']:.3f} ms; pymerkle in memory p50 "
            f"{ref_p50_ms:.3f} ms, p99 {row['reference_p99_ms']:.3f} ms"
        )
        rows.append(row)
    return rows


# -- verification --------------------------------------------------------------------------


def _per_call_us(calls: Sequence[Callable[[], Any]]) -> float:
    start = time.perf_counter()
    for call in calls:
        call()
    return (time.perf_counter() - start) / len(calls) * 1e6


def bench_verify(
    memory: MemoryResult, datas: list[bytes], plan: Plan, progress: Progress, seed: int
) -> dict[str, Any]:
    pymerkle = _pymerkle()
    rng = random.Random(seed)
    tree, size = memory.tree, memory.tree.size
    root = tree.root(size)
    reference, ref_size = memory.reference_tree, memory.reference_size
    ref_root = reference.get_root(ref_size)

    ours_incl: list[Callable[[], Any]] = []
    ours_cons: list[Callable[[], Any]] = []
    ref_incl: list[Callable[[], Any]] = []
    ref_cons: list[Callable[[], Any]] = []
    for _ in range(plan.proofs):
        i = rng.randrange(size)
        h, proof = leaf_hash(datas[i]), tree.inclusion_proof(i, size)
        ours_incl.append(partial(verify_inclusion, h, i, size, proof, root))
        m = rng.randrange(1, size)
        cproof, old = tree.consistency_proof(m, size), tree.root(m)
        ours_cons.append(partial(verify_consistency, m, size, cproof, old, root))
        j = rng.randrange(ref_size) + 1
        base, rproof = reference.get_leaf(j), reference.prove_inclusion(j, ref_size)
        ref_incl.append(partial(pymerkle.verify_inclusion, base, ref_root, rproof))
        n = rng.randrange(1, ref_size)
        rcproof, rold = reference.prove_consistency(n, ref_size), reference.get_root(n)
        ref_cons.append(partial(pymerkle.verify_consistency, rold, ref_root, rcproof))
    incl_us = _per_call_us(ours_incl)
    cons_us = _per_call_us(ours_cons)
    ref_incl_us = _per_call_us(ref_incl)
    ref_cons_us = _per_call_us(ref_cons)
    row = _row(
        "verify",
        "memory",
        us_per_proof=incl_us,
        consistency_us_per_proof=cons_us,
        reference_us_per_proof=ref_incl_us,
        reference_consistency_us_per_proof=ref_cons_us,
        proofs=plan.proofs,
        tree_size=size,
        reference_tree_size=ref_size,
        reference="pymerkle verify_inclusion / verify_consistency",
        ratio=ref_incl_us / incl_us,
        meets_target=None,
        note="us_per_proof: inclusion; ratio on inclusion",
    )
    progress(
        f"verify: inclusion {incl_us:.1f} us, consistency {cons_us:.1f} us per proof; pymerkle "
        f"{ref_incl_us:.1f} us, {ref_cons_us:.1f} us"
    )
    return row


# -- the ledger with and without the audit log ---------------------------------------------


def _post_all(service: LedgerService, work: list[list[NewTransfer]]) -> float:
    """Seconds to post `work`, with the heap as `serve` has it (common.server_heap)."""
    with server_heap():
        start = time.perf_counter()
        for batch in work:
            outcomes = service.post_transfers(batch)
            bad = [o for o in outcomes if not o.result.ok]
            assert not bad, f"benchmark transfers were refused: {bad[:3]}"
        return time.perf_counter() - start


def bench_ledger_overhead(
    directory: Path, plan: Plan, progress: Progress, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    per_run = plan.ledger_batches_per_run * plan.ledger_batch_transfers
    with contextlib.ExitStack() as stack:
        fixtures: dict[str, Fixture] = {}
        services: dict[str, LedgerService] = {}
        audits: dict[str, AuditLog] = {}
        for side in ("off", "on"):
            url = stack.enter_context(sqlite_database(directory, f"ledger_audit_{side}"))
            fx = Fixture(url, plan.ledger_accounts)
            stack.callback(fx.close)
            fixtures[side] = fx
            if side == "on":
                audits[side] = AuditLog(fx.engine, tenant_of=fx.service.ledger_tenants)
            audit = audits.get(side)
            services[side] = (
                LedgerService(fx.engine, sinks=[audit], recorder=audit)
                if audit is not None
                else LedgerService(fx.engine)
            )

        def batches(side: str, count: int) -> list[list[NewTransfer]]:
            fx = fixtures[side]
            return [fx.transfers(plan.ledger_batch_transfers, rng) for _ in range(count)]

        for side in ("off", "on"):  # warm each service's account cache, untimed
            _post_all(services[side], batches(side, 1))
        elapsed = {"off": 0.0, "on": 0.0}
        runs: dict[str, list[float]] = {"off": [], "on": []}
        for k in range(plan.ledger_runs):
            for side in ("off", "on"):
                work = batches(side, plan.ledger_batches_per_run)
                seconds = _post_all(services[side], work)
                elapsed[side] += seconds
                runs[side].append(per_run / seconds)
            progress(
                f"ledger_overhead: run {k + 1}/{plan.ledger_runs}: off {runs['off'][-1]:,.0f}/s, "
                f"on {runs['on'][-1]:,.0f}/s"
            )
        total = plan.ledger_runs * per_run
        for side in ("off", "on"):
            report = services[side].verify()
            assert report.ok, report.problems[:5]
        with UnitOfWork(fixtures["on"].engine, write=False) as uow:
            logged = store.log_size(uow, DEFAULT_TENANT_ID)
        assert logged == total + plan.ledger_batch_transfers, (logged, total)
    off_per_s = total / elapsed["off"]
    on_per_s = total / elapsed["on"]
    ratio = on_per_s / off_per_s
    progress(f"ledger_overhead: off {off_per_s:,.0f}/s, on {on_per_s:,.0f}/s; ratio {ratio:.3f}")
    return _row(
        "ledger_overhead",
        "sqlite",
        audit_on_per_s=on_per_s,
        audit_off_per_s=off_per_s,
        reference_per_s=off_per_s,
        runs_on_per_s=runs["on"],
        runs_off_per_s=runs["off"],
        transfers=total,
        reference="the same bulk batches with no audit sink",
        ratio=ratio,
        meets_target=ratio >= 0.8,
        note=(
            f"bulk, {plan.ledger_batch_transfers:,} transfers per batch, {plan.ledger_runs} runs "
            f"of {plan.ledger_batches_per_run} batches each side, alternating off/on, one "
            "database each; one warm-up batch each, untimed"
        ),
    )


# -- verify's memory ----------------------------------------------------------------------


def _rss_mib() -> float:
    """This process's peak resident memory so far: VmHWM on Linux (its address space's high
    water mark, which starts afresh at exec), else ru_maxrss (which Linux carries across exec
    from the parent: the benchmark's own memory)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def _child_verify(url: str, mode: str) -> dict[str, Any]:
    """In a fresh process: the replay alone (`replay`) or the whole verify (`verify`), its
    time and the process's peak memory, before and after."""
    # SQLite's page cache is bounded by its own setting (256 MiB by default) and fills up to it
    # on any long read: a small one keeps it from hiding what verify itself holds.
    engine = create_engine(url, pool_size=1, sqlite_cache_mib=VERIFY_SQLITE_CACHE_MIB)
    try:
        audit = AuditLog(engine)
        base = _rss_mib()
        t0 = time.perf_counter()
        if mode == "replay":
            with UnitOfWork(engine, write=False) as uow:
                done = replay.check(uow, replay.load_baseline(uow), lambda _m: None)
            problems, entries = done.problems, done.entries
        else:
            assert mode == "verify", mode
            report = audit.verify()
            problems, entries = report.problems, report.entries
        seconds = time.perf_counter() - t0
    finally:
        engine.dispose()
    return {
        "seconds": seconds,
        "base_rss_mib": base,
        "peak_rss_mib": _rss_mib(),
        "entries": entries,
        "problems": problems[:5],
    }


def _run_verify_child(url: str, mode: str, cwd: Path, timeout_s: float) -> dict[str, Any]:
    args = [sys.executable, "-m", "strongroom.benchmarks.audit", "verify", url, mode]
    done = subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {mode} process failed:\n{done.stderr.strip()[-2000:]}")
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["problems"] == [], out["problems"]
    return out


def bench_verify_memory(
    directory: Path, plan: Plan, progress: Progress, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    total = plan.verify_transfers
    sizes = (total // 4, total)
    measured: dict[tuple[int, str], dict[str, Any]] = {}
    build_s = 0.0
    with sqlite_database(directory, "verify_memory") as url:
        fx = Fixture(url, plan.ledger_accounts, Settings(database_url=url))
        try:
            posted = 0
            for size in sizes:
                start = time.perf_counter()
                while posted < size:
                    count = min(BATCH_TRANSFERS_MAX, size - posted)
                    _post_all(fx.service, [fx.transfers(count, rng)])
                    posted += count
                build_s += time.perf_counter() - start
                progress(f"verify_memory: {size:,} transfers built ({build_s:.0f} s); verify ...")
                # A child is stuck, not slow, past ~20x the build's time a transfer.
                timeout_s = max(CHILD_S_MAX, 20 * build_s / posted * size)
                for mode in ("replay", "verify"):
                    child = _run_verify_child(url, mode, directory, timeout_s)
                    assert child["entries"] == 2 * size, (child["entries"], size)
                    measured[(size, mode)] = child
                    progress(
                        f"verify_memory: {mode} at {size:,} transfers: peak "
                        f"{child['peak_rss_mib']:,.0f} MiB (from {child['base_rss_mib']:,.0f}), "
                        f"{child['seconds']:.1f} s"
                    )
        finally:
            fx.close()
    quarter, full = sizes
    replay_full = measured[(full, "replay")]
    verify_full = measured[(full, "verify")]
    ratio = measured[(quarter, "verify")]["peak_rss_mib"] / verify_full["peak_rss_mib"]
    return _row(
        "verify_memory",
        "sqlite",
        transfers=full,
        quarter_transfers=quarter,
        accounts=plan.ledger_accounts,
        replay_peak_rss_mib=replay_full["peak_rss_mib"],
        replay_peak_rss_mib_quarter=measured[(quarter, "replay")]["peak_rss_mib"],
        verify_peak_rss_mib=measured[(full, "verify")]["peak_rss_mib"],
        verify_peak_rss_mib_quarter=measured[(quarter, "verify")]["peak_rss_mib"],
        base_rss_mib=replay_full["base_rss_mib"],
        replay_s=replay_full["seconds"],
        verify_s=measured[(full, "verify")]["seconds"],
        build_s=build_s,
        reference="the same at a quarter of the transfers",
        ratio=ratio,
        meets_target=ratio >= 0.9,
        note=(
            f"peak RSS (VmHWM) of a fresh process with a {VERIFY_SQLITE_CACHE_MIB} MiB SQLite "
            "page cache, base_rss_mib after its imports; "
            "verify_*: the whole AuditLog.verify (tree, checkpoints, transfers and the replay)"
        ),
    )


# -- driver --------------------------------------------------------------------------------


@contextlib.contextmanager
def _scratch(directory: Path | None) -> Iterator[Path]:
    # Absolute: the proof process runs in the scratch folder and opens the database by its URL.
    parent = (directory or Path(".")).resolve()
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-audit-", dir=parent) as tmp:
        yield Path(tmp)


def run(
    *,
    quick: bool,
    progress: Progress,
    seed: int = 1,
    smoke: bool = False,
    plan: Plan | None = None,
    directory: Path | None = None,
) -> dict[str, Any]:
    """The whole benchmark; `plan` and `directory` (where the scratch folder goes, default the
    current one, as the ledger benchmark) are for tests."""
    assert not (quick and smoke), "--quick and --smoke exclude each other"
    pymerkle = _pymerkle()  # fail before minutes of work, not after
    plan = plan or (Plan.smoke() if smoke else Plan.quick() if quick else Plan.full())
    rng = random.Random(seed)
    info: dict[str, Any] = {
        "quick": quick,
        "smoke": smoke,
        "leaves": plan.leaves,
        "batch_leaves": plan.batch_leaves,
        "proofs": plan.proofs,
        "tile_height": TILE_HEIGHT,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "pymerkle": getattr(pymerkle, "__version__", "?"),
    }
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with _scratch(directory) as tmp:
        info["fsync_per_s"] = round(fsync_rate(tmp, seconds=0.5), 1)
        progress(
            f"disk: {info['fsync_per_s']:,.0f} fsyncs/s (4 KiB write + fsync, in "
            f"{tmp.resolve().parent}); sqlite {sqlite3.sqlite_version}, WAL, synchronous=FULL"
        )
        t0 = time.perf_counter()
        tids, datas = make_leaves(plan.leaves, rng)
        info["leaf_bytes_mean"] = round(statistics.fmean(len(d) for d in datas), 1)
        progress(
            f"leaves: {plan.leaves:,} transfer leaves, {info['leaf_bytes_mean']:.0f} bytes on "
            f"average ({time.perf_counter() - t0:.1f} s to make)"
        )
        memory = bench_append_memory(datas, plan, progress)
        rows.append(memory.row)
        with sqlite_database(tmp, "audit") as url:
            rows.append(bench_append_persisted(url, tids, datas, plan, progress))
            rows += bench_proofs(url, memory, datas, plan, progress, seed, tmp)
        rows.append(bench_verify(memory, datas, plan, progress, seed))
        del memory, tids, datas
        rows.append(bench_ledger_overhead(tmp, plan, progress, seed))
        rows.append(bench_verify_memory(tmp, plan, progress, seed))
    info["elapsed_s"] = round(time.perf_counter() - started, 1)
    progress(f"done in {info['elapsed_s']:.0f} s")
    return {"info": info, "results": rows}


def _figure(r: dict[str, Any]) -> tuple[str, str]:
    """The row's result and its reference, as table cells."""
    scenario = r["scenario"]
    if scenario == "append_memory":
        return (
            f"{r['appends_per_s']:,.0f} appends/s (extend {r['extend_per_s']:,.0f}/s)",
            f"{r['reference_per_s']:,.0f}/s",
        )
    if scenario == "append_persisted":
        return f"{r['appends_per_s']:,.0f} leaves/s", f"{r['reference_per_s']:,.0f}/s"
    if scenario.endswith("_proof"):
        return (
            f"p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms",
            f"p50 {r['reference_p50_ms']:.3f} ms, p99 {r['reference_p99_ms']:.3f} ms",
        )
    if scenario == "verify":
        return (
            f"{r['us_per_proof']:.1f} us/proof (consistency {r['consistency_us_per_proof']:.1f})",
            f"{r['reference_us_per_proof']:.1f} us (consistency "
            f"{r['reference_consistency_us_per_proof']:.1f})",
        )
    if scenario == "verify_memory":
        return (
            f"replay peak {r['replay_peak_rss_mib']:,.0f} MiB, verify "
            f"{r['verify_peak_rss_mib']:,.0f} MiB at {r['transfers']:,} transfers",
            f"replay {r['replay_peak_rss_mib_quarter']:,.0f} MiB, verify "
            f"{r['verify_peak_rss_mib_quarter']:,.0f} MiB at {r['quarter_transfers']:,}",
        )
    assert scenario == "ledger_overhead", scenario
    return (
        f"{r['audit_on_per_s']:,.0f} transfers/s audit on",
        f"{r['audit_off_per_s']:,.0f}/s audit off",
    )


def table(report: dict[str, Any]) -> str:
    lines = [
        "| scenario | backend | result | reference | ratio | target (2 cores) | met |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in report["results"]:
        result, reference = _figure(r)
        met = {True: "yes", False: "no", None: ""}[r["meets_target"]]
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(
            f"| {r['scenario']} | {r['backend']} | {result} | {reference} | {ratio} "
            f"| {r['target']} | {met} |"
        )
    info = report["info"]
    lines.append("")
    lines.append(
        f"{info['leaves']:,} leaves of {info['leaf_bytes_mean']:.0f} bytes; reference: "
        f"pymerkle {info['pymerkle']}; ratio: ours relative to the reference, higher is better "
        "(ledger_overhead: audit on / off)"
    )
    return "\n".join(lines)


def _child_main(argv: list[str]) -> None:
    if argv[0] == "verify":
        sys.stdout.write(json.dumps(_child_verify(argv[1], argv[2])))
        return
    command, url, kind, size, count, seed = argv
    assert command == "proofs", argv
    assert kind in ("inclusion", "consistency"), argv
    sys.stdout.write(json.dumps(_child_proofs(url, kind, int(size), int(count), int(seed))))


if __name__ == "__main__":
    _child_main(sys.argv[1:])
