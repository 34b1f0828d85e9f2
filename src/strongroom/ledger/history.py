"""The ledger's history: transfers and entries in pages bounded by what they return, and
balances as of a version or a time."""

from __future__ import annotations

import re
from typing import Any

from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.core.limits import (
    ENTRY_INDEX_STRIDE,
    METADATA_BYTES_MAX,
    PAGE_SIZE_DEFAULT,
    STATEMENT_PAGE_ENTRIES_MAX,
)
from strongroom.core.pagination import check_limit
from strongroom.db.uow import UnitOfWork
from strongroom.ledger import listing, store
from strongroom.ledger.base import LedgerBase
from strongroom.ledger.listing import Page
from strongroom.ledger.model import (
    Balances,
    Direction,
    Status,
    TransferRecord,
    record_from_row,
)
from strongroom.ledger.views import Entry, balances_of, entry_from_row

_METADATA_FILTER_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


class HistoryUseCases(LedgerBase):
    """Reads of what happened: transfers (listed in bounded pages), an account's entries, and
    its balances at any version or time."""

    def get_transfer(self, transfer_id: str) -> TransferRecord:
        with self._uow(write=False) as uow:
            row = store.get_transfer_row(uow, transfer_id)
        if row is None:
            raise NotFound(f"no transfer {transfer_id}", param="transfer_id")
        return record_from_row(row)

    def transfer_resolution(self, pending_id: str) -> TransferRecord | None:
        """The post or void of the pending transfer `pending_id`, if one was made (its
        `created_at` is when the pending transfer stopped being pending); None while it is
        pending, for an expiry (its own `expires_at` says when), and for any other transfer."""
        with self._uow(write=False) as uow:
            row = store.resolution_row(uow, pending_id)
        return None if row is None else record_from_row(row)

    def list_transfers(
        self,
        *,
        ledger_id: str | None = None,
        account_id: str | None = None,
        status: Status | None = None,
        created_after: int | None = None,
        created_before: int | None = None,
        metadata: tuple[str, str] | None = None,
        starting_after: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
        ending_before: str | None = None,
        cursor: str | None = None,
    ) -> Page[TransferRecord]:
        """Newest first (an account's: in the order they touched it), with a cursor:
        `starting_after` = the last id of the previous page, or its `next_cursor`. A filtered
        page examines a bounded number of rows (ledger/listing.py), so it may hold fewer than
        `limit` items while `has_more` is true."""
        check_limit(limit)
        if metadata is not None:
            key, value = metadata
            if not isinstance(value, str) or not _METADATA_FILTER_KEY.match(key):
                raise InvalidRequest(
                    "filter metadata[key]=value with a key of letters, digits, '_', '-' or '.'",
                    param="metadata",
                    code="invalid_metadata_filter",
                )
            if len(value) > METADATA_BYTES_MAX:  # no stored value is longer
                raise InvalidRequest(
                    f"a metadata filter's value is at most {METADATA_BYTES_MAX} characters",
                    param="metadata",
                    code="invalid_metadata_filter",
                )
        if starting_after is not None and ending_before is not None:
            raise InvalidRequest(
                "give starting_after or ending_before, not both", param="ending_before"
            )
        listing.check_one_cursor(starting_after, ending_before, cursor)
        keep = store.TransferFilter(ledger_id, status, created_after, created_before, metadata)
        with self._uow(write=False) as uow:
            if account_id is None:
                return listing.transfers_by_seq(
                    uow,
                    keep,
                    starting_after=starting_after,
                    ending_before=ending_before,
                    cursor=cursor,
                    limit=limit,
                    scan_rows_max=self.scan_rows_max,
                )
            return listing.account_transfers(
                uow,
                account_id,
                keep,
                starting_after=starting_after,
                ending_before=ending_before,
                cursor=cursor,
                limit=limit,
                scan_rows_max=self.scan_rows_max,
            )

    def list_entries(
        self, account_id: str, *, starting_after: int | None = None, limit: int = PAGE_SIZE_DEFAULT
    ) -> Page[Entry]:
        """An account's entries, newest first; the cursor is the last entry's version."""
        check_limit(limit)
        with self._uow(write=False) as uow:
            row = store.get_account_row(uow, account_id)
            if row is None:
                raise NotFound(f"no account {account_id}", param="account_id")
            start = row[13]
            if starting_after is not None:
                found = self._entry_at_version(uow, account_id, row[12], row[13], starting_after)
                start = None if found is None else found[3]
            rows = store.walk_entries(uow, start, limit + 1)
        return Page([entry_from_row(r) for r in rows[:limit]], len(rows) > limit)

    def entry_transfers(self, account_id: str, first: int, last: int) -> dict[int, str]:
        """version -> transfer id of the account's entries `first` to `last` (a bounded range:
        audit statements take it a page at a time), from the nearest indexed entry."""
        assert first >= 1, first
        assert last - first < STATEMENT_PAGE_ENTRIES_MAX, (first, last)
        with self._uow(write=False) as uow:
            row = store.get_account_row(uow, account_id)
            if row is None:
                raise NotFound(f"no account {account_id}", param="account_id")
            chain = listing.AccountChain(account_id, int(row[12]), row[13])
            rows, _ = listing.entries_down(uow, chain, last, last - first + 1)
        found = {int(r[2]): str(r[4]) for r in rows}
        assert set(found) == set(range(first, min(last, chain.version) + 1)), (first, last)
        return found

    def _entry_at_version(
        self, uow: UnitOfWork, account_id: str, last_version: int, last_id: int | None, version: int
    ) -> tuple[Any, ...] | None:
        if version <= 0 or version > last_version:
            return None
        anchor = store.index_at_or_after_version(uow, account_id, version)
        start_version, start_id = anchor if anchor is not None else (last_version, last_id)
        assert start_version - version < ENTRY_INDEX_STRIDE
        rows = store.walk_entries(uow, start_id, start_version - version + 1)
        assert rows[-1][2] == version
        return rows[-1]

    def balance_at(
        self, account_id: str, *, version: int | None = None, as_of_us: int | None = None
    ) -> tuple[int, Balances, Direction]:
        """(version, balances) of the account after `version`, or as of a time."""
        if (version is None) == (as_of_us is None):
            raise InvalidRequest(
                "give exactly one of version and as_of", param="as_of", code="invalid_request"
            )
        with self._uow(write=False) as uow:
            row = store.get_account_row(uow, account_id)
            if row is None:
                raise NotFound(f"no account {account_id}", param="account_id")
            normal = Direction(row[4])
            last_version, last_id = row[12], row[13]
            if version is not None:
                if version < 0 or version > last_version:
                    raise InvalidRequest(
                        f"version must be from 0 to {last_version}",
                        param="version",
                        code="invalid_version",
                    )
                if version == 0:
                    return 0, Balances(), normal
                entry = self._entry_at_version(uow, account_id, last_version, last_id, version)
                assert entry is not None
                return version, balances_of(entry[8:12]), normal
            assert as_of_us is not None
            anchor = store.index_first_after_time(uow, account_id, as_of_us)
            start_id = anchor[1] if anchor is not None else last_id
            for entry in store.walk_entries(uow, start_id, ENTRY_INDEX_STRIDE + 1):
                if entry[12] <= as_of_us:
                    return entry[2], balances_of(entry[8:12]), normal
            return 0, Balances(), normal
