"""The vault's group committer: a batch is all or nothing for its submitters, and the queue is
bounded (past it a submitter is refused at once with `overloaded`, nothing queued). The
committer is kept busy by a commit function that waits at a gate."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from strongroom.core.errors import Overloaded
from strongroom.security.vault.committer import GroupCommit

QUEUE_MAX = 3


class Gated:
    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.committed: list[list[str]] = []
        self.fail_on: str | None = None

    def commit(self, items: Sequence[str]) -> None:
        self.entered.set()
        assert self.gate.wait(timeout=60), "the test never opened the gate"
        if self.fail_on in items:
            raise RuntimeError("the batch failed")
        self.committed.append(list(items))


@pytest.mark.timeout(60)
def test_a_full_queue_refuses_then_drains() -> None:
    gated = Gated()
    with GroupCommit[str](gated.commit, wait_us=0, queue_max=QUEUE_MAX) as committer:
        first = committer.submit("a")
        assert gated.entered.wait(timeout=30)
        waiting = [committer.submit(x) for x in ("b", "c", "d")]
        assert committer.queued == QUEUE_MAX
        with pytest.raises(Overloaded) as refused:
            committer.submit("refused")
        assert (refused.value.code, refused.value.status) == ("overloaded", 503)

        async def submit_async() -> None:
            await committer.submit_async("refused too")

        with pytest.raises(Overloaded):
            asyncio.run(submit_async())
        assert committer.stats.refused == 2
        gated.gate.set()
        for future in (first, *waiting):
            assert future.result(timeout=30) is None
        # The three that waited were committed together, the refused ones never.
        assert gated.committed == [["a"], ["b", "c", "d"]]
        assert committer.stats.largest_batch == 3


@pytest.mark.timeout(60)
def test_a_failed_batch_fails_each_of_its_submitters() -> None:
    gated = Gated()
    gated.fail_on = "bad"
    with GroupCommit[str](gated.commit, wait_us=0, queue_max=QUEUE_MAX) as committer:
        first = committer.submit("a")
        assert gated.entered.wait(timeout=30)
        together = [committer.submit(x) for x in ("b", "bad")]
        gated.gate.set()
        assert first.result(timeout=30) is None
        for future in together:
            with pytest.raises(RuntimeError, match="the batch failed"):
                future.result(timeout=30)
        assert committer.submit("after").result(timeout=30) is None
    assert gated.committed == [["a"], ["after"]]
