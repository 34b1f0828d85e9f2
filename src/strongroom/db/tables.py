"""The schema as SQLAlchemy Core tables. Changes go through Alembic migrations only.

Times are integer microseconds since the epoch (UTC); money is minor units up to 2^128-1:
NUMERIC(39,0) on PostgreSQL, and on SQLite a native INTEGER up to 2^63-1 or a 17-byte BLOB past it
(core.money.to_stored_int; migration 0006). Entries are
appended in commit order (an integer key that grows), each pointing at its account's previous
entry, so a batch touching thousands of accounts writes a few pages rather than one per account;
every ENTRY_INDEX_STRIDE-th entry of an account is indexed in entry_index for point-in-time reads.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# INTEGER PRIMARY KEY is SQLite's rowid alias (append order, no separate index); BIGINT elsewhere.
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Money = sa.Numeric(39, 0).with_variant(sa.BigInteger(), "sqlite")

ledgers = sa.Table(
    "ledgers",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("metadata", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False, server_default="ten_default"),
    sa.Column("created_by", sa.String(200), nullable=True),  # the actor; NULL before 0016
    sa.Index("ledgers_tenant", "tenant_id", "id"),
    sqlite_with_rowid=False,
)

assets = sa.Table(
    "assets",
    metadata,
    sa.Column("code", sa.String(16), primary_key=True),
    sa.Column("scale", sa.SmallInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=True),
    sqlite_with_rowid=False,
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("ledger_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("asset", sa.String(16), nullable=False),
    sa.Column("normal_balance", sa.SmallInteger, nullable=False),
    sa.Column("flags", sa.Integer, nullable=False),
    sa.Column("closed", sa.Boolean, nullable=False),
    sa.Column("metadata", sa.Text, nullable=True),
    sa.Column("debits_posted", Money, nullable=False),
    sa.Column("credits_posted", Money, nullable=False),
    sa.Column("debits_pending", Money, nullable=False),
    sa.Column("credits_pending", Money, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("last_entry_id", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    # The customer who owns the account (migration 0013), of the ledger's tenant.
    sa.Column("customer_id", sa.String(64), nullable=True),
    sa.Column("created_by", sa.String(200), nullable=True),
    # Frozen (migration 0022): refuses the account's debits and credits (account_frozen).
    sa.Column("frozen", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("accounts_ledger_id", "ledger_id", "id"),
    sa.Index(
        "accounts_customer",
        "customer_id",
        "id",
        sqlite_where=sa.text("customer_id IS NOT NULL"),
        postgresql_where=sa.text("customer_id IS NOT NULL"),
    ),
    sqlite_with_rowid=False,
    # Balances are rewritten on every posting: room on each page keeps those updates HOT
    # (no index maintenance) on PostgreSQL.
    postgresql_with={"fillfactor": "70"},
)

transfers = sa.Table(
    "transfers",
    metadata,
    sa.Column("seq", RowId, primary_key=True, autoincrement=False),
    sa.Column("id", sa.String(64), nullable=False),
    sa.Column("ledger_id", sa.String(64), nullable=False),
    sa.Column("action", sa.SmallInteger, nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("debit_account_id", sa.String(64), nullable=True),
    sa.Column("credit_account_id", sa.String(64), nullable=True),
    sa.Column("amount", Money, nullable=False),
    sa.Column("legs", sa.Text, nullable=True),
    sa.Column("target_id", sa.String(64), nullable=True),
    sa.Column("pending", sa.Boolean, nullable=False),
    sa.Column("timeout_s", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("metadata", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("effective_at", sa.BigInteger, nullable=True),  # NULL: effective at created_at
    # Who created it: an id in `actors` (interned once per actor, so a bulk row carries a small
    # integer, not the string); NULL before migration 0016.
    sa.Column("actor_ref", sa.Integer, nullable=True),
    sa.Index("transfers_id", "id", unique=True),
    sa.Index(
        "transfers_pending_expiry",
        "expires_at",
        sqlite_where=sa.text("status = 1 AND expires_at IS NOT NULL"),
        postgresql_where=sa.text("status = 1 AND expires_at IS NOT NULL"),
    ),
    sa.Index(
        "transfers_target",
        "target_id",
        sqlite_where=sa.text("target_id IS NOT NULL"),
        postgresql_where=sa.text("target_id IS NOT NULL"),
    ),
)

# Every actor that has changed the ledger (`api_key:<id>`, `cli`, `system:expiry`, a user...),
# once: transfers.actor_ref points here. Append-only, so a process may cache it.
actors = sa.Table(
    "actors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("actor", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

entries = sa.Table(
    "entries",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=False),
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("prev_id", sa.BigInteger, nullable=True),
    sa.Column("transfer_id", sa.String(64), nullable=False),
    sa.Column("direction", sa.SmallInteger, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("pending_delta", Money, nullable=False),
    sa.Column("debits_posted", Money, nullable=False),
    sa.Column("credits_posted", Money, nullable=False),
    sa.Column("debits_pending", Money, nullable=False),
    sa.Column("credits_pending", Money, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

entry_index = sa.Table(
    "entry_index",
    metadata,
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True),
    sa.Column("entry_id", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# SQLite's id-block counter (it has one writer at a time); PostgreSQL uses a sequence.
id_blocks = sa.Table(
    "id_blocks",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)


tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("suspended_at", sa.BigInteger, nullable=True),  # its keys authenticate no more
)

# Only a keyed hash (HMAC-SHA256 with the server's pepper) of each secret key is stored.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("hint", sa.String(16), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    # Decimal minor units a single transfer of this key may move past the step-up threshold
    # (migration 0015); NULL: none, the key is held to the threshold.
    sa.Column("transfer_ceiling", sa.String(40), nullable=True),
    sa.Column("role", sa.String(32), nullable=True),  # security.rbac.Role, when made for one
)

# One record per (tenant, Idempotency-Key) (migration 0009): in flight while `owner` holds the
# lease (`lease_until`), then the stored answer (`body`, zlib-compressed). Kept for
# IDEMPOTENCY_RETENTION_S from `claimed_at`, then purged.
idempotency_records = sa.Table(
    "idempotency_records",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("claimed_at", sa.BigInteger, nullable=False),
    sa.Column("owner", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.BigInteger, nullable=False),
    sa.Column("status_code", sa.SmallInteger, nullable=True),
    sa.Column("body", sa.LargeBinary, nullable=True),
    # The customer or counterparty the answer concerns (0017): its erasure replaces the answer.
    sa.Column("subject_id", sa.String(64), nullable=True),
    sa.Index("idempotency_records_claimed", "claimed_at"),
    sa.Index("idempotency_records_subject", "tenant_id", "subject_id"),
    sqlite_with_rowid=False,
)

# The risk model registry (migration 0020, risk/registry.py): each tenant's model artefacts
# (one JSON document each, never a pickle) with their hold-out metrics and status; at most one
# live and one shadow model per tenant (partial unique indexes). `risk_model_revisions` counts
# a tenant's changes, so that a server notices a promotion by reading one row.
risk_models = sa.Table(
    "risk_models",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # registered, shadow, live, retired
    sa.Column("artefact", sa.LargeBinary, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),  # of the artefact, hex
    sa.Column("metrics", sa.Text, nullable=False),  # JSON: the artefact's hold-out metrics
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("promoted_at", sa.BigInteger, nullable=True),  # when it last went live
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index(
        "risk_models_one_live",
        "tenant_id",
        unique=True,
        sqlite_where=sa.text("status = 'live'"),
        postgresql_where=sa.text("status = 'live'"),
    ),
    sa.Index(
        "risk_models_one_shadow",
        "tenant_id",
        unique=True,
        sqlite_where=sa.text("status = 'shadow'"),
        postgresql_where=sa.text("status = 'shadow'"),
    ),
)

risk_model_revisions = sa.Table(
    "risk_model_revisions",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
)

# One row per background job (migration 0010, db/leases.py): the process that runs it (`owner`,
# until `lease_until`), and when it last succeeded and last failed (the error's type only).
job_leases = sa.Table(
    "job_leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("lease_until", sa.BigInteger, nullable=False),
    sa.Column("last_success_at", sa.BigInteger, nullable=True),
    sa.Column("last_error_at", sa.BigInteger, nullable=True),
    sa.Column("last_error", sa.String(200), nullable=True),
    sqlite_with_rowid=False,
)

# Subjects' data keys (envelope encryption): migration 0011, security/store.py.
subject_keys = sa.Table(
    "subject_keys",
    metadata,
    sa.Column("subject_id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("kek_version", sa.Integer, nullable=False),
    sa.Column("wrapped", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("shredded_at", sa.BigInteger, nullable=True),
    sa.Index("subject_keys_version", "kek_version", "subject_id"),
    sqlite_with_rowid=False,
)

# Customers and counterparties (migration 0013, customers/store.py): each personal-data field
# sealed under the subject's data key (security/envelope.py), the email and the national id with
# a blind index (a keyed hash of the normalised value) for exact lookup. Erasure shreds the data
# key and nulls the sealed fields and the indexes.
CUSTOMER_PII = ("name", "date_of_birth", "address", "email", "phone", "national_id")
customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    *(sa.Column(f"{name}_sealed", sa.LargeBinary, nullable=True) for name in CUSTOMER_PII),
    sa.Column("email_index", sa.LargeBinary, nullable=True),
    sa.Column("national_id_index", sa.LargeBinary, nullable=True),
    sa.Column("legal_hold", sa.Boolean, nullable=False),
    sa.Column("metadata", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("erased_at", sa.BigInteger, nullable=True),
    sa.Index("customers_tenant", "tenant_id", "id"),
    sa.Index("customers_email", "tenant_id", "email_index"),
    sa.Index("customers_national_id", "tenant_id", "national_id_index"),
    sqlite_with_rowid=False,
)

counterparties = sa.Table(
    "counterparties",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("name_sealed", sa.LargeBinary, nullable=True),
    sa.Column("account_sealed", sa.LargeBinary, nullable=True),
    sa.Column("country", sa.String(2), nullable=False),  # ISO 3166-1 alpha-2: not personal
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("erased_at", sa.BigInteger, nullable=True),
    sa.Index("counterparties_tenant", "tenant_id", "id"),
    sqlite_with_rowid=False,
)

# The card vault's tokens (migration 0014, security/vault/store.py): what may be shown, a keyed
# hash of the number, and the number and the holder's name sealed under the card's data key.
cards = sa.Table(
    "cards",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(32), nullable=False),
    sa.Column("bin", sa.String(8), nullable=False),
    sa.Column("last4", sa.String(4), nullable=False),
    sa.Column("digits", sa.SmallInteger, nullable=False),
    sa.Column("brand", sa.String(16), nullable=False),
    sa.Column("exp_month", sa.SmallInteger, nullable=False),
    sa.Column("exp_year", sa.SmallInteger, nullable=False),
    sa.Column("sealed_number", sa.LargeBinary, nullable=False),
    sa.Column("sealed_holder_name", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Index("cards_tenant", "tenant_id", "id"),
    sa.Index("cards_fingerprint", "tenant_id", "fingerprint", "id"),
    sqlite_with_rowid=False,
)

# People who sign in (migration 0015, security/auth/): staff and customers of a tenant.
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),  # lowercased
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=True),  # Argon2id, PHC string
    sa.Column("failed_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", sa.BigInteger, nullable=True),
    sa.Column("totp_kek_version", sa.Integer, nullable=True),
    sa.Column("totp_secret", sa.LargeBinary, nullable=True),  # wrapped by the key manager
    sa.Column("totp_confirmed_at", sa.BigInteger, nullable=True),
    sa.Column("totp_last_step", sa.BigInteger, nullable=True),
    sa.Column("webauthn_handle", sa.LargeBinary, nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("tenant_id", "email", name="users_tenant_email"),
)

webauthn_credentials = sa.Table(
    "webauthn_credentials",
    metadata,
    sa.Column("id", sa.String(1400), primary_key=True),  # base64url credential id
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("public_key", sa.LargeBinary, nullable=False),  # COSE
    sa.Column("sign_count", sa.BigInteger, nullable=False),
    sa.Column("transports", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("last_used_at", sa.BigInteger, nullable=True),
    sa.Index("webauthn_credentials_user", "user_id"),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # sha256 of the token, hex
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("idle_expires_at", sa.BigInteger, nullable=False),
    sa.Column("stepped_up_at", sa.BigInteger, nullable=True),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    sa.Column("method", sa.String(16), nullable=False),  # password, passkey
    sa.Index("sessions_user", "user_id"),
    sa.Index("sessions_expires", "expires_at"),
)

# WebAuthn challenges: single use (deleted when consumed) and expiring.
auth_challenges = sa.Table(
    "auth_challenges",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("user_id", sa.String(64), nullable=True),
    sa.Column("session_id", sa.String(64), nullable=True),
    sa.Column("challenge", sa.LargeBinary, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Index("auth_challenges_expires", "expires_at"),
)

server_secrets = sa.Table(
    "server_secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


# Events (the transactional outbox) and webhooks: migration 0003, events/store.py.
events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", RowId, primary_key=True, autoincrement=False),
    sa.Column("id", sa.String(64), nullable=False),
    sa.Column("ledger_id", sa.String(64), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("data", sa.Text, nullable=True),  # NULL: rendered from its transfer (0005)
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("transfer_id", sa.String(64), nullable=True),
    # 0013: the tenant of an event of no ledger (a customer's: its ledger_id is ''); NULL for a
    # ledger's event, whose tenant is its ledger's.
    sa.Column("tenant_id", sa.String(64), nullable=True),
    sa.Index("events_id", "id", unique=True),
)

# The seqs of events not yet fanned out to webhook endpoints.
events_unrouted = sa.Table(
    "events_unrouted",
    metadata,
    sa.Column("seq", RowId, primary_key=True, autoincrement=False),
)

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("enabled_events", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("failure_count", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=True),
    sa.Index("webhook_endpoints_tenant", "tenant_id", "id"),
    sqlite_with_rowid=False,
)

# One row per (event, endpoint): pending until delivered or given up; leased while in flight.
webhook_delivery_state = sa.Table(
    "webhook_delivery_state",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("endpoint_id", sa.String(64), primary_key=True),
    sa.Column("event_seq", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
    sa.Column("lease_until", sa.BigInteger, nullable=False),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index(
        "webhook_delivery_due",
        "next_attempt_at",
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    ),
    sa.Index("webhook_delivery_endpoint", "endpoint_id", "event_seq"),
    # 0008: each endpoint's pending deliveries by when they are due (fair claiming).
    sa.Index(
        "webhook_delivery_endpoint_due",
        "endpoint_id",
        "next_attempt_at",
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    ),
    sqlite_with_rowid=False,
)

# One row per attempt made.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("endpoint_id", sa.String(64), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("response_status", sa.SmallInteger, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("webhook_deliveries_endpoint", "endpoint_id", "created_at"),
    sqlite_with_rowid=False,
)


# The verifiable audit log: migration 0005, audit/store.py.
audit_logs = sa.Table(
    "audit_logs",
    metadata,
    sa.Column("log_id", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

audit_bundles = sa.Table(
    "audit_bundles",
    metadata,
    sa.Column("log_id", sa.String(64), primary_key=True),
    sa.Column("first_idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Index("audit_bundles_time", "log_id", "created_at"),
    sqlite_with_rowid=False,
)

audit_refs = sa.Table(
    "audit_refs",
    metadata,
    sa.Column("ref", sa.String(64), primary_key=True),
    sa.Column("log_id", sa.String(64), primary_key=True),
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

audit_tiles = sa.Table(
    "audit_tiles",
    metadata,
    sa.Column("log_id", sa.String(64), primary_key=True),
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hashes", sa.LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("log_id", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root", sa.LargeBinary, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

audit_keys = sa.Table(
    "audit_keys",
    metadata,
    sa.Column("key_id", sa.String(8), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("verifier_key", sa.Text, nullable=False),
    sa.Column("signer_key", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("retired_at", sa.BigInteger, nullable=True),
)

# The case queue (migration 0019, cases/store.py): decisions a person must take, such as a
# transfer a gate held for review; ids are time-ordered, so (tenant, status, id) lists the
# newest first.
cases = sa.Table(
    "cases",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open, approved, declined, closed
    sa.Column("transfer_id", sa.String(64), nullable=True),
    sa.Column("gate", sa.String(64), nullable=True),
    sa.Column("code", sa.String(64), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),  # canonical JSON: no personal data
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=True),  # the actor of the transfer
    sa.Column("decided_at", sa.BigInteger, nullable=True),
    sa.Column("decided_by", sa.String(200), nullable=True),
    sa.Column("decision_reason", sa.Text, nullable=True),
    sa.Column("label", sa.String(16), nullable=True),  # fraud, genuine
    sa.Column("assignee", sa.String(64), nullable=True),  # a staff user's id (migration 0025)
    sa.Index("cases_tenant", "tenant_id", "id"),
    sa.Index("cases_tenant_status", "tenant_id", "status", "id"),
    sa.Index("cases_tenant_kind", "tenant_id", "kind", "id"),
    sa.Index("cases_transfer_kind", "transfer_id", "kind", unique=True),
    sa.Index("cases_tenant_assignee", "tenant_id", "assignee", "id"),
    sqlite_with_rowid=False,
)

# An officer's notes on a case (migration 0025): free text by staff, never in a leaf or event.
case_notes = sa.Table(
    "case_notes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("case_id", sa.String(64), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("case_notes_case", "case_id", "id"),
    sqlite_with_rowid=False,
)

# Risk (migration 0018, risk/store.py). Every created transfer that carried a payment is a
# risk event, written by the risk sink in the posting transaction: the feature store's source
# of truth, tailed by `seq`. `seq` and `label_seq` are drawn from the tenant's counter in
# risk_tails, whose row the writing transaction holds locked until its commit: a tenant's rows
# become visible in counter order, so a tail after the last counter it saw misses none. The
# payee, device and IP are keyed hashes (hex HMAC-SHA256 under the key manager's MAC key of
# their purpose and tenant, as the customers' blind indexes): equal values match, nothing else
# is learnt. The customer is an id and the channel a closed set: neither is personal.
risk_tails = sa.Table(
    "risk_tails",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
)

risk_events = sa.Table(
    "risk_events",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("transfer_id", sa.String(64), nullable=False),
    sa.Column("at_us", sa.BigInteger, nullable=False),
    sa.Column("amount", Money, nullable=False),  # minor units
    sa.Column("scale", sa.SmallInteger, nullable=False),  # the asset's: amount / 10**scale
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("payee", sa.String(64), nullable=True),
    sa.Column("channel", sa.String(24), nullable=True),
    sa.Column("device", sa.String(64), nullable=True),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("fraud", sa.Boolean, nullable=True),  # the label, once known
    sa.Column("labelled_at", sa.BigInteger, nullable=True),
    sa.Column("label_seq", sa.BigInteger, nullable=True),  # the counter at the last label
    sa.Index("risk_events_transfer", "transfer_id", unique=True),
    sa.Index("risk_events_at", "tenant_id", "at_us"),
    sa.Index("risk_events_label", "tenant_id", "label_seq"),
    sqlite_with_rowid=False,
)

# Every risk decision on a scored payment: allow, review and block (a blocked payment has a
# decision and no transfer). Reasons, features and contributions as JSON.
risk_decisions = sa.Table(
    "risk_decisions",
    metadata,
    sa.Column("transfer_id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("verdict", sa.String(8), nullable=False),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("rules_version", sa.String(64), nullable=True),
    sa.Column("features", sa.Text, nullable=False),
    sa.Column("contributions", sa.Text, nullable=True),  # NULL: computed when read
    sa.Column("shadow_score", sa.Float, nullable=True),
    sa.Column("shadow_version", sa.String(64), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Stored reports of the compliance controls (migration 0024, compliance/controls/store.py).
compliance_reports = sa.Table(
    "compliance_reports",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # pass, fail
    sa.Column("body", sa.Text, nullable=False),  # the report's JSON
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Index("compliance_reports_time", "created_at", "id"),
)

# Sanctions screening (migration 0021, compliance/sanctions/store.py). Lists are public and
# deployment-wide: a row per loaded version of a list, each entry (JSON + fingerprint) with the
# versions it was current in (last_version NULL: current), and each version's diff. Per tenant:
# each subject's screening status (a keyed hash of the screened name, never the name), scores
# per (subject, entry), reviewed false positives, and the blocking index (keyed hashes of
# phonetic keys of the subject's name tokens).
sanctions_list_versions = sa.Table(
    "sanctions_list_versions",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sha256", sa.String(64), nullable=False),  # of the entries' fingerprints
    sa.Column("entry_count", sa.Integer, nullable=False),
    sa.Column("added", sa.Integer, nullable=False),
    sa.Column("changed", sa.Integer, nullable=False),
    sa.Column("removed", sa.Integer, nullable=False),
    sa.Column("loaded_at", sa.BigInteger, nullable=False),
    sa.Column("loaded_by", sa.String(200), nullable=False),
    # When its re-screening completed (0030); NULL: still owed, done by the next load.
    sa.Column("rescreened_at", sa.BigInteger, nullable=True),
)

sanctions_entries = sa.Table(
    "sanctions_entries",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("entry_id", sa.String(128), primary_key=True),
    sa.Column("first_version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_version", sa.Integer, nullable=True),  # NULL: in the current version
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the Entry as JSON (public list data)
    sa.Index("sanctions_entries_current", "source", "last_version"),
)

sanctions_changes = sa.Table(
    "sanctions_changes",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.String(128), primary_key=True),
    sa.Column("change", sa.String(8), nullable=False),  # added, changed, removed
)

sanctions_subjects = sa.Table(
    "sanctions_subjects",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("subject", sa.String(80), primary_key=True),  # customer:<id>, counterparty:<id>
    sa.Column("name_digest", sa.String(64), nullable=False),  # keyed hash, hex
    sa.Column("status", sa.String(16), nullable=False),  # clear, probable, confirmed
    sa.Column("best_score", sa.Float, nullable=False),
    sa.Column("screened_at", sa.BigInteger, nullable=False),
)

sanctions_results = sa.Table(
    "sanctions_results",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("subject", sa.String(80), primary_key=True),
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("entry_id", sa.String(128), primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("list_version", sa.Integer, nullable=False),
    sa.Column("name_digest", sa.String(64), nullable=False),
    sa.Column("case_id", sa.String(64), nullable=True),  # the alert it opened, if any
    sa.Column("screened_at", sa.BigInteger, nullable=False),
)

sanctions_dismissals = sa.Table(
    "sanctions_dismissals",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("subject", sa.String(80), primary_key=True),
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("entry_id", sa.String(128), primary_key=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("name_digest", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("reviewer", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

sanctions_subject_keys = sa.Table(
    "sanctions_subject_keys",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),  # keyed hash of a phonetic key, hex
    sa.Column("subject", sa.String(80), primary_key=True),
    sa.Index("sanctions_subject_keys_subject", "tenant_id", "subject"),
)

# KYC (compliance/kyc, migration 0022): each customer's verification status and tier; a payer's
# row is locked by the posting transaction before it reads and adds to its usage buckets.
kyc_customers = sa.Table(
    "kyc_customers",
    metadata,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("tier", sa.String(64), nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# What each customer's payments took out, per asset and hour (compliance/kyc/model.py: the
# rolling windows sum these buckets).
kyc_usage = sa.Table(
    "kyc_usage",
    metadata,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("asset", sa.String(16), primary_key=True),
    sa.Column("hour", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("amount", Money, nullable=False),
    sqlite_with_rowid=False,
)

# AML monitoring (migration 0023, compliance/aml/store.py): one row per raised alert; the key
# is the dedupe (one alert per account and typology per window, from the sink or a scan).
aml_alerts = sa.Table(
    "aml_alerts",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("typology", sa.String(32), primary_key=True),
    sa.Column("window_start", sa.BigInteger, primary_key=True),
    sa.Column("case_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Open banking clients (migration 0026, openbanking/tpp/store.py): the third-party providers
# registered with the deployment's authorization server. Deployment-wide, so no tenant_id;
# `jwks` holds public keys only (canonical JSON), `redirect_uris` a JSON array.
ob_clients = sa.Table(
    "ob_clients",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("software_id", sa.String(64), nullable=True),
    sa.Column("jwks", sa.Text, nullable=False),
    sa.Column("redirect_uris", sa.Text, nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Open banking's authorization server (migration 0029, openbanking/authz/store.py), deployment-
# wide. Secrets (request_uris, codes, tokens) are kept only as the SHA-256 of their text
# (base64url, 43 characters).
ob_par_requests = sa.Table(
    "ob_par_requests",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("params", sa.Text, nullable=False),  # the pushed parameters, JSON
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("begun_at", sa.BigInteger, nullable=True),  # the user agent arrived
    sa.Index("ob_par_requests_expiry", "expires_at"),
    sqlite_with_rowid=False,
)

ob_codes = sa.Table(
    "ob_codes",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("code_challenge", sa.String(64), nullable=False),
    sa.Column("dpop_jkt", sa.String(64), nullable=True),  # RFC 9449 section 10: dpop_jkt
    sa.Column("consent_id", sa.String(64), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("scope", sa.String(200), nullable=False),
    sa.Column("issued_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("used_at", sa.BigInteger, nullable=True),  # single use
    sa.Index("ob_codes_consent", "consent_id"),
    sa.Index("ob_codes_expiry", "expires_at"),
    sqlite_with_rowid=False,
)

ob_tokens = sa.Table(
    "ob_tokens",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),  # obt_...: names the token
    sa.Column("kind", sa.String(16), nullable=False),  # access | refresh
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("grant_type", sa.String(32), nullable=False),
    sa.Column("scope", sa.String(200), nullable=False),
    sa.Column("jkt", sa.String(64), nullable=False),  # the DPoP key it is bound to
    sa.Column("consent_id", sa.String(64), nullable=True),
    sa.Column("tenant_id", sa.String(64), nullable=True),
    sa.Column("customer_id", sa.String(64), nullable=True),
    sa.Column("origin", sa.String(64), nullable=True),  # the digest of the code of its chain
    sa.Column("parent", sa.String(64), nullable=True),  # the refresh token it was issued with
    sa.Column("issued_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    sa.Index("ob_tokens_consent", "consent_id"),
    sa.Index("ob_tokens_origin", "origin"),
    sa.Index("ob_tokens_expiry", "expires_at"),
    sqlite_with_rowid=False,
)

# The jtis of DPoP proofs and client assertions seen, until they expire (key: the SHA-256 of
# the replay key), shared by every worker process.
ob_dpop_jti = sa.Table(
    "ob_dpop_jti",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Index("ob_dpop_jti_expiry", "expires_at"),
    sqlite_with_rowid=False,
)

# Migration 0027: accounts' AML profiles, set by compliance (compliance/aml/profiles.py).
aml_accounts = sa.Table(
    "aml_accounts",
    metadata,
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("exempt", sa.Boolean, nullable=False),
    sa.Column("jurisdiction", sa.String(2), nullable=True),
    sa.Column("updated_by", sa.String(200), nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Open banking consents (migration 0028, openbanking/resources/store.py): what a TPP asked for
# under a tenant, its status (openbanking/consents.py), and what the customer granted.
ob_consents = sa.Table(
    "ob_consents",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("status_updated_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("permissions", sa.String(600), nullable=True),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=True),
    sa.Column("account_ids", sa.Text, nullable=True),
    sa.Column("idempotency_key", sa.String(64), nullable=True),
    sa.Column("request_hash", sa.String(64), nullable=True),
    sa.Index("ob_consents_expiry", "status", "expires_at"),
    sa.Index("ob_consents_customer", "customer_id", "id"),
    sa.Index("ob_consents_idempotency", "tenant_id", "client_id", "idempotency_key", unique=True),
    sqlite_with_rowid=False,
)

# Open banking domestic payments (migration 0031, openbanking/payments/store.py): one per
# consent (unique), its id the ledger transfer's (none when refused before posting: `refusal`).
ob_payments = sa.Table(
    "ob_payments",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("consent_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("refusal", sa.String(64), nullable=True),
    sa.Index("ob_payments_consent", "consent_id", unique=True),
    sqlite_with_rowid=False,
)

# The deployment's open banking response signing keys (migration 0031): RSA keys whose public
# JWKs are the jwks_uri's, the private halves sealed (security/sealing.py).
ob_signing_keys = sa.Table(
    "ob_signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("public_jwk", sa.Text, nullable=False),
    sa.Column("private_jwk", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("retired_at", sa.BigInteger, nullable=True),
    sqlite_with_rowid=False,
)

# When the deployment first ran with the KYC limits on (migration 0032, compliance/kyc/store.py):
# one row, written once and never later than the earliest kyc_usage bucket; the control
# kyc_usage_counted compares the hours after it (not after the table's own earliest bucket).
kyc_limits_since = sa.Table(
    "kyc_limits_since",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),  # always 1
    sa.Column("since", sa.BigInteger, nullable=False),  # microseconds since the epoch
    sqlite_with_rowid=False,
)

# Who pays and who is paid by each payment created pending (migration 0033,
# compliance/sanctions/store.py): the subjects the payee gate screened, kept so that a later
# post of it (a client's two-phase post, a case's approval) is screened again against them
# inside its posting transaction (SanctionsGate.recheck). Identifiers only, never names.
payment_subjects = sa.Table(
    "payment_subjects",
    metadata,
    sa.Column("transfer_id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("payer", sa.String(80), nullable=False),  # customer:<id>
    sa.Column("payee", sa.String(80), nullable=True),  # counterparty:<id>, customer:<id>
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)
