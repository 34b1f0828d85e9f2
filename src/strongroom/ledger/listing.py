"""Transfer listings whose cost follows the page, not the history.

Two ways through the transfers, each bounded per request:

- **By sequence** (a ledger, a status, a time range, metadata, or nothing): a range of the
  transfers' primary key, newest first. No filter has an index of its own, so a filtered page
  examines at most `scan_rows_max` transfers (core.limits.LIST_SCAN_ROWS_MAX) and may hold
  fewer than `limit` items, even none, while `has_more` is true: `next_cursor` goes on from
  where it stopped.
- **By account**: along the account's chain of entries, newest first. Each entry names its
  transfer; an account's transfers are its entries' transfers in the order they touched the
  account, each once. Entries that do not create their transfer (the releases of an expiry name
  the older pending transfer) are passed over: a transfer is listed where it was created. A
  page starts at an entry version reached through the sparse entry_index, so it reads at most
  ENTRY_INDEX_STRIDE entries more than it walks, and at most `scan_rows_max` entries in all.

A cursor is opaque to clients (`cur_...`): which way and from where to go on. A transfer id
(`starting_after`, `ending_before`) still works as a cursor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.core.limits import ENTRY_INDEX_STRIDE
from strongroom.core.pagination import NEWER, OLDER, decode_cursor, encode_cursor
from strongroom.db.uow import UnitOfWork
from strongroom.ledger import store
from strongroom.ledger.model import TransferRecord, record_from_row

T = TypeVar("T")

_BY_SEQ, _BY_ACCOUNT = "s", "a"
_OLDER, _NEWER = OLDER, NEWER


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    data: list[T]
    has_more: bool
    # Where the next page of the same listing starts (given back as `cursor`); None at the end.
    next_cursor: str | None = None


def _seq_of(uow: UnitOfWork, transfer_id: str, param: str) -> int:
    seqs = store.transfer_seqs(uow, [transfer_id])
    if transfer_id not in seqs:
        raise InvalidRequest(f"no transfer {transfer_id}", param=param, code="invalid_cursor")
    return seqs[transfer_id]


def _page(items: list[T], limit: int, older: bool, cursor: Callable[[], str | None]) -> Page[T]:
    """items nearest the start first, up to limit+1 of them; every page reads newest first."""
    data = items[:limit]
    if not older:
        data.reverse()
    next_cursor = cursor()
    return Page(data, next_cursor is not None, next_cursor)


def transfers_by_seq(
    uow: UnitOfWork,
    keep: store.TransferFilter,
    *,
    starting_after: str | None,
    ending_before: str | None,
    cursor: str | None,
    limit: int,
    scan_rows_max: int,
) -> Page[TransferRecord]:
    older, position = True, None
    if starting_after is not None:
        position = _seq_of(uow, starting_after, "starting_after")
    elif ending_before is not None:
        older, position = False, _seq_of(uow, ending_before, "ending_before")
    elif cursor is not None:
        older, position = decode_cursor(cursor, _BY_SEQ)
    rows, end_seq = store.list_transfer_rows(
        uow,
        keep,
        before_seq=position if older else None,
        after_seq=None if older else position,
        limit=limit + 1,
        scan_rows_max=scan_rows_max,
    )
    direction = _OLDER if older else _NEWER

    def next_cursor() -> str | None:
        if len(rows) > limit:  # a full page: the next starts after its last item
            return encode_cursor(_BY_SEQ, direction, int(rows[limit - 1][0]))
        if end_seq is not None:  # the scan budget ran out: the next goes on past what it read
            return encode_cursor(_BY_SEQ, direction, end_seq)
        return None

    return _page([record_from_row(r) for r in rows], limit, older, next_cursor)


@dataclass(slots=True)
class AccountChain:
    """Where an account's chain of entries starts: its id, last version and last entry."""

    id: str
    version: int
    last_entry_id: int | None


def entries_down(
    uow: UnitOfWork, account: AccountChain, version: int, count: int
) -> tuple[list[tuple[Any, ...]], int]:
    """The account's entries from `version` down (count at most), newest first, and how many
    were read: from the nearest indexed entry at or above it, so at most
    ENTRY_INDEX_STRIDE - 1 more than those."""
    version = min(version, account.version)
    if version < 1 or count <= 0:
        return [], 0
    start_version, start_id = account.version, account.last_entry_id
    if version < account.version:
        anchor = store.index_at_or_after_version(uow, account.id, version)
        if anchor is not None:
            start_version, start_id = anchor
    skip = start_version - version
    assert 0 <= skip < ENTRY_INDEX_STRIDE, (account.id, version, start_version)
    rows = store.walk_entries(uow, start_id, skip + count)
    assert rows[skip][2] == version, (account.id, version, rows[skip][2])
    return rows[skip:], len(rows)


