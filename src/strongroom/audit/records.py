"""Replaying other domains' record leaves (not the ledger's) against their tables: the loop the
records checks share (compliance/records.py, openbanking/records.py). Each leaf is handed to the
domain's `take`; one that does not read (a missing field, a wrong type) is a finding, never an
exception, and the check goes on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

# AuditLog.record_leaves: (log id, index, content) of every record leaf of the given types.
RecordLeaves = Callable[[frozenset[str]], Iterator[tuple[str, int, dict[str, Any]]]]
# A finding: the log (tenant) it belongs to, and what is wrong (no personal data).
Add = Callable[[str, dict[str, Any]], None]
# A domain's replay of one leaf: (log id, index, type, data).
Take = Callable[[str, int, str, Any], None]

PROGRESS_EVERY: Final = 10_000  # leaves between two progress lines


def replay(
    record_leaves: RecordLeaves,
    types: frozenset[str],
    take: Take,
    add: Add,
    say: Callable[[str], None],
    label: str,
) -> int:
    """Every leaf of `types` handed to `take`, log by log, in order; the count replayed.
    Progress to `say` every PROGRESS_EVERY leaves, as `<label>: N leaves replayed`."""
    count = 0
    for log_id, index, content in record_leaves(types):
        count += 1
        if count % PROGRESS_EVERY == 0:
            say(f"{label}: {count} leaves replayed")
        try:
            take(log_id, index, str(content["type"]), content["data"])
        except (KeyError, TypeError, ValueError):
            add(
                log_id,
                {
                    "table": "audit_log",
                    "leaf": index,
                    "problem": f"a {content.get('type')} leaf that does not read",
                },
            )
    return count
