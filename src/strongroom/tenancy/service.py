"""Tenants and API keys; the idempotency records behind `Idempotency-Key`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Sequence

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.core import clock, ids
from strongroom.core.errors import NotFound
from strongroom.core.limits import (
    API_KEY_CACHE_TTL_S,
    IDEMPOTENCY_KEY_LENGTH_MAX,
    IDEMPOTENCY_RETENTION_S,
)
from strongroom.db.uow import UnitOfWork
from strongroom.tenancy import store
from strongroom.tenancy.model import (
    ApiKey,
    IdempotencyOutcome,
    IdempotencyState,
    Scope,
    Tenant,
    validate_tenant_name,
)

SECRET_KEY_PREFIX = "sk_"  # noqa: S105 - the public prefix of every key, not a secret
_PEPPER_NAME = "api_key_pepper"


def _well_formed(secret: str) -> bool:
    return secret.startswith(SECRET_KEY_PREFIX) and len(secret) <= 200


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


class TenancyService:
    def __init__(
        self, engine: Engine, *, pepper: str | None = None, audit: AuditRecorder | None = None
    ) -> None:
        """`pepper` keys the hash of every API key (STRONGROOM_API_KEY_PEPPER). Without one, a
        random pepper is generated once and kept in the database: fine for development, but
        then a copy of the database alone is enough to test guesses offline. `audit` records
        key creations and revocations as leaves of the tenant's log, in their transaction."""
        self.engine = engine
        self._audit = audit
        self._pepper = pepper.encode() if pepper else None
        self._cache: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()

    def _pepper_bytes(self) -> bytes:
        if self._pepper is None:
            with UnitOfWork(self.engine) as uow:
                store.insert_secret_if_absent(
                    uow, _PEPPER_NAME, base64.b64encode(secrets.token_bytes(32)).decode()
                )
                value = store.get_secret(uow, _PEPPER_NAME)
                uow.commit()
            assert value is not None
            self._pepper = base64.b64decode(value)
        return self._pepper

    def _digest(self, secret: str) -> str:
        return hmac.new(self._pepper_bytes(), secret.encode(), hashlib.sha256).hexdigest()

    # -- tenants and keys ------------------------------------------------------------------

    def ensure_tenant(self, name: str) -> Tenant:
        validate_tenant_name(name)
        with UnitOfWork(self.engine) as uow:
            row = store.get_tenant_by_name(uow, name)
            if row is None:
                tenant_id = ids.new_id("ten")
                now = clock.now_us()
                store.insert_tenant(uow, tenant_id, name, now)
                uow.commit()
                return Tenant(tenant_id, name, now)
        return Tenant(row[0], row[1], row[2])

    def create_api_key(
        self, tenant_name: str, scopes: Sequence[str], *, actor: str = "tenancy"
    ) -> tuple[ApiKey, str]:
        """Returns the key and its secret. Only a keyed hash of the secret is stored: the
        secret cannot be shown again."""
        parsed = Scope.parse(list(scopes))
        tenant = self.ensure_tenant(tenant_name)
        secret = SECRET_KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(ids.new_id("key"), tenant.id, parsed, secret[-4:])
        digest = self._digest(secret)
        with UnitOfWork(self.engine) as uow:
            store.insert_api_key(
                uow,
                (
                    key.id,
                    tenant.id,
                    digest,
                    key.hint,
                    " ".join(sorted(s.value for s in parsed)),
                    clock.now_us(),
                ),
            )
            if self._audit is not None:
                data = {"key_id": key.id, "scopes": sorted(s.value for s in parsed)}
                self._audit.record_all(uow, tenant.id, actor, [("api_key.created", key.id, data)])
            uow.commit()
        return key, secret

    def revoke_api_key(self, key_id: str, *, actor: str = "tenancy") -> None:
        with UnitOfWork(self.engine) as uow:
            tenant_id = store.api_key_tenant(uow, key_id)
            if store.revoke_api_key(uow, key_id, clock.now_us()) == 0 or tenant_id is None:
                raise NotFound(f"no active API key {key_id}", param="key_id")
            if self._audit is not None:
                item = ("api_key.revoked", key_id, {"key_id": key_id})
                self._audit.record_all(uow, tenant_id, actor, [item])
            uow.commit()
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v[1].id != key_id}

    def cached(self, secret: str) -> ApiKey | None:
        """The key from the in-process cache, without touching the database (the common
        case on a busy server); None when it must be looked up."""
        if not _well_formed(secret) or self._pepper is None:
            return None
        return self._from_cache(self._digest(secret), time.monotonic())

    def _from_cache(self, digest: str, now: float) -> ApiKey | None:
        cached = self._cache.get(digest)
        return cached[1] if cached is not None and cached[0] > now else None

    def authenticate(self, secret: str) -> ApiKey | None:
        """The key for a presented secret, or None. Positive answers are cached for
        API_KEY_CACHE_TTL_S seconds: a revocation elsewhere takes at most that long."""
        if not _well_formed(secret):
            return None
        digest = self._digest(secret)
        now = time.monotonic()
        cached = self._from_cache(digest, now)
        if cached is not None:
            return cached
        with UnitOfWork(self.engine, write=False) as uow:
            row = store.get_api_key_by_hash(uow, digest)
        if row is None:
            return None
        key = ApiKey(row[0], row[1], Scope.parse(row[3].split()), row[2])
        with self._lock:
            self._cache[digest] = (now + API_KEY_CACHE_TTL_S, key)
        return key

    # -- idempotency -----------------------------------------------------------------------

    def begin_idempotent(self, api_key_id: str, key: str, print_: str) -> IdempotencyOutcome:
        assert len(key) <= IDEMPOTENCY_KEY_LENGTH_MAX
        now = clock.now_us()
        with UnitOfWork(self.engine) as uow:
            if store.claim_idempotency_key(uow, api_key_id, key, print_, now):
                uow.commit()
                return IdempotencyOutcome(IdempotencyState.STARTED)
            record = store.get_idempotency_record(uow, api_key_id, key)
            assert record is not None
            stored_print, status_code, body, created_at = record
            if created_at < now - IDEMPOTENCY_RETENTION_S * 1_000_000:
                # Expired: the key is free again.
                store.release_idempotency_key(uow, api_key_id, key)
                store.delete_idempotency_older_than(uow, now - IDEMPOTENCY_RETENTION_S * 1_000_000)
                claimed = store.claim_idempotency_key(uow, api_key_id, key, print_, now)
                uow.commit()
                if claimed:
                    return IdempotencyOutcome(IdempotencyState.STARTED)
                return IdempotencyOutcome(IdempotencyState.IN_FLIGHT)
        if stored_print != print_:
            return IdempotencyOutcome(IdempotencyState.MISMATCH)
        if status_code is None:
            return IdempotencyOutcome(IdempotencyState.IN_FLIGHT)
        return IdempotencyOutcome(IdempotencyState.REPLAY, int(status_code), body)

    def finish_idempotent(self, api_key_id: str, key: str, status_code: int, body: bytes) -> None:
        with UnitOfWork(self.engine) as uow:
            store.finish_idempotency_key(uow, api_key_id, key, status_code, body.decode())
            uow.commit()

    def release_idempotent(self, api_key_id: str, key: str) -> None:
        """Forget an in-flight key whose request failed before it could be answered (a 5xx),
        so that the client's retry runs it again."""
        with UnitOfWork(self.engine) as uow:
            store.release_idempotency_key(uow, api_key_id, key)
            uow.commit()
