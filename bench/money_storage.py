"""How money columns cost on the databases: the measurement behind the 128-bit storage choice
(docs/architecture.md, "Money is 128-bit, stored natively where it fits").

`python bench/money_storage.py [--rounds N] [--no-postgres]`

Inserts the entries of batches of 8,190 transfers (16,380 rows, 6 money columns each, as the
ledger's `entries` table) in one transaction per batch, durable (SQLite WAL with
synchronous=FULL), interleaving the representations so that a noisy machine hurts them alike:
SQLite native INTEGER (what the ledger writes for a batch whose money fits 64 bits: the
engine's Writes.wide flag skips any encoding), the chosen hybrid with every value passed
through core.money.to_stored_int (what a wide batch pays), a 17-byte BLOB for every value, a
64-bit column plus a high part; PostgreSQL BIGINT against NUMERIC(39,0) by COPY. Prints the
median time per batch and the ratio to native INTEGER / BIGINT (the reference, measured in the
same run).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import tempfile
import time
from typing import Any

from strongroom.core.money import to_stored_int

TRANSFERS = 8_190
MONEY_COLUMNS = 6
SQLITE_KINDS = ("native", "hybrid", "blob", "split")


def _money(values: list[int], kind: str) -> list[Any]:
    if kind == "hybrid":
        return [to_stored_int(v) for v in values]
    if kind == "blob":
        return [v.to_bytes(17, "big", signed=True) for v in values]
    if kind == "split":
        parts = [x for v in values for x in (v & (2**64 - 1), v >> 64)]
        return [p - 2**64 if p >= 2**63 else p for p in parts]
    return values


Values = list[tuple[int, str, list[int]]]


def _values(rng: random.Random) -> Values:
    """A batch's varying parts, drawn before the clock starts."""
    return [
        (i, f"acc_{rng.randrange(10_000):026d}", [rng.randint(1, 10**9) for _ in range(6)])
        for i in range(2 * TRANSFERS)
    ]


def _rows(values: Values, base: int, kind: str) -> list[tuple[Any, ...]]:
    """The rows as the store would hand them to the driver (timed: the encoding counts)."""
    return [
        (base + i, account, i, None, f"tr_{i:026d}", i & 1, *_money(money, kind), 1)
        for i, account, money in values
    ]


def sqlite_figures(rounds: int, directory: str) -> dict[str, float]:
    connections = {}
    for kind in SQLITE_KINDS:
        conn = sqlite3.connect(os.path.join(directory, f"{kind}.db"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        pairs = MONEY_COLUMNS * (2 if kind == "split" else 1)
        money = ", ".join(f"m{i} BIGINT" for i in range(pairs))
        conn.execute(
            f"CREATE TABLE entries (id INTEGER PRIMARY KEY, account_id TEXT, version BIGINT, "
            f"prev_id BIGINT, transfer_id TEXT, direction INT, {money}, created_at BIGINT)"
        )
        connections[kind] = conn
    rng = random.Random(1)
    seconds: dict[str, list[float]] = {kind: [] for kind in SQLITE_KINDS}
    for r in range(rounds + 1):
        values = _values(rng)
        for kind in SQLITE_KINDS:
            started = time.perf_counter()
            rows = _rows(values, r * 10**6, kind)
            conn = connections[kind]
            marks = ",".join("?" * len(rows[0]))
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(f"INSERT INTO entries VALUES ({marks})", rows)
            conn.execute("COMMIT")
            if r:  # the first round warms the files
                seconds[kind].append(time.perf_counter() - started)
    for conn in connections.values():
        conn.close()
    return {kind: statistics.median(s) for kind, s in seconds.items()}


def postgres_figures(rounds: int) -> dict[str, float] | None:
    try:
        import psycopg

        admin = psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=2
        )
    except Exception as exc:  # no server here: say so and go on
        print(f"postgresql: skipped ({type(exc).__name__})")
        return None
    name = f"money_storage_{os.getpid()}"
    admin.execute(f"CREATE DATABASE {name}")
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}") as conn:
            for kind, sql_type in (("bigint", "BIGINT"), ("numeric", "NUMERIC(39,0)")):
                money = ", ".join(f"m{i} {sql_type}" for i in range(MONEY_COLUMNS))
                conn.execute(
                    f"CREATE TABLE entries_{kind} (id BIGINT PRIMARY KEY, account_id TEXT, "
                    f"version BIGINT, prev_id BIGINT, transfer_id TEXT, direction SMALLINT, "
                    f"{money}, created_at BIGINT)"
                )
            conn.commit()
            rng = random.Random(1)
            seconds: dict[str, list[float]] = {"bigint": [], "numeric": []}
            for r in range(rounds + 1):
                values = _values(rng)
                for kind in seconds:
                    started = time.perf_counter()
                    rows = _rows(values, r * 10**6, "native")
                    with conn.cursor() as cur, cur.copy(f"COPY entries_{kind} FROM STDIN") as cp:
                        for row in rows:
                            cp.write_row(row)
                    conn.commit()
                    if r:
                        seconds[kind].append(time.perf_counter() - started)
    finally:
        admin.execute(f"DROP DATABASE {name}")
        admin.close()
    return {kind: statistics.median(s) for kind, s in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    print(f"batches of {TRANSFERS:,} transfers' entries ({2 * TRANSFERS:,} rows), "
          f"median of {args.rounds}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="money-storage-") as directory:
        sqlite = sqlite_figures(args.rounds, directory)
    for kind, s in sqlite.items():
        ratio = s / sqlite["native"]
        print(f"sqlite      {kind:8s} {s * 1000:8.1f} ms  x{ratio:.2f} of native INTEGER")
    if not args.no_postgres:
        pg = postgres_figures(args.rounds)
        if pg is not None:
            for kind, s in pg.items():
                print(
                    f"postgresql  {kind:8s} {s * 1000:8.1f} ms  x{s / pg['bigint']:.2f} of BIGINT"
                )


if __name__ == "__main__":
    main()
