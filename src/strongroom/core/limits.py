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
METADATA_INT_MAX: Final = 2**53 - 1  # exact in every JSON parser (JavaScript's Number too)
METADATA_KEYS_MAX: Final = 50
METADATA_KEY_LENGTH_MAX: Final = 40
NAME_LENGTH_MAX: Final = 200
ID_LENGTH_MAX: Final = 64  # client-chosen transfer ids / idempotency keys
# A payment's fields (ledger.model.Payment): its payee (a terminal or counterparty id) and its
# device id are the caller's own references; an IP address as text (IPv6 with a zone at most).
# Transfers that carry a payment in one batch request: each is scored by the risk gate within
# its time budget (STRONGROOM_RISK_BUDGET_MS), so a request cannot hold the gate for seconds.
PAYMENTS_PER_BATCH_MAX: Final = 1_000
PAYMENT_REF_LENGTH_MAX: Final = 128
PAYMENT_IP_LENGTH_MAX: Final = 64

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
# Transfers waiting for the group committer (the batch being committed not counted). Past it a
# submitter is refused at once (503 `overloaded`) instead of queued: memory and the wait behind
# the queue stay bounded when requests arrive faster than batches commit. A few full batches,
# so a burst still finds room while one batch commits.
GROUP_COMMIT_QUEUE_MAX: Final = 4 * BATCH_TRANSFERS_MAX
assert BATCH_TRANSFERS_MAX <= GROUP_COMMIT_QUEUE_MAX <= 16 * BATCH_TRANSFERS_MAX

# SQLite: a writer waits at most this long for the writer file lock (`<database>.writer-lock`,
# held by a writer of another process) before the write fails with 503 `database_busy`.
SQLITE_WRITER_LOCK_TIMEOUT_MS_DEFAULT: Final = 5_000
SQLITE_WRITER_LOCK_TIMEOUT_MS_MAX: Final = 60_000
assert 0 < SQLITE_WRITER_LOCK_TIMEOUT_MS_DEFAULT <= SQLITE_WRITER_LOCK_TIMEOUT_MS_MAX

# The Retry-After (seconds) of a 503 that says "busy now, nothing written": the queue drains
# and the lock frees within a few batches.
UNAVAILABLE_RETRY_AFTER_S: Final = 1

# Every ENTRY_INDEX_STRIDE-th entry of an account is indexed by (account, version); the rest are
# reached through each entry's pointer to the account's previous entry. Entries themselves are
# appended in commit order, so a batch dirties a handful of pages rather than one per account.
ENTRY_INDEX_STRIDE: Final = 64
# Entry ids and transfer sequence numbers are allocated in blocks, one block per batch.
ID_BLOCK_BITS: Final = 20
assert BATCH_TRANSFERS_MAX * LEGS_PER_TRANSFER_MAX < 2**ID_BLOCK_BITS

# Listings (ledger/listing.py): a page examines at most this many rows, whatever the history.
# A filter no index supports (ledger, status, time, metadata; an account's transfers walk its
# entries) may then answer fewer than `limit` items, even none, with has_more and a next_cursor.
LIST_SCAN_ROWS_MAX: Final = 10_000
# A split transfer (its entries cut by the budget) is put off to the next page, which must
# then hold all of its entries and the index look-up that starts it.
assert LIST_SCAN_ROWS_MAX > 2 * (LEGS_PER_TRANSFER_MAX + ENTRY_INDEX_STRIDE + PAGE_SIZE_MAX)

# Account statements (GET /v1/accounts/{id}/statement) come in pages of at most this many
# entries, each leaf with its inclusion proof (about 1.3 kB an entry).
STATEMENT_PAGE_ENTRIES_MAX: Final = 1_000

