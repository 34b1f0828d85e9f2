"""A concurrent client for tests/integration/test_concurrency.py.

Posts a bounded, seeded mix of work between a few hot accounts: single transfers, batches with
linked chains, pending transfers and their post/void (its own, and sometimes another worker's,
to race on the same reservation). Every acknowledged outcome is appended to a JSON lines log
and flushed before the next call, so the log is exactly what the client was told.

Any exception is logged as {"exception": ...} and the worker carries on; it always exits 0 on
its own, so the test reads failures from the log rather than from the exit status.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from strongroom.db.engine import create_engine
from strongroom.ledger.model import Action, NewTransfer
from strongroom.ledger.service import LedgerService
from strongroom.runtime import build_ledger
from strongroom.settings import Settings

BATCH_SIZE = 20
CHAIN_LENGTH_MAX = 4
AMOUNT_MAX = 600
START_WAIT_S_MAX = 60.0
START_POLL_S = 0.005


@dataclass
class Plan:
    """What one worker does. Counts are bounds; `time_limit_s` stops it early if it must."""

    singles: int = 300
    batches: int = 10
    pendings: int = 40
    cross_resolves: int = 10
    time_limit_s: float = 60.0


@dataclass
class Worker:
    worker: int
    workers: int
    ledger_id: str
    accounts: list[str]
    service: LedgerService
    rng: random.Random
    log: IO[str]
    next_n: int = 0
    own_pending: list[tuple[str, int]] = field(default_factory=list)  # (id, amount) unresolved
    pending_made: int = 0

    def new_id(self, kind: str) -> str:
        """Pending transfers are numbered on their own (`w1-p7`) so that other workers can
        guess their ids; everything else shares one counter."""
        if kind == "p":
            self.pending_made += 1
            return f"w{self.worker}-p{self.pending_made}"
        self.next_n += 1
        return f"w{self.worker}-{kind}{self.next_n}"

    def pair(self) -> tuple[str, str]:
        debit, credit = self.rng.sample(self.accounts, 2)
        return debit, credit

    def transfer(self, *, linked: bool = False, pending: bool = False) -> NewTransfer:
        debit, credit = self.pair()
        kind = "p" if pending else "t"
        return NewTransfer(
            id=self.new_id(kind),
            ledger_id=self.ledger_id,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=self.rng.randint(1, AMOUNT_MAX),
            pending=pending,
            linked=linked,
        )

    def resolve(self, target_id: str, action: Action, amount: int = 0) -> NewTransfer:
        kind = "post" if action is Action.POST else "void"
        return NewTransfer(
            id=self.new_id(kind),
            ledger_id=self.ledger_id,
            action=action,
            target_id=target_id,
            amount=amount,
        )

    def post(self, batch: list[NewTransfer], what: str) -> None:
        try:
            outcomes = self.service.post_transfers(batch)
        except Exception as exc:  # logged for the test to assert on; the worker goes on
            self.write({"exception": repr(exc), "what": what, "traceback": traceback.format_exc()})
            return
        assert len(outcomes) == len(batch)
        for t, o in zip(batch, outcomes, strict=True):
            assert o.transfer_id == t.id
            self.write(
                {
                    "id": t.id,
                    "result": o.result.value,
                    "what": what,
                    "action": t.action.name.lower(),
                    "debit": t.debit_account_id,
                    "credit": t.credit_account_id,
                    "amount": t.amount,
                    "pending": t.pending,
                    "target": t.target_id,
                    "linked": t.linked,
                }
            )
            if o.result.value == "created" and t.pending:
                self.own_pending.append((t.id, t.amount))
        self.log.flush()

    def write(self, record: dict[str, Any]) -> None:
        self.log.write(json.dumps(record, sort_keys=True) + "\n")

    # -- operations ------------------------------------------------------------------------

    def op_single(self) -> None:
        self.post([self.transfer()], "single")

    def op_batch(self) -> None:
        """BATCH_SIZE transfers: chains of 2..CHAIN_LENGTH_MAX linked ones among singles, and
        a pending transfer posted or voided within its own chain."""
        batch: list[NewTransfer] = []
        while len(batch) < BATCH_SIZE:
            room = BATCH_SIZE - len(batch)
            roll = self.rng.random()
            if roll < 0.4 or room < 2:
                batch.append(self.transfer())
            elif roll < 0.85:
                length = self.rng.randint(2, min(CHAIN_LENGTH_MAX, room))
                chain = [self.transfer(linked=True) for _ in range(length)]
                chain[-1].linked = False
                batch.extend(chain)
            else:
                reserve = self.transfer(linked=True, pending=True)
                action = self.rng.choice([Action.POST, Action.VOID])
                amount = self.rng.randint(1, reserve.amount) if action is Action.POST else 0
                batch.extend([reserve, self.resolve(reserve.id, action, amount)])
        assert len(batch) == BATCH_SIZE
        self.post(batch, "batch")
        # A pending transfer resolved within its batch is not open any more.
        resolved = {t.target_id for t in batch if t.target_id is not None}
        self.own_pending = [p for p in self.own_pending if p[0] not in resolved]

    def op_pending(self) -> None:
        self.post([self.transfer(pending=True)], "pending")

    def op_resolve(self) -> None:
        if not self.own_pending:
            self.op_cross_resolve()
            return
        target_id, amount = self.own_pending.pop(self.rng.randrange(len(self.own_pending)))
        action = self.rng.choice([Action.POST, Action.VOID])
        # A partial post (an explicit amount below the reservation) half of the time.
        posted = self.rng.choice([0, self.rng.randint(1, amount)]) if action is Action.POST else 0
        self.post([self.resolve(target_id, action, posted)], "resolve")

    def op_cross_resolve(self) -> None:
        """Post or void the full amount of a pending transfer another worker probably made:
        its id is guessed, so it may not exist yet, or be resolved already."""
        others = [w for w in range(self.workers) if w != self.worker] or [self.worker]
        other = self.rng.choice(others)
        # Workers run at about the same pace: aim near this worker's own count.
        n = self.rng.randint(max(1, self.pending_made - 5), self.pending_made + 2)
        target_id = f"w{other}-p{n}"
        action = self.rng.choice([Action.POST, Action.VOID])
        self.post([self.resolve(target_id, action)], "cross_resolve")


def run(args: argparse.Namespace) -> None:
    plan = Plan(
        singles=args.singles,
        batches=args.batches,
        pendings=args.pendings,
        cross_resolves=args.cross_resolves,
        time_limit_s=args.time_limit_s,
    )
    rng = random.Random(args.seed)
    log_path = Path(args.log)
    engine = create_engine(args.url, pool_size=2)
    try:
        # As `serve` runs it: the outbox and the audit log write in every transaction.
        service = build_ledger(engine, Settings(database_url=args.url))[0]
        with log_path.open("a", encoding="utf-8") as log:
            worker = Worker(
                args.worker, args.workers, args.ledger, args.accounts.split(","), service, rng, log
            )
            service.get_ledger(args.ledger)  # connect before the start line
            ops = (
                ["single"] * plan.singles
                + ["batch"] * plan.batches
                + ["pending"] * plan.pendings
                + ["resolve"] * plan.pendings
                + ["cross_resolve"] * plan.cross_resolves
            )
            rng.shuffle(ops)
            Path(f"{log_path}.ready").touch()
            go = Path(args.go)
            deadline = time.monotonic() + START_WAIT_S_MAX
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(START_POLL_S)
            started = time.monotonic()
            done = 0
            for op in ops:
                if time.monotonic() - started > plan.time_limit_s:
                    break
                getattr(worker, f"op_{op}")()
                done += 1
            worker.write({"done": done, "planned": len(ops), "started": go.exists()})
            log.flush()
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--accounts", required=True, help="comma-separated hot account ids")
    parser.add_argument("--worker", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--log", required=True, help="JSON lines file of acknowledged outcomes")
    parser.add_argument("--go", required=True, help="start posting once this file exists")
    parser.add_argument("--singles", type=int, default=Plan.singles)
    parser.add_argument("--batches", type=int, default=Plan.batches)
    parser.add_argument("--pendings", type=int, default=Plan.pendings)
    parser.add_argument("--cross-resolves", type=int, default=Plan.cross_resolves)
    parser.add_argument("--time-limit-s", type=float, default=Plan.time_limit_s)
    args = parser.parse_args()
    try:
        run(args)
    except Exception:  # the log says what went wrong; see the module docstring
        with Path(args.log).open("a", encoding="utf-8") as log:
            log.write(json.dumps({"exception": traceback.format_exc(), "what": "run"}) + "\n")


if __name__ == "__main__":
    main()
