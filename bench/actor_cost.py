"""What recording the actor costs a bulk batch: the measurement behind storing it on transfer
rows as a small integer (`transfers.actor_ref` into `actors`, docs/architecture.md).

`python bench/actor_cost.py [--rounds N]`

Posts batches of 8,190 transfers on SQLite (WAL, synchronous=FULL), alternately without an actor
(nothing recorded: the reference, measured in the same run) and as an API key (its actor_ref on
every row, the actor in every leaf), interleaved so that a noisy machine hurts both alike; on a
bare LedgerService and on the ledger as `serve` builds it (outbox and audit log on). Prints the
median throughput of each and their ratio.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and bench/http.py would shadow the
# standard library's `http`: drop the folder before anything imports it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from strongroom.benchmarks.ledger import BENCH_ACTOR, Fixture, full_settings  # noqa: E402
from strongroom.core.limits import BATCH_TRANSFERS_MAX  # noqa: E402
from strongroom.settings import Settings  # noqa: E402

ACCOUNTS = 10_000


def measure(label: str, full: bool, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="strongroom-actor-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        settings: Settings | None = full_settings(url) if full else None
        fx = Fixture(url, ACCOUNTS, settings)
        rng = random.Random(1)
        rates: dict[str | None, list[float]] = {None: [], BENCH_ACTOR: []}
        try:
            for r in range(rounds):
                order = (None, BENCH_ACTOR) if r % 2 == 0 else (BENCH_ACTOR, None)
                for actor in order:
                    batch = fx.transfers(BATCH_TRANSFERS_MAX, rng)
                    started = time.perf_counter()
                    outcomes = fx.service.post_transfers(batch, actor=actor)
                    elapsed = time.perf_counter() - started
                    assert all(o.result.ok for o in outcomes)
                    rates[actor].append(BATCH_TRANSFERS_MAX / elapsed)
        finally:
            fx.close()
    without = statistics.median(rates[None])
    with_actor = statistics.median(rates[BENCH_ACTOR])
    print(
        f"{label}: without an actor {without:,.0f}/s, as an API key {with_actor:,.0f}/s, "
        f"ratio {with_actor / without:.3f} (median of {rounds} batches each, interleaved)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12, help="batches of each kind")
    args = parser.parse_args()
    measure("bulk (a bare ledger)", False, args.rounds)
    measure("bulk_full (outbox and audit log)", True, args.rounds)


if __name__ == "__main__":
    main()
