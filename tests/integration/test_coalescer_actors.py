"""Single transfers coalesced by the group committer keep their actor: each batch a gate is
asked about is one actor's (a gate such as the transfer step-up gate decides by who asked),
while a batch gathered from several actors still commits in one transaction, its sinks told
each transfer's own actor."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from strongroom.core.errors import ErrorCode
from strongroom.ledger.coalescer import GroupCommitter
from strongroom.ledger.model import Direction, GateDecision, NewTransfer
from strongroom.ledger.model import TransferResult as R
from strongroom.ledger.pipeline import CommittedBatch
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


@dataclass
class Commits:
    """A sink that records each write transaction's batch."""

    batches: list[CommittedBatch] = field(default_factory=list)

    def __call__(self, uow: object, batch: CommittedBatch) -> None:
        self.batches.append(batch)


def test_a_batch_of_several_actors_is_one_commit_and_one_gate_call_per_actor(
    db_engine: Engine,
) -> None:
    gate, commits = ActorLog(), Commits()
    service = LedgerService(db_engine, gates=[gate], sinks=[commits])
    ledger = service.create_ledger("main")
    bank, alice = service.create_accounts(
        [
            AccountSpec(ledger.id, "USD", Direction.DEBIT),
            AccountSpec(ledger.id, "USD", Direction.CREDIT),
        ]
    )
    actors = ["api_key:key_a", "user:usr_b", None, "user:usr_b", "api_key:key_a"]
    batch = [NewTransfer(f"m-{n}", ledger.id, bank.id, alice.id, 1 + n) for n in range(5)]
    outcomes = service.post_transfers(batch, validated=True, actors=actors)
    assert [o.result for o in outcomes] == [R.CREATED] * 5
    assert sorted(gate.seen, key=lambda s: str(s[1])) == [
        (["m-2"], None),
        (["m-0", "m-4"], "api_key:key_a"),
        (["m-1", "m-3"], "user:usr_b"),
    ]
    assert len(commits.batches) == 1
    committed = commits.batches[0]
    assert committed.actors == {t.id: a for t, a in zip(batch, actors, strict=True)}
