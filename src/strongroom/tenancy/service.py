"""Tenants and API keys; the idempotency records behind `Idempotency-Key`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.core import clock, ids
from strongroom.core.errors import Conflict, InvalidRequest, NotFound
from strongroom.core.limits import (
    API_KEY_CACHE_TTL_S,
    IDEMPOTENCY_ANSWER_BYTES_MAX,
    IDEMPOTENCY_KEY_LENGTH_MAX,
    IDEMPOTENCY_LEASE_S,
    IDEMPOTENCY_LEASE_S_MAX,
    IDEMPOTENCY_PURGE_BATCH,
    IDEMPOTENCY_RETENTION_S,
)
from strongroom.db.uow import UnitOfWork
from strongroom.security.aead import DecryptionFailed
from strongroom.tenancy import store
from strongroom.tenancy.model import (
    SYSTEM_TENANT_NAME,
    ApiKey,
    IdempotencyOutcome,
    IdempotencyState,
    Scope,
    Tenant,
    validate_tenant_name,
)

SECRET_KEY_PREFIX = "sk_"  # noqa: S105 - the public prefix of every key, not a secret
_PEPPER_NAME = "api_key_pepper"
# The key manager's MAC purpose whose key fingerprints idempotent requests (runtime.py).
IDEMPOTENCY_FINGERPRINT: Final = "idempotency.fingerprint"


def _well_formed(secret: str) -> bool:
    return secret.startswith(SECRET_KEY_PREFIX) and len(secret) <= 200


def fingerprint(key: bytes, method: str, path: str, body: bytes) -> str:
    """What an Idempotency-Key record keeps of its request: a keyed hash (HMAC-SHA256). A plain
    hash of a body that carries a card number and its security code, or personal data, would
    let a copy of the database test guesses of them offline."""
    message = method.encode() + b" " + path.encode() + b"\n" + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class AnswerSealer(Protocol):
    """Seals a stored idempotency answer for its tenant and key (security.answers)."""

    def seal(self, tenant_id: str, name: str, answer: bytes) -> bytes: ...

    def open(self, tenant_id: str, name: str, sealed: bytes) -> bytes: ...


_ZLIB_FIRST_BYTE = 0x78  # an unsealed answer (written without a sealer): a zlib stream


class TenancyService:
    def __init__(
        self,
        engine: Engine,
        *,
        pepper: str | None = None,
        audit: AuditRecorder | None = None,
        idempotency_lease_s: float = IDEMPOTENCY_LEASE_S,
        answers: AnswerSealer | None = None,
        fingerprint_key: bytes | None = None,
    ) -> None:
        """`pepper` keys the hash of every API key (STRONGROOM_API_KEY_PEPPER). Without one, a
        random pepper is generated once and kept in the database: fine for development, but
        then a copy of the database alone is enough to test guesses offline. `audit` records
        key creations and revocations as leaves of the tenant's log, in their transaction.
        `answers` seals the stored idempotency answers (`serve` always gives one): an answer
        may hold a secret shown once, such as a webhook endpoint's signing secret.
        `fingerprint_key` keys the fingerprints of idempotent requests (runtime derives it from
        the key manager, outside the database); without one, the pepper does."""
        self.engine = engine
        self._answers = answers
        self._fingerprint_key = fingerprint_key
        self.idempotency_lease_s = idempotency_lease_s
        self._audit = audit
        self._pepper = pepper.encode() if pepper else None
        self._cache: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()
        self._system_tenant: Tenant | None = None

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

    def fingerprint(self, method: str, path: str, body: bytes) -> str:
        """The keyed fingerprint of an idempotent request (module function `fingerprint`)."""
        return fingerprint(self._fingerprint_key or self._pepper_bytes(), method, path, body)

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
        return Tenant(row[0], row[1], row[2], row[3])

    def system_tenant(self) -> Tenant:
        """The deployment's own tenant, whose keys are the operator's (tenants:admin) and which
        holds no money and no personal data. Its name cannot be a tenant's
        (validate_tenant_name refuses a leading '_'); made on first use."""
        if self._system_tenant is None:
            with UnitOfWork(self.engine) as uow:
                row = store.get_tenant_by_name(uow, SYSTEM_TENANT_NAME)
                if row is None:
                    row = (ids.new_id("ten"), SYSTEM_TENANT_NAME, clock.now_us())
                    store.insert_tenant(uow, *row)
                    uow.commit()
            self._system_tenant = Tenant(row[0], row[1], row[2])
        return self._system_tenant

    def create_tenant(self, name: str, *, actor: str) -> Tenant:
        """A new tenant (409 tenant_exists when the name is taken), with a first leaf in its
        audit log saying who created it."""
        validate_tenant_name(name)
        tenant = Tenant(ids.new_id("ten"), name, clock.now_us())
        with UnitOfWork(self.engine) as uow:
            if store.get_tenant_by_name(uow, name) is not None:
                raise TenantExists(f"a tenant named {name!r} exists", param="name")
            store.insert_tenant(uow, tenant.id, tenant.name, tenant.created_at)
            if self._audit is not None:
                data = {"tenant_id": tenant.id, "name": name}
                self._audit.record_all(uow, tenant.id, actor, [("tenant.created", tenant.id, data)])
            uow.commit()
        return tenant

    def get_tenant(self, tenant_id: str) -> Tenant:
        with UnitOfWork(self.engine, write=False) as uow:
            row = store.get_tenant(uow, tenant_id)
        if row is None or row[1] == SYSTEM_TENANT_NAME:
            raise NotFound(f"no tenant {tenant_id}", param="tenant_id")
        return Tenant(row[0], row[1], row[2], row[3])

    def list_tenants(self, *, starting_after: str | None, limit: int) -> tuple[list[Tenant], bool]:
        """A page of tenants by id (the system tenant left out) and whether more follow."""
        with UnitOfWork(self.engine, write=False) as uow:
            rows = store.list_tenants(uow, starting_after, limit + 1, SYSTEM_TENANT_NAME)
        return [Tenant(r[0], r[1], r[2], r[3]) for r in rows[:limit]], len(rows) > limit

    def set_suspended(self, tenant_id: str, suspended: bool, *, actor: str) -> Tenant:
        """Suspend a tenant (its keys authenticate no more: at once in this process, within
        API_KEY_CACHE_TTL_S in the others) or resume it; a leaf in its log says who did."""
        tenant = self.get_tenant(tenant_id)
        at = clock.now_us() if suspended else None
        with UnitOfWork(self.engine) as uow:
            store.set_tenant_suspended(uow, tenant.id, at)
            if self._audit is not None:
                kind = "tenant.suspended" if suspended else "tenant.resumed"
                item = (kind, tenant.id, {"tenant_id": tenant.id})
                self._audit.record_all(uow, tenant.id, actor, [item])
            uow.commit()
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v[1].tenant_id != tenant.id}
        return Tenant(tenant.id, tenant.name, tenant.created_at, at)

    def tenant_by_name(self, name: str) -> Tenant | None:
        with UnitOfWork(self.engine, write=False) as uow:
            row = store.get_tenant_by_name(uow, name)
        return None if row is None else Tenant(row[0], row[1], row[2], row[3])

    def tenant(self, tenant_id: str) -> Tenant:
        with UnitOfWork(self.engine, write=False) as uow:
            row = store.get_tenant(uow, tenant_id)
        if row is None:
            raise NotFound(f"no tenant {tenant_id}", param="tenant")
        return Tenant(row[0], row[1], row[2], row[3])

    def create_api_key(
        self,
        tenant_name: str | None,
        scopes: Sequence[str],
        *,
        actor: str = "tenancy",
        role: str | None = None,
        transfer_ceiling: int | None = None,
    ) -> tuple[ApiKey, str]:
        """Returns the key and its secret. Only a keyed hash of the secret is stored: the
        secret cannot be shown again. `role` (security.rbac.Role) is recorded with the key;
        its scopes are the caller's to expand. A key with tenants:admin is the operator's: it
        belongs to the system tenant (`tenant_name` None) and holds no other scope.
        `transfer_ceiling`: minor units one transfer of the key may move past the step-up
        threshold (STRONGROOM_STEP_UP_TRANSFER_AMOUNT)."""
        parsed = Scope.parse(list(scopes))
        if Scope.TENANTS_ADMIN in parsed:
            if tenant_name not in (None, SYSTEM_TENANT_NAME):
                raise _operator_scope_refused()
            tenant = self.system_tenant()
        elif tenant_name is None:
            raise InvalidRequest("give the key's tenant", param="tenant")
        else:
            tenant = self.ensure_tenant(tenant_name)
        return self.create_tenant_api_key(
            tenant.id, scopes, actor=actor, role=role, transfer_ceiling=transfer_ceiling
        )

    def create_tenant_api_key(
        self,
        tenant_id: str,
        scopes: Sequence[str],
        *,
        actor: str,
        role: str | None = None,
        transfer_ceiling: int | None = None,
    ) -> tuple[ApiKey, str]:
        """create_api_key for a tenant known by id (the API's, for its caller's tenant).
        tenants:admin is given alone, and only on the system tenant's keys."""
        parsed = Scope.parse(list(scopes))
        if Scope.TENANTS_ADMIN in parsed and (
            parsed != {Scope.TENANTS_ADMIN} or tenant_id != self.system_tenant().id
        ):
            raise _operator_scope_refused()
        assert transfer_ceiling is None or transfer_ceiling >= 0
        secret = SECRET_KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(ids.new_id("key"), tenant_id, parsed, secret[-4:], role, transfer_ceiling)
        digest = self._digest(secret)
        with UnitOfWork(self.engine) as uow:
            store.insert_api_key(
                uow,
                (
                    key.id,
                    tenant_id,
                    digest,
                    key.hint,
                    " ".join(sorted(s.value for s in parsed)),
                    clock.now_us(),
                    role,
                ),
                transfer_ceiling,
            )
            if self._audit is not None:
                data: dict[str, object] = {
                    "key_id": key.id,
                    "scopes": sorted(s.value for s in parsed),
                }
                if role is not None:
                    data["role"] = role
                if transfer_ceiling is not None:
                    data["transfer_ceiling"] = str(transfer_ceiling)
                self._audit.record_all(uow, tenant_id, actor, [("api_key.created", key.id, data)])
            uow.commit()
        return key, secret

    def transfer_ceiling(self, key_id: str) -> int | None:
        """A live key's transfer ceiling, from the database (a revoked key has none)."""
        with UnitOfWork(self.engine, write=False) as uow:
            return store.api_key_transfer_ceiling(uow, key_id)

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
        ceiling = None if row[5] is None else int(row[5])
        key = ApiKey(row[0], row[1], Scope.parse(row[3].split()), row[2], row[4], ceiling)
        with self._lock:
            self._cache[digest] = (now + API_KEY_CACHE_TTL_S, key)
        return key

    # -- idempotency -----------------------------------------------------------------------

    def begin_idempotent(self, tenant_id: str, key: str, print_: str) -> IdempotencyOutcome:
        """Claim `key` for a request of the tenant with fingerprint `print_`.

        STARTED: this attempt holds the key (for `idempotency_lease_s`; renew_idempotent while
        it runs). It is a first attempt, or a retry of one whose lease ended (its owner died,
        or released it after a 5xx): `resumed`, with the same `claimed_at_us`, so it mints the
        same ids. REPLAY: the stored answer. IN_FLIGHT: another attempt holds the lease, for
        `retry_after_s` more. MISMATCH: the key was used with another request. A record past
        IDEMPOTENCY_RETENTION_S is claimed anew, as if it did not exist."""
        assert len(key) <= IDEMPOTENCY_KEY_LENGTH_MAX
        now = clock.now_us()
        lease_until = now + int(self.idempotency_lease_s * 1_000_000)
        owner = secrets.token_hex(16)
        started = IdempotencyOutcome(IdempotencyState.STARTED, claimed_at_us=now, owner=owner)
        with UnitOfWork(self.engine) as uow:
            if store.insert_idempotency_record(
                uow, tenant_id, key, print_, owner, now, lease_until
            ):
                uow.commit()
                return started
            record = store.get_idempotency_record(uow, tenant_id, key)
            if record is None:  # purged between the two statements
                store.insert_idempotency_record(
                    uow, tenant_id, key, print_, owner, now, lease_until
                )
                uow.commit()
                return started
            if record.claimed_at < now - IDEMPOTENCY_RETENTION_S * 1_000_000:
                store.reclaim_idempotency_record(
                    uow, tenant_id, key, print_, owner, now, lease_until
                )
                uow.commit()
                return started
            if record.fingerprint != print_:
                return IdempotencyOutcome(IdempotencyState.MISMATCH)
            if record.status_code is not None:
                stored = self._unseal(tenant_id, key, record.body)
                status, body = _stored_answer(record.status_code, stored)
                return IdempotencyOutcome(IdempotencyState.REPLAY, status, body)
            # A lease past the longest one allowed was not written by an attempt (a clock far
            # ahead, a hand edit): it is over now rather than never.
            longest = now + int(IDEMPOTENCY_LEASE_S_MAX * 1_000_000)
            if now < record.lease_until <= longest:
                wait_s = -(-(record.lease_until - now) // 1_000_000)
                return IdempotencyOutcome(IdempotencyState.IN_FLIGHT, retry_after_s=wait_s)
            store.take_over_idempotency_record(uow, tenant_id, key, owner, lease_until)
            uow.commit()
        return IdempotencyOutcome(
            IdempotencyState.STARTED, claimed_at_us=record.claimed_at, resumed=True, owner=owner
        )

    def renew_idempotent(self, tenant_id: str, key: str, owner: str) -> bool:
        """Extend `owner`'s lease by another lease; False when it no longer holds it."""
        lease_until = clock.now_us() + int(self.idempotency_lease_s * 1_000_000)
        with UnitOfWork(self.engine) as uow:
            held = store.renew_idempotency_lease(uow, tenant_id, key, owner, lease_until)
            uow.commit()
        return held

    def finish_idempotent(
        self,
        tenant_id: str,
        key: str,
        owner: str,
        status_code: int,
        body: bytes,
        subject_id: str | None = None,
    ) -> bool:
        """Store the answer, compressed and sealed, with the data subject it concerns (erasing
        the subject deletes the record); False when another attempt took the key over."""
        packed = zlib.compress(body)
        if self._answers is not None:
            packed = self._answers.seal(tenant_id, key, packed)
        with UnitOfWork(self.engine) as uow:
            stored = store.finish_idempotency_record(
                uow, tenant_id, key, owner, status_code, packed, subject_id
            )
            uow.commit()
        return stored

    def erase_subject_answers(self, uow: UnitOfWork, tenant_id: str, subject_id: str) -> int:
        """In an erasure's transaction (`uow`): every stored answer of the tenant that concerns
        `subject_id` (it holds the subject's masked personal data) becomes a `410 data_erased`
        problem, sealed as any answer. The record stays, its fingerprint too: a retry of the
        request is answered so, never run again (it would create the subject anew). How many."""
        keys = store.subject_record_keys(uow, tenant_id, subject_id)
        # Its request id is the erasure's own (the answer is made now, not by the request).
        answer = {**_ERASED_ANSWER, "request_id": ids.new_id("req")}
        packed = zlib.compress(json.dumps(answer).encode())
        for key in keys:
            sealed = packed if self._answers is None else self._answers.seal(tenant_id, key, packed)
            store.replace_idempotency_answer(uow, tenant_id, key, 410, sealed)
        return len(keys)

    def stored_answer(self, tenant_id: str, key: str, stored: bytes) -> bytes:
        """The answer a record's `body` holds, opened and inflated (for checks and tests)."""
        opened = self._unseal(tenant_id, key, stored)
        assert opened is not None
        return zlib.decompress(opened)

    def _unseal(self, tenant_id: str, key: str, stored: bytes | None) -> bytes | None:
        """A stored answer as finish_idempotent compressed it: opened when sealed. A sealed one
        that does not open (moved to another key or tenant, edited) is corrupt."""
        if stored is None or not stored or stored[0] == _ZLIB_FIRST_BYTE:
            return stored
        if self._answers is None:
            raise ValueError("a sealed idempotency answer, and no key to open it")
        try:
            return self._answers.open(tenant_id, key, bytes(stored))
        except DecryptionFailed:
            raise ValueError(
                "a corrupt idempotency record: its sealed answer does not open"
            ) from None

    def abandon_idempotent(self, tenant_id: str, key: str, owner: str) -> None:
        """Forget the claim of a first attempt refused before it did anything (403 for its
        scope, 429 for its rate): such an answer is not worth 24 hours of replays, and a read
        key must not be able to write a record per request."""
        with UnitOfWork(self.engine) as uow:
            store.delete_idempotency_record(uow, tenant_id, key, owner)
            uow.commit()

    def release_idempotent(self, tenant_id: str, key: str, owner: str) -> None:
        """End the lease of an attempt that failed before it could answer (a 5xx), keeping the
        claim: the client's retry runs at once and mints the same ids, so whatever the failed
        attempt committed is found, not made twice."""
        with UnitOfWork(self.engine) as uow:
            store.release_idempotency_record(uow, tenant_id, key, owner)
            uow.commit()

    def purge_idempotency(
        self, *, now_us: int | None = None, keep: Callable[[], bool] = lambda: True
    ) -> int:
        """Delete the records older than IDEMPOTENCY_RETENTION_S, a batch per transaction, as
        long as `keep()` (the retention job's lease) holds; the count deleted."""
        cutoff = (now_us or clock.now_us()) - IDEMPOTENCY_RETENTION_S * 1_000_000
        total = 0
        while keep():
            with UnitOfWork(self.engine) as uow:
                count = store.purge_idempotency_records(uow, cutoff, IDEMPOTENCY_PURGE_BATCH)
                uow.commit()
            total += count
            if count < IDEMPOTENCY_PURGE_BATCH:
                break
        return total


class TenantExists(Conflict):
    code = "tenant_exists"


def _operator_scope_refused() -> InvalidRequest:
    return InvalidRequest(
        "tenants:admin is an operator's scope alone, on the system tenant: give no tenant and "
        "no other scope",
        param="scope",
        code="invalid_scope",
    )


# The answer an erasure leaves in place of a stored one that held the subject's masked data.
_ERASED_ANSWER: Final = {
    "type": "urn:strongroom:error:data_erased",
    "title": "The personal data of this subject was erased",
    "status": 410,
    "detail": "the data subject this request concerned was erased since: its answer is gone",
    "code": "data_erased",
}


def _stored_answer(status_code: int, body: bytes | None) -> tuple[int, bytes]:
    """A stored answer, checked: a record edited by hand (a status no server sends, a body that
    is not what finish_idempotent wrote, or one that inflates past any answer) is an error, not
    a reply."""
    if not 200 <= status_code <= 599 or body is None:
        raise ValueError("a corrupt idempotency record: no answer can be replayed from it")
    inflate = zlib.decompressobj()
    try:
        answer = inflate.decompress(body, IDEMPOTENCY_ANSWER_BYTES_MAX)
    except zlib.error:
        raise ValueError("a corrupt idempotency record: its answer is not zlib") from None
    if inflate.unconsumed_tail or not inflate.eof:
        raise ValueError("a corrupt idempotency record: its answer is too large or cut short")
    return status_code, answer
