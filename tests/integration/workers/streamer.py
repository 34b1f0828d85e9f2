"""A client that streams batches until it is killed, for tests/integration/test_crash_safety.py.

Batch n is a pure function of (seed, n, ledger, accounts): see plan_batch(). So the test can
rebuild every batch a worker may have sent, and a restarted worker can resend the batch that
was in flight when its predecessor died (the same ids and contents: an idempotent retry).

After each post_transfers returns, one line {"batch": n, "outcomes": [[id, result], ...]} is
appended to the acknowledgement file with a single write(2). A line is an acknowledgement only
once its newline is there; a torn last line (killed mid-write) acknowledges nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Sequence

from strongroom.db.engine import create_engine
from strongroom.ledger.model import Action, NewTransfer
from strongroom.ledger.service import LedgerService

BATCH_SIZE = 50
CHAIN_LENGTH_MIN = 3
CHAIN_LENGTH_MAX = 5
AMOUNT_MAX = 400
BATCHES_MAX_DEFAULT = 100_000
TIME_LIMIT_S_DEFAULT = 60.0


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
    args = parser.parse_args()
    accounts = args.accounts.split(",")
    engine = create_engine(args.url, pool_size=1)
    service = LedgerService(engine)
    fd = os.open(args.acks, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        started = time.monotonic()
        for batch_no in range(args.start_batch, args.start_batch + args.batches_max):
            if time.monotonic() - started > args.time_limit_s:
                break
            batch = plan_batch(args.seed, batch_no, args.ledger, accounts)
            outcomes = service.post_transfers(batch)
            line = json.dumps(
                {"batch": batch_no, "outcomes": [[o.transfer_id, o.result.value] for o in outcomes]}
            )
            data = (line + "\n").encode()
            written = os.write(fd, data)
            assert written == len(data), "a short write to a regular file"
    finally:
        os.close(fd)
        engine.dispose()


if __name__ == "__main__":
    main()
