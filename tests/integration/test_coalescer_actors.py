"""Single transfers coalesced by the group committer keep their actor: each batch the gates
and sinks see is one actor's (a gate such as the transfer step-up gate decides by who
asked)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from strongroom.core.errors import ErrorCode
from strongroom.ledger.coalescer import GroupCommitter
from strongroom.ledger.model import Direction, GateDecision, NewTransfer
from strongroom.ledger.model import TransferResult as R
from strongroom.ledger.service import AccountSpec, LedgerService


@dataclass
class ActorLog:
    """A gate that allows everything and records which transfers each batch had, and whose."""

    name: str = "actors"
    budget_ms: int = 5_000
    fail_open: bool = False
    errors: tuple[ErrorCode, ...] = ()
    seen: list[tuple[list[str], str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(
        self, batch: Sequence[NewTransfer], actor: str | None
    ) -> Sequence[GateDecision | None]:
        with self.lock:
            self.seen.append(([t.id for t in batch], actor))
        return [None] * len(batch)


def test_coalesced_transfers_reach_the_gates_with_their_own_actor(db_engine: Engine) -> None:
    gate = ActorLog()
    service = LedgerService(db_engine, gates=[gate])
    ledger = service.create_ledger("main")
    bank, alice = service.create_accounts(
        [
            AccountSpec(ledger.id, "USD", Direction.DEBIT),
            AccountSpec(ledger.id, "USD", Direction.CREDIT),
        ]
    )
    actors = ["api_key:key_a", "user:usr_b", None]
    owner: dict[str, str | None] = {}
    futures = []
    # wait_us lets the committer gather the three actors' transfers into one take.
    with GroupCommitter(service, wait_us=50_000) as committer:
        for n in range(30):
            actor = actors[n % 3]
            tid = f"t-{n}"
            owner[tid] = actor
            futures.append(
                committer.submit(NewTransfer(tid, ledger.id, bank.id, alice.id, 1 + n), actor)
            )
        results = [f.result(timeout=60).result for f in futures]
    assert results == [R.CREATED] * 30
    seen_ids = [tid for ids, _ in gate.seen for tid in ids]
    assert sorted(seen_ids) == sorted(owner)
    for ids, actor in gate.seen:
        assert {owner[tid] for tid in ids} == {actor}, (ids, actor)
    assert {actor for _, actor in gate.seen} == set(actors)
