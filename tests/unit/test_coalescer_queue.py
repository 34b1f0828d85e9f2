"""The group committer's queue is bounded: past `queue_max` a submitter is refused at once
with `Overloaded` (nothing reaches the ledger for it), and once the queue drains it accepts
again. The committer is kept busy by a fake ledger whose batches wait at a gate."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from strongroom.core.errors import Overloaded, ServiceUnavailable
from strongroom.core.limits import GROUP_COMMIT_QUEUE_MAX
from strongroom.ledger.coalescer import GroupCommitter
from strongroom.ledger.model import NewTransfer, TransferOutcome, TransferResult
from strongroom.ledger.service import LedgerService

QUEUE_MAX = 3


class GatedLedger:
    """Stands in for LedgerService.post_transfers: each batch waits until the gate opens."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.posted: list[str] = []

    def post_transfers(
        self,
        batch: Sequence[NewTransfer],
        *,
        atomic: bool = False,
        validated: bool = False,
        actor: str | None = None,
        actors: Sequence[str | None] | None = None,
    ) -> list[TransferOutcome]:
        self.entered.set()
        assert self.gate.wait(timeout=60), "the test never opened the gate"
        self.posted += [t.id for t in batch]
        return [TransferOutcome(i, TransferResult.CREATED, t.id) for i, t in enumerate(batch)]


def _transfer(n: int) -> NewTransfer:
    return NewTransfer(f"t-{n}", "ldg_1", "acc_bank", "acc_alice", 1 + n)


def _committer(ledger: GatedLedger) -> GroupCommitter:
    service: LedgerService = ledger  # type: ignore[assignment]  # a fake, duck-typed
    return GroupCommitter(service, wait_us=0, queue_max=QUEUE_MAX)


@pytest.mark.timeout(60)
def test_a_full_queue_refuses_at_once_then_drains_and_accepts_again() -> None:
    ledger = GatedLedger()
    with _committer(ledger) as committer:
        first = committer.submit(_transfer(0))
        # The committer has taken `first` off the queue and waits at the gate with it.
        assert ledger.entered.wait(timeout=30)
        assert committer.queued == 0
        waiting = [committer.submit(_transfer(n)) for n in range(1, 1 + QUEUE_MAX)]
        assert committer.queued == QUEUE_MAX

        with pytest.raises(Overloaded) as refused:
            committer.submit(_transfer(100))
        assert isinstance(refused.value, ServiceUnavailable)
        assert refused.value.code == "overloaded"
        assert refused.value.status == 503
        assert refused.value.retry_after_s >= 1

        async def submit_async() -> TransferOutcome:
            return await committer.submit_async(_transfer(101))

        with pytest.raises(Overloaded):
            asyncio.run(submit_async())
        assert committer.queued == QUEUE_MAX
        assert committer.stats.refused == 2

        ledger.gate.set()
        outcomes = [f.result(timeout=30) for f in (first, *waiting)]
        assert [o.result for o in outcomes] == [TransferResult.CREATED] * (1 + QUEUE_MAX)
        # The refused transfers never reached the ledger.
        assert ledger.posted == [f"t-{n}" for n in range(1 + QUEUE_MAX)]
        assert committer.queued == 0

        # Drained: it accepts again, a full queue's worth and the async way too.
        again = [committer.submit(_transfer(n)) for n in range(200, 200 + QUEUE_MAX)]
        assert all(f.result(timeout=30).result is TransferResult.CREATED for f in again)

        async def submit_async_again() -> TransferOutcome:
            return await committer.submit_async(_transfer(300))

        assert asyncio.run(submit_async_again()).result is TransferResult.CREATED
        assert "t-100" not in ledger.posted
        assert "t-101" not in ledger.posted


def test_the_queue_bound_is_checked() -> None:
    ledger = GatedLedger()
    ledger.gate.set()
    service: LedgerService = ledger  # type: ignore[assignment]
    with pytest.raises(AssertionError):
        GroupCommitter(service, queue_max=0)
    with pytest.raises(AssertionError):
        GroupCommitter(service, queue_max=GROUP_COMMIT_QUEUE_MAX + 1)
