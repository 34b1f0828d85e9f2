"""Every bound in Strongroom, named once. Relations between bounds are checked at import."""

from typing import Final

# Amounts and balances are signed 64-bit integers in both databases; a balance that would pass
# this bound is refused (`overflows_*`), never wrapped.
AMOUNT_MAX: Final = 2**63 - 1

# TigerBeetle's batch size: one batch fits a 1 MiB message there; here it bounds memory per commit.
BATCH_TRANSFERS_MAX: Final = 8_190
LEGS_PER_TRANSFER_MAX: Final = 64
PAGE_SIZE_DEFAULT: Final = 20
PAGE_SIZE_MAX: Final = 100

METADATA_BYTES_MAX: Final = 4_096  # canonical JSON encoding
METADATA_KEYS_MAX: Final = 50
METADATA_KEY_LENGTH_MAX: Final = 40
NAME_LENGTH_MAX: Final = 200
ID_LENGTH_MAX: Final = 64  # client-chosen transfer ids / idempotency keys

ASSET_SCALE_MAX: Final = 18
ASSET_CODE_LENGTH_MAX: Final = 16

PENDING_TIMEOUT_S_MAX: Final = 366 * 24 * 3600

# Group commit: a committer waits at most this long for more submitters before committing.
GROUP_COMMIT_WAIT_US_DEFAULT: Final = 2_000
GROUP_COMMIT_WAIT_US_MAX: Final = 100_000

# Retries of a whole batch after a serialization failure or deadlock (PostgreSQL).
COMMIT_RETRIES_MAX: Final = 8

# SQLite's default SQLITE_MAX_VARIABLE_NUMBER is 32,766 since 3.32; stay well below it.
SQL_PARAMS_PER_STATEMENT_MAX: Final = 900

assert PAGE_SIZE_DEFAULT <= PAGE_SIZE_MAX <= BATCH_TRANSFERS_MAX
assert LEGS_PER_TRANSFER_MAX >= 2
assert LEGS_PER_TRANSFER_MAX * BATCH_TRANSFERS_MAX < 2**20
assert GROUP_COMMIT_WAIT_US_DEFAULT <= GROUP_COMMIT_WAIT_US_MAX

# Every ENTRY_INDEX_STRIDE-th entry of an account is indexed by (account, version); the rest are
# reached through each entry's pointer to the account's previous entry. Entries themselves are
# appended in commit order, so a batch dirties a handful of pages rather than one per account.
ENTRY_INDEX_STRIDE: Final = 64
# Entry ids and transfer sequence numbers are allocated in blocks, one block per batch.
ID_BLOCK_BITS: Final = 20
assert BATCH_TRANSFERS_MAX * LEGS_PER_TRANSFER_MAX < 2**ID_BLOCK_BITS

# SQLite: account states this process keeps between batches (see ledger.store.AccountCache).
ACCOUNT_CACHE_MAX: Final = 200_000
