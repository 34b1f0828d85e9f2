"""Envelope encryption: a data key per subject (a customer, a counterparty, a card), wrapped
by the key manager's active key-encryption key and kept in `subject_keys`; each field sealed
under its subject's data key with AES-256-GCM, its associated data naming the tenant, the
subject, the record and the field, so a ciphertext copied to another row or field does not
decrypt. Destroying a subject's wrapped key (crypto-shredding) makes every value sealed under
it unrecoverable, by anyone, while rows that only commit to those values (audit leaves, keyed
hashes) stay verifiable."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from sqlalchemy.engine import Engine

from strongroom.core import clock
from strongroom.core.errors import NotFound
from strongroom.db.uow import UnitOfWork
from strongroom.security import aead
from strongroom.security import store as keys_store
from strongroom.security.errors import DataErased, KeyUnavailableError
from strongroom.security.kms import KeyManager, KeyState, KeyUnavailable, WrappedKey

REWRAP_BATCH: Final = 500  # data keys moved to the active KEK per transaction


class SubjectKind(StrEnum):
    CUSTOMER = "customer"
    COUNTERPARTY = "counterparty"
    CARD = "card"
    # Server secrets (security/sealing.py): a webhook endpoint's signing secret, the private
    # half of an audit log signing key. At most 16 characters (subject_keys.kind).
    WEBHOOK_ENDPOINT = "webhook_endpoint"
    AUDIT_KEY = "audit_key"
    OB_SIGNING_KEY = "ob_signing_key"  # open banking's response signing key (x-jws-signature)


@dataclass(frozen=True, slots=True)
class DataKey:
    """A subject's data key, unwrapped for the span of one request; never logged."""

    tenant_id: str
    subject_id: str
    key: bytes = field(repr=False)

    def _aad(self, record: str, name: str) -> bytes:
        return aead.context("strongroom field v1", self.tenant_id, self.subject_id, record, name)

    def seal(self, record: str, name: str, value: bytes) -> bytes:
        """`value` sealed for field `name` of `record` (a table-qualified row id)."""
        return aead.seal(self.key, value, self._aad(record, name))

    def open(self, record: str, name: str, sealed: bytes) -> bytes:
        return aead.open_sealed(self.key, sealed, self._aad(record, name))


def totp_aad(tenant_id: str, user_id: str) -> bytes:
    """The associated data a user's wrapped TOTP secret is bound to (security/auth)."""
    return aead.context("strongroom totp secret v1", tenant_id, user_id)


def _wrap_aad(tenant_id: str, subject_id: str) -> bytes:
    return aead.context("strongroom subject key v1", tenant_id, subject_id)


