"""Typed, frozen settings (prefix STRONGROOM_), built once at start-up and passed down."""

from __future__ import annotations

import ipaddress
import os
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from strongroom.core.errors import StrongroomError
from strongroom.core.limits import (
    AUTH_FAILURES_BURST_DEFAULT,
    AUTH_FAILURES_PER_S_DEFAULT,
    EVENT_RETENTION_DAYS_DEFAULT,
    EVENT_RETENTION_DAYS_MAX,
    GROUP_COMMIT_QUEUE_MAX,
    GROUP_COMMIT_WAIT_US_DEFAULT,
    GROUP_COMMIT_WAIT_US_MAX,
    IDEMPOTENCY_LEASE_S,
    IDEMPOTENCY_LEASE_S_MAX,
    IDEMPOTENCY_LEASE_S_MIN,
    JOB_LEASE_S_DEFAULT,
    JOB_LEASE_S_MAX,
    JOB_LEASE_S_MIN,
    RATE_LIMIT_BURST_DEFAULT,
    RATE_LIMIT_REQUESTS_PER_S_DEFAULT,
    RETENTION_INTERVAL_S_DEFAULT,
    SQLITE_WRITER_LOCK_TIMEOUT_MS_DEFAULT,
    SQLITE_WRITER_LOCK_TIMEOUT_MS_MAX,
)
from strongroom.logs import LOG_LEVELS

