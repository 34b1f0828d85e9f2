"""Server secrets kept envelope-encrypted: the webhook endpoints' signing secrets and the audit
log's signing keys (their private halves).

Design: a data key per secret, not a direct wrap under the KEK. Each owner (an endpoint, an
audit key) is a subject of `subject_keys` like a customer is, so that everything the key
manager protects is in one table: `strongroom keys status` counts it, the rewrap job moves it
to a new KEK version with everything else, `keys destroy` refuses while it is still wrapped by
the version, and deleting the owner crypto-shreds the secret. The sealed value's associated
data names the tenant, the owner and the field, so a sealed secret copied to another row does
not open.

Stored form: `sealed:v1:` and the base64 of the sealed bytes, in the column that held the
secret in clear. A value without the prefix is a clear one written before this release:
`reseal_clear` (run by `serve` at start and by `strongroom keys seal-secrets`) seals them in
place, so no migration needs the keys.
"""

from __future__ import annotations

import base64
import contextlib
from typing import Final, Protocol

from strongroom.core.errors import NotFound
from strongroom.db.uow import UnitOfWork
from strongroom.security.envelope import Envelope, SubjectKind
from strongroom.security.errors import DataErased

PREFIX: Final = "sealed:v1:"
# The tenant of deployment-wide secrets (the audit log's signing keys): not a real tenant,
# only the first part of their data key's associated data.
DEPLOYMENT: Final = "_deployment"


class SecretSealer(Protocol):
    """What a domain that keeps a secret needs (events, audit): seal one for a new owner in
    the caller's transaction, open it, and forget it when its owner goes."""

    def seal(
        self, uow: UnitOfWork, tenant_id: str, owner_id: str, kind: SubjectKind, clear: str
    ) -> str: ...

    def open(self, uow: UnitOfWork, tenant_id: str, owner_id: str, stored: str) -> str: ...

    def forget(self, uow: UnitOfWork, tenant_id: str, owner_id: str) -> None: ...


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


class SealedSecrets:
    """SecretSealer over the envelope: a subject (data key) per owner."""

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope

    def seal(
        self, uow: UnitOfWork, tenant_id: str, owner_id: str, kind: SubjectKind, clear: str
    ) -> str:
        """The stored form of `clear`; the owner's data key is created in `uow` (or reused,
        for a secret that replaces another)."""
        try:
            key = self.envelope.subject(uow, tenant_id, owner_id)
        except (NotFound, DataErased):
            key = self.envelope.new_subject(uow, tenant_id, owner_id, kind)
        sealed = key.seal(owner_id, "secret", clear.encode())
        return PREFIX + base64.b64encode(sealed).decode()

    def open(self, uow: UnitOfWork, tenant_id: str, owner_id: str, stored: str) -> str:
        """The secret in clear; a value stored before sealing existed is returned as it is
        (`reseal_clear` seals it)."""
        if not is_sealed(stored):
            return stored
        key = self.envelope.subject(uow, tenant_id, owner_id)
        raw = base64.b64decode(stored.removeprefix(PREFIX), validate=True)
        return key.open(owner_id, "secret", raw).decode()

    def forget(self, uow: UnitOfWork, tenant_id: str, owner_id: str) -> None:
        """Crypto-shreds the owner's data key (nothing if it had none)."""
        with contextlib.suppress(NotFound):
            self.envelope.shred(uow, tenant_id, owner_id)