class Envelope:
    def __init__(self, kms: KeyManager) -> None:
        self.kms = kms

    def new_subject(
        self, uow: UnitOfWork, tenant_id: str, subject_id: str, kind: SubjectKind
    ) -> DataKey:
        """A fresh data key for a new subject, stored wrapped in the caller's transaction."""
        key, wrapped = self.prepare_subject(tenant_id, subject_id)
        keys_store.insert_subject_key(
            uow, subject_id, tenant_id, kind.value, wrapped.version, wrapped.blob, clock.now_us()
        )
        return key

    def prepare_subject(self, tenant_id: str, subject_id: str) -> tuple[DataKey, WrappedKey]:
        """A fresh data key and its wrapped form, outside any transaction: the caller seals
        with it, then stores it (`store_subjects`) with what it sealed, many in one go."""
        key = aead.new_key()
        wrapped = self.kms.wrap(key, _wrap_aad(tenant_id, subject_id))
        return DataKey(tenant_id, subject_id, key), wrapped

    def store_subjects(
        self, uow: UnitOfWork, kind: SubjectKind, keys: Sequence[tuple[DataKey, WrappedKey]]
    ) -> None:
        """Prepared subjects' wrapped keys, in the caller's transaction; a subject that has a
        key already keeps it (a retried request's)."""
        now = clock.now_us()
        keys_store.insert_subject_keys(
            uow,
            [(k.subject_id, k.tenant_id, kind.value, w.version, w.blob, now) for k, w in keys],
        )

    def known_subjects(self, uow: UnitOfWork, subject_ids: Sequence[str]) -> set[str]:
        """Those of `subject_ids` that ever had a data key here: live, or shredded (a subject
        that was erased or deleted, whose id must not be used again)."""
        return keys_store.existing_subject_ids(uow, subject_ids) if subject_ids else set()

    def subject(self, uow: UnitOfWork, tenant_id: str, subject_id: str) -> DataKey:
        """The subject's data key. Another tenant's subject is not found, an erased one is
        `data_erased`, one under a disabled KEK version is `key_unavailable`."""
        row = keys_store.get_subject_key(uow, subject_id)
        if row is None or row[0] != tenant_id:
            raise NotFound(f"no subject key for {subject_id}")
        if row[3] is None:
            raise DataErased(f"the personal data of {subject_id} was erased")
        return self.unwrap_subject(tenant_id, subject_id, WrappedKey(int(row[2]), bytes(row[3])))

    def unwrap_subject(self, tenant_id: str, subject_id: str, wrapped: WrappedKey) -> DataKey:
        """The data key of a wrapped key already read (`key_unavailable` when its KEK version
        is disabled)."""
        try:
            key = self.kms.unwrap(wrapped, _wrap_aad(tenant_id, subject_id))
        except KeyUnavailable:
            raise KeyUnavailableError(
                f"the key protecting {subject_id} is disabled (version {wrapped.version})"
            ) from None
        return DataKey(tenant_id, subject_id, key)

    def shred(self, uow: UnitOfWork, tenant_id: str, subject_id: str) -> bool:
        """Destroys the subject's wrapped data key; False when it was already gone."""
        row = keys_store.get_subject_key(uow, subject_id)
        if row is None or row[0] != tenant_id:
            raise NotFound(f"no subject key for {subject_id}")
        return keys_store.shred_subject_key(uow, subject_id, clock.now_us()) == 1

    def blind_index(self, tenant_id: str, purpose: str, value: bytes) -> bytes:
        """A keyed hash of a normalised value for exact lookup (an email, a national id, a
        card number), per tenant and purpose: equal values match, nothing else is learnt."""
        return self.kms.mac(f"{purpose}\x1f{tenant_id}", value)

    def rewrap(
        self,
        engine: Engine,
        *,
        keep: Callable[[], bool] = lambda: True,
        batches_max: int | None = None,
    ) -> int:
        """Moves every live data key to the active KEK version, a batch per transaction (a
        request may read a key between batches: both versions unwrap). Returns how many.
        A rotation meanwhile is no error: a key wrapped again lands on whichever version is
        active when it is, and the next rewrap moves the rest."""
        moved = 0
        batches = 0
        target = self.kms.active_version()
        # Only the versions that unwrap: a disabled one's keys stay where they are (their
        # subjects answer key_unavailable) and must not stop the others' move.
        usable = [
            v.version
            for v in self.kms.versions()
            if v.version < target and v.state is KeyState.RETIRED
        ]
        if not usable:
            return 0
        # The subjects' data keys, then the users' TOTP secrets (wrapped directly).
        kinds = (
            (keys_store.keys_under, _wrap_aad, keys_store.rewrap_subject_key),
            (keys_store.totp_under, totp_aad, keys_store.rewrap_totp),
        )
        for under, aad_of, store_again in kinds:
            while keep() and (batches_max is None or batches < batches_max):
                batches += 1
                with UnitOfWork(engine) as uow:
                    rows = under(uow, usable, REWRAP_BATCH)
                    for owner_id, tenant_id, version, wrapped in rows:
                        aad = aad_of(tenant_id, owner_id)
                        key = self.kms.unwrap(WrappedKey(int(version), bytes(wrapped)), aad)
                        again = self.kms.wrap(key, aad)
                        assert again.version >= target, "the active version went back"
                        moved += store_again(uow, owner_id, int(version), again.version, again.blob)
                    uow.commit()
                if len(rows) < REWRAP_BATCH:
                    break
        return moved

    def wrapped_by_version(self, engine: Engine) -> dict[int, int]:
        with UnitOfWork(engine, write=False) as uow:
            return keys_store.count_by_version(uow)
