"""Group commit: many concurrent single-transfer requests share one transaction and one fsync.

Submitters hand a transfer to `submit` (threads) or `submit_async` (asyncio) and wait on a
future; one committer thread takes everything queued (up to BATCH_TRANSFERS_MAX), lingers while
more keep arriving (at most `wait_us`), posts it as one batch and resolves every future with its
own result. Transfers in a batch are not linked, so one refusal never affects another submitter.
Each transfer keeps its submitter's actor (who asked: an API key, a user): a batch gathered
from several actors is still posted in one transaction, the pipeline handing each gate one
call per actor (a gate such as the transfer step-up gate decides by who asked) and recording
each transfer's own actor on its row and its audit leaf.
Asyncio waiters are resolved with one call into their event loop per batch, not one per transfer.
The committer checks the payments it gathered (each names a customer of its ledger's tenant who
owns the accounts it debits: LedgerService.payment_refusals) in one read for the whole batch, and
refuses a payment that fails alone, its submitter getting the error; the rest post together.

The queue is bounded (`queue_max`, at most GROUP_COMMIT_QUEUE_MAX): past it a submitter is
refused at once with `Overloaded` (503, nothing written) rather than left to wait behind a queue
that grows faster than batches commit.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass

from strongroom.core.errors import Overloaded
from strongroom.core.limits import (
    BATCH_TRANSFERS_MAX,
    GROUP_COMMIT_QUEUE_MAX,
    GROUP_COMMIT_WAIT_US_MAX,
    UNAVAILABLE_RETRY_AFTER_S,
)
from strongroom.ledger.model import NewTransfer, TransferOutcome, validate_transfer
from strongroom.ledger.service import LedgerService

Waiter = (
    Future[TransferOutcome] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[TransferOutcome]"]
)
Item = tuple[NewTransfer, Waiter, str | None]  # a transfer, its submitter's waiter, its actor


@dataclass(slots=True)
class CoalescerStats:
    batches: int = 0
    transfers: int = 0
    largest_batch: int = 0
    refused: int = 0  # submitters turned away by a full queue


def _resolve_async(pairs: list[tuple[asyncio.Future[TransferOutcome], object]]) -> None:
    for future, value in pairs:
        if future.done():
            continue  # the waiter was cancelled
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            assert isinstance(value, TransferOutcome)
            future.set_result(value)


class GroupCommitter:
    def __init__(
        self,
        service: LedgerService,
        *,
        wait_us: int = 1_000,
        batch_max: int = BATCH_TRANSFERS_MAX,
        queue_max: int = GROUP_COMMIT_QUEUE_MAX,
    ) -> None:
        assert 0 <= wait_us <= GROUP_COMMIT_WAIT_US_MAX
        assert 1 <= batch_max <= BATCH_TRANSFERS_MAX
        assert 1 <= queue_max <= GROUP_COMMIT_QUEUE_MAX
        self._service = service
        self._wait_s = wait_us / 1_000_000
        self._batch_max = batch_max
        self._queue_max = queue_max
        self._queue: deque[Item] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._target = 1
        self.stats = CoalescerStats()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def _enqueue(self, transfer: NewTransfer, waiter: Waiter, actor: str | None) -> None:
        validate_transfer(transfer)
        assert not transfer.linked, "a coalesced transfer stands alone"
        with self._cond:
            if self._closed:
                raise RuntimeError("the group committer is closed")
            if len(self._queue) >= self._queue_max:
                self.stats.refused += 1
                raise Overloaded(
                    f"the group-commit queue is full ({self._queue_max} transfers): retry shortly",
                    retry_after_s=UNAVAILABLE_RETRY_AFTER_S,
                )
            self._queue.append((transfer, waiter, actor))
            # Wake the committer when work arrives and when the queue reaches the size of the
            # last batch, not on every arrival: that would hand the GIL back and forth per
            # transfer while it lingers.
            queued = len(self._queue)
            if queued == 1 or queued == self._target:
                self._cond.notify()

    @property
    def queued(self) -> int:
        """Transfers waiting for the committer (the batch being committed not counted)."""
        with self._cond:
            return len(self._queue)

    def submit(self, transfer: NewTransfer, actor: str | None = None) -> Future[TransferOutcome]:
        """Validates now (raising InvalidRequest) and queues; the future gets the result.
        A full queue raises Overloaded, and nothing is queued. `actor`: who asked."""
        future: Future[TransferOutcome] = Future()
        self._enqueue(transfer, future, actor)
        return future

    async def submit_async(
        self, transfer: NewTransfer, actor: str | None = None
    ) -> TransferOutcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[TransferOutcome] = loop.create_future()
        self._enqueue(transfer, (loop, future), actor)
        return await future

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def __enter__(self) -> GroupCommitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take(self) -> list[Item] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            # Linger until as many are queued as last time (the submitters that were waiting
            # on that batch), at most wait_us.
            deadline = time.monotonic() + self._wait_s
            while len(self._queue) < self._target and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            count = min(len(self._queue), self._batch_max)
            # Next time, expect as many as this batch had, or more if more were waiting.
            self._target = max(1, count)
            return [self._queue.popleft() for _ in range(count)]

    def _commit(self, items: list[Item]) -> list[object]:
        """Each item's outcome, or the exception its submitter gets: a payment naming no
        customer of its ledger's tenant, or debiting another customer's account, is refused
        alone (LedgerService.payment_refusals, one read for the whole batch) and the rest
        posted as one batch."""
        transfers = [t for t, _, _ in items]
        actors = [a for _, _, a in items]
        results: list[object] = [None] * len(items)
        refused: Mapping[int, Exception] = {}
        if any(t.payment is not None for t in transfers):
            try:
                refused = self._service.payment_refusals(transfers)
            except Exception as exc:
                # The check's read failed: its payments get the error, the rest still post.
                refused = {i: exc for i, t in enumerate(transfers) if t.payment is not None}
        try:
            posted = [i for i in range(len(items)) if i not in refused]
            for i, refusal in refused.items():
                results[i] = refusal
            if refused:
                transfers = [transfers[i] for i in posted]
                actors = [actors[i] for i in posted]
            if transfers:
                outcomes = self._service.post_transfers(transfers, validated=True, actors=actors)
                for i, o in zip(posted, outcomes, strict=True):
                    results[i] = TransferOutcome(0, o.result, o.transfer_id, o.row, o.decision)
                self.stats.batches += 1
                self.stats.transfers += len(transfers)
                self.stats.largest_batch = max(self.stats.largest_batch, len(transfers))
        except Exception as exc:
            return [results[i] if i in refused else exc for i in range(len(items))]
        return results

    def _run(self) -> None:
        while True:
            items = self._take()
            if items is None:
                return
            _resolve(items, self._commit(items))


def _resolve(items: list[Item], results: list[object]) -> None:
    """Hands every submitter its result: a thread's future at once, an event loop's waiters with
    one call into that loop."""
    by_loop: dict[
        asyncio.AbstractEventLoop, list[tuple[asyncio.Future[TransferOutcome], object]]
    ] = {}
    for (_, waiter, _), value in zip(items, results, strict=True):
        if isinstance(waiter, Future):
            if isinstance(value, BaseException):
                waiter.set_exception(value)
            else:
                assert isinstance(value, TransferOutcome)
                waiter.set_result(value)
        else:
            loop, future = waiter
            by_loop.setdefault(loop, []).append((future, value))
    for loop, pairs in by_loop.items():
        if not loop.is_closed():
            loop.call_soon_threadsafe(_resolve_async, pairs)