# SQLite: the WAL is checkpointed into the database file past this many pages (64 MiB of 4 KiB
# pages): a few bulk batches, not every one.
SQLITE_WAL_AUTOCHECKPOINT_PAGES: Final = 16_384

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
# A request's head: its request line and headers, in bytes as sent. Past it the answer is a
# 431 before the app runs (http/server.py caps it while reading; http/middleware.py checks it
# too, whatever server runs the app). Node's default; nginx's is 32 KiB, Apache's 8 KiB a line.
REQUEST_HEAD_BYTES_MAX: Final = 16 * 1024
assert IDEMPOTENCY_KEY_LENGTH_MAX + 1_024 < REQUEST_HEAD_BYTES_MAX
# Every string a request carries has a bound, declared in the request models and parameters
# (so the OpenAPI document states it): ids ID_LENGTH_MAX, names NAME_LENGTH_MAX, asset codes
# ASSET_CODE_LENGTH_MAX, metadata keys METADATA_KEY_LENGTH_MAX, and these.
TIMESTAMP_LENGTH_MAX: Final = 64  # RFC 3339 with nanoseconds and an offset is 35
CURSOR_LENGTH_MAX: Final = 64  # a listing's next_cursor
STATEMENT_CURSOR_LENGTH_MAX: Final = 200  # a statement's next_cursor
EVENT_TYPE_LENGTH_MAX: Final = 64
ACCOUNT_FLAG_LENGTH_MAX: Final = 64
ENABLED_EVENTS_MAX: Final = 16  # event types a webhook endpoint names
# An error echoes at most this many characters of the input it refuses, then "..." (an id
# whole); its detail is at most ERROR_DETAIL_CHARS_MAX characters and its param at most
# ERROR_PARAM_CHARS_MAX, whatever built them.
ERROR_ECHO_CHARS_MAX: Final = 64
ERROR_DETAIL_CHARS_MAX: Final = 512
ERROR_PARAM_CHARS_MAX: Final = 160
assert ID_LENGTH_MAX <= ERROR_ECHO_CHARS_MAX < ERROR_PARAM_CHARS_MAX < ERROR_DETAIL_CHARS_MAX
IDEMPOTENCY_RETENTION_S: Final = 24 * 3600
# An attempt holds its key for this long and renews it every third of it while it runs: a key
# whose attempt died (a crash, a kill) is taken over by a retry at most this long after.
IDEMPOTENCY_LEASE_S: Final = 10
IDEMPOTENCY_LEASE_S_MIN: Final = 0.3
IDEMPOTENCY_LEASE_S_MAX: Final = 300
# The largest answer a stored record may inflate to (an 8,190-transfer batch's is ~0.7 MB).
IDEMPOTENCY_ANSWER_BYTES_MAX: Final = 16 * 1024 * 1024
# Records purged per statement by the retention job.
IDEMPOTENCY_PURGE_BATCH: Final = 1000
API_KEY_CACHE_TTL_S: Final = 10.0
# Rate limits (tenancy/ratelimit.py): a token bucket per API key, shared by every worker process.
# A request costs 1 token, an expensive one more (docs/deployment.md "Rate limits"); costs are
# counted in hundredths of a token so that a batch can cost 1 + N/100 exactly.
RATE_LIMIT_REQUESTS_PER_S_DEFAULT: Final = 2_000
RATE_LIMIT_BURST_DEFAULT: Final = 4_000
RATE_LIMIT_UNITS_PER_TOKEN: Final = 100
RATE_LIMIT_UNITS_PER_BATCH_TRANSFER: Final = 1  # a batch of N transfers: 1 + N/100 tokens
RATE_LIMIT_UNITS_PER_LISTED_ITEM: Final = 1  # a listing: 1 + (limit - PAGE_SIZE_DEFAULT)/100
RATE_LIMIT_UNITS_PER_STATEMENT_ENTRY: Final = 2  # a statement page: 1 + limit/50
# Failed authentications per client address (a bucket of its own, shared the same way): past
# the burst an address is answered 429 without its key being looked at, until it refills.
AUTH_FAILURES_PER_S_DEFAULT: Final = 0.2
AUTH_FAILURES_BURST_DEFAULT: Final = 20
# The embedded storage of the buckets (a memory-mapped file): sets of slots, a key hashed to one
# set; a set that is full gives up the slot closest to full (the least owed) to a new key.
RATE_LIMIT_FILE_SETS: Final = 8_192
RATE_LIMIT_FILE_SLOTS_PER_SET: Final = 8
# The open banking replay store of a SQLite deployment (a memory-mapped file, 24 MiB): about a
# million DPoP proofs remembered until they expire (60 s: ample at thousands of reads a
# second); a set whose slots all hold unexpired proofs refuses a new one (503).
OB_REPLAY_FILE_SETS: Final = 65_536
OB_REPLAY_FILE_SLOTS_PER_SET: Final = 16
RATE_LIMIT_KEY_LENGTH_MAX: Final = 300  # a bucket's name: a prefix and a key id or an address
assert RATE_LIMIT_BURST_DEFAULT >= RATE_LIMIT_REQUESTS_PER_S_DEFAULT
assert (
    1 + BATCH_TRANSFERS_MAX * RATE_LIMIT_UNITS_PER_BATCH_TRANSFER / RATE_LIMIT_UNITS_PER_TOKEN
    <= RATE_LIMIT_BURST_DEFAULT
)  # the largest batch fits in a full default bucket
assert (
    1
    + STATEMENT_PAGE_ENTRIES_MAX * RATE_LIMIT_UNITS_PER_STATEMENT_ENTRY / RATE_LIMIT_UNITS_PER_TOKEN
    <= RATE_LIMIT_BURST_DEFAULT
)
# A receipt or a statement page is proved against a published checkpoint (serve publishes
# every STRONGROOM_AUDIT_CHECKPOINT_INTERVAL_S): one that is not out yet is waited for this long
# at most, then answered 503 `checkpoint_pending` with Retry-After. A read never signs one.
AUDIT_CHECKPOINT_WAIT_S_MAX: Final = 2.0
AUDIT_CHECKPOINT_POLL_S: Final = 0.1
assert 0 < AUDIT_CHECKPOINT_POLL_S < AUDIT_CHECKPOINT_WAIT_S_MAX

