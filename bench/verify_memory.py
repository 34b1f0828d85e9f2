"""Peak memory of `ledger verify` against the length of the history (SQLite).

    python bench/verify_memory.py --transfers 200000 [--accounts 1000] [--db PATH]

Builds (once per --db path) a ledger of --accounts accounts and --transfers simple transfers
posted in bulk batches through LedgerService.post_transfers, then runs verify in a fresh process
and prints its Python heap peak (tracemalloc: the verifier's own state; SQLite's page cache is
C memory and not in it) and the process's peak RSS (VmHWM, with a 16 MiB SQLite cache).
Verify keeps state per account, never per transfer or entry: both peaks stay flat as the
history grows.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from strongroom.core.limits import BATCH_TRANSFERS_MAX
from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.ledger.model import Direction, NewTransfer
from strongroom.ledger.service import AccountSpec, LedgerService


def build(url: str, transfers: int, accounts: int) -> None:
    engine = create_engine(url)
    migrate.upgrade(engine)
    svc = LedgerService(engine)
    ledger = svc.create_ledger("verify-memory")
    ids = [
        a.id
        for a in svc.create_accounts(
            [AccountSpec(ledger.id, "USD", Direction.CREDIT) for _ in range(accounts)]
        )
    ]
    rng = random.Random(7)
    done = 0
    while done < transfers:
        size = min(BATCH_TRANSFERS_MAX, transfers - done)
        batch = []
        for k in range(size):
            debit, credit = rng.sample(ids, 2)
            batch.append(
                NewTransfer(f"t{done + k}", ledger.id, debit, credit, rng.randint(1, 10**6))
            )
        outcomes = svc.post_transfers(batch)
        assert all(o.result.ok for o in outcomes)
        done += size
    engine.dispose()


def _vm_kib(field: str) -> int:
    """A field of /proc/self/status (Linux) in KiB: VmHWM is this process's peak RSS since its
    exec (ru_maxrss is not: Linux carries the parent's peak across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(url: str) -> dict[str, object]:
    engine = create_engine(url, sqlite_cache_mib=16)
    svc = LedgerService(engine)
    svc.get_asset("USD")  # connect and load the schema before the baseline
    rss_before_kib = _vm_kib("VmRSS")
    started = time.perf_counter()
    report = svc.verify()
    seconds = time.perf_counter() - started
    rss_peak_kib = _vm_kib("VmHWM")
    # Again under tracemalloc (several times slower): the Python heap's peak during verify.
    tracemalloc.start()
    svc.verify()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "ok": report.ok,
        "accounts": report.accounts,
        "transfers": report.transfers,
        "entries": report.entries,
        "verify_s": round(seconds, 1),
        "python_heap_peak_mib": round(peak / 2**20, 2),
        "rss_before_verify_mib": round(rss_before_kib / 1024, 1),
        "rss_peak_mib": round(rss_peak_kib / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp()) / "verify-memory.db"
    url = f"sqlite:///{db}"
    if args.measure_only:
        print(json.dumps(measure(url)))
        return
    if not db.exists():
        started = time.perf_counter()
        build(url, args.transfers, args.accounts)
        print(f"built {db} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    child = subprocess.run(
        [sys.executable, __file__, "--db", str(db), "--measure-only"],
        check=True,
        capture_output=True,
        text=True,
    )
    print(child.stdout.strip())


if __name__ == "__main__":
    main()
