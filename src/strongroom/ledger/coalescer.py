"""Group commit: many concurrent single-transfer requests share one transaction and one fsync.

Submitters hand a transfer to `submit` (threads) or `submit_async` (asyncio) and wait on a
future; one committer thread takes everything queued (up to BATCH_TRANSFERS_MAX), lingers while
more keep arriving (at most `wait_us`), posts it as one batch and resolves every future with its
own result. Transfers in a batch are not linked, so one refusal never affects another submitter.
Asyncio waiters are resolved with one call into their event loop per batch, not one per transfer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass

from strongroom.core.limits import BATCH_TRANSFERS_MAX, GROUP_COMMIT_WAIT_US_MAX
from strongroom.ledger.model import NewTransfer, TransferOutcome, validate_transfer
from strongroom.ledger.service import LedgerService

Waiter = (
    Future[TransferOutcome] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[TransferOutcome]"]
)


@dataclass(slots=True)
class CoalescerStats:
    batches: int = 0
    transfers: int = 0
    largest_batch: int = 0


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
    ) -> None:
        assert 0 <= wait_us <= GROUP_COMMIT_WAIT_US_MAX
        assert 1 <= batch_max <= BATCH_TRANSFERS_MAX
        self._service = service
        self._wait_s = wait_us / 1_000_000
        self._batch_max = batch_max
        self._queue: deque[tuple[NewTransfer, Waiter]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._target = 1
        self.stats = CoalescerStats()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def _enqueue(self, transfer: NewTransfer, waiter: Waiter) -> None:
        validate_transfer(transfer)
        assert not transfer.linked, "a coalesced transfer stands alone"
        with self._cond:
            if self._closed:
                raise RuntimeError("the group committer is closed")
            self._queue.append((transfer, waiter))
            # Wake the committer when work arrives and when the queue reaches the size of the
            # last batch, not on every arrival: that would hand the GIL back and forth per
            # transfer while it lingers.
            queued = len(self._queue)
            if queued == 1 or queued == self._target:
                self._cond.notify()

    def submit(self, transfer: NewTransfer) -> Future[TransferOutcome]:
        """Validates now (raising InvalidRequest) and queues; the future gets the result."""
        future: Future[TransferOutcome] = Future()
        self._enqueue(transfer, future)
        return future

    async def submit_async(self, transfer: NewTransfer) -> TransferOutcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[TransferOutcome] = loop.create_future()
        self._enqueue(transfer, (loop, future))
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

    def _take(self) -> list[tuple[NewTransfer, Waiter]] | None:
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

    def _run(self) -> None:
        while True:
            items = self._take()
            if items is None:
                return
            results: list[object]
            try:
                outcomes = self._service.post_transfers([t for t, _ in items], validated=True)
                results = [
                    TransferOutcome(0, o.result, o.transfer_id, o.row, o.decision) for o in outcomes
                ]
                self.stats.batches += 1
                self.stats.transfers += len(items)
                self.stats.largest_batch = max(self.stats.largest_batch, len(items))
            except Exception as exc:
                results = [exc] * len(items)
            by_loop: dict[
                asyncio.AbstractEventLoop, list[tuple[asyncio.Future[TransferOutcome], object]]
            ] = {}
            for (_, waiter), value in zip(items, results, strict=True):
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
