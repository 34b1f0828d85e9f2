"""The benchmarks' timed parts run with the heap as a server process has it."""

from __future__ import annotations

import gc

import pytest

from strongroom.benchmarks.common import server_heap
from strongroom.runtime import SERVER_GC_THRESHOLDS


def test_the_timed_part_runs_with_the_servers_heap_and_the_process_gets_its_own_back() -> None:
    before = gc.get_threshold()
    assert before != SERVER_GC_THRESHOLDS
    prepared = [[i] for i in range(1_000)]  # a benchmark's input, made before the clock starts
    with server_heap():
        assert gc.get_threshold() == SERVER_GC_THRESHOLDS
        # What was made before is out of the collector's reach, the input among it; what the
        # timed part makes is collected as usual.
        assert gc.get_freeze_count() >= len(prepared)
        assert not _collected(prepared)
        young = [0]
        assert _collected(young)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert _collected(prepared)


def _collected(obj: object) -> bool:
    """Whether the cyclic collector walks `obj` (it is in one of its generations)."""
    return any(o is obj for o in gc.get_objects())


def test_a_timed_part_that_raises_gives_the_heap_back() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), server_heap():
        raise RuntimeError("the benchmark failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
