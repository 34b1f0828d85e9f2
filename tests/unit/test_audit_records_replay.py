"""The records checks' shared replay loop: every leaf to the domain, one that does not read a
finding (never an exception), progress on long runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strongroom.audit import records

TYPES = frozenset({"thing.created"})


def test_each_leaf_is_taken_and_one_that_does_not_read_is_a_finding() -> None:
    leaves = [
        ("log_a", 0, {"type": "thing.created", "data": {"id": "t1"}}),
        ("log_a", 1, {"type": "thing.created"}),  # no data
        ("log_b", 7, {"type": "thing.created", "data": {"id": "t2"}}),
        ("log_b", 8, {"type": "thing.created", "data": {}}),  # data the domain cannot read
    ]
    asked: list[frozenset[str]] = []

    def record_leaves(types: frozenset[str]) -> Iterator[tuple[str, int, dict[str, Any]]]:
        asked.append(types)
        yield from leaves

    taken: list[tuple[str, int, str, str]] = []

    def take(log_id: str, index: int, kind: str, data: Any) -> None:
        taken.append((log_id, index, kind, str(data["id"])))

    found: list[tuple[str, dict[str, Any]]] = []
    said: list[str] = []
    count = records.replay(
        record_leaves, TYPES, take, lambda log, f: found.append((log, f)), said.append, "things"
    )
    assert count == 4
    assert asked == [TYPES]
    assert taken == [("log_a", 0, "thing.created", "t1"), ("log_b", 7, "thing.created", "t2")]
    problem = "a thing.created leaf that does not read"
    assert found == [
        ("log_a", {"table": "audit_log", "leaf": 1, "problem": problem}),
        ("log_b", {"table": "audit_log", "leaf": 8, "problem": problem}),
    ]
    assert said == []


def test_progress_every_so_many_leaves() -> None:
    many = records.PROGRESS_EVERY * 2 + 1

    def record_leaves(types: frozenset[str]) -> Iterator[tuple[str, int, dict[str, Any]]]:
        for n in range(many):
            yield "log", n, {"type": "thing.created", "data": {}}

    said: list[str] = []
    count = records.replay(
        record_leaves, TYPES, lambda *_: None, lambda *_: None, said.append, "things"
    )
    assert count == many
    assert said == [
        f"things: {records.PROGRESS_EVERY} leaves replayed",
        f"things: {2 * records.PROGRESS_EVERY} leaves replayed",
    ]