DEFAULT_DATABASE_URL = "sqlite:///./strongroom.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STRONGROOM_", frozen=True, extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # SQLite page cache per connection, in MiB.
    sqlite_cache_mib: int = Field(default=256, ge=2, le=16_384)
    group_commit_wait_us: int = Field(
        default=GROUP_COMMIT_WAIT_US_DEFAULT, ge=0, le=GROUP_COMMIT_WAIT_US_MAX
    )
    # Transfers waiting for the group committer; past it a request is answered 503 `overloaded`.
    group_commit_queue_max: int = Field(
        default=GROUP_COMMIT_QUEUE_MAX, ge=1, le=GROUP_COMMIT_QUEUE_MAX
    )
    # SQLite: how long a write waits for another process's writer lock before 503 `database_busy`.
    sqlite_writer_lock_timeout_ms: int = Field(
        default=SQLITE_WRITER_LOCK_TIMEOUT_MS_DEFAULT, ge=0, le=SQLITE_WRITER_LOCK_TIMEOUT_MS_MAX
    )
    # Keys the hash of every API key; without it a random one is kept in the database.
    api_key_pepper: SecretStr | None = None
    # How long an attempt holds its Idempotency-Key (renewed while it runs): a retry of a request
    # whose server died runs again at most this long after.
    idempotency_lease_s: float = Field(
        default=IDEMPOTENCY_LEASE_S, ge=IDEMPOTENCY_LEASE_S_MIN, le=IDEMPOTENCY_LEASE_S_MAX
    )
    # Tokens a second and at once of each API key's bucket (docs/deployment.md "Rate limits":
    # what a request costs), held across every worker process.
    rate_limit_per_s: float = Field(default=RATE_LIMIT_REQUESTS_PER_S_DEFAULT, gt=0)
    rate_limit_burst: int = Field(default=RATE_LIMIT_BURST_DEFAULT, ge=1)
    # Where the buckets live: `file` (a memory-mapped file shared by this host's workers; next
    # to a SQLite database), `file:PATH`, or `redis://...` / `rediss://...` (several hosts).
    rate_limit_storage: str = "file"
    # Failed authentications a second and at once per client address, then 429.
    auth_failure_limit_per_s: float = Field(default=AUTH_FAILURES_PER_S_DEFAULT, gt=0)
    auth_failure_limit_burst: int = Field(default=AUTH_FAILURES_BURST_DEFAULT, ge=1)
    # The URL clients reach the API at, behind a proxy that terminates TLS
    # (https://api.example.com): the OpenAPI document's server. None: as the request came.
    public_base_url: str | None = None
    # Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed, comma-separated
    # addresses or networks (10.0.0.0/8); from any other peer those headers are ignored. Empty:
    # none is believed, and the peer's address is the client's.
    trusted_proxies: str = ""
    # Pending transfers past their timeout are expired this often by `serve`.
    expiry_interval_s: float = Field(default=1.0, gt=0, le=3600)
    # JSON log lines on stderr from this level up (any case).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # When set, GET /metrics needs `Authorization: Bearer <this token>`.
    metrics_token: SecretStr | None = Field(default=None, min_length=16)
    # Webhooks: `serve` runs a dispatcher unless this is off (then run `strongroom worker`).
    dispatcher: bool = True
    # Development and tests only: lets webhook URLs point at private or loopback addresses.
    webhook_allow_private_targets: bool = False
    # The audit log: every ledger change is a leaf of its tenant's Merkle log. Off only for
    # measuring what it costs (`bench audit`).
    audit: bool = True
    # Each log's origin is `<audit_origin>/<tenant id>`; the signing key is named after it.
    audit_origin: str = Field(default="strongroom.localhost/audit", pattern=r"^[!-*,-~]+$")
    # A C2SP signer key (PRIVATE+KEY+...) to sign checkpoints with; without it one is
    # generated and kept in the database (rotate with `strongroom audit rotate-key`).
    audit_signing_key: SecretStr | None = None
    # `serve` publishes a checkpoint of each log that grew this often.
    audit_checkpoint_interval_s: float = Field(default=10.0, gt=0, le=86_400)
    # Events and webhook delivery attempts are kept this many days, then pruned (idempotency
    # records: their 24 hours); the retention job runs this often.
    event_retention_days: int = Field(
        default=EVENT_RETENTION_DAYS_DEFAULT, ge=1, le=EVENT_RETENTION_DAYS_MAX
    )
    retention_interval_s: float = Field(default=RETENTION_INTERVAL_S_DEFAULT, gt=0, le=86_400)
    # Expiry, checkpoint publishing and retention run in one process at a time, the holder of
    # the job's lease (renewed every third of it): a killed holder's jobs move to another
    # process within about 4/3 of this.
    job_lease_s: float = Field(default=JOB_LEASE_S_DEFAULT, ge=JOB_LEASE_S_MIN, le=JOB_LEASE_S_MAX)
    # Keys (docs/security.md): which key manager keeps the key-encryption keys: `local` (a
    # keyring file sealed under the master key) or `pkcs11` (an HSM).
    kms: Literal["local", "pkcs11"] = "local"
    # The local keyring's master key: 32 random bytes in base64 (`strongroom keys
    # new-master-key`), or a file holding it. Without either, a development master key is
    # generated beside the keyring, with a warning: never in production.
    master_key: SecretStr | None = None
    master_key_file: str | None = None
    # The local keyring file. Empty: beside a SQLite database (`<database>-keyring.json`), else
    # `.strongroom/keyring.json`.
    keyring_path: str = ""
    # STRONGROOM_KMS=pkcs11: the PKCS#11 module (a shared library, e.g.
    # /usr/lib/softhsm/libsofthsm2.so), the label of the token that keeps the keys, and the
    # user PIN that opens it (docs/security.md "Keys").
    pkcs11_module: str = ""
    pkcs11_token_label: str = ""
    pkcs11_pin: SecretStr | None = None
    # Data keys still wrapped by an older key-encryption key version are moved to the active
    # one (the rewrap job of `serve`) this often; nothing is done while none is.
    rewrap_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    # People (docs/authentication.md). A session ends this long after sign-in, or after this
    # long unused, whichever comes first; a step-up counts for step_up_window_s.
    session_ttl_s: int = Field(default=8 * 3600, ge=60, le=30 * 86_400)
    session_idle_s: int = Field(default=15 * 60, ge=60, le=30 * 86_400)  # PCI DSS 8.2.8
    step_up_window_s: int = Field(default=5 * 60, ge=10, le=86_400)
    # After this many failed sign-ins in a row an account is locked for lockout_s.
    login_failures_max: int = Field(default=5, ge=1, le=100)
    lockout_s: int = Field(default=30 * 60, ge=1, le=86_400)  # PCI DSS 8.3.4: >= 30 minutes
    # Argon2id's parameters for new password hashes (never below OWASP's minimum: 19 MiB, two
    # passes); a sign-in with a hash made with other parameters rehashes it.
    password_memory_kib: int = Field(default=64 * 1024, ge=19 * 1024, le=4 * 1024 * 1024)
    password_time_cost: int = Field(default=3, ge=2, le=64)
    password_parallelism: int = Field(default=4, ge=1, le=64)
    # WebAuthn: the relying party id (the site's domain), its name, and the origins that
    # browsers sign in from (comma-separated, scheme://host[:port]).
    webauthn_rp_id: str = Field(default="localhost", pattern=r"^[a-z0-9.-]{1,253}$")
    webauthn_rp_name: str = Field(default="Strongroom", min_length=1, max_length=64)
    webauthn_origins: str = "http://localhost:8000"
    # A transfer moving more than this many minor units needs a stepped-up user session or an
    # API key whose transfer ceiling covers it (`step_up_required_for_transfer`). None: off.
    step_up_transfer_amount: int | None = Field(default=None, ge=0)
    # Drift of the live fraud model (risk/drift.py): a feature's or the score's population
    # stability index against the training data past this raises `risk.drift_detected`, once
    # per crossing; nothing is judged before this many live rows are counted.
    risk_drift_psi: float = Field(default=0.25, gt=0, le=100)
    risk_drift_min_rows: int = Field(default=1_000, ge=1, le=10_000_000)
    # AML transaction monitoring (docs/aml.md): on, a sink runs the typology detectors as
    # transfers post and opens a case per alert; `strongroom aml scan` works either way.
    aml: bool = False
    # Risk scoring of payments (docs/risk.md): off by default; on, the risk gate and sinks
    # are installed. The model artefact, an optional shadow model and the rules file; what a
    # payment that cannot be scored gets (closed: blocked, open: allowed with a warning and a
    # metric, review: held); the gate's time budget per batch.
    risk: bool = False
    risk_model: str | None = None
    risk_shadow_model: str | None = None
    risk_rules: str | None = None
    risk_fail: Literal["closed", "open", "review"] = "closed"
    risk_budget_ms: int = Field(default=250, ge=1, le=60_000)
    # GDPR and compliance controls (docs/gdpr.md, docs/compliance-controls.md). A customer's
    # records are kept (erasure refused) while an account is open and for aml_retention_days
    # after the last activity once all are closed; the retention job erases those past it,
    # looking every aml_retention_interval_s. The controls run when the latest stored report is
    # older than compliance_check_interval_s; their thresholds follow.
    aml_retention_days: int = Field(default=5 * 365 + 1, ge=0, le=36_500)
    aml_retention_interval_s: float = Field(default=3600.0, gt=0, le=86_400)
    compliance_check_interval_s: float = Field(default=86_400.0, ge=60, le=31 * 86_400)
    key_rotation_days: int = Field(default=365, ge=1, le=3_650)
    case_sla_hours: int = Field(default=72, ge=1, le=8_760)
    sanctions_list_max_age_days: int = Field(default=7, ge=1, le=365)
    # Sanctions screening (docs/sanctions.md): a best match scoring at least the threshold is
    # a hit (the CLI's `hit`, a subject's alert, the payee gate's review). On, the payee gate
    # screens the payee of every outbound payment (its budget and fail policy as risk's).
    screening: bool = False
    screening_threshold: float = Field(default=0.7, gt=0, le=1)
    screening_fail: Literal["closed", "open", "review"] = "closed"
    screening_budget_ms: int = Field(default=250, ge=1, le=60_000)
    # KYC tier caps (docs/kyc.md): off by default; on, every transfer out of a customer's
    # account (its owner pays, payment or not) and every payment posts only if its payer is
    # verified and under its tier's caps, checked inside the posting transaction. The tier
    # table: a JSON file (compliance/kyc/model.py parse_tiers), else the defaults in code.
    kyc_limits: bool = False
    kyc_tiers: str | None = None
    # Open banking's authorization server (docs/openbanking.md): the lifetime of an access
    # token and of a refresh token's chain (neither outlives its consent), and how often what
    # expired (codes, tokens, pushed requests, remembered jtis) is deleted. The issuer is
    # public_base_url.
    ob_access_token_lifetime_s: int = Field(default=300, ge=10, le=3_600)
    ob_refresh_token_lifetime_s: int = Field(default=90 * 86_400, ge=3_600, le=400 * 86_400)
    ob_purge_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    # The /oauth2 routes and the metadata (docs/deployment.md "Rate limits"): requests a second
    # and at once of each client address's bucket and of each client id's (PAR, token).
    oauth_rate_limit_per_s: float = Field(default=50.0, gt=0)
    oauth_rate_limit_burst: int = Field(default=200, ge=1)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("rate_limit_storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        if value == "file" or (value.startswith("file:") and len(value) > len("file:")):
            return value
        if value.startswith(("redis://", "rediss://")) and urlsplit(value).hostname:
            return value
        raise ValueError("use file, file:PATH, redis://HOST:PORT/DB or rediss://...")

    @field_validator("public_base_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("use an absolute http(s) URL, such as https://api.example.com")
        if parts.query or parts.fragment:
            raise ValueError("a base URL has no query or fragment")
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    "use comma-separated IP addresses or networks (10.0.0.0/8)"
                ) from None
        return value

    @field_validator("webauthn_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for item in (part.strip() for part in value.split(",")):
            parts = urlsplit(item)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
                raise ValueError("use comma-separated origins, such as https://bank.example")
        return value

    @property
    def webauthn_origin_list(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.webauthn_origins.split(",") if part.strip())

    @property
    def trusted_proxy_list(self) -> list[str]:
        """The trusted proxies, each an address or a network in its canonical form."""
        out = []
        for item in (part.strip() for part in self.trusted_proxies.split(",")):
            if item:
                network = ipaddress.ip_network(item, strict=False)
                single = network.num_addresses == 1 and "/" not in item
                out.append(str(network.network_address) if single else str(network))
        return out


ENV_PREFIX = "STRONGROOM_"


class InvalidSettings(StrongroomError):
    """A setting (environment variable or option) has a value it cannot take. The message
    names each variable and what is wrong, never the value (it may be a secret)."""

    code = "invalid_setting"
    status = 500


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (and `overrides`), or InvalidSettings naming every
    variable that is wrong: one line, not a validation traceback."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper()
            message = error["msg"]
            if error["type"] in ("too_short", "string_too_short"):  # "items" for a SecretStr
                message = f"must be at least {error.get('ctx', {}).get('min_length')} characters"
            problems.append(f"{ENV_PREFIX}{name}: {message}")
        raise InvalidSettings("; ".join(problems)) from None


def log_level_or_default() -> str:
    """STRONGROOM_LOG_LEVEL if it is a level, else INFO: logging is configured before the
    settings are checked, so that their error is itself logged and reported."""
    level = os.environ.get(f"{ENV_PREFIX}LOG_LEVEL", "INFO").upper()
    return level if level in LOG_LEVELS else "INFO"
