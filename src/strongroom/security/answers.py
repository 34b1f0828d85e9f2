"""Stored idempotency answers, sealed: an answer may carry a secret shown once (a webhook
endpoint's signing secret, a new API key, an invitation token) or masked personal data, and is
kept 24 hours for replays. Each is sealed (AES-256-GCM) under a per-tenant key that the key
manager derives with its MAC key (never stored), bound to its tenant and Idempotency-Key."""

from __future__ import annotations

import threading

from strongroom.security import aead
from strongroom.security.kms import KeyManager

_PURPOSE = "idempotency answers v1"


class SealedAnswers:
    def __init__(self, kms: KeyManager) -> None:
        self.kms = kms
        self._keys: dict[str, bytes] = {}  # derived, deterministic: a cache, not a state
        self._lock = threading.Lock()

    def _key(self, tenant_id: str) -> bytes:
        key = self._keys.get(tenant_id)
        if key is None:
            key = self.kms.mac(_PURPOSE, tenant_id.encode())
            with self._lock:
                self._keys[tenant_id] = key
        return key

    def seal(self, tenant_id: str, name: str, answer: bytes) -> bytes:
        return aead.seal(self._key(tenant_id), answer, aead.context(_PURPOSE, tenant_id, name))

    def open(self, tenant_id: str, name: str, sealed: bytes) -> bytes:
        """Raises aead.DecryptionFailed for a record moved, edited or sealed elsewhere."""
        return aead.open_sealed(
            self._key(tenant_id), sealed, aead.context(_PURPOSE, tenant_id, name)
        )
