"""Every bound in Strongroom, named once. Relations between bounds are checked at import."""

from typing import Final

# Amounts and the four account totals are unsigned 128-bit integers of minor units, as in
# TigerBeetle: 10^9 whole tokens of an 18-decimal asset are 10^27 minor units. A total that would
# pass this bound is refused (`overflows_*`), never wrapped.
AMOUNT_MAX: Final = 2**128 - 1
# Money values up to this magnitude are stored as native 64-bit integers; larger ones take a
# wider form where the database has no 128-bit integer (SQLite: core.money.to_stored_int).
NATIVE_INT_MAX: Final = 2**63 - 1

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
GROUP_COMMIT_WAIT_US_DEFAULT: Final = 1_000
GROUP_COMMIT_WAIT_US_MAX: Final = 100_000

# Retries of a whole batch after a serialization failure or deadlock (PostgreSQL).
COMMIT_RETRIES_MAX: Final = 8

# SQLite's default SQLITE_MAX_VARIABLE_NUMBER is 32,766 since 3.32; stay well below it.
SQL_PARAMS_PER_STATEMENT_MAX: Final = 900

assert PAGE_SIZE_DEFAULT <= PAGE_SIZE_MAX <= BATCH_TRANSFERS_MAX
assert NATIVE_INT_MAX < AMOUNT_MAX
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

# `ledger verify` streams rows in fetches of this many, lists at most VERIFY_PROBLEMS_MAX
# problems (counting the rest) and reports progress every VERIFY_PROGRESS_ROWS rows.
VERIFY_FETCH_ROWS: Final = 2_000
VERIFY_PROBLEMS_MAX: Final = 100
VERIFY_PROGRESS_ROWS: Final = 100_000
assert VERIFY_FETCH_ROWS <= VERIFY_PROGRESS_ROWS

# HTTP API
REQUEST_BODY_BYTES_MAX: Final = 4 * 1024 * 1024  # a batch of 8,190 transfers fits
IDEMPOTENCY_KEY_LENGTH_MAX: Final = 255
IDEMPOTENCY_RETENTION_S: Final = 24 * 3600
API_KEY_CACHE_TTL_S: Final = 10.0
RATE_LIMIT_REQUESTS_PER_S_DEFAULT: Final = 2_000
RATE_LIMIT_BURST_DEFAULT: Final = 4_000

# Webhooks (events/dispatcher.py): at-least-once delivery, Standard Webhooks signatures.
WEBHOOK_ATTEMPTS_MAX: Final = 12  # per (event, endpoint); the delivery is failed after that
WEBHOOK_BACKOFF_MS_BASE: Final = 10_000  # doubled after each failed attempt, with jitter
WEBHOOK_BACKOFF_MS_MAX: Final = 4 * 3600 * 1000
WEBHOOK_TIMEOUT_MS: Final = 10_000  # connect, write and each read of one request
# A claimed delivery is leased for this long: another dispatcher takes it over only after that.
WEBHOOK_LEASE_MS: Final = 60_000
WEBHOOK_ENDPOINT_FAILURES_MAX: Final = 50  # consecutive failed attempts disable an endpoint
WEBHOOK_ENDPOINTS_PER_TENANT_MAX: Final = 20
WEBHOOK_CONCURRENCY_MAX: Final = 64  # requests in flight per dispatcher
WEBHOOK_ROUTE_BATCH_MAX: Final = 1_000  # events fanned out to endpoints per transaction
WEBHOOK_POLL_MS_DEFAULT: Final = 500  # an idle dispatcher looks for work this often
WEBHOOK_TIMESTAMP_TOLERANCE_S: Final = 300  # Standard Webhooks' recommended replay window
WEBHOOK_URL_LENGTH_MAX: Final = 2_048
WEBHOOK_ERROR_CHARS_MAX: Final = 500  # of an attempt's error text
assert WEBHOOK_BACKOFF_MS_BASE <= WEBHOOK_BACKOFF_MS_MAX
assert 2 * WEBHOOK_TIMEOUT_MS < WEBHOOK_LEASE_MS  # a lease outlives the request it covers
assert WEBHOOK_ROUTE_BATCH_MAX * WEBHOOK_ENDPOINTS_PER_TENANT_MAX <= 100_000
