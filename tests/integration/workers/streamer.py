"""A client that streams batches until it is killed, for tests/integration/test_crash_safety.py
and tests/integration/test_durable_ack.py.

It runs the ledger as `serve` does (runtime.build_ledger: the outbox and the audit log on, in the
same transaction as the transfers) and publishes an audit checkpoint every few batches, as
`serve`'s publisher does on a timer.

Batch n is a pure function of (seed, n, ledger, accounts): see plan_batch(). So the test can
rebuild every batch a worker may have sent, and a restarted worker can resend the batch that
was in flight when its predecessor died (the same ids and contents: an idempotent retry).

After each post_transfers returns, one line {"batch": n, "outcomes": [[id, result], ...]} is
appended to the acknowledgement file with a single write(2). A line is an acknowledgement only
once its newline is there; a torn last line (killed mid-write) acknowledges nothing.

On SQLite, with --state, the worker keeps one byte of a shared file (mmap, no system call) saying
where its database connection is: the test stops the worker (SIGSTOP), reads the byte and so
knows whether its kill lands inside a write transaction (see State).
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import random
import sqlite3
import time
from collections.abc import Sequence
from enum import IntEnum
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from strongroom.db.engine import create_engine
from strongroom.ledger.model import Action, NewTransfer
from strongroom.runtime import build_ledger
from strongroom.settings import Settings

BATCH_SIZE = 50
CHAIN_LENGTH_MIN = 3
CHAIN_LENGTH_MAX = 5
AMOUNT_MAX = 400
BATCHES_MAX_DEFAULT = 100_000
TIME_LIMIT_S_DEFAULT = 60.0
PUBLISH_EVERY_DEFAULT = 5  # batches between audit checkpoints
STATE_SIZE = 1
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class State(IntEnum):
    """Where the worker's SQLite connection is, as the statements it runs say (the byte is set
    just before each statement runs)."""

    IDLE = 0  # no transaction, or the last one rolled back
    READING = 1  # BEGIN ran, nothing written yet
    WRITING = 2  # inside a transaction that has run an INSERT, UPDATE or DELETE: no COMMIT yet
    COMMITTING = 3  # COMMIT started (it may have finished; nothing else has begun since)


def read_state(path: str) -> State:
    with open(path, "rb") as f:
        return State(f.read(STATE_SIZE)[0])


def _track_state(engine: Engine, path: str) -> mmap.mmap:
    """Keep State in the first byte of `path` for every connection of `engine` (SQLite)."""
    with open(path, "wb") as f:
        f.write(bytes(STATE_SIZE))
    fd = os.open(path, os.O_RDWR)
    shared = mmap.mmap(fd, STATE_SIZE)
    os.close(fd)

    def on_statement(statement: str) -> None:
        verb = statement.lstrip()[:8].upper()
        if verb.startswith("BEGIN"):
            shared[0] = State.READING
        elif verb.startswith(WRITE_VERBS):
            shared[0] = State.WRITING
        elif verb.startswith(("COMMIT", "END")):
            shared[0] = State.COMMITTING
        elif verb.startswith("ROLLBACK"):
            shared[0] = State.IDLE

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.set_trace_callback(on_statement)

    return shared


def plan_batch(
    seed: int, batch_no: int, ledger_id: str, accounts: Sequence[str]
) -> list[NewTransfer]:
    """BATCH_SIZE transfers: linked chains of CHAIN_LENGTH_MIN..CHAIN_LENGTH_MAX among single
    ones. Some chains reserve (pending) and then post or void that reservation in the chain."""
    rng = random.Random(seed * 1_000_003 + batch_no)
    batch: list[NewTransfer] = []

    def transfer(*, linked: bool, pending: bool = False) -> NewTransfer:
        debit, credit = rng.sample(list(accounts), 2)
        return NewTransfer(
            id=f"b{batch_no}-{len(batch)}",
            ledger_id=ledger_id,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=rng.randint(1, AMOUNT_MAX),
            pending=pending,
            linked=linked,
        )

    while len(batch) < BATCH_SIZE:
        room = BATCH_SIZE - len(batch)
        if room < CHAIN_LENGTH_MIN or rng.random() < 0.25:
            batch.append(transfer(linked=False))
            continue
        length = rng.randint(CHAIN_LENGTH_MIN, min(CHAIN_LENGTH_MAX, room))
        start = len(batch)
        if rng.random() < 0.2:
            # ... a transfer, a reservation, then its post (partial or full) or void.
            batch.append(transfer(linked=True))
            reserve = transfer(linked=True, pending=True)
            batch.append(reserve)
            action = rng.choice([Action.POST, Action.VOID])
            amount = rng.choice([0, rng.randint(1, reserve.amount)]) if action is Action.POST else 0
            batch.append(
                NewTransfer(
                    id=f"b{batch_no}-{len(batch)}",
                    ledger_id=ledger_id,
                    action=action,
                    target_id=reserve.id,
                    amount=amount,
                    linked=True,
                )
            )
        while len(batch) - start < length:
            batch.append(transfer(linked=True))
        batch[-1].linked = False
    assert len(batch) == BATCH_SIZE
    return batch


def chains(batch: Sequence[NewTransfer]) -> list[list[str]]:
    """The batch's ids grouped as the engine groups them: a run of linked transfers and the
    first unlinked one after it form one chain; an unlinked transfer alone is a chain of one."""
    groups: list[list[str]] = []
    current: list[str] = []
    for t in batch:
        current.append(t.id)
        if not t.linked:
            groups.append(current)
            current = []
    assert not current, "a batch never ends with an open chain"
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--accounts", required=True, help="comma-separated account ids")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--start-batch", type=int, required=True)
    parser.add_argument("--acks", required=True, help="file of acknowledgement lines")
    parser.add_argument("--batches-max", type=int, default=BATCHES_MAX_DEFAULT)
    parser.add_argument("--time-limit-s", type=float, default=TIME_LIMIT_S_DEFAULT)
    parser.add_argument("--publish-every", type=int, default=PUBLISH_EVERY_DEFAULT)
    parser.add_argument("--state", help="SQLite: a file whose first byte tracks State")
    args = parser.parse_args()
    accounts = args.accounts.split(",")
    settings = Settings(database_url=args.url)
    assert settings.audit, "the worker runs what `serve` runs: the audit log on"
    engine = create_engine(args.url, pool_size=1)
    shared = None
    if args.state is not None:
        assert engine.dialect.name == "sqlite", "--state tracks SQLite statements"
        shared = _track_state(engine, args.state)
    ledger, audit = build_ledger(engine, settings)
    fd = os.open(args.acks, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        started = time.monotonic()
        for batch_no in range(args.start_batch, args.start_batch + args.batches_max):
            if time.monotonic() - started > args.time_limit_s:
                break
            batch = plan_batch(args.seed, batch_no, args.ledger, accounts)
            outcomes = ledger.post_transfers(batch)
            line = json.dumps(
                {"batch": batch_no, "outcomes": [[o.transfer_id, o.result.value] for o in outcomes]}
            )
            data = (line + "\n").encode()
            written = os.write(fd, data)
            assert written == len(data), "a short write to a regular file"
            if batch_no % args.publish_every == args.publish_every - 1:
                audit.publish()
    finally:
        os.close(fd)
        engine.dispose()
        if shared is not None:
            shared.close()


if __name__ == "__main__":
    main()