# Webhooks (events/dispatcher.py): at-least-once delivery, Standard Webhooks signatures.
WEBHOOK_ATTEMPTS_MAX: Final = 12  # per (event, endpoint); the delivery is failed after that
WEBHOOK_BACKOFF_MS_BASE: Final = 10_000  # doubled after each failed attempt, with jitter
WEBHOOK_BACKOFF_MS_MAX: Final = 4 * 3600 * 1000
# The whole of one attempt, counted from its claim: connecting, sending and the answer's head.
WEBHOOK_TIMEOUT_MS: Final = 10_000
# A claimed delivery is leased for this long: another dispatcher takes it over only after that.
WEBHOOK_LEASE_MS: Final = 60_000
WEBHOOK_LEASE_MARGIN_MS_MIN: Final = 500  # a lease outlasts its attempt's deadline by this
WEBHOOK_ENDPOINT_FAILURES_MAX: Final = 50  # consecutive failed attempts disable an endpoint
WEBHOOK_ENDPOINTS_PER_TENANT_MAX: Final = 20
WEBHOOK_CONCURRENCY_MAX: Final = 64  # requests in flight per dispatcher
WEBHOOK_ROUTE_BATCH_MAX: Final = 1_000  # events fanned out to endpoints per transaction
WEBHOOK_POLL_MS_DEFAULT: Final = 500  # an idle dispatcher looks for work this often
WEBHOOK_TIMESTAMP_TOLERANCE_S: Final = 300  # Standard Webhooks' recommended replay window
WEBHOOK_URL_LENGTH_MAX: Final = 2_048
WEBHOOK_ERROR_CHARS_MAX: Final = 500  # of an attempt's error text
assert WEBHOOK_BACKOFF_MS_BASE <= WEBHOOK_BACKOFF_MS_MAX
assert WEBHOOK_TIMEOUT_MS + WEBHOOK_LEASE_MARGIN_MS_MIN <= WEBHOOK_LEASE_MS
assert WEBHOOK_ROUTE_BATCH_MAX * WEBHOOK_ENDPOINTS_PER_TENANT_MAX <= 100_000

# An audit bundle (the leaves of one transaction of one log, audit/store.py) is stored as one
# zstd frame. A frame whose header says it holds more than this is refused as damaged before
# anything is allocated; one within it is decompressed (at most this much) before its
# checksum can fail. A bundle's leaves repeat what its batch's requests held (each at most
# REQUEST_BODY_BYTES_MAX; a coalesced batch gathers single transfers, far smaller) with its
# entries: the largest real one is a few times REQUEST_BODY_BYTES_MAX. One larger still (a
# batch posted in process, with no request bound) is stored packed but not compressed.
AUDIT_BUNDLE_BYTES_MAX: Final = 64 * 1024 * 1024
assert AUDIT_BUNDLE_BYTES_MAX >= 8 * REQUEST_BODY_BYTES_MAX
# zstd level 1: a bulk batch's 8,190 leaves (~2.5 MB packed) compress ~9x in ~3 ms on the
# 2-core machine; higher levels cost more time for less than 10% more (benchmarks/audit.py).
AUDIT_BUNDLE_ZSTD_LEVEL: Final = 1
# Audit verify's replay (audit/replay.py): the ledger's entries and the log's entries are read
# in step; an entry whose counterpart is not within this many of the other side's next ones is
# held until it is (PostgreSQL commits transactions out of id order), at most this many a side.
AUDIT_REPLAY_WINDOW_ENTRIES: Final = 262_144
AUDIT_REPLAY_PROBLEMS_MAX: Final = 100  # then "and N more"
assert AUDIT_REPLAY_WINDOW_ENTRIES >= 8 * BATCH_TRANSFERS_MAX * 2
# Audit verify's transfer check (audit/service.py): the ledger's transfers, by seq, and each
# log's leaves are read in step the same way; a transfer or a leaf is held until its counterpart
# comes, at most this many a side (a transfer row or a leaf, ~1 KiB each: ~64 MiB a side at
# worst, nearly nothing when seq order is commit order, as on SQLite).
AUDIT_TRAIL_WINDOW_TRANSFERS: Final = 65_536
assert AUDIT_TRAIL_WINDOW_TRANSFERS >= 8 * BATCH_TRANSFERS_MAX
# Bundles `verify` reads in one statement (a bulk batch's bundle is ~4.6 MB: 8,190 leaves).
AUDIT_VERIFY_BUNDLES_READ: Final = 2
# Stored tiles `verify` reads in one statement (three parameters each on SQLite).
AUDIT_VERIFY_TILES_READ_MAX: Final = 256

