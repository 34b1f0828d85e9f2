"""Group commit: many concurrent single-transfer requests share one transaction and one fsync.

Submitters hand a transfer to `submit` (threads) or `submit_async` (asyncio) and wait on a
future; one committer thread takes everything queued (up to BATCH_TRANSFERS_MAX), lingers at
most `wait_us` for more, posts it as one batch and resolves every future with its own result.
Transfers in a batch are not linked, so one refusal never affects another submitter.
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


@dataclass(slots=True)
class CoalescerStats:
    batches: int = 0
    transfers: int = 0
    largest_batch: int = 0


class GroupCommitter:
    def __init__(
        self,
        service: LedgerService,
        *,
        wait_us: int = 500,
        batch_max: int = BATCH_TRANSFERS_MAX,
    ) -> None:
        assert 0 <= wait_us <= GROUP_COMMIT_WAIT_US_MAX
        assert 1 <= batch_max <= BATCH_TRANSFERS_MAX
        self._service = service
        self._wait_s = wait_us / 1_000_000
        self._batch_max = batch_max
        self._queue: deque[tuple[NewTransfer, Future[TransferOutcome]]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.stats = CoalescerStats()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def submit(self, transfer: NewTransfer) -> Future[TransferOutcome]:
        """Validates now (raising InvalidRequest) and queues; the future gets the result."""
        validate_transfer(transfer)
        assert not transfer.linked, "a coalesced transfer stands alone"
        future: Future[TransferOutcome] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the group committer is closed")
            self._queue.append((transfer, future))
            if len(self._queue) == 1 or len(self._queue) >= self._batch_max:
                self._cond.notify()
        return future

    async def submit_async(self, transfer: NewTransfer) -> TransferOutcome:
        return await asyncio.wrap_future(self.submit(transfer))

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def __enter__(self) -> GroupCommitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take(self) -> list[tuple[NewTransfer, Future[TransferOutcome]]] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            if self._wait_s and len(self._queue) < self._batch_max and not self._closed:
                deadline = time.monotonic() + self._wait_s
                while len(self._queue) < self._batch_max and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            count = min(len(self._queue), self._batch_max)
            return [self._queue.popleft() for _ in range(count)]

    def _run(self) -> None:
        while True:
            items = self._take()
            if items is None:
                return
            batch = [t for t, _ in items]
            try:
                outcomes = self._service.post_transfers(batch, validated=True)
            except BaseException as exc:
                for _, future in items:
                    future.set_exception(exc)
                continue
            self.stats.batches += 1
            self.stats.transfers += len(items)
            self.stats.largest_batch = max(self.stats.largest_batch, len(items))
            for (_, future), outcome in zip(items, outcomes, strict=True):
                future.set_result(TransferOutcome(0, outcome.result, outcome.transfer_id))