def account_transfers(
    uow: UnitOfWork,
    account_id: str,
    keep: store.TransferFilter,
    *,
    starting_after: str | None,
    ending_before: str | None,
    cursor: str | None,
    limit: int,
    scan_rows_max: int,
) -> Page[TransferRecord]:
    row = store.get_account_row(uow, account_id)
    if row is None:
        raise NotFound(f"no account {account_id}", param="account_id")
    account = AccountChain(account_id, int(row[12]), row[13])
    # `version`: the first entry to examine, inclusive; `older`: walking down or up from it.
    older, version = True, account.version
    for param, transfer_id, towards_older in (
        ("starting_after", starting_after, True),
        ("ending_before", ending_before, False),
    ):
        if transfer_id is not None:
            span = store.transfer_entry_versions(
                uow, account_id, transfer_id, _seq_of(uow, transfer_id, param)
            )
            if span is None:
                raise InvalidRequest(
                    f"transfer {transfer_id} did not touch account {account_id}",
                    param=param,
                    code="invalid_cursor",
                )
            older, version = towards_older, span[0] - 1 if towards_older else span[1] + 1
    if cursor is not None:
        older, version = decode_cursor(cursor, _BY_ACCOUNT)
    # (record, the version it was met at) in walking order; the (limit+1)-th only marks where
    # the next page starts.
    found: list[tuple[TransferRecord, int]] = []
    seen: set[str] = set()
    budget = scan_rows_max
    chunk = 2 * (limit + 1)
    resume: int | None = None  # where the next page starts when this one stops early
    while len(found) <= limit:
        if (older and version < 1) or (not older and version > account.version):
            break  # the chain's end
        if budget <= 0:
            resume = version
            break
        take = min(chunk, budget)
        chunk *= 4
        if older:
            rows, read = entries_down(uow, account, version, take)
        else:
            top = min(version + take - 1, account.version)
            rows, read = entries_down(uow, account, top, top - version + 1)
            rows.reverse()
        budget -= read
        seqs = store.transfer_seqs(uow, sorted({r[4] for r in rows}))
        fresh: list[tuple[str, int]] = []
        for entry in rows:
            transfer_id = entry[4]
            if transfer_id in seen or not store.created_with(entry[0], seqs[transfer_id]):
                continue
            seen.add(transfer_id)
            fresh.append((transfer_id, int(entry[2])))
        kept = store.transfers_by_id(uow, [t for t, _ in fresh], keep)
        for transfer_id, met_at in fresh:
            kept_row = kept.get(transfer_id)
            if kept_row is not None:
                found.append((record_from_row(kept_row), met_at))
                if len(found) > limit:
                    break
        version = int(rows[-1][2]) + (-1 if older else 1)
        if (
            older
            and keep.created_after is not None
            and rows[-1][12] < keep.created_after
            and len(found) <= limit
        ):
            # Entry times never decrease along the versions and a transfer is no younger
            # than its entries: every older transfer was created before the range.
            version = 0
            break
        ended = version < 1 if older else version > account.version
        # A transfer's entries on one account are consecutive versions, so a walk cut short
        # by the budget may have split the last one: it is listed on the page that holds all
        # of its entries (LIST_SCAN_ROWS_MAX is far above LEGS_PER_TRANSFER_MAX).
        split = not ended and budget <= 0 and len(found) <= limit
        if split and found and found[-1][0].id == rows[-1][4]:
            version = found.pop()[1]
    direction = _OLDER if older else _NEWER

    def next_cursor() -> str | None:
        if len(found) > limit:
            return encode_cursor(_BY_ACCOUNT, direction, found[limit][1])
        if resume is not None:
            return encode_cursor(_BY_ACCOUNT, direction, resume)
        return None

    return _page([record for record, _ in found], limit, older, next_cursor)


def check_one_cursor(
    starting_after: object, ending_before: object, cursor: object, param: str = "cursor"
) -> None:
    if sum(x is not None for x in (starting_after, ending_before, cursor)) > 1:
        raise InvalidRequest(
            "give one of starting_after, ending_before and cursor, not several", param=param
        )
