"""Account statements with a completeness proof, checked offline.

A statement of an account for a period (from, to] carries the leaves of the account's entries
from the one in force at `from` (the opening entry; none when the account had no entry yet) to
the first one after `to` (the boundary; none when there is no later entry yet), each with its
inclusion proof in one signed checkpoint. Every leaf records, per account entry, the account's
gap-free version, its four counters after the entry and the entry's time (audit/leaf.py). So a
verifier holding only the log's public key checks that:

- every leaf is in the checkpointed tree (nothing invented);
- the account's versions run without a gap from the opening entry to the boundary (nothing
  left out: an entry missing from the statement leaves a hole in the versions);
- each entry's counters are the previous counters plus that entry's amounts (balances add up);
- the opening entry is at or before `from`, the period's entries inside it, the boundary after.

Without a boundary the statement is complete up to the account's last entry at the time it was
made; that no later entry exists cannot be shown from the log alone (the export can: every leaf
of the log is there).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from strongroom.audit.offline import proved_leaves


class StatementError(ValueError):
    """A statement that does not prove what it claims."""


@dataclass(frozen=True, slots=True)
class StatementEntry:
    version: int
    direction: str
    amount: int
    pending_delta: int
    counters: tuple[int, int, int, int]  # debits_posted, credits_posted, debits/credits pending
    at: int
    leaf_index: int
    transfer_id: str | None


@dataclass(frozen=True, slots=True)
class CheckedStatement:
    origin: str
    tree_size: int
    account_id: str
    from_us: int
    to_us: int
    opening: tuple[int, int, int, int]
    closing: tuple[int, int, int, int]
    entries: list[StatementEntry]  # those inside the period, oldest first
    has_boundary: bool


def _int(value: object, what: str) -> int:
    if type(value) is not int:
        raise StatementError(f"{what} must be an integer")
    return value


def verify_statement(statement: Any, verifier_keys: Iterable[str]) -> CheckedStatement:
    """Check a statement (GET /v1/accounts/{id}/statement) with the log's public key(s)."""
    checkpoint, proved = proved_leaves(statement, "audit_statement", verifier_keys, StatementError)
    account = statement.get("account_id")
    if not isinstance(account, str):
        raise StatementError("account_id must be text")
    from_us = _int(statement.get("from"), "from")
    to_us = _int(statement.get("to"), "to")
    if from_us > to_us:
        raise StatementError("from is after to")
    found: dict[int, StatementEntry] = {}
    for index, content in proved:
        transfer = content.get("transfer") or {}
        for e in content.get("entries") or []:
            if e[0] != account:
                continue
            entry = StatementEntry(
                version=e[1],
                direction=e[2],
                amount=e[3],
                pending_delta=e[4],
                counters=(e[5], e[6], e[7], e[8]),
                at=e[9],
                leaf_index=index,
                transfer_id=transfer.get("id"),
            )
            if found.setdefault(entry.version, entry) != entry:
                raise StatementError(f"two different entries claim version {entry.version}")
    return _check_chain(
        statement, checkpoint.origin, checkpoint.size, account, from_us, to_us, found
    )


def _check_chain(
    statement: dict[str, Any],
    origin: str,
    tree_size: int,
    account: str,
    from_us: int,
    to_us: int,
    found: dict[int, StatementEntry],
) -> CheckedStatement:
    opening_version = _int(statement.get("opening_version"), "opening_version")
    closing_version = _int(statement.get("closing_version"), "closing_version")
    has_boundary = statement.get("boundary") is True
    last = closing_version + (1 if has_boundary else 0)
    if not 0 <= opening_version <= closing_version:
        raise StatementError("the opening version must not be after the closing one")
    first = max(opening_version, 1)
    expected = set(range(first, last + 1))
    if set(found) != expected:
        missing = sorted(expected - set(found))
        extra = sorted(set(found) - expected)
        raise StatementError(
            f"versions {first}..{last} are not all there: missing {missing[:5]}, "
            f"unexpected {extra[:5]}"
        )
    counters = (0, 0, 0, 0) if opening_version == 0 else found[opening_version].counters
    opening = closing = counters
    if opening_version and found[opening_version].at > from_us:
        raise StatementError(f"the opening entry {opening_version} is after the period starts")
    inside: list[StatementEntry] = []
    for version in range(opening_version + 1, last + 1):
        entry = found[version]
        dp, cp, dpend, cpend = counters
        if entry.direction == "debit":
            dp, dpend = dp + entry.amount, dpend + entry.pending_delta
        elif entry.direction == "credit":
            cp, cpend = cp + entry.amount, cpend + entry.pending_delta
        else:
            raise StatementError(f"entry {version}: unknown direction {entry.direction!r}")
        if (dp, cp, dpend, cpend) != entry.counters:
            raise StatementError(
                f"entry {version}'s balances do not follow from entry {version - 1}"
            )
        counters = entry.counters
        if version <= closing_version:
            if not from_us < entry.at <= to_us:
                raise StatementError(f"entry {version} is outside the period")
            inside.append(entry)
            closing = counters
        elif entry.at <= to_us:
            raise StatementError(f"the boundary entry {version} is inside the period")
    return CheckedStatement(
        origin, tree_size, account, from_us, to_us, opening, closing, inside, has_boundary
    )
