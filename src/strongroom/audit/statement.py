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

A statement comes in pages of at most STATEMENT_PAGE_ENTRIES_MAX entries (core/limits.py). Each
page repeats the statement's opening and closing versions and the boundary, names the versions
it proves (`first_version` to `last_version`) and proves each of its leaves in a signed
checkpoint of the log (pages fetched later may name a later checkpoint). The verifier takes the
list of pages and checks, besides the above, that they join: the first starts at the opening
entry, each next one starts right after the one before, the last ends at the boundary (or the
closing entry), and no page holds an entry outside its own versions.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from strongroom.audit.offline import proved_leaves
from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import STATEMENT_CURSOR_LENGTH_MAX

_CURSOR_PREFIX = "stm_"
_CURSOR_FIELDS = 6


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
    pages: int = 1


def _int(value: object, what: str) -> int:
    if type(value) is not int:
        raise StatementError(f"{what} must be an integer")
    return value


def cursor(
    from_us: int, to_us: int, opening: int, closing: int, boundary: bool, next_version: int
) -> str:
    """The next page of a statement: its period, the versions its first page fixed, and the
    version the next page starts at."""
    text = f"{from_us}.{to_us}.{opening}.{closing}.{int(boundary)}.{next_version}"
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def parse_cursor(
    text: str, from_us: int, to_us: int, account_version: int
) -> tuple[int, int, bool, int]:
    """(opening, closing, boundary, next version) of a statement cursor given back with the
    same period; invalid_cursor if it is not one."""
    bad = InvalidRequest(
        "not a cursor of this statement: give next_cursor of its previous page with the same "
        "from and to",
        param="cursor",
        code="invalid_cursor",
    )
    if not text.startswith(_CURSOR_PREFIX) or len(text) > STATEMENT_CURSOR_LENGTH_MAX:
        raise bad
    body = text[len(_CURSOR_PREFIX) :]
    try:
        fields = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("ascii").split(".")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None
    if len(fields) != _CURSOR_FIELDS or not all(f.isdigit() and f.isascii() for f in fields):
        raise bad
    start, end, opening, closing, boundary, next_version = (int(f) for f in fields)
    last = closing + boundary
    if (
        (start, end) != (from_us, to_us)
        or boundary > 1
        or not opening <= closing <= account_version
        or last > account_version
        or not max(opening, 1) <= next_version <= last
    ):
        raise bad
    return opening, closing, bool(boundary), next_version


_SHARED = ("account_id", "from", "to", "opening_version", "closing_version", "boundary", "origin")


def verify_statement(statement: Any, verifier_keys: Iterable[str]) -> CheckedStatement:
    """Check a statement (GET /v1/accounts/{id}/statement) with the log's public key(s): one
    page, or the list of its pages in order."""
    keys = list(verifier_keys)
    pages = statement if isinstance(statement, list) else [statement]
    if not pages:
        raise StatementError("a statement has at least one page")
    first_page = pages[0]
    if not isinstance(first_page, dict):
        raise StatementError("not an audit_statement")
    account = first_page.get("account_id")
    if not isinstance(account, str):
        raise StatementError("account_id must be text")
    from_us = _int(first_page.get("from"), "from")
    to_us = _int(first_page.get("to"), "to")
    if from_us > to_us:
        raise StatementError("from is after to")
    opening_version = _int(first_page.get("opening_version"), "opening_version")
    closing_version = _int(first_page.get("closing_version"), "closing_version")
    last = closing_version + (1 if first_page.get("boundary") is True else 0)
    found: dict[int, StatementEntry] = {}
    tree_size = 0
    origin = ""
    next_version = max(opening_version, 1)
    for n, page in enumerate(pages):
        checkpoint, proved = proved_leaves(page, "audit_statement", keys, StatementError)
        for name in _SHARED:
            if page.get(name) != first_page.get(name):
                raise StatementError(f"page {n}: {name} is not the first page's")
        origin, tree_size = checkpoint.origin, max(tree_size, checkpoint.size)
        final = n == len(pages) - 1
        if "first_version" in page:
            first = _int(page.get("first_version"), f"page {n}: first_version")
            stop = _int(page.get("last_version"), f"page {n}: last_version")
            if page.get("has_more") is not (not final):
                raise StatementError(
                    f"page {n}: has_more is {page.get('has_more')!r}"
                    + (": the statement's pages end here" if final else ": pages follow")
                )
        elif len(pages) == 1:  # a statement of one page, from before pages had their versions
            first, stop = next_version, last
        else:
            raise StatementError(f"page {n}: first_version and last_version are missing")
        if first != next_version:
            raise StatementError(
                f"page {n} starts at version {first}, not {next_version}: pages must join"
            )
        if final and stop != last:
            raise StatementError(f"the last page ends at version {stop}, not {last}")
        if not final and not first <= stop < last:
            raise StatementError(f"page {n} ends at version {stop}")
        next_version = stop + 1
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
                if not first <= entry.version <= stop:
                    raise StatementError(
                        f"page {n} holds version {entry.version}, outside {first}..{stop}"
                    )
                if found.setdefault(entry.version, entry) != entry:
                    raise StatementError(f"two different entries claim version {entry.version}")
    checked = _check_chain(first_page, origin, tree_size, account, from_us, to_us, found)
    return CheckedStatement(
        checked.origin,
        checked.tree_size,
        checked.account_id,
        checked.from_us,
        checked.to_us,
        checked.opening,
        checked.closing,
        checked.entries,
        checked.has_boundary,
        len(pages),
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