# Retention (the `retention` job, runtime.py): events and webhook attempts are kept this many days
# by default (Stripe keeps events 30), then pruned every RETENTION_INTERVAL_S_DEFAULT, a bounded
# batch per transaction (SQLite has one writer: each holds it briefly). A batch of events takes
# their settled delivery states and attempts along: at most WEBHOOK_ENDPOINTS_PER_TENANT_MAX
# states and as many times WEBHOOK_ATTEMPTS_MAX attempts an event, but the attempts past the
# retention went first, endpoint by endpoint, ATTEMPTS_PRUNE_BATCH a transaction.
EVENT_RETENTION_DAYS_DEFAULT: Final = 30
EVENT_RETENTION_DAYS_MAX: Final = 3_650
RETENTION_INTERVAL_S_DEFAULT: Final = 600
EVENTS_PRUNE_BATCH: Final = 500
ATTEMPTS_PRUNE_BATCH: Final = 1_000
assert EVENT_RETENTION_DAYS_DEFAULT * 24 * 3600 >= IDEMPOTENCY_RETENTION_S
assert EVENTS_PRUNE_BATCH * WEBHOOK_ENDPOINTS_PER_TENANT_MAX <= 100_000

# Background jobs (jobs.py): a job runs in the process holding its lease, renewed every third of
# it; a killed holder's job is taken over by another process within about 4/3 of a lease.
JOB_LEASE_S_DEFAULT: Final = 10.0
JOB_LEASE_S_MIN: Final = 0.3
JOB_LEASE_S_MAX: Final = 600.0
assert JOB_LEASE_S_MIN <= JOB_LEASE_S_DEFAULT <= JOB_LEASE_S_MAX

