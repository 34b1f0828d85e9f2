"""Group commit for the card vault: concurrent tokenizations (and the audit leaves of reveals)
share one transaction and one fsync, as the ledger's transfers do (ledger/coalescer.py).

Submitters do their own crypto first (validation, the keyed hash, a fresh data key, sealing:
`VaultService.seal`), so that the committer thread only writes rows. It takes everything queued
(up to `batch_max`), lingers while more keep arriving (at most `wait_us`, until as many are
queued as the last batch had), writes the batch in one transaction and resolves every
submitter's future: with None once committed, or with the batch's exception (nothing of it was
written). The queue is bounded: past `queue_max` a submitter is refused at once with
`Overloaded` (503, nothing written).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

from strongroom.core.errors import Overloaded
from strongroom.core.limits import (
    GROUP_COMMIT_WAIT_US_MAX,
    UNAVAILABLE_RETRY_AFTER_S,
    VAULT_BATCH_MAX,
    VAULT_QUEUE_MAX,
)

T = TypeVar("T")
Waiter = Future[None] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


@dataclass(slots=True)
class CommitStats:
    batches: int = 0
    items: int = 0
    largest_batch: int = 0
    refused: int = 0  # submitters turned away by a full queue


def _resolve_async(pairs: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for future, error in pairs:
        if future.done():
            continue  # the waiter was cancelled
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(None)


class GroupCommit(Generic[T]):
    """`commit(items)` writes a batch in one transaction (all or nothing), on one thread."""

    def __init__(
        self,
        commit: Callable[[Sequence[T]], None],
        *,
        name: str = "vault-commit",
        wait_us: int = 1_000,
        batch_max: int = VAULT_BATCH_MAX,
        queue_max: int = VAULT_QUEUE_MAX,
    ) -> None:
        assert 0 <= wait_us <= GROUP_COMMIT_WAIT_US_MAX
        assert 1 <= batch_max <= VAULT_BATCH_MAX
        assert 1 <= queue_max <= VAULT_QUEUE_MAX
        self._commit = commit
        self._wait_s = wait_us / 1_000_000
        self._batch_max = batch_max
        self._queue_max = queue_max
        self._queue: deque[tuple[T, Waiter]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._target = 1
        self.stats = CommitStats()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _enqueue(self, item: T, waiter: Waiter) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the group committer is closed")
            if len(self._queue) >= self._queue_max:
                self.stats.refused += 1
                raise Overloaded(
                    f"the card vault's commit queue is full ({self._queue_max} waiting): "
                    "retry shortly",
                    retry_after_s=UNAVAILABLE_RETRY_AFTER_S,
                )
            self._queue.append((item, waiter))
            # Wake the committer on the first arrival and when the last batch's size is
            # reached, not on every one (each wake-up hands the GIL over).
            queued = len(self._queue)
            if queued == 1 or queued == self._target:
                self._cond.notify()

    @property
    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    def submit(self, item: T) -> Future[None]:
        """Queues `item`; the future is done once it is committed. A full queue raises
        Overloaded and queues nothing."""
        future: Future[None] = Future()
        self._enqueue(item, future)
        return future

    async def submit_async(self, item: T) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._enqueue(item, (loop, future))
        await future

    def close(self) -> None:
        """Commits what is queued, then stops."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def __enter__(self) -> GroupCommit[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take(self) -> list[tuple[T, Waiter]] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            deadline = time.monotonic() + self._wait_s
            while len(self._queue) < self._target and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            count = min(len(self._queue), self._batch_max)
            self._target = max(1, count)
            return [self._queue.popleft() for _ in range(count)]

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            error: BaseException | None = None
            try:
                self._commit([item for item, _ in taken])
                self.stats.batches += 1
                self.stats.items += len(taken)
                self.stats.largest_batch = max(self.stats.largest_batch, len(taken))
            except Exception as exc:
                error = exc
            by_loop: dict[
                asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], BaseException | None]]
            ] = {}
            for _, waiter in taken:
                if isinstance(waiter, Future):
                    if error is not None:
                        waiter.set_exception(error)
                    else:
                        waiter.set_result(None)
                else:
                    loop, future = waiter
                    by_loop.setdefault(loop, []).append((future, error))
            for loop, pairs in by_loop.items():
                if not loop.is_closed():
                    loop.call_soon_threadsafe(_resolve_async, pairs)