# Customers and counterparties (customers/model.py): the bounds of each personal-data field, as
# normalised (the name's bound is NAME_LENGTH_MAX).
EMAIL_LENGTH_MAX: Final = 254  # RFC 5321's path limit
PHONE_DIGITS_MIN: Final = 6
PHONE_DIGITS_MAX: Final = 15  # E.164
NATIONAL_ID_LENGTH_MIN: Final = 6
NATIONAL_ID_LENGTH_MAX: Final = 32
ADDRESS_LINE_LENGTH_MAX: Final = 200
POSTAL_CODE_LENGTH_MAX: Final = 16
ACCOUNT_IDENTIFIER_LENGTH_MAX: Final = 64  # an IBAN is at most 34; other schemes are longer
assert NATIONAL_ID_LENGTH_MIN > 4  # the mask shows the last 4: never the whole id
# The card vault (security/vault/): a card number is 12 to 19 digits (ISO/IEC 7812), sent with
# spaces or dashes at most between groups; a holder's name is at most CARD_HOLDER_NAME_CHARS_MAX.
# Tokenizations and the audit leaves of reveals are committed in groups (vault/committer.py) of
# at most VAULT_BATCH_MAX, with at most VAULT_QUEUE_MAX waiting (past it: 503 `overloaded`).
CARD_NUMBER_DIGITS_MIN: Final = 12
CARD_NUMBER_DIGITS_MAX: Final = 19
CARD_NUMBER_CHARS_MAX: Final = 32  # digits and separators, as sent
CARD_HOLDER_NAME_CHARS_MAX: Final = 100
CARD_EXPIRY_YEARS_MAX: Final = 50  # an expiry further in the future is a typo
VAULT_BATCH_MAX: Final = 2_048
VAULT_QUEUE_MAX: Final = 4 * VAULT_BATCH_MAX
assert CARD_NUMBER_DIGITS_MIN < CARD_NUMBER_DIGITS_MAX <= CARD_NUMBER_CHARS_MAX
assert VAULT_BATCH_MAX <= VAULT_QUEUE_MAX <= GROUP_COMMIT_QUEUE_MAX
# The case queue (cases/): an analyst's reason for a decision is at most CASE_REASON_CHARS_MAX
# characters; a case's kind (`risk_review`, `<gate>_review`) at most CASE_KIND_LENGTH_MAX; the
# decision detail a gate hands over (score, reasons, versions, features) is stored as canonical
# JSON of at most CASE_DETAIL_BYTES_MAX bytes (larger members are left out, and named).
CASE_REASON_CHARS_MAX: Final = 500
CASE_KIND_LENGTH_MAX: Final = 32
CASE_DETAIL_BYTES_MAX: Final = 16_384
assert CASE_REASON_CHARS_MAX < CASE_DETAIL_BYTES_MAX
# Working a case: a note is at most CASE_NOTE_CHARS_MAX characters, a case holds at most
# CASE_NOTES_MAX notes, and a suspicious-activity report draft lists at most
# CASE_REPORT_TRANSFERS_MAX transfers of its evidence (and says when it left some out).
CASE_NOTE_CHARS_MAX: Final = 10_000
CASE_NOTES_MAX: Final = 500
CASE_REPORT_TRANSFERS_MAX: Final = 1_000
# Compliance (compliance/gdpr, compliance/controls): a GDPR export lists at most
# GDPR_EXPORT_ACCOUNTS_MAX accounts and, per account, its newest GDPR_EXPORT_TRANSFERS_MAX
# transfers (then `has_more` and the cursor of the account's transfer listing), and at most
# GDPR_EXPORT_TOTAL_TRANSFERS_MAX transfers in all (then `truncated`, and the accounts left go on
# from `next_starting_after` in another request); the retention job
# erases at most GDPR_ERASE_BATCH_MAX customers per transaction; a control keeps at most
# CONTROL_FINDINGS_MAX findings as evidence (the count is always whole); the card-number scan
# reads CONTROL_SCAN_BATCH_ROWS rows at a time (its memory bound).
GDPR_EXPORT_ACCOUNTS_MAX: Final = 1_000
GDPR_EXPORT_TRANSFERS_MAX: Final = 1_000
GDPR_EXPORT_TOTAL_TRANSFERS_MAX: Final = 10_000
GDPR_ERASE_BATCH_MAX: Final = 100
CONTROL_FINDINGS_MAX: Final = 100
CONTROL_SCAN_BATCH_ROWS: Final = 1_000
assert GDPR_EXPORT_TRANSFERS_MAX >= PAGE_SIZE_MAX
assert GDPR_EXPORT_TOTAL_TRANSFERS_MAX >= GDPR_EXPORT_TRANSFERS_MAX
# Sanctions screening (compliance/sanctions/): a screened name is at most
# SCREENING_NAME_CHARS_MAX characters; an ad-hoc screening answers at most
# SCREENING_MATCHES_MAX matches.
SCREENING_NAME_CHARS_MAX: Final = 500
SCREENING_MATCHES_MAX: Final = 50
# The payee gate screens at most this many distinct `payee_name`s a batch (in memory, in the
# shared gate pool: a few ms for a Latin name of SCREENING_NAME_CHARS_MAX characters, well
# under one for a usual name, but 40-100 ms for 500 CJK or Hangul characters, each a syllable
# token of its reading); the rest get STRONGROOM_SCREENING_FAIL, as names not screened within
# the gate's budget do (the deadline is checked per name). Unknown payees in bulk: create
# counterparties (screened once, stored).
SCREENING_PAYEE_NAMES_PER_BATCH_MAX: Final = 64
assert SCREENING_PAYEE_NAMES_PER_BATCH_MAX <= BATCH_TRANSFERS_MAX
# AML monitoring (compliance/aml/): the scan reads the ledger a page of transfers at a time; a
# restarted sink rebuilds its state from the newest AML_WARM_TRANSFERS_MAX recent transfers (held
# in memory while it reads them).
AML_SCAN_PAGE_TRANSFERS: Final = PAGE_SIZE_MAX
AML_WARM_TRANSFERS_MAX: Final = 200_000
# The KYC usage control (compliance/controls/kyc_usage.py) holds at most this many recounted
# (customer, asset, hour) buckets in memory per pass over the window's transfers (about 200 bytes
# each); more buckets stored than that, and it makes more passes, each over a share of the
# customers.
KYC_USAGE_CHECK_BUCKETS_MAX: Final = 250_000
